//! Synthetic IMI: a deterministic generator of realistic IMI exports with violations injected
//! at known rates and labelled.
//!
//! The same seed, scale and event count give byte-identical files: every random choice comes
//! from one ChaCha stream, nothing iterates a hash map, and no clock is read. Scale 1 is the
//! real IMI's size (about 12,600 authorities, 44,000 users and 60,000 exchanges a year); the
//! access log is written as it is generated, so its size is bounded by disk, not memory.
//!
//! Every violation is placed well away from the boundary of the rule it breaks (days, not
//! seconds), and every compliant fact well inside its period, so that the labels are exact
//! whatever the time zone, weekend or holiday: `labels/violations.csv` lists each
//! `(rule, subject_kind, subject_id)` a correct checker must find as of
//! [`Params::as_of`], and nothing else it may find.

mod reviews;

pub use reviews::review_history;

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, Months, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};

use custos_engine::annex;
use custos_engine::catalog::EEA;
use custos_engine::{Error, Progress, Result};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Params {
    /// The random seed.
    pub seed: u64,
    /// 1.0 is the real IMI's size.
    pub scale: f64,
    /// Access events to write; `None` for about 20 per case.
    pub events: Option<u64>,
}

impl Default for Params {
    fn default() -> Self {
        Params { seed: 1, scale: 0.02, events: None }
    }
}

impl Params {
    /// The first instant of the generated history.
    pub fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2021, 1, 1, 0, 0, 0).single().unwrap_or_default()
    }

    /// The instant the labels hold as of: the end of the generated history.
    pub fn as_of() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).single().unwrap_or_default()
    }
}

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Rows per table, in the order written.
    pub rows: Vec<(&'static str, u64)>,
    /// Labelled violations.
    pub violations: u64,
}

/// Relative number of IMI actors per member state (roughly as registered in IMI).
const WEIGHTS: [u32; 30] = [
    40, 30, 12, 4, 20, 120, 15, 5, 60, 12, 70, 25, 10, 18, 8, 2, 80, 1, 8, 3, 5, 2, 30, 14, 70, 25, 25, 25,
    6, 10,
];

/// IANA zones are not needed here: every generated fact keeps days of margin.
const DAY: i64 = 86_400;

struct Authority {
    id: String,
    ms: &'static str,
    domains: Vec<usize>,
    users: Vec<usize>,
    third_country: bool,
    /// An IMI or national coordinator: gives technical support (IMI Art. 6(1)(d)).
    coordinator: bool,
}

struct User {
    id: String,
    authority: usize,
    domains: Vec<usize>,
    registered: i64,
    deactivated: Option<i64>,
}

struct Participant {
    authority: usize,
    role: &'static str,
    joined: i64,
    left: Option<i64>,
}

struct Case {
    id: String,
    domain: usize,
    created: i64,
    personal: bool,
    /// Personal data blocked and deleted, by the Commission (IMI Art. 14(6)).
    blocked: Option<i64>,
    deleted: Option<i64>,
    participants: Vec<Participant>,
}

struct Labels {
    out: csv::Writer<BufWriter<File>>,
    count: u64,
}

impl Labels {
    fn add(&mut self, rule: &str, kind: &str, id: &str) -> Result<()> {
        self.count += 1;
        self.out.write_record([rule, kind, id]).map_err(csv_err)
    }
}

fn csv_err(e: csv::Error) -> Error {
    Error::Io { path: "synthetic output".into(), source: std::io::Error::other(e) }
}

fn ts(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn opt_ts(secs: Option<i64>) -> String {
    secs.map(ts).unwrap_or_default()
}

fn add_months(secs: i64, months: u32) -> i64 {
    DateTime::from_timestamp(secs, 0)
        .and_then(|d| d.checked_add_months(Months::new(months)))
        .map_or(secs, |d| d.timestamp())
}

fn writer(dir: &Path, name: &str) -> Result<csv::Writer<BufWriter<File>>> {
    let path = dir.join(name);
    let f = File::create(&path).map_err(Error::io(&path))?;
    Ok(csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, f)))
}

/// The columns of `table` as the catalog lists them, in their order: the header of its file.
/// The generator writes every row in this order (the CSV writer refuses a row of another
/// length, and `tests` import what it writes).
fn header(table: &str) -> Result<Vec<&'static str>> {
    let t = custos_engine::catalog::table(table).ok_or_else(|| {
        Error::Internal(format!("the generator writes `{table}`, which the catalog does not define"))
    })?;
    Ok(t.columns.iter().map(|c| c.name).collect())
}

/// The CSV file of `table` in `dir`, its header written from the catalog.
fn table_writer(dir: &Path, table: &str) -> Result<csv::Writer<BufWriter<File>>> {
    let mut w = writer(dir, &format!("{table}.csv"))?;
    w.write_record(header(table)?).map_err(csv_err)?;
    Ok(w)
}

/// Writes a synthetic IMI export to `dir`: one CSV file per table, and the labels under
/// `dir/labels/`.
pub fn generate(dir: &Path, params: &Params) -> Result<Summary> {
    generate_with(dir, params, &Progress::default())
}

