-- Purpose: the facts of every granted access event, as they stood at the event's instant,
--          for the need-to-know policies (policies/rules/ntk/) to decide on.
-- Inputs:  access_log, users, cases, domains, case_participants;
--          $1 and $2, the half-open window [from, to) of event times.
-- Outputs: one row per granted event in the window: the event's identifier and instant, the
--          numbers of its user and case (by which the audit finds their identifiers, and
--          the user's domains, authority kind and member state, which stay the same from
--          event to event), then the facts that change from event to event: the operation,
--          its purpose and legal ground; the case's domain (by which the audit finds its
--          third countries), personal data, blocked and deleted state at ts and consent; the
--          domain's Commission role; whether the event's authority took part in the case at
--          ts; whether the user was active (registered, not yet deactivated) at ts.
-- Plan:    the events meet two tables, each named first so that it is the side DataFusion
--          builds in memory while the events stream past it: the users first (that join adds
--          one fact, so the second copies fewer columns), then the cases with their domain
--          and participation. Joins compare the numbers import gives every case and user
--          (`case_key`, `user_key`), which DataFusion looks up by position rather than by
--          hash. Each join copies every column gathered so far, so the events carry only
--          what the facts need: no text identifiers but the event's, and no list; the case's
--          domain is a dictionary, copied as a 4-byte key.
-- Note:    an authority may take part in a case more than once (several roles, or leaving and
--          rejoining), in periods that may overlap. A case's periods, each with its
--          authority's number, are gathered into one list per case and packed into bytes
--          (`packed_periods`, copied by a join as one 16-byte view), and
--          `in_any_period(ts, periods, authority)` tells whether one of the event authority's
--          periods holds the event (joined at or before it, not yet left). An event's
--          authority is its user's (import checks it).
WITH participation AS (
  SELECT
    case_key,
    packed_periods(array_agg(named_struct('authority', authority_key, 'joined', joined_at, 'left', left_at)))
      AS periods
  FROM case_participants
  GROUP BY case_key
),
case_facts AS (
  SELECT
    c.case_key,
    arrow_cast(c.domain, 'Dictionary(Int32, Utf8)') AS case_domain,
    c.personal_data,
    c.blocked_at,
    c.deleted_at,
    c.subject_consent,
    d.commission_participates
  FROM domains d
  RIGHT JOIN cases c ON d.domain = c.domain
),
case_participation AS (
  SELECT c.*, p.periods
  FROM participation p
  RIGHT JOIN case_facts c ON p.case_key = c.case_key
),
granted AS (
  SELECT
    event_id,
    ts,
    user_key,
    authority_key,
    case_key,
    action,
    purpose,
    legal_ground IS NOT NULL AS legal_ground
  FROM access_log
  WHERE outcome = 'granted'
    AND ts >= $1
    AND ts < $2
),
with_user AS (
  SELECT
    e.*,
    u.registered_at <= e.ts AND (u.deactivated_at IS NULL OR e.ts < u.deactivated_at) AS user_active
  FROM users u
  JOIN granted e ON u.user_key = e.user_key
)
SELECT
  e.event_id,
  e.ts,
  e.user_key,
  e.case_key,
  e.action,
  e.purpose,
  e.legal_ground,
  c.case_domain,
  c.personal_data,
  c.blocked_at IS NOT NULL AND c.blocked_at <= e.ts AS blocked,
  c.deleted_at IS NOT NULL AND c.deleted_at < e.ts AS deleted,
  c.subject_consent,
  c.commission_participates,
  in_any_period(e.ts, c.periods, e.authority_key) AS participating,
  e.user_active
FROM case_participation c
RIGHT JOIN with_user e ON c.case_key = e.case_key
