-- Purpose: users who ceased to be IMI users, for RET-USER-BLOCK and RET-USER-DELETE.
-- Inputs:  users.
-- Outputs: the columns of `users`, for every user with a deactivation.
SELECT *
FROM users
WHERE deactivated_at IS NOT NULL
