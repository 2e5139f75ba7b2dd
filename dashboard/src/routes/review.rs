//! Reviewing findings: each reviewer's queue, one finding's review (its history and the form
//! that changes it), and one disposition for a selection after a confirmation page.
//!
//! Who may review or refer what is decided by the Cedar actions `review` and `refer`
//! (`policies/rules/view/review-*.cedar`); every change is a new version committed to the
//! store (`custos_engine::review`); a change made from a stale version is answered 409 with
//! what is there now.

use std::collections::HashMap;

use axum::Json as JsonBody;
use custos_engine::review::{self, Change, Disposition, State as Rs};

use super::*;
use crate::authz::Action;
use crate::page::{Input, Shown};

/// The routes of one finding's review and of a selection's.
pub(super) fn routes(r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    r.route("/review/bulk", get(bulk_confirm).post(bulk_form))
        .route("/api/review/bulk", post(bulk_json))
        .route("/review/{key}", get(finding).post(dispose_form))
        .route("/api/review/{key}", get(finding).post(dispose_json))
}

/// The findings of the data now shown by their stable key ([`review::key`]), with the hash of
/// the policy set that produced each.
pub struct Index {
    data: Arc<custos_engine::read::Data>,
    ntk_hash: String,
    deadline_hash: String,
    /// Key, whether a need-to-know finding, and its place in its list.
    keys: Vec<(String, bool, usize)>,
    by_key: HashMap<String, usize>,
}

impl Index {
    fn build(data: Arc<custos_engine::read::Data>, deadline_hash: String) -> Index {
        let mut keys = Vec::with_capacity(data.ntk.len() + data.deadlines.len());
        keys.extend(data.ntk.iter().enumerate().map(|(i, f)| (review::key(f), true, i)));
        keys.extend(data.deadlines.iter().enumerate().map(|(i, f)| (review::key(f), false, i)));
        let mut by_key = HashMap::with_capacity(keys.len());
        for (i, (k, _, _)) in keys.iter().enumerate() {
            if by_key.insert(k.clone(), i).is_some() {
                tracing::error!(key = %k, "two findings share a key: only the last can be reviewed");
            }
        }
        let ntk_hash = data.audit.as_ref().map(|a| a.0.clone()).unwrap_or_default();
        Index { data, ntk_hash, deadline_hash, keys, by_key }
    }

    fn at(&self, i: usize) -> (&str, &Finding, &str) {
        let (key, ntk, at) = &self.keys[i];
        if *ntk {
            (key, &self.data.ntk[*at], &self.ntk_hash)
        } else {
            (key, &self.data.deadlines[*at], &self.deadline_hash)
        }
    }

    /// The finding of `key` now, and the hash of the policy set that produced it.
    pub fn get(&self, key: &str) -> Option<(&Finding, &str)> {
        self.by_key.get(key).map(|&i| {
            let (_, f, h) = self.at(i);
            (f, h)
        })
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &Finding, &str)> {
        (0..self.keys.len()).map(|i| self.at(i))
    }
}

/// The index of the data now shown, made once per data generation.
pub(super) fn index(state: &AppState) -> Result<Arc<Index>, AppError> {
    let generation = state.generation.load(std::sync::atomic::Ordering::SeqCst);
    let mut made = state.index.lock().map_err(|_| AppError::Internal("the index's lock".into()))?;
    if let Some((g, index)) = made.as_ref()
        && *g == generation
    {
        return Ok(Arc::clone(index));
    }
    let index = Arc::new(Index::build(state.data(), state.deadline_policy_hash()));
    *made = Some((generation, Arc::clone(&index)));
    Ok(index)
}

/// A finding as a view item: its actor, and whether it identifies a natural person.
fn item_of(f: &Finding) -> Item {
    use custos_engine::finding::SubjectKind;
    let personal = matches!(f.subject_kind, SubjectKind::Event | SubjectKind::User | SubjectKind::Request);
    Item::detail(opt(&f.member_state), opt(&f.authority_id), personal)
}