/// [`generate`], telling `progress` each step and the access events written.
pub fn generate_with(dir: &Path, params: &Params, progress: &Progress) -> Result<Summary> {
    progress.step("writing authorities, users and cases", "rows", None);
    fs::create_dir_all(dir.join("labels")).map_err(Error::io(dir))?;
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let start = Params::start().timestamp();
    let as_of = Params::as_of().timestamp();
    let mut summary = Summary::default();
    let mut labels = Labels { out: writer(&dir.join("labels"), "violations.csv")?, count: 0 };
    labels.out.write_record(["rule", "subject_kind", "subject_id"]).map_err(csv_err)?;

    // Domains: the shipped defaults, written out so the export stands on its own.
    let domains = annex::DOMAINS;
    let mut w = table_writer(dir, "domains")?;
    for d in domains {
        w.write_record([
            d.domain,
            d.name,
            d.legal_act,
            &d.retention_months.to_string(),
            &d.commission_participates.to_string(),
            &d.special_categories_basis.to_string(),
            &d.third_countries.join(";"),
            &d.repository.to_string(),
        ])
        .map_err(csv_err)?;
    }
    w.flush().map_err(Error::io(dir))?;
    summary.rows.push(("domains", domains.len() as u64));
    let domain_weights: Vec<u32> = domains
        .iter()
        .map(|d| match d.domain {
            "professional_qualifications" => 30,
            "services" => 20,
            "posting_of_workers" => 20,
            "patients_rights" => 6,
            "solvit" => 8,
            "public_documents" => 6,
            _ => 2,
        })
        .collect();
    let pick_weighted = |rng: &mut ChaCha8Rng, weights: &[u32]| -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = rng.random_range(0..total);
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    };

    // Authorities.
    let n_auth = ((12_600.0 * params.scale).round() as usize).max(60);
    let total_weight: u32 = WEIGHTS.iter().sum();
    let mut auths: Vec<Authority> = Vec::with_capacity(n_auth + 8);
    let mut w = table_writer(dir, "authorities")?;
    let all_domains: Vec<usize> = (0..domains.len()).collect();
    let push_auth = |w: &mut csv::Writer<_>,
                     auths: &mut Vec<Authority>,
                     ms: &'static str,
                     kind: &str,
                     doms: Vec<usize>|
     -> Result<()> {
        let id = format!("A-{ms}-{:05}", auths.len());
        let names: Vec<&str> = doms.iter().map(|&d| domains[d].domain).collect();
        w.write_record([id.as_str(), ms, kind, &format!("{kind} {}", auths.len()), &names.join(";")])
            .map_err(csv_err)?;
        auths.push(Authority {
            id,
            ms,
            domains: doms,
            users: Vec::new(),
            third_country: kind == "third_country_authority",
            coordinator: kind == "imi_coordinator" || kind == "national_coordinator",
        });
        Ok(())
    };
    push_auth(&mut w, &mut auths, "EU", "commission", all_domains.clone())?;
    push_auth(&mut w, &mut auths, "EU", "union_body", vec![5])?;
    push_auth(&mut w, &mut auths, "CH", "third_country_authority", vec![1])?;
    push_auth(&mut w, &mut auths, "UA", "third_country_authority", vec![1])?;
    for (i, ms) in EEA.iter().enumerate() {
        let n = ((n_auth as u64 * u64::from(WEIGHTS[i])) / u64::from(total_weight)).max(2);
        push_auth(&mut w, &mut auths, ms, "national_coordinator", all_domains.clone())?;
        for k in 1..n {
            let kind = if k % 25 == 0 { "imi_coordinator" } else { "competent_authority" };
            let mut doms = vec![pick_weighted(&mut rng, &domain_weights)];
            if rng.random_bool(0.3) {
                let d = pick_weighted(&mut rng, &domain_weights);
                if !doms.contains(&d) {
                    doms.push(d);
                }
            }
            doms.sort_unstable();
            push_auth(&mut w, &mut auths, ms, kind, doms)?;
        }
    }
    w.flush().map_err(Error::io(dir))?;
    summary.rows.push(("authorities", auths.len() as u64));

    // Users: about 3.5 per authority; some hold only one of their authority's domains.
    let mut users: Vec<User> = Vec::new();
    let mut w = table_writer(dir, "users")?;
    #[allow(clippy::needless_range_loop)] // users record their authority by index
    for a in 0..auths.len() {
        let n = if a == 0 { 12 } else { 1 + rng.random_range(0..6usize) };
        for k in 0..n {
            // The Commission's users hold every domain; elsewhere some hold only one.
            let doms = if a > 0 && k > 0 && auths[a].domains.len() > 1 && rng.random_bool(0.3) {
                vec![auths[a].domains[rng.random_range(0..auths[a].domains.len())]]
            } else {
                auths[a].domains.clone()
            };
            let mut doms = doms;
            let registered = start - rng.random_range(0..3 * 365) * DAY + rng.random_range(0..DAY);
            // Rights granted in an area the authority is not competent for (IMI Art. 9(2)-(3)).
            let outside = a >= 4 && rng.random_bool(0.01);
            if outside {
                let extra = (0..domains.len()).find(|d| !auths[a].domains.contains(d));
                if let Some(extra) = extra {
                    doms.push(extra);
                    doms.sort_unstable();
                }
            }
            let mut deactivated = None;
            let (mut blocked, mut deleted) = (None, None);
            let id = format!("U{:07}", users.len());
            if k > 0 && rng.random_bool(0.06) {
                let d = start
                    + rng.random_range(30..(as_of - start) / DAY - 20) * DAY
                    + 9 * 3600
                    + rng.random_range(0..6 * 3600);
                deactivated = Some(d);
                let r: f64 = rng.random();
                if r < 0.04 {
                    labels.add("RET-USER-BLOCK", "user", &id)?; // never blocked
                } else if r < 0.08 {
                    blocked = Some(d + rng.random_range(5..15) * DAY);
                    labels.add("RET-USER-BLOCK", "user", &id)?;
                } else {
                    blocked = Some(d + rng.random_range(60..6 * 3600));
                }
                let three = add_months(d, 36);
                if three + 20 * DAY < as_of {
                    if rng.random_bool(0.1) {
                        labels.add("RET-USER-DELETE", "user", &id)?;
                    } else {
                        deleted = Some(three - rng.random_range(2..30) * DAY);
                    }
                } else if three - 20 * DAY < as_of {
                    deleted = Some(three - 25 * DAY);
                }
            }
            if doms.iter().any(|d| !auths[a].domains.contains(d)) && deactivated.is_none_or(|d| d > as_of) {
                labels.add("USR-RIGHTS", "user", &id)?;
            }
            let names: Vec<&str> = doms.iter().map(|&d| domains[d].domain).collect();
            w.write_record([
                id.as_str(),
                &auths[a].id,
                &names.join(";"),
                &ts(registered),
                &opt_ts(deactivated),
                &opt_ts(blocked),
                &opt_ts(deleted),
            ])
            .map_err(csv_err)?;
            auths[a].users.push(users.len());
            users.push(User { id, authority: a, domains: doms, registered, deactivated });
        }
    }
    w.flush().map_err(Error::io(dir))?;
    summary.rows.push(("users", users.len() as u64));

    // Cases and their participants.
    let years = (as_of - start) as f64 / (365.25 * DAY as f64);
    let n_cases = ((60_000.0 * params.scale * years).round() as usize).max(200);
    let by_domain: Vec<Vec<usize>> = (0..domains.len())
        .map(|d| (4..auths.len()).filter(|&a| auths[a].domains.contains(&d)).collect())
        .collect();
    let response = LogNormal::new(2.3, 0.9).map_err(|e| Error::Internal(e.to_string()))?;
    let acceptance = LogNormal::new(0.8, 1.0).map_err(|e| Error::Internal(e.to_string()))?;
    let mut cases: Vec<Case> = Vec::with_capacity(n_cases);
    let mut w = table_writer(dir, "cases")?;
    let mut wp = table_writer(dir, "case_participants")?;
    let span_days = (as_of - start) / DAY - 10;
    let mut n_participants = 0u64;
    for c in 0..n_cases {
        let id = format!("C{:08}", c);
        let domain = pick_weighted(&mut rng, &domain_weights);
        let pool = &by_domain[domain];
        if pool.len() < 2 {
            continue;
        }
        let requester = pool[rng.random_range(0..pool.len())];
        let mut responder = pool[rng.random_range(0..pool.len())];
        for _ in 0..8 {
            if auths[responder].ms != auths[requester].ms && !auths[responder].third_country {
                break;
            }
            responder = pool[rng.random_range(0..pool.len())];
        }
        // Creation times spread evenly over the history, at office hours.
        let created =
            start + (c as i64 * span_days / n_cases as i64) * DAY + 8 * 3600 + rng.random_range(0..8 * 3600);
        let procedure = if domains[domain].domain == "solvit" {
            "solvit_case"
        } else {
            match rng.random_range(0..100) {
                0..75 => "request",
                75..87 => "notification",
                87..97 => "alert",
                _ => "repository",
            }
        };
        let personal = rng.random_bool(0.9);
        let special_basis = domains[domain].special_categories_basis;
        let mut special = personal && special_basis && rng.random_bool(0.2);
        if personal && !special_basis && rng.random_bool(0.005) {
            special = true;
            labels.add("CASE-SPECIAL", "case", &id)?;
        }
        let sent = created + rng.random_range(600..2 * DAY);
        // A request with no responder has no one to answer it late (rules.md, RT-LATE).
        let has_responder = responder != requester;
        let mut accepted = None;
        let mut answered = None;
        let mut due = None;
        let mut rating = (None, None);
        let mut last = sent;
        // Most procedures run to their end; the rest are still open.
        if procedure == "request" || procedure == "solvit_case" {
            let due_at = (sent / DAY + rng.random_range(14..35)) * DAY + 12 * 3600;
            due = Some(due_at);
            let acc = sent + (acceptance.sample(&mut rng) * DAY as f64) as i64 + 1800;
            accepted = Some(acc);
            let mut ans = acc + 600 + (response.sample(&mut rng) * DAY as f64) as i64;
            // Keep late answers a day and a half past the agreed day's noon (UTC), so they are
            // late in every EEA time zone, and on-time ones before that noon.
            if ans > due_at && ans < due_at + 36 * 3600 {
                ans = due_at + 36 * 3600 + rng.random_range(3600..DAY);
            }
            if ans + 3 * DAY < as_of && rng.random_bool(0.97) {
                answered = Some(ans);
                last = ans;
                if ans > due_at && procedure == "request" && has_responder {
                    labels.add("RT-LATE", "case", &id)?;
                }
                if rng.random_bool(0.6) {
                    let neg = if ans > due_at { 0.3 } else { 0.03 };
                    let r = |rng: &mut ChaCha8Rng| {
                        if rng.random_bool(neg) {
                            "negative"
                        } else if rng.random_bool(0.7) {
                            "positive"
                        } else {
                            "neutral"
                        }
                    };
                    rating = (Some(r(&mut rng)), Some(r(&mut rng)));
                }
            } else if procedure == "request" && due_at + 36 * 3600 < as_of {
                if has_responder {
                    labels.add("RT-LATE", "case", &id)?;
                }
            } else if procedure == "request" {
                // Unanswered and not yet due: the agreed day lies well after the as-of instant.
                due = Some(as_of.max(due_at) / DAY * DAY + 5 * DAY + 12 * 3600);
            }
        }
        let mut closed = None;
        let mut justified = false;
        let end = answered.unwrap_or(sent + rng.random_range(1..20) * DAY);
        let mut retention = domains[domain].retention_months;
        let mut case_retention = None;
        if rng.random_bool(0.03) && retention < 18 {
            retention = 12;
            case_retention = Some(12);
        }
        // A repository basis exempts the case only where its domain's act provides a
        // repository (IMI Art. 14(2)); elsewhere it is an ordinary case.
        let basis = procedure == "repository" && personal;
        let repository = basis && domains[domain].repository;
        if (answered.is_some() || procedure != "request") && end + 5 * DAY < as_of && rng.random_bool(0.93) {
            let mut cl = end + rng.random_range(1..5) * DAY;
            cl = cl / DAY * DAY + 9 * 3600 + rng.random_range(0..7 * 3600);
            // Keep the blocking and deletion deadlines away from the as-of instant.
            while (add_months(cl, retention as u32) - as_of).abs() < 20 * DAY
                || (add_months(cl, 36) - as_of).abs() < 20 * DAY
            {
                cl -= 45 * DAY;
            }
            if cl > last {
                closed = Some(cl);
                last = cl;
            }
        }
        let mut blocked = None;
        let mut deleted = None;
        let mut early_requested = None;
        let mut consent = false;
        if let Some(cl) = closed {
            if personal && !repository {
                let block_due = add_months(cl, retention as u32);
                let del_due = add_months(cl, 36);
                let early = cl + rng.random_range(30..(retention * 30 - 20)) * DAY;
                if block_due + 20 * DAY < as_of && rng.random_bool(0.01) {
                    // Early deletion, before the blocking deadline, with or without the
                    // request and the consent that allow it.
                    deleted = Some(early);
                    if rng.random_bool(0.5) {
                        early_requested = Some(early - 3 * DAY);
                        consent = true;
                    } else {
                        labels.add("RET-EARLY-DELETE", "case", &id)?;
                    }
                } else if block_due + 20 * DAY < as_of {
                    let r: f64 = rng.random();
                    if r < 0.03 {
                        labels.add("RET-BLOCK", "case", &id)?; // never blocked
                    } else if r < 0.06 {
                        blocked = Some(block_due + rng.random_range(20..60) * DAY);
                        if blocked.is_some_and(|b| b > as_of) {
                            blocked = None;
                        }
                        labels.add("RET-BLOCK", "case", &id)?;
                    } else {
                        blocked = Some(block_due - rng.random_range(20..40) * DAY);
                    }
                }
                if deleted.is_none() && del_due + 20 * DAY < as_of {
                    let r: f64 = rng.random();
                    if r < 0.04 {
                        labels.add("RET-DELETE", "case", &id)?;
                    } else {
                        // On the third anniversary of closure, an hour after its time of day.
                        deleted = Some(add_months(cl, 36) + 3600);
                    }
                }
            }
        } else if last + 75 * DAY < as_of {
            // An open case untouched for more than two months.
            if rng.random_bool(0.85) {
                justified = true;
            } else {
                labels.add("RET-INACTIVE", "case", &id)?;
            }
        } else if last + 50 * DAY > as_of {
            // Recent enough.
        } else {
            justified = true;
        }
        let mut participants =
            vec![Participant { authority: requester, role: "requesting", joined: created, left: None }];
        // Some requests are forwarded to another authority days before their agreed day: the
        // answer is then the new responder's (rules.md, RT-LATE).
        let forward = match due {
            Some(d)
                if has_responder && procedure == "request" && d > sent + 6 * DAY && rng.random_bool(0.05) =>
            {
                let to = pool[rng.random_range(0..pool.len())];
                (to != requester && to != responder && !auths[to].third_country)
                    .then(|| (to, sent + rng.random_range(1..3) * DAY))
            }
            _ => None,
        };
        if has_responder {
            participants.push(Participant {
                authority: responder,
                role: "responding",
                joined: sent,
                left: forward.map(|(_, at)| at),
            });
        }
        if let Some((to, at)) = forward {
            participants.push(Participant { authority: to, role: "responding", joined: at, left: None });
        }
        // The Commission takes part in some cases where its act gives it a role (IMI Art. 8(3)).
        if domains[domain].commission_participates && rng.random_bool(0.02) {
            participants.push(Participant { authority: 0, role: "informed", joined: sent, left: None });
        }
        if rng.random_bool(0.1) {
            let other = pool[rng.random_range(0..pool.len())];
            if participants.iter().all(|p| p.authority != other) {
                let joined = sent + rng.random_range(1..5) * DAY;
                let left = rng.random_bool(0.3).then(|| joined + rng.random_range(5..30) * DAY);
                participants.push(Participant { authority: other, role: "informed", joined, left });
            }
        }
        if domains[domain].domain == "professional_qualifications" && rng.random_bool(0.02) {
            participants.push(Participant { authority: 2, role: "informed", joined: sent, left: None });
        }
        if domains[domain].domain == "professional_qualifications" && rng.random_bool(0.01) {
            // A third country without an agreement for this domain.
            participants.push(Participant { authority: 3, role: "informed", joined: sent, left: None });
        }
        w.write_record([
            id.as_str(),
            domains[domain].domain,
            procedure,
            &auths[requester].id,
            &ts(created),
            &ts(sent),
            &opt_ts(accepted),
            &opt_ts(answered),
            &opt_ts(due),
            &opt_ts(closed),
            &ts(last),
            &justified.to_string(),
            &personal.to_string(),
            &special.to_string(),
            &case_retention.map(|r: i64| r.to_string()).unwrap_or_default(),
            if basis { "union_act" } else { "" },
            &opt_ts(blocked),
            &opt_ts(deleted),
            &opt_ts(early_requested),
            &consent.to_string(),
            rating.0.unwrap_or_default(),
            rating.1.unwrap_or_default(),
        ])
        .map_err(csv_err)?;
        for p in &participants {
            wp.write_record([id.as_str(), &auths[p.authority].id, p.role, &ts(p.joined), &opt_ts(p.left)])
                .map_err(csv_err)?;
            n_participants += 1;
        }
        cases.push(Case { id, domain, created, personal, blocked, deleted, participants });
    }
    w.flush().map_err(Error::io(dir))?;
    wp.flush().map_err(Error::io(dir))?;
    summary.rows.push(("cases", cases.len() as u64));
    summary.rows.push(("case_participants", n_participants));

    let events = params.events.unwrap_or(cases.len() as u64 * 20);
    progress.step("writing access_log", "events", Some(events));
    let (n, last_login) =
        write_events(dir, &mut rng, events, &auths, &users, &cases, &mut labels, start, as_of, progress)?;
    progress.step("writing requests and breaches", "rows", None);
    summary.rows.push(("access_log", n));
    label_dormant(&auths, &users, &last_login, &mut labels, as_of)?;
    let n = write_requests(dir, &mut rng, &auths, &cases, &mut labels, start, as_of, params.scale)?;
    summary.rows.push(("dsr_requests", n));
    let n = write_breaches(dir, &mut rng, &auths, &cases, &mut labels, start, as_of, params.scale)?;
    summary.rows.push(("breaches", n));
    labels.out.flush().map_err(Error::io(dir))?;
    summary.violations = labels.count;
    let about = serde_json::json!({
        "seed": params.seed,
        "scale": params.scale,
        "events": events,
        "as_of": ts(as_of),
        "kind": custos_engine::import::ANSWER_KEY,
        "note": "violations.csv lists every (rule, subject) a correct check finds as of `as_of` with status overdue, late or unmet; due_soon findings are not violations and are not listed",
    });
    let path = dir.join("labels").join("about.json");
    fs::write(&path, serde_json::to_vec_pretty(&about)?).map_err(Error::io(&path))?;
    Ok(summary)
}

