//! The audit's plain twin: no query engine, Cedar once per event, obviously right.

use super::*;

/// The plain twin of [`audit`]: reads the tables with no query engine, builds every event's
/// scene with its real identifiers and the full list of participants at its instant, and
/// asks Cedar once per event. Slow and obviously right; the differential test and the
/// benchmark hold [`audit`] to it.
pub fn naive(store: &Store, judge: &Judge, window: Window) -> Result<Audit> {
    use crate::catalog;
    type Micros = Option<i64>;
    let text = |b: &RecordBatch, name: &str| -> StringArray {
        b.column_by_name(name)
            .map(|c| c.as_string::<i32>().clone())
            .unwrap_or_else(|| StringArray::from(Vec::<Option<&str>>::new()))
    };
    let time = |b: &RecordBatch, name: &str, row: usize| -> Micros {
        let a = b.column_by_name(name)?.as_primitive::<TimestampMicrosecondType>();
        (!a.is_null(row)).then(|| a.value(row))
    };
    let flag = |b: &RecordBatch, name: &str, row: usize| -> bool {
        b.column_by_name(name).is_some_and(|c| yes(c.as_boolean(), row))
    };
    let list = |b: &RecordBatch, name: &str, row: usize| -> Vec<String> {
        b.column_by_name(name).map(|c| items(c.as_list::<i32>(), row)).unwrap_or_default()
    };

    let mut authorities: HashMap<String, (String, String)> = HashMap::new();
    for b in store.read(catalog::AUTHORITIES.name)? {
        let (id, kind, ms) = (text(&b, "authority_id"), text(&b, "kind"), text(&b, "member_state"));
        for r in 0..b.num_rows() {
            authorities.insert(id.value(r).into(), (kind.value(r).into(), ms.value(r).into()));
        }
    }
    let mut domains: HashMap<String, (bool, Vec<String>)> = HashMap::new();
    let effective = query::effective_domains(store)?;
    let codes = text(&effective, "domain");
    for r in 0..effective.num_rows() {
        domains.insert(
            codes.value(r).into(),
            (flag(&effective, "commission_participates", r), list(&effective, "third_countries", r)),
        );
    }
    struct User {
        authority: String,
        domains: Vec<String>,
        registered: i64,
        deactivated: Micros,
    }
    let mut users: HashMap<String, User> = HashMap::new();
    for b in store.read(catalog::USERS.name)? {
        let (id, auth) = (text(&b, "user_id"), text(&b, "authority_id"));
        for r in 0..b.num_rows() {
            users.insert(
                id.value(r).into(),
                User {
                    authority: auth.value(r).into(),
                    domains: list(&b, "domains", r),
                    registered: time(&b, "registered_at", r).unwrap_or(i64::MAX),
                    deactivated: time(&b, "deactivated_at", r),
                },
            );
        }
    }
    struct Case {
        domain: String,
        personal_data: bool,
        blocked: Micros,
        deleted: Micros,
        consent: bool,
    }
    let mut cases: HashMap<String, Case> = HashMap::new();
    for b in store.read(catalog::CASES.name)? {
        let (id, domain) = (text(&b, "case_id"), text(&b, "domain"));
        for r in 0..b.num_rows() {
            cases.insert(
                id.value(r).into(),
                Case {
                    domain: domain.value(r).into(),
                    personal_data: flag(&b, "personal_data", r),
                    blocked: time(&b, "blocked_at", r),
                    deleted: time(&b, "deleted_at", r),
                    consent: flag(&b, "subject_consent", r),
                },
            );
        }
    }
    let mut participants: HashMap<String, Vec<(String, i64, Micros)>> = HashMap::new();
    for b in store.read(catalog::CASE_PARTICIPANTS.name)? {
        let (case, auth) = (text(&b, "case_id"), text(&b, "authority_id"));
        for r in 0..b.num_rows() {
            participants.entry(case.value(r).into()).or_default().push((
                auth.value(r).into(),
                time(&b, "joined_at", r).unwrap_or(i64::MAX),
                time(&b, "left_at", r),
            ));
        }
    }

    let none = (String::new(), String::new());
    let mut out = Audit { judged: window.judged(store)?, ..Audit::default() };
    for b in store.read(catalog::ACCESS_LOG.name)? {
        let (event, user, case, action, purpose, ground, outcome) = (
            text(&b, "event_id"),
            text(&b, "user_id"),
            text(&b, "case_id"),
            text(&b, "action"),
            text(&b, "purpose"),
            text(&b, "legal_ground"),
            text(&b, "outcome"),
        );
        for r in 0..b.num_rows() {
            let ts = time(&b, "ts", r).unwrap_or_default();
            if outcome.value(r) != "granted"
                || window.from.is_some_and(|f| ts < f)
                || window.to.is_some_and(|t| ts >= t)
            {
                continue;
            }
            let Some(u) = users.get(user.value(r)) else { continue };
            let (kind, ms) = authorities.get(&u.authority).unwrap_or(&none);
            let case_scene = match opt(Text::Plain(&case), r) {
                None => None,
                Some(id) => {
                    let Some(c) = cases.get(id) else { continue };
                    let (commission, countries) = domains.get(&c.domain).cloned().unwrap_or_default();
                    let here: Vec<(&str, &str, &str)> = participants
                        .get(id)
                        .into_iter()
                        .flatten()
                        .filter(|(_, joined, left)| *joined <= ts && left.is_none_or(|l| ts < l))
                        .map(|(a, _, _)| {
                            let (k, m) = authorities.get(a).unwrap_or(&none);
                            (a.as_str(), k.as_str(), m.as_str())
                        })
                        .collect();
                    Some((c, commission, countries, here, id))
                }
            };
            let scene = Scene {
                user: user.value(r),
                authority: &u.authority,
                authority_kind: kind,
                member_state: ms,
                user_active: u.registered <= ts && u.deactivated.is_none_or(|d| ts < d),
                user_domains: u.domains.iter().map(String::as_str).collect(),
                action: action.value(r),
                purpose: purpose.value(r),
                legal_ground: !ground.is_null(r),
                case: case_scene.as_ref().map(|(c, commission, countries, here, id)| CaseScene {
                    id,
                    domain: &c.domain,
                    personal_data: c.personal_data,
                    blocked: c.blocked.is_some_and(|b| b <= ts),
                    deleted: c.deleted.is_some_and(|d| d < ts),
                    subject_consent: c.consent,
                    commission_participates: *commission,
                    third_countries: countries.iter().map(String::as_str).collect(),
                    participants: here.clone(),
                }),
            };
            out.events += 1;
            out.scenes += 1;
            let verdict = judge.decide(&scene)?;
            for rule in &verdict.broken {
                let who = Event {
                    id: event.value(r),
                    user: user.value(r),
                    authority: &u.authority,
                    member_state: ms,
                    case: opt(Text::Plain(&case), r),
                    ts,
                };
                out.findings.push(who.finding(judge, rule, &verdict.broken));
            }
        }
    }
    out.findings.sort();
    Ok(out)
}