/// What `v` may do with `f`: see it, review it, refer it.
fn may(state: &AppState, v: &Viewer, f: &Finding) -> (bool, bool, bool) {
    let item = item_of(f);
    (
        state.guard.allows(v, &item),
        state.guard.allows_to(v, Action::Review, &item),
        state.guard.allows_to(v, Action::Refer, &item),
    )
}

/// The action a move to `to` (with an answer or not) needs.
fn action_for(to: Rs, answer: bool) -> Action {
    if to == Rs::Referred || answer { Action::Refer } else { Action::Review }
}

fn lock_reviews(state: &AppState) -> Result<std::sync::MutexGuard<'_, review::Reviews>, AppError> {
    state.reviews.lock().map_err(|_| AppError::Internal("the reviews' lock".into()))
}

fn review_link(key: &str) -> String {
    format!("/review/{}", crate::page::encode(key))
}

/// When a finding arose: the event's instant, or the instant it fell due.
fn since(f: &Finding) -> Option<i64> {
    f.ts.or(f.due_at).map(|t| t.micros())
}

fn today(zone: chrono_tz::Tz) -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&zone).date_naive()
}

// ---------------------------------------------------------------------------------------
// The queue.

/// The filters of the queue, and whether a finding in review state `s` passes them.
fn wanted(params: &BTreeMap<String, String>, f: &Finding, s: Rs) -> bool {
    let state = q(params, "state");
    let state_ok = match state {
        "" | "to_do" => !s.is_decided(),
        "all" => true,
        other => s.as_str() == other,
    };
    state_ok
        && [
            ("rule", f.rule.as_str()),
            ("severity", f.severity.as_str()),
            ("member_state", opt(&f.member_state)),
            ("authority", opt(&f.authority_id)),
            ("user", opt(&f.user_id)),
        ]
        .iter()
        .all(|(k, val)| q(params, k).is_empty() || q(params, k) == *val)
}

/// The findings `v` may review or refer that pass the filters, most grave and oldest first,
/// with their review's latest version.
fn selection<'a>(
    state: &AppState,
    v: &Viewer,
    index: &'a Index,
    reviews: &review::Reviews,
    params: &BTreeMap<String, String>,
) -> Vec<(&'a str, &'a Finding, &'a str, Option<Disposition>)> {
    let mut found: Vec<_> = index
        .iter()
        .filter(|(_, f, _)| {
            let (_, review, refer) = may(state, v, f);
            review || refer
        })
        .filter_map(|(k, f, h)| {
            let latest = reviews.latest(k).cloned();
            wanted(params, f, latest.as_ref().map_or(Rs::Open, |d| d.state)).then_some((k, f, h, latest))
        })
        .collect();
    found.sort_by(|a, b| (a.1.severity, since(a.1), a.0).cmp(&(b.1.severity, since(b.1), b.0)));
    found
}

/// Where the reviews of the findings `v` may review stand: how many in each state, how many
/// referrals are past their date, and how many findings in all (0: `v` reviews nothing).
pub(super) fn tally(
    state: &AppState,
    v: &Viewer,
) -> Result<(BTreeMap<&'static str, u64>, u64, usize), AppError> {
    let (index, reviews) = (index(state)?, lock_reviews(state)?);
    Ok(counts(state, v, &index, &reviews))
}

/// [`tally`] over `index` and `reviews` as the caller holds them.
fn counts(
    state: &AppState,
    v: &Viewer,
    index: &Index,
    reviews: &review::Reviews,
) -> (BTreeMap<&'static str, u64>, u64, usize) {
    let today = today(v.zone());
    let (mut counts, mut overdue, mut all) = (BTreeMap::new(), 0, 0);
    for (k, f, _) in index.iter() {
        let (_, review, refer) = may(state, v, f);
        if !(review || refer) {
            continue;
        }
        all += 1;
        let latest = reviews.latest(k);
        let s = latest.map_or(Rs::Open, |d| d.state);
        *counts.entry(s.as_str()).or_default() += 1;
        if s == Rs::Referred && latest.and_then(|d| d.answer_due).is_some_and(|due| due < today) {
            overdue += 1;
        }
    }
    (counts, overdue, all)
}