/// Labels USR-DORMANT: every user active at `as_of` whose last granted login (or, without
/// one, registration) lies more than the default 12 months before it, by the periods of
/// Regulation 1182/71 in the calendar of the user's member state.
fn label_dormant(
    auths: &[Authority],
    users: &[User],
    last_login: &[Option<i64>],
    labels: &mut Labels,
    as_of: i64,
) -> Result<()> {
    let calendars = custos_engine::calendar::Calendars::shipped();
    for (u, user) in users.iter().enumerate() {
        if user.deactivated.is_some_and(|d| d <= as_of) {
            continue;
        }
        let since = last_login[u].map_or(user.registered, |l| l.max(user.registered));
        let since = DateTime::from_timestamp(since, 0).unwrap_or_default();
        let cal = calendars.get(auths[user.authority].ms);
        let due = custos_engine::period::end(since, custos_engine::period::Length::Months(12), &cal);
        if due.timestamp() < as_of {
            labels.add("USR-DORMANT", "user", &user.id)?;
        }
    }
    Ok(())
}

/// The access log, in time order, with need-to-know violations injected at about 1 in 1,000.
#[allow(clippy::too_many_arguments)]
fn write_events(
    dir: &Path,
    rng: &mut ChaCha8Rng,
    events: u64,
    auths: &[Authority],
    users: &[User],
    cases: &[Case],
    labels: &mut Labels,
    start: i64,
    as_of: i64,
    progress: &Progress,
) -> Result<(u64, Vec<Option<i64>>)> {
    // Counted in blocks: an atomic add per event would cost more than it tells.
    const BLOCK: u64 = 4096;
    let path = dir.join("access_log.csv");
    let f = File::create(&path).map_err(Error::io(&path))?;
    let mut out = BufWriter::with_capacity(1 << 20, f);
    writeln!(out, "{}", header("access_log")?.join(",")).map_err(Error::io(&path))?;
    let domains = annex::DOMAINS;
    let span = as_of - start - DAY;
    let active = |u: &User, t: i64| u.registered <= t && u.deactivated.is_none_or(|d| t < d);
    let commission_users: Vec<usize> = auths[0].users.clone();
    let deactivated_users: Vec<usize> =
        (0..users.len()).filter(|&u| users[u].deactivated.is_some()).collect();
    let blocked_cases: Vec<usize> = (0..cases.len()).filter(|&c| cases[c].blocked.is_some()).collect();
    let deleted_cases: Vec<usize> = (0..cases.len()).filter(|&c| cases[c].deleted.is_some()).collect();
    let ua_cases: Vec<usize> =
        (0..cases.len()).filter(|&c| cases[c].participants.iter().any(|p| p.authority == 3)).collect();
    let mut written = 0u64;
    let mut line = String::with_capacity(160);
    let mut last_login: Vec<Option<i64>> = vec![None; users.len()];
    for i in 0..events {
        let t = start + ((i as i128 * span as i128) / events.max(1) as i128) as i64 + rng.random_range(0..60);
        let id = format!("E{:010}", i);
        let mut rules: Vec<&str> = Vec::new();
        let inject = rng.random_range(0..1000u32);
        let mut row: Option<(usize, Option<usize>, &str, &str, &str)> = None;
        // An event placed at the instant of a fact (blocking, deletion) rather than at `t`.
        let mut at_instant: Option<i64> = None;
        // Find a case open to work at `t`: created in the 120 days before it.
        let hi = cases.partition_point(|c| c.created <= t);
        let lo = cases.partition_point(|c| c.created < t - 120 * DAY);
        for _attempt in 0..6 {
            if hi == lo {
                break;
            }
            let c = lo + rng.random_range(0..hi - lo);
            let case = &cases[c];
            if case.blocked.is_some_and(|b| b <= t) || case.deleted.is_some_and(|d| d <= t) {
                continue;
            }
            let here: Vec<&Participant> = case
                .participants
                .iter()
                .filter(|p| p.joined <= t && p.left.is_none_or(|l| t < l) && p.authority != 3)
                .collect();
            if here.is_empty() {
                continue;
            }
            let p = here[rng.random_range(0..here.len())];
            let staff = &auths[p.authority].users;
            if staff.is_empty() {
                continue;
            }
            let u = staff[rng.random_range(0..staff.len())];
            if !active(&users[u], t) || !users[u].domains.contains(&case.domain) {
                continue;
            }
            let action = match rng.random_range(0..10) {
                0..6 => "view",
                6 => "update",
                7 => "forward",
                8 => "print",
                _ => "export",
            };
            row = Some((u, Some(c), action, "administrative_cooperation", ""));
            break;
        }
        match (inject, row) {
            (0, Some((u, Some(c), ..))) if cases[c].personal => {
                // Purpose: statistics is no reason to open a file holding personal data.
                row = Some((u, Some(c), "view", "statistics", ""));
                rules.push("NTK-PURPOSE");
            }
            (1, Some((_, Some(c), ..))) if cases[c].personal => {
                // A user of an authority that does not take part, competent in the domain.
                let case = &cases[c];
                let outsider = (0..8).find_map(|_| {
                    let u = rng.random_range(0..users.len());
                    let a = users[u].authority;
                    let ok = a >= 4
                        && active(&users[u], t)
                        && users[u].domains.contains(&case.domain)
                        && case.participants.iter().all(|p| p.authority != a);
                    ok.then_some(u)
                });
                if let Some(u) = outsider {
                    row = Some((u, Some(c), "view", "administrative_cooperation", ""));
                    rules.push("NTK-INVOLVED");
                }
            }
            (2, Some((u, Some(c), ..))) if cases[c].personal => {
                // A colleague of a participant who lacks access rights for the domain (Art.
                // 9(4) is about personal data).
                let a = users[u].authority;
                let narrow = auths[a]
                    .users
                    .iter()
                    .copied()
                    .find(|&v| active(&users[v], t) && !users[v].domains.contains(&cases[c].domain));
                if let Some(v) = narrow {
                    row = Some((v, Some(c), "view", "administrative_cooperation", ""));
                    rules.push("NTK-DOMAIN");
                }
            }
            (3, Some((_, Some(c), ..)))
                if cases[c].personal && !domains[cases[c].domain].commission_participates =>
            {
                let u = commission_users[rng.random_range(0..commission_users.len())];
                if active(&users[u], t) {
                    row = Some((u, Some(c), "view", "administrative_cooperation", ""));
                    // Nor does it take part in the case: both rules are broken.
                    rules.push("NTK-COMMISSION");
                    rules.push("NTK-INVOLVED");
                }
            }
            (4, Some((u, Some(c), ..))) => {
                // Technical support is the Commission's and the coordinators' task (IMI Art.
                // 6(1)(d)): by a participant's user it breaks a rule unless a coordinator's.
                row = Some((u, Some(c), "update", "technical_support", ""));
                if !auths[users[u].authority].coordinator {
                    rules.push("NTK-PURPOSE");
                }
            }
            (9 | 10, _) => {
                // The Commission's Art. 14(6) work, lawful without taking part: blocking at the
                // instant of blocking, deleting at the instant of deletion, retrieving blocked
                // data for technical support or at a data subject's request.
                let from = if inject == 9 { &blocked_cases } else { &deleted_cases };
                let c = from.get(rng.random_range(0..from.len().max(1))).copied().unwrap_or(0);
                let case = &cases[c];
                let u = commission_users[rng.random_range(0..commission_users.len())];
                let purpose = if rng.random_bool(0.5) { "technical_support" } else { "data_subject_request" };
                let (at, action) = match (inject, case.blocked, case.deleted) {
                    (9, Some(b), d) if d.is_none_or(|d| b + DAY < d) && rng.random_bool(0.5) => (b, "block"),
                    (9, Some(b), d) if d.is_none_or(|d| b + DAY < d) => (b + DAY / 2, "retrieve_blocked"),
                    (10, _, Some(d)) => (d, "delete"),
                    _ => (0, ""),
                };
                if !action.is_empty() && active(&users[u], at) {
                    at_instant = Some(at);
                    row = Some((u, Some(c), action, purpose, ""));
                }
            }
            (11, Some((_, Some(c), ..)))
                if cases[c].personal
                    && domains[cases[c].domain].commission_participates
                    && cases[c].participants.iter().all(|p| p.authority != 0) =>
            {
                // A Commission user in a case it takes no part in, though its act gives it a
                // role in the domain: Art. 9(6) binds the Commission too.
                let u = commission_users[rng.random_range(0..commission_users.len())];
                if active(&users[u], t) {
                    row = Some((u, Some(c), "view", "administrative_cooperation", ""));
                    rules.push("NTK-INVOLVED");
                }
            }
            (12, Some((_, Some(c), ..))) => {
                // A national coordinator's technical support on a case it takes no part in:
                // lawful on a case without personal data; on personal data it still needs to
                // take part (and its user the access rights).
                let case = &cases[c];
                let helper = (0..8).find_map(|_| {
                    let u = rng.random_range(0..users.len());
                    let a = users[u].authority;
                    let ok = a >= 4
                        && auths[a].coordinator
                        && active(&users[u], t)
                        && case.participants.iter().all(|p| p.authority != a);
                    ok.then_some(u)
                });
                if let Some(u) = helper {
                    row = Some((u, Some(c), "view", "technical_support", ""));
                    if case.personal {
                        rules.push("NTK-INVOLVED");
                        if !users[u].domains.contains(&case.domain) {
                            rules.push("NTK-DOMAIN");
                        }
                    }
                }
            }
            (13, _) => {
                // A participant records that a data subject contests blocked data (IMI Art.
                // 19(2)): lawful on a blocked case.
                let c =
                    blocked_cases.get(rng.random_range(0..blocked_cases.len().max(1))).copied().unwrap_or(0);
                let case = &cases[c];
                let open =
                    case.blocked.is_some_and(|b| b + DAY < t) && case.deleted.is_none_or(|d| t + DAY < d);
                if open {
                    let p = &case.participants[0];
                    let ok = auths[p.authority]
                        .users
                        .iter()
                        .copied()
                        .find(|&u| active(&users[u], t) && users[u].domains.contains(&case.domain));
                    if let Some(u) = ok {
                        row = Some((u, Some(c), "update", "data_subject_request", ""));
                    }
                }
            }
            (5, _) => {
                // A login after the account was deactivated.
                if let Some(&u) = deactivated_users.get(rng.random_range(0..deactivated_users.len().max(1)))
                    && users[u].deactivated.is_some_and(|d| d + DAY < t)
                {
                    row = Some((u, None, "login", "administrative_cooperation", ""));
                    rules.push("NTK-USER-ACTIVE");
                }
            }
            (6 | 8, _) => {
                // Work on a case after it was blocked, or after it was deleted.
                let from = if inject == 6 { &blocked_cases } else { &deleted_cases };
                let c = from.get(rng.random_range(0..from.len().max(1))).copied().unwrap_or(0);
                let case = &cases[c];
                let gone = |at: Option<i64>| at.is_some_and(|x| x + DAY < t);
                if gone(case.blocked) || gone(case.deleted) {
                    let p = &case.participants[0];
                    let staff = &auths[p.authority].users;
                    let ok = staff
                        .iter()
                        .copied()
                        .find(|&u| active(&users[u], t) && users[u].domains.contains(&case.domain));
                    if let Some(u) = ok {
                        row = Some((u, Some(c), "view", "administrative_cooperation", ""));
                        if case.blocked.is_some_and(|b| b <= t) {
                            rules.push("NTK-BLOCKED");
                        }
                        if case.deleted.is_some_and(|d| d <= t) {
                            rules.push("NTK-DELETED");
                        }
                    }
                }
            }
            (7, _) => {
                // A third-country authority in a domain its country has no agreement for.
                let c = ua_cases.get(rng.random_range(0..ua_cases.len().max(1))).copied().unwrap_or(0);
                let case = &cases[c];
                let ua = case.participants.iter().find(|p| p.authority == 3 && p.joined <= t);
                let open = case.blocked.is_none_or(|b| t < b) && case.deleted.is_none_or(|d| t < d);
                if let (Some(p), true) = (ua, open) {
                    let staff = &auths[p.authority].users;
                    if let Some(&u) = staff.iter().find(|&&u| active(&users[u], t))
                        && users[u].domains.contains(&case.domain)
                    {
                        row = Some((u, Some(c), "view", "administrative_cooperation", ""));
                        rules.push("NTK-THIRD-COUNTRY");
                    }
                }
            }
            _ => {}
        }
        // A user at work logs in: the first plain event of a user who has not logged in for
        // three weeks is that login (the injections, `inject` below 14, stay as they are).
        if let Some((u, Some(_), ..)) = row
            && inject >= 14
            && last_login[u].is_none_or(|l| t - l > 21 * DAY)
        {
            row = Some((u, None, "login", "administrative_cooperation", ""));
        }
        if row.is_none() {
            // No case at hand: a login or a search by an active user.
            for _ in 0..20 {
                let u = rng.random_range(0..users.len());
                if active(&users[u], t) {
                    let action = if rng.random_bool(0.5) { "login" } else { "search" };
                    row = Some((u, None, action, "administrative_cooperation", ""));
                    break;
                }
            }
        }
        let Some((u, c, action, purpose, ground)) = row else { continue };
        let refused = rules.is_empty() && rng.random_bool(0.002);
        if action == "login" && !refused {
            last_login[u] = last_login[u].max(Some(t));
        }
        line.clear();
        line.push_str(&id);
        line.push(',');
        let t = at_instant.unwrap_or(t);
        line.push_str(&ts(t));
        line.push(',');
        line.push_str(&users[u].id);
        line.push(',');
        line.push_str(&auths[users[u].authority].id);
        line.push(',');
        if let Some(c) = c {
            line.push_str(&cases[c].id);
        }
        line.push(',');
        line.push_str(action);
        line.push(',');
        line.push_str(purpose);
        line.push(',');
        line.push_str(ground);
        line.push(',');
        line.push_str(if refused { "refused" } else { "granted" });
        line.push('\n');
        out.write_all(line.as_bytes()).map_err(Error::io(&path))?;
        for r in &rules {
            labels.add(r, "event", &id)?;
        }
        written += 1;
        if written.is_multiple_of(BLOCK) {
            progress.add(BLOCK);
        }
    }
    progress.add(written % BLOCK);
    out.flush().map_err(Error::io(&path))?;
    Ok((written, last_login))
}

