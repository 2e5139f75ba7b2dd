-- Purpose: users who ceased to be IMI users, for RET-USER-BLOCK and RET-USER-DELETE.
-- Inputs:  users.
-- Outputs: the columns of `users`, for every user with a deactivation.
SELECT * EXCLUDE (user_key, authority_key)
FROM users
WHERE deactivated_at IS NOT NULL