pub(super) async fn queue(
    State(state): Shared,
    Extension(current): Extension<Current>,
    uri: OriginalUri,
    Query(params): Params,
) -> Response {
    let page = (|| {
        let v = &current.session.viewer;
        let index = index(&state)?;
        // Read under the lock, never copied: a save waits for the page, not the other way.
        let reviews = lock_reviews(&state)?;
        let (counts, overdue, reviewable) = counts(&state, v, &index, &reviews);
        // Whoever may review nothing, not even in their own scope (the Commission, the
        // administrator), has no queue.
        let own =
            Item::detail(if v.member_state.is_empty() { "EU" } else { &v.member_state }, &v.controller, true);
        if reviewable == 0 && !state.guard.allows_to(v, Action::Review, &own) {
            return Err(AppError::Forbidden);
        }
        let zone = v.zone();
        let chosen = selection(&state, v, &index, &reviews, &params);
        let now = chrono::Utc::now().timestamp_micros();
        let rows: Vec<Vec<Cell>> = chosen
            .iter()
            .map(|(k, f, _, d)| {
                let age = since(f).map_or(0, |t| (now - t).max(0) / 86_400_000_000);
                let s = d.as_ref().map_or(Rs::Open, |d| d.state);
                vec![
                    Cell::text(f.severity.as_str()),
                    Cell::text(f.rule.clone()),
                    Cell::text(opt(&f.member_state)),
                    Cell::text(opt(&f.authority_id)),
                    Cell::text(format!("{} {}", f.subject_kind, f.subject_id)),
                    Cell::time(
                        &since(f).map(|t| custos_engine::finding::Instant(t).to_string()).unwrap_or_default(),
                        zone,
                    ),
                    Cell::count(age as u64),
                    Cell::text(s.as_str()),
                    Cell::text(
                        d.as_ref()
                            .and_then(|d| d.answer_due)
                            .map(|a| a.format("%Y-%m-%d").to_string())
                            .unwrap_or_default(),
                    ),
                    Cell::text("review").link(review_link(k)),
                ]
            })
            .collect();
        let table = Table::new(
            "Findings to review",
            &[
                "severity",
                "rule",
                "member state",
                "authority",
                "subject",
                "since",
                "age (days)",
                "state",
                "answer due",
                "",
            ],
            rows,
        )
        .arrange("/review", &params);
        let figure = |label: &str, n: u64, state_filter: &str| Figure {
            label: label.into(),
            value: n.to_string(),
            link: Some(link_with("/review", &[("state", state_filter)])),
        };
        let get = |s: Rs| counts.get(s.as_str()).copied().unwrap_or(0);
        let mut filters: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| !["page", "sort", "dir"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        filters.sort();
        let filter_pairs: Vec<(&str, &str)> = filters.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut sections = vec![
            Section::Figures {
                heading: "Your reviews".into(),
                figures: vec![
                    figure("Open", get(Rs::Open), "open"),
                    figure("Under review", get(Rs::UnderReview), "under_review"),
                    figure("Referred", get(Rs::Referred), "referred"),
                    Figure { label: "Referrals overdue".into(), value: overdue.to_string(), link: None },
                    figure("Confirmed", get(Rs::Confirmed), "confirmed"),
                    figure("Justified", get(Rs::Justified), "justified"),
                    figure("False positives", get(Rs::FalsePositive), "false_positive"),
                ],
            },
            Section::Filters {
                fields: [
                    ("state", "State (to_do, all, open, under_review, referred, confirmed, justified, false_positive)"),
                    ("rule", "Rule"),
                    ("severity", "Severity"),
                    ("member_state", "Member state"),
                    ("authority", "Authority"),
                    ("user", "User"),
                ]
                .iter()
                .map(|(n, l)| Field { name: (*n).into(), label: (*l).into(), value: q(&params, n).into() })
                .collect(),
            },
        ];
        if !chosen.is_empty() {
            sections.push(Section::Note {
                text: format!(
                    "{} findings pass these filters. To dispose of all of them at once (many events of one user, one justification), open {}.",
                    chosen.len(),
                    link_with("/review/bulk", &filter_pairs)
                ),
            });
        }
        sections.push(Section::Table(table));
        let json_rows: Vec<Value> = chosen
            .iter()
            .skip(
                (params.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1) - 1)
                    * crate::page::PAGE_SIZE,
            )
            .take(crate::page::PAGE_SIZE)
            .map(|(k, f, _, d)| {
                json!({"key": k, "finding": f, "state": d.as_ref().map_or(Rs::Open, |d| d.state),
                       "version": d.as_ref().map_or(0, |d| d.version), "answer_due": d.as_ref().and_then(|d| d.answer_due).map(|a| a.format("%Y-%m-%d").to_string())})
            })
            .collect();
        Ok(Page {
            trail: if chosen.is_empty() { None } else { Shown::list("list", uri.query().unwrap_or("")) },
            title: "Review".into(),
            intro: "The findings you may review, the gravest and oldest first. Each is confirmed, justified (with its ground), a false positive, or referred to the authority concerned with a date for its answer; every change is kept as a new version.".into(),
            sections,
            json: json!({
                "filters": params,
                "counts": counts,
                "overdue_referrals": overdue,
                "total": chosen.len(),
                "page_size": crate::page::PAGE_SIZE,
                "findings": json_rows,
            }),
        })
    })();
    respond(&uri, &current, page.map(Arc::new))
}