/// Data-subject requests: mostly answered well in time, some late, refused without remedy
/// information, extended too late, or not answered at all.
#[allow(clippy::too_many_arguments)]
fn write_requests(
    dir: &Path,
    rng: &mut ChaCha8Rng,
    auths: &[Authority],
    cases: &[Case],
    labels: &mut Labels,
    start: i64,
    as_of: i64,
    scale: f64,
) -> Result<u64> {
    let mut w = table_writer(dir, "dsr_requests")?;
    let n = ((2_000.0 * scale * 5.5).round() as u64).max(60);
    let rights =
        ["access", "rectification", "erasure", "restriction", "portability", "objection", "information"];
    for i in 0..n {
        let id = format!("R{:07}", i);
        let (controller, regime) = match rng.random_range(0..10) {
            0 => (0, "imi_user"),
            1 => (0, "eudpr"),
            _ => (rng.random_range(4..auths.len()), "gdpr"),
        };
        let case = (regime != "imi_user" && rng.random_bool(0.7))
            .then(|| &cases[rng.random_range(0..cases.len())].id);
        let right = rights[rng.random_range(0..rights.len())];
        let received = start
            + rng.random_range(0..(as_of - start) / DAY - 2) * DAY
            + 8 * 3600
            + rng.random_range(0..9 * 3600);
        let age = (as_of - received) / DAY;
        let mut ext = None;
        let mut responded = None;
        let mut completed = None;
        let mut outcome = None;
        let mut remedy = false;
        let corrective = right == "rectification" || right == "erasure";
        if age < 12 {
            // Still open and not yet due.
        } else {
            let r: f64 = rng.random();
            let refused = r < 0.08;
            if refused {
                outcome = Some(if rng.random_bool(0.7) { "refused" } else { "no_action" });
                responded = Some(received + rng.random_range(2..20) * DAY);
                remedy = rng.random_bool(0.85);
                // EUDPR Art. 14(4) binds the Commission towards IMI users too.
                if !remedy {
                    labels.add("DSR-REFUSAL", "request", &id)?;
                }
            } else if r < 0.11 && age > 70 {
                // Never answered: late against the month of EUDPR Art. 14(3) (IMI users' requests
                // too), and against the Commission's fifteen working days for other rights.
                labels.add("DSR-RESPOND", "request", &id)?;
                if regime == "imi_user" && right != "access" {
                    labels.add("DSR-IMI-USER", "request", &id)?;
                }
                if corrective {
                    labels.add("DSR-IMI-CORRECT", "request", &id)?;
                }
            } else if r < 0.15 && age > 70 {
                // Answered late.
                responded = Some(received + rng.random_range(40..65) * DAY);
                outcome = Some("granted");
                labels.add("DSR-RESPOND", "request", &id)?;
                if regime == "imi_user" && right != "access" {
                    labels.add("DSR-IMI-USER", "request", &id)?;
                }
                if corrective {
                    completed = responded;
                    labels.add("DSR-IMI-CORRECT", "request", &id)?;
                }
            } else if r < 0.19 && age > 100 && regime != "imi_user" {
                // Extended: in time (then answered within three months), or too late.
                if rng.random_bool(0.7) {
                    ext = Some(received + rng.random_range(5..20) * DAY);
                    responded = Some(received + rng.random_range(45..80) * DAY);
                } else {
                    ext = Some(received + rng.random_range(40..50) * DAY);
                    responded = Some(received + rng.random_range(55..80) * DAY);
                    labels.add("DSR-EXTENSION", "request", &id)?;
                    labels.add("DSR-RESPOND", "request", &id)?;
                }
                outcome = Some("granted");
                if corrective {
                    completed = Some(received + rng.random_range(5..20) * DAY);
                }
            } else {
                responded = Some(received + rng.random_range(1..10) * DAY);
                outcome = Some(if rng.random_bool(0.8) { "granted" } else { "partially_granted" });
                if corrective {
                    completed = Some(received + rng.random_range(1..20) * DAY);
                }
            }
        }
        w.write_record([
            id.as_str(),
            &auths[controller].id,
            case.map_or("", String::as_str),
            &format!("S{:07}", rng.random_range(0..1_000_000)),
            right,
            regime,
            &ts(received),
            &opt_ts(ext),
            &opt_ts(responded),
            &opt_ts(completed),
            outcome.unwrap_or_default(),
            &remedy.to_string(),
        ])
        .map_err(csv_err)?;
    }
    w.flush().map_err(Error::io(dir))?;
    Ok(n)
}

