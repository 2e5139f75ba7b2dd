-- Purpose: the facts of every granted access event, as they stood at the event's instant,
--          for the need-to-know policies (policies/rules/ntk/) to decide on.
-- Inputs:  access_log, users, authorities, cases, domains, case_participants;
--          $1 and $2, the half-open window [from, to) of event times.
-- Outputs: one row per granted event in the window: the event's identifiers, then the facts
--          the Cedar entities are built from (user active at ts; the user's number, by which
--          the audit finds the user's domains; the authority's kind and member state; the
--          case's domain, by which the audit finds its third countries, personal data,
--          blocked and deleted state at ts and consent; the domain's Commission role; whether
--          the user's authority took part in the case at ts).
-- Plan:    every join names the small table first (participation, cases with their domain,
--          users with their authority), so that it is the side DataFusion builds in memory and
--          the events stream past it; joins compare the numbers import gives every case, user
--          and authority (`case_key`, ...), not their text. Each join copies the columns
--          gathered so far, so no list-valued column is carried (the static lists are read
--          once by the audit), and domains are joined to cases and authorities to users
--          before the events meet them. An event's authority is its user's (import checks it).
--          Text from the small tables is cast to string views, which a join copies as 16
--          bytes rather than the whole string.
-- Note:    an authority may take part in a case more than once (several roles, or leaving and
--          rejoining), in periods that may overlap. Its periods are gathered into one list per
--          case and authority (`participation`), so that the join meets at most one row per
--          event, and `in_any_period(ts, periods)` tells whether the event falls in one of
--          them (joined at or before it, not yet left). The list is packed into bytes
--          (`packed_periods`), which the join copies as one 16-byte view.
WITH participation AS (
  SELECT
    case_key,
    authority_key,
    packed_periods(array_agg(named_struct('joined', joined_at, 'left', left_at))) AS periods
  FROM case_participants
  GROUP BY case_key, authority_key
),
case_facts AS (
  SELECT
    c.case_key,
    arrow_cast(c.domain, 'Utf8View') AS case_domain,
    c.personal_data,
    c.blocked_at,
    c.deleted_at,
    c.subject_consent,
    d.commission_participates
  FROM domains d
  RIGHT JOIN cases c ON d.domain = c.domain
),
user_facts AS (
  SELECT
    u.user_key,
    u.registered_at,
    u.deactivated_at,
    arrow_cast(a.kind, 'Utf8View') AS kind,
    arrow_cast(a.member_state, 'Utf8View') AS member_state
  FROM authorities a
  JOIN users u ON a.authority_key = u.authority_key
),
granted AS (
  SELECT
    event_id,
    ts,
    user_id,
    authority_id,
    case_id,
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
with_participation AS (
  SELECT e.*, in_any_period(e.ts, p.periods) AS participating
  FROM participation p
  RIGHT JOIN granted e
    ON p.case_key = e.case_key
    AND p.authority_key = e.authority_key
),
with_case AS (
  SELECT
    e.*,
    c.case_domain,
    c.personal_data,
    c.blocked_at IS NOT NULL AND c.blocked_at <= e.ts AS blocked,
    c.deleted_at IS NOT NULL AND c.deleted_at <= e.ts AS deleted,
    c.subject_consent,
    c.commission_participates
  FROM case_facts c
  RIGHT JOIN with_participation e ON c.case_key = e.case_key
)
SELECT
  e.event_id,
  e.ts,
  e.user_id,
  e.authority_id,
  e.case_id,
  e.action,
  e.purpose,
  e.legal_ground,
  u.registered_at <= e.ts AND (u.deactivated_at IS NULL OR e.ts < u.deactivated_at) AS user_active,
  e.user_key,
  u.kind AS authority_kind,
  u.member_state,
  e.case_domain,
  e.personal_data,
  e.blocked,
  e.deleted,
  e.subject_consent,
  e.commission_participates,
  e.participating
FROM user_facts u
JOIN with_case e ON u.user_key = e.user_key