// ---------------------------------------------------------------------------------------
// One finding.

/// The finding of `key` now, or as its latest review recorded it when no run produces it any
/// longer; with the policy hash and whether it is still found.
fn lookup(index: &Index, reviews: &review::Reviews, key: &str) -> Option<(Finding, String, bool)> {
    if let Some((f, h)) = index.get(key) {
        return Some((f.clone(), h.to_owned(), true));
    }
    let d = reviews.latest(key)?;
    let f: Finding = serde_json::from_str(&d.finding).ok()?;
    Some((f, d.policy_hash.clone(), false))
}

fn finding_page(
    state: &AppState,
    current: &Current,
    key: &str,
    problem: Option<&str>,
) -> Result<Page, AppError> {
    let v = &current.session.viewer;
    let index = index(state)?;
    let reviews = lock_reviews(state)?;
    // Out of the viewer's scope answers as if there were no such finding.
    let unknown = || AppError::NotFound("no finding with this key".into());
    let (f, hash, found) = lookup(&index, &reviews, key).ok_or_else(unknown)?;
    let (see, may_review, may_refer) = may(state, v, &f);
    if !see {
        tracing::warn!(name = %v.name, %key, "refused: a finding's review out of scope");
        return Err(unknown());
    }
    let history = reviews.history(key);
    let latest = history.last();
    let s = latest.map_or(Rs::Open, |d| d.state);
    let zone = v.zone();
    let mut sections = Vec::new();
    if let Some(p) = problem {
        sections.push(Section::Note { text: format!("Not saved: {p}") });
    }
    let mut figures = vec![
        Figure { label: "State".into(), value: s.as_str().into(), link: None },
        Figure { label: "Version".into(), value: latest.map_or(0, |d| d.version).to_string(), link: None },
        Figure { label: "Rule".into(), value: f.rule.clone(), link: Some(format!("/policies/{}", f.rule)) },
        Figure { label: "Article".into(), value: f.legal_ref.clone(), link: None },
        Figure { label: "Severity".into(), value: f.severity.as_str().into(), link: None },
        Figure {
            label: "Subject".into(),
            value: format!("{} {}", f.subject_kind, f.subject_id),
            link: f.event_id.as_ref().map(|e| format!("/findings/{}", crate::page::encode(e))),
        },
        Figure { label: "Member state".into(), value: opt(&f.member_state).into(), link: None },
        Figure { label: "Authority".into(), value: opt(&f.authority_id).into(), link: None },
    ];
    if !found {
        figures.insert(0, Figure { label: "Now".into(), value: "no longer found".into(), link: None });
    }
    sections.push(Section::Figures { heading: "The finding".into(), figures });
    let date = |d: &Disposition| d.answer_due.map(|a| a.format("%Y-%m-%d").to_string()).unwrap_or_default();
    sections.push(Section::Table(Table::new(
        "History",
        &["version", "when", "by", "role", "state", "ground", "referred to", "answer due", "answer", "note"],
        history
            .iter()
            .map(|d| {
                vec![
                    Cell::count(d.version as u64),
                    Cell::time(&d.at.to_string(), zone),
                    Cell::text(d.by.clone()),
                    Cell::text(d.role.clone()),
                    Cell::text(d.state.as_str()),
                    Cell::text(d.ground.clone().unwrap_or_default()),
                    Cell::text(d.referred_to.clone().unwrap_or_default()),
                    Cell::text(date(d)),
                    Cell::text(d.answer.clone().unwrap_or_default()),
                    Cell::text(d.note.clone()),
                ]
            })
            .collect(),
    )));
    let choices: Vec<(String, String)> = Rs::ALL
        .iter()
        .filter(|to| s.may_become(**to))
        .filter(|to| if action_for(**to, false) == Action::Refer { may_refer } else { may_review })
        .map(|to| (to.as_str().to_owned(), to.as_str().replace('_', " ")))
        .collect();
    if found && !choices.is_empty() {
        let mut inputs = vec![
            Input::new("seen", "", "hidden", latest.map_or(0, |d| d.version).to_string()),
            Input::select("state", "New state", &choices[0].0.clone(), choices),
            Input::new("note", "Note", "textarea", ""),
            Input::new(
                "ground",
                "Ground (justified: a consent, a decision not in IMI's records)",
                "text",
                "",
            ),
        ];
        if may_refer {
            inputs.push(Input::new(
                "referred_to",
                "Referred to (authority)",
                "text",
                latest.and_then(|d| d.referred_to.clone()).unwrap_or_else(|| opt(&f.authority_id).to_owned()),
            ));
            inputs.push(Input::new(
                "answer_due",
                "Answer due (date)",
                "date",
                latest.map(date).unwrap_or_default(),
            ));
            if s == Rs::Referred {
                inputs.push(Input::new("answer", "The authority's answer", "textarea", ""));
            }
        }
        sections.push(Section::Form {
            heading: "Change the review".into(),
            action: review_link(key),
            submit: "Save".into(),
            inputs,
            csrf: current.session.csrf.clone(),
        });
    }
    sections.push(Section::Text {
        heading: format!("The finding as produced by policy set {hash}"),
        text: serde_json::to_string_pretty(&f).unwrap_or_default(),
    });
    Ok(Page {
        trail: Shown::item("finding", key, opt(&f.member_state), opt(&f.authority_id)),
        title: format!("Review of {key}"),
        intro:
            "A finding's review: every version kept, with who changed it, when, and the finding as it was."
                .into(),
        sections,
        json: json!({
            "key": key,
            "found": found,
            "finding": f,
            "policy_hash": hash,
            "state": s,
            "version": latest.map_or(0, |d| d.version),
            "history": history,
            "may": {"review": may_review, "refer": may_refer},
            "csrf": current.session.csrf,
        }),
    })
}