/// Breaches: mostly notified in time and documented, some late (with or without reasons),
/// incomplete, or not communicated to the data subjects.
#[allow(clippy::too_many_arguments)]
fn write_breaches(
    dir: &Path,
    rng: &mut ChaCha8Rng,
    auths: &[Authority],
    cases: &[Case],
    labels: &mut Labels,
    start: i64,
    as_of: i64,
    scale: f64,
) -> Result<u64> {
    let mut w = table_writer(dir, "breaches")?;
    let n = ((400.0 * scale * 5.5).round() as u64).max(40);
    for i in 0..n {
        let id = format!("B{:06}", i);
        let controller = if rng.random_bool(0.15) { 0 } else { rng.random_range(4..auths.len()) };
        let supervisor = if controller == 0 { "EDPS" } else { auths[controller].ms };
        let aware = start + rng.random_range(0..(as_of - start) / DAY - 10) * DAY + rng.random_range(0..DAY);
        let risk = match rng.random_range(0..10) {
            0..4 => "unlikely",
            4..8 => "risk",
            _ => "high",
        };
        let mut notified = None;
        let mut reasons = "";
        if risk != "unlikely" {
            match rng.random_range(0..100) {
                0..6 => {
                    notified = Some(aware + rng.random_range(80..240) * 3600);
                    labels.add("BRE-NOTIFY", "breach", &id)?;
                    if rng.random_bool(0.5) {
                        reasons = "the scope could only be established after a forensic analysis";
                    } else {
                        labels.add("BRE-DELAY-REASONS", "breach", &id)?;
                    }
                }
                6..8 => labels.add("BRE-NOTIFY", "breach", &id)?,
                _ => notified = Some(aware + rng.random_range(2..60) * 3600),
            }
        }
        let dpo = if rng.random_bool(0.05) {
            labels.add("BRE-DPO", "breach", &id)?;
            Some(aware + rng.random_range(100..300) * 3600)
        } else {
            Some(aware + rng.random_range(1..24) * 3600)
        };
        let mut exemption = "";
        let mut subjects = None;
        if risk == "high" {
            match rng.random_range(0..10) {
                0 => exemption = "encrypted",
                1 => labels.add("BRE-SUBJECTS", "breach", &id)?,
                _ => subjects = Some(aware + rng.random_range(4..48) * 3600),
            }
        }
        let complete = !rng.random_bool(0.05);
        if !complete {
            labels.add("BRE-CONTENT", "breach", &id)?;
        }
        let concerned = cases[rng.random_range(0..cases.len())].id.clone();
        let notified_fields = notified.is_some();
        w.write_record([
            id.as_str(),
            &auths[controller].id,
            &ts(aware - rng.random_range(0..5) * DAY),
            &ts(aware),
            risk,
            supervisor,
            &opt_ts(notified),
            reasons,
            &opt_ts(dpo),
            &opt_ts(subjects),
            exemption,
            "unauthorised disclosure of case documents",
            "professionals applying for recognition",
            &(if notified_fields || rng.random_bool(0.5) {
                rng.random_range(1..500).to_string()
            } else {
                String::new()
            }),
            "identification data; qualifications",
            &(if notified_fields || rng.random_bool(0.5) {
                rng.random_range(1..2000).to_string()
            } else {
                String::new()
            }),
            "loss of confidentiality",
            if complete { "access revoked; users retrained" } else { "" },
            &concerned,
        ])
        .map_err(csv_err)?;
    }
    w.flush().map_err(Error::io(dir))?;
    Ok(n)
}