pub(super) async fn finding(
    State(state): Shared,
    Extension(current): Extension<Current>,
    uri: OriginalUri,
    Path(key): Path<String>,
) -> Response {
    let page = finding_page(&state, &current, &key, None);
    respond(&uri, &current, page.map(Arc::new))
}

/// A change as a form or a JSON body sends it.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    seen: String,
    state: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    ground: String,
    #[serde(default)]
    referred_to: String,
    #[serde(default)]
    answer_due: String,
    #[serde(default)]
    answer: String,
}

impl ChangeForm {
    /// The change, checked as far as it can be without the store; `seen` is the form's
    /// version unless given.
    fn change(&self, v: &Viewer, seen: Option<i64>) -> Result<Change, AppError> {
        let to: Rs =
            self.state.trim().parse().map_err(|e: String| AppError::BadRequest(format!("state {e}")))?;
        let seen = match seen {
            Some(s) => s,
            None => self.seen.trim().parse().map_err(|_| {
                AppError::BadRequest(format!(
                    "seen `{}`: expected the version you saw (0 for none)",
                    self.seen
                ))
            })?,
        };
        let answer_due = match self.answer_due.trim() {
            "" => None,
            d => Some(chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                AppError::BadRequest(format!("answer_due `{d}`: expected a date such as 2025-03-31"))
            })?),
        };
        let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        // A referral's authority is given only with a referral.
        let referred_to = if to == Rs::Referred { some(&self.referred_to) } else { None };
        Ok(Change {
            seen,
            state: to,
            ground: some(&self.ground),
            note: self.note.clone(),
            referred_to,
            answer_due: if to == Rs::Referred { answer_due } else { None },
            answer: some(&self.answer),
            by: v.name.clone(),
            role: v.role.clone(),
        })
    }
}

/// Whether the form's token, or the `X-CSRF-Token` header, is the session's.
fn csrf_ok(current: &Current, form: &ChangeForm, headers: &HeaderMap) -> bool {
    let header = headers.get("x-csrf-token").and_then(|h| h.to_str().ok()).unwrap_or("");
    let token = if form.csrf.is_empty() { header } else { &form.csrf };
    session::same(&current.session.csrf, token)
}

/// Records `change` for `items` (keys and the version seen of each) as `v`, after checking
/// that `v` may do it to each: all or none.
async fn apply(
    state: &Arc<AppState>,
    v: &Viewer,
    items: &[(String, i64)],
    change: Change,
) -> Result<Vec<Disposition>, AppError> {
    let index = index(state)?;
    let mut chosen = Vec::with_capacity(items.len());
    for (key, seen) in items {
        // A finding out of scope is refused as if unknown.
        let Some((f, h)) = index.get(key) else {
            let known = lock_reviews(state)?.latest(key).is_some();
            return Err(if known {
                AppError::BadRequest(format!("`{key}` is no longer found: its review is kept, and closed"))
            } else {
                AppError::NotFound(format!("no finding with key `{key}`"))
            });
        };
        let (see, _, _) = may(state, v, f);
        if !see {
            return Err(AppError::NotFound(format!("no finding with key `{key}`")));
        }
        let action = action_for(change.state, change.answer.is_some());
        if !state.guard.allows_to(v, action, &item_of(f)) {
            tracing::warn!(name = %v.name, %key, action = action.as_str(), "refused: a review");
            return Err(AppError::Forbidden);
        }
        chosen.push((f.clone(), h.to_owned(), *seen));
    }
    let state2 = Arc::clone(state);
    let made = tokio::task::spawn_blocking(move || {
        let store = custos_engine::store::Store::open(&state2.store_dir)?;
        let mut reviews =
            state2.reviews.lock().map_err(|_| crate::Error::Internal("the reviews' lock".into()))?;
        let refs: Vec<(&Finding, &str, i64)> = chosen.iter().map(|(f, h, s)| (f, h.as_str(), *s)).collect();
        let now = custos_engine::finding::Instant(crate::now_micros());
        Ok::<_, crate::Error>(reviews.record(&store, &refs, &change, now)?)
    })
    .await
    .map_err(|e| AppError::Internal(format!("a review could not be written: {e}")))?
    .map_err(AppError::from)?;
    state.reviewed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    tracing::info!(name = %v.name, findings = made.len(), state = %made[0].state, "reviewed");
    Ok(made)
}

/// One finding's change, as a form or a JSON body asks it: the token checked, then applied.
async fn dispose(
    state: &Arc<AppState>,
    current: &Current,
    headers: &HeaderMap,
    key: &str,
    form: &ChangeForm,
) -> Result<Vec<Disposition>, AppError> {
    let v = &current.session.viewer;
    if !csrf_ok(current, form, headers) {
        tracing::warn!(name = %v.name, "refused: a review without a valid CSRF token");
        return Err(AppError::Forbidden);
    }
    let change = form.change(v, None)?;
    let seen = change.seen;
    apply(state, v, &[(key.to_owned(), seen)], change).await
}

pub(super) async fn dispose_form(
    State(state): Shared,
    Extension(current): Extension<Current>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    match dispose(&state, &current, &headers, &key, &form).await {
        Ok(_) => Redirect::to(&review_link(&key)).into_response(),
        // Changed meanwhile, or not a move the rules allow: the page as it is now, saying why.
        Err(AppError::Conflict(m)) => again(&state, &current, &key, StatusCode::CONFLICT, &m),
        Err(AppError::BadRequest(m)) => again(&state, &current, &key, StatusCode::BAD_REQUEST, &m),
        Err(e) => e.into_response(),
    }
}

/// The finding's page as it is now, saying why a change was not saved, with `status`.
fn again(state: &AppState, current: &Current, key: &str, status: StatusCode, problem: &str) -> Response {
    let uri = OriginalUri(review_link(key).parse().unwrap_or_default());
    let mut r = respond(&uri, current, finding_page(state, current, key, Some(problem)).map(Arc::new));
    if r.status().is_success() {
        *r.status_mut() = status;
    }
    r
}

pub(super) async fn dispose_json(
    State(state): Shared,
    Extension(current): Extension<Current>,
    headers: HeaderMap,
    Path(key): Path<String>,
    JsonBody(form): JsonBody<ChangeForm>,
) -> Response {
    match dispose(&state, &current, &headers, &key, &form).await {
        Ok(mut made) => Json(json!({"disposition": made.remove(0)})).into_response(),
        Err(AppError::Conflict(m)) => {
            let current = lock_reviews(&state).ok().and_then(|r| r.latest(&key).cloned());
            (StatusCode::CONFLICT, Json(json!({"error": m, "current": current}))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// A selection.

/// The most findings one disposition may cover.
pub const BULK_LIMIT: usize = 1000;

pub(super) async fn bulk_confirm(
    State(state): Shared,
    Extension(current): Extension<Current>,
    uri: OriginalUri,
    Query(params): Params,
) -> Response {
    let page = (|| {
        let v = &current.session.viewer;
        let index = index(&state)?;
        let reviews = lock_reviews(&state)?;
        let chosen = selection(&state, v, &index, &reviews, &params);
        if chosen.is_empty() {
            return Err(AppError::NotFound("no finding you may review passes these filters".into()));
        }
        if chosen.len() > BULK_LIMIT {
            return Err(AppError::BadRequest(format!(
                "{} findings pass these filters: one disposition covers at most {BULK_LIMIT}; narrow the filters",
                chosen.len()
            )));
        }
        let items: Vec<(&str, i64)> =
            chosen.iter().map(|(k, _, _, d)| (*k, d.as_ref().map_or(0, |d| d.version))).collect();
        let states: std::collections::BTreeSet<Rs> =
            chosen.iter().map(|(_, _, _, d)| d.as_ref().map_or(Rs::Open, |d| d.state)).collect();
        let choices: Vec<(String, String)> = Rs::ALL
            .iter()
            .filter(|to| states.iter().all(|s| s.may_become(**to)) && **to != Rs::Referred)
            .map(|to| (to.as_str().to_owned(), to.as_str().replace('_', " ")))
            .collect();
        let zone = v.zone();
        let rows = chosen
            .iter()
            .map(|(k, f, _, d)| {
                vec![
                    Cell::text(f.rule.clone()),
                    Cell::text(format!("{} {}", f.subject_kind, f.subject_id)),
                    Cell::text(opt(&f.user_id)),
                    Cell::time(
                        &since(f).map(|t| custos_engine::finding::Instant(t).to_string()).unwrap_or_default(),
                        zone,
                    ),
                    Cell::text(d.as_ref().map_or(Rs::Open, |d| d.state).as_str()),
                    Cell::text("review").link(review_link(k)),
                ]
            })
            .collect();
        let mut sections = vec![Section::Note {
            text: format!(
                "You are about to dispose of these {} findings with one decision. Each gets a new version of its review; if any changed since this page was made, none is saved.",
                chosen.len()
            ),
        }];
        sections.push(Section::Table(Table::new(
            "The selection",
            &["rule", "subject", "user", "since", "state", ""],
            rows,
        )));
        if !choices.is_empty() {
            sections.push(Section::Form {
                heading: "One disposition for all of them".into(),
                action: "/review/bulk".into(),
                submit: format!("Dispose of {} findings", chosen.len()),
                inputs: vec![
                    Input::new("items", "", "hidden", serde_json::to_string(&items).unwrap_or_default()),
                    Input::select("state", "New state", &choices[0].0.clone(), choices),
                    Input::new("note", "Note", "textarea", ""),
                    Input::new("ground", "Ground (justified)", "text", ""),
                ],
                csrf: current.session.csrf.clone(),
            });
        }
        Ok(Page {
            trail: Shown::list("list", uri.query().unwrap_or("")),
            title: "Confirm one disposition for a selection".into(),
            intro: "The findings your filters selected, to be disposed of together.".into(),
            sections,
            json: json!({"items": items}),
        })
    })();
    respond(&uri, &current, page.map(Arc::new))
}

/// A selection's disposition as a form or a JSON body sends it: the change, and the items as
/// `[[key, version seen], …]`.
#[derive(Debug, Deserialize)]
pub(super) struct BulkForm {
    #[serde(flatten)]
    change: ChangeForm,
    items: Items,
}

/// The items of a selection: JSON text (a form's hidden field) or a JSON array (the API).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Items {
    List(Vec<(String, i64)>),
    Text(String),
}

async fn bulk(
    state: &Arc<AppState>,
    current: &Current,
    headers: &HeaderMap,
    form: &BulkForm,
) -> Result<Vec<Disposition>, AppError> {
    let v = current.session.viewer.clone();
    if !csrf_ok(current, &form.change, headers) {
        tracing::warn!(name = %v.name, "refused: a review without a valid CSRF token");
        return Err(AppError::Forbidden);
    }
    let items: Vec<(String, i64)> = match &form.items {
        Items::List(items) => items.clone(),
        Items::Text(text) => serde_json::from_str(text)
            .map_err(|e| AppError::BadRequest(format!("items: expected [[key, version seen], …] ({e})")))?,
    };
    if items.is_empty() || items.len() > BULK_LIMIT {
        return Err(AppError::BadRequest(format!("items: between 1 and {BULK_LIMIT} findings")));
    }
    let change = form.change.change(&v, Some(0))?;
    apply(state, &v, &items, change).await
}

pub(super) async fn bulk_form(
    State(state): Shared,
    Extension(current): Extension<Current>,
    headers: HeaderMap,
    Form(form): Form<BulkForm>,
) -> Response {
    match bulk(&state, &current, &headers, &form).await {
        Ok(made) => {
            Redirect::to(&link_with("/review", &[("state", "all"), ("rule", &made[0].rule)])).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub(super) async fn bulk_json(
    State(state): Shared,
    Extension(current): Extension<Current>,
    headers: HeaderMap,
    JsonBody(form): JsonBody<BulkForm>,
) -> Response {
    match bulk(&state, &current, &headers, &form).await {
        Ok(made) => Json(json!({"dispositions": made})).into_response(),
        Err(AppError::Conflict(m)) => (StatusCode::CONFLICT, Json(json!({"error": m}))).into_response(),
        Err(e) => e.into_response(),
    }
}
