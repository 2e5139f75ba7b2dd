//! The Commission as an attacker: it asks everything its role may ask, writes every answered
//! count as a linear equation over the counts it would like to know, and solves. No count
//! that any answer suppressed may follow from the rest; bisecting a time window may not pin
//! a finding to anything finer than its year.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use custos_reports::grid::Grids;
use serde_json::Value;

use super::{get, login, world};

/// The integers modulo the Mersenne prime 2^61 - 1: exact arithmetic for ranks over the
/// rationals of 0/1 systems (a wrong answer needs the prime to divide a minor, which the
/// size of these systems makes as likely as a cosmic ray).
const P: u64 = (1 << 61) - 1;

fn mul(a: u64, b: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(P)) as u64
}

fn inverse(a: u64) -> u64 {
    // Fermat: a^(P-2).
    let (mut base, mut e, mut r) = (a, P - 2, 1u64);
    while e > 0 {
        if e & 1 == 1 {
            r = mul(r, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    r
}

/// A row-echelon basis of the equations the attacker has, over one grid's unknown counts.
#[derive(Default)]
struct Span {
    /// Rows by their pivot column, each scaled to a pivot of 1.
    rows: BTreeMap<usize, Vec<u64>>,
}

impl Span {
    /// `v` reduced by the basis: zero exactly when `v` is a combination of its rows.
    fn reduce(&self, mut v: Vec<u64>) -> Vec<u64> {
        for (&pivot, row) in &self.rows {
            let f = v[pivot];
            if f != 0 {
                for (x, y) in v.iter_mut().zip(row) {
                    *x = (*x + P - mul(f, *y)) % P;
                }
            }
        }
        v
    }

    fn add(&mut self, v: Vec<u64>) {
        let v = self.reduce(v);
        if let Some(pivot) = v.iter().position(|&x| x != 0) {
            let inv = inverse(v[pivot]);
            let row: Vec<u64> = v.iter().map(|&x| mul(x, inv)).collect();
            // Keep the basis reduced: clear the new pivot from the rows already there.
            for other in self.rows.values_mut() {
                let f = other[pivot];
                if f != 0 {
                    for (x, y) in other.iter_mut().zip(&row) {
                        *x = (*x + P - mul(f, *y)) % P;
                    }
                }
            }
            self.rows.insert(pivot, row);
        }
    }

    fn determines(&self, v: Vec<u64>) -> bool {
        self.reduce(v).iter().all(|&x| x == 0)
    }
}

/// The true counts of each grid and year, by row and column.
type Truth = HashMap<(String, Option<i64>), BTreeMap<(String, String), u64>>;

/// One answered value: which unknown counts it sums, and the value (`None`: suppressed).
type Equation = (BTreeSet<(String, String)>, Option<u64>);

/// Every published part in an answer: objects with a `grid` and a `table`.
fn parts(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(m) if m.contains_key("grid") && m.contains_key("table") => out.push(v.clone()),
        Value::Object(m) => m.values().for_each(|x| parts(x, out)),
        Value::Array(a) => a.iter().for_each(|x| parts(x, out)),
        _ => {}
    }
}

fn key(part: &Value) -> (String, Option<i64>) {
    (part["grid"].as_str().unwrap().to_owned(), part["year"].as_i64())
}

fn value(c: &Value) -> Option<u64> {
    match c {
        Value::Number(n) => Some(n.as_u64().unwrap()),
        Value::String(s) if s == ":c" => None,
        other => panic!("a published value that is neither a count nor `:c`: {other}"),
    }
}

fn labels(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect()
}

/// The equations of a published part, given every row and column of its grid.
fn equations(part: &Value, all_rows: &[String], all_cols: &[String]) -> Vec<Equation> {
    let t = &part["table"];
    let (rows, cols) = (labels(&t["rows"]), labels(&t["cols"]));
    let selected = |s: &Value, all: &[String]| if s == "all" { all.to_vec() } else { labels(s) };
    let (sel_rows, sel_cols) =
        (selected(&part["rows_selected"], all_rows), selected(&part["cols_selected"], all_cols));
    let cell = |r: &str, c: &str| (r.to_owned(), c.to_owned());
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        for (j, c) in cols.iter().enumerate() {
            out.push(([cell(r, c)].into(), value(&t["cells"][i][j])));
        }
        if let Some(totals) = t["row_totals"].as_array() {
            out.push((sel_cols.iter().map(|c| cell(r, c)).collect(), value(&totals[i])));
        }
    }
    if let Some(totals) = t["col_totals"].as_array() {
        for (j, c) in cols.iter().enumerate() {
            out.push((sel_rows.iter().map(|r| cell(r, c)).collect(), value(&totals[j])));
        }
    }
    if !t["total"].is_null() {
        out.push((
            sel_rows.iter().flat_map(|r| sel_cols.iter().map(|c| cell(r, c))).collect(),
            value(&t["total"]),
        ));
    }
    out
}

/// What the attacker learns: for every grid and year, the suppressed values that the
/// published ones determine, and how many suppressed values there were. Each published
/// value is checked against `truth` first, so that the equations are the true ones.
fn solve(answers: &[Value], truth: &Truth) -> (Vec<String>, usize) {
    let mut found = Vec::new();
    answers.iter().for_each(|a| parts(a, &mut found));
    assert!(!found.is_empty(), "no published part in any answer");
    let mut by_grid: BTreeMap<(String, Option<i64>), Vec<Value>> = BTreeMap::new();
    for p in found {
        by_grid.entry(key(&p)).or_default().push(p);
    }
    let (mut determined, mut hidden) = (Vec::new(), 0);
    for (k, parts) in &by_grid {
        let whole = |axis: &str, sel: &str| -> Vec<String> {
            parts
                .iter()
                .find(|p| p[sel] == "all")
                .map(|p| labels(&p["table"][axis]))
                .unwrap_or_else(|| panic!("{k:?}: never answered whole along {axis}"))
        };
        let (rows, cols) = (whole("rows", "rows_selected"), whole("cols", "cols_selected"));
        let index: BTreeMap<(String, String), usize> = rows
            .iter()
            .flat_map(|r| cols.iter().map(move |c| (r.clone(), c.clone())))
            .enumerate()
            .map(|(i, c)| (c, i))
            .collect();
        let true_counts = truth.get(k).unwrap_or_else(|| panic!("no truth for {k:?}"));
        let mut span = Span::default();
        let mut suppressed: BTreeSet<BTreeSet<(String, String)>> = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for p in parts {
            for (cells, v) in equations(p, &rows, &cols) {
                let true_value: u64 = cells.iter().map(|c| true_counts.get(c).copied().unwrap_or(0)).sum();
                match v {
                    Some(v) => {
                        assert_eq!(v, true_value, "{k:?}: {cells:?} published as {v}, is {true_value}");
                        if seen.insert(cells.clone()) {
                            let mut vector = vec![0; index.len()];
                            for c in &cells {
                                vector[index[c]] = 1;
                            }
                            span.add(vector);
                        }
                    }
                    None => {
                        suppressed.insert(cells);
                    }
                }
            }
        }
        hidden += suppressed.len();
        for cells in suppressed {
            let mut vector = vec![0; index.len()];
            for c in &cells {
                vector[index[c]] = 1;
            }
            if span.determines(vector) {
                determined.push(format!("{k:?}: {cells:?}"));
            }
        }
    }
    (determined, hidden)
}

/// The true counts of every grid, by grid and year: need-to-know findings counted here from
/// the audit's findings; the others from the grids unsuppressed (k = 1).
fn truth() -> Truth {
    let w = world();
    let data = w.state.data();
    let mut truth = Truth::new();
    for f in data.ntk.iter() {
        let t = f.ts.unwrap().micros();
        let year: i64 = custos_engine::period::brussels_date(t)[..4].parse().unwrap();
        let cell = (f.rule.clone(), f.member_state.clone().unwrap_or_default());
        *truth.entry(("need-to-know".into(), Some(year))).or_default().entry(cell).or_default() += 1;
    }
    let plain = w.rt.block_on(Grids::load(&w.state.engine().unwrap(), &data, 1)).unwrap();
    let grids = [&plain.deadlines, &plain.performance]
        .into_iter()
        .chain(plain.breaches.values())
        .chain(plain.requests.values());
    for g in grids {
        let t = &g.table;
        let counts = truth.entry((g.name.to_owned(), g.year.map(i64::from))).or_default();
        for (i, r) in t.rows.iter().enumerate() {
            for (j, c) in t.cols.iter().enumerate() {
                if let custos_engine::disclosure::Cell::Count(n) = t.cells[i][j] {
                    counts.insert((r.clone(), c.clone()), n);
                }
            }
        }
    }
    truth
}

fn answer(path: &str, cookie: &str) -> Value {
    let (status, _, body) = get(path, cookie);
    assert_eq!(status, axum::http::StatusCode::OK, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Everything the Commission may ask, by every filter its pages take.
fn everything(cookie: &str) -> Vec<Value> {
    let data = world().state.data();
    let rules: BTreeSet<String> =
        data.ntk.iter().map(|f| f.rule.clone()).chain(["NO-SUCH-RULE".to_owned(), String::new()]).collect();
    let states: BTreeSet<String> =
        data.ntk.iter().filter_map(|f| f.member_state.clone()).chain([String::new()]).collect();
    let years: Vec<i32> = (2019..=2027).collect();
    let mut windows = vec![(String::new(), String::new())];
    for y in &years {
        windows.push((format!("{y}-01-01"), format!("{}-01-01", y + 1)));
        windows.push((format!("{y}-03-01"), format!("{y}-04-01")));
        windows.push((format!("{y}-06-30T22:00:00Z"), format!("{y}-07-01T00:00:01Z")));
        windows.push((String::new(), format!("{y}-07-01")));
        windows.push((format!("{y}-07-01"), String::new()));
    }
    let mut answers = vec![answer("/api/overview", cookie)];
    for rule in &rules {
        for ms in &states {
            answers.push(answer(&format!("/api/findings?rule={rule}&member_state={ms}"), cookie));
        }
    }
    for (from, to) in &windows {
        for rule in &rules {
            answers.push(answer(&format!("/api/findings?rule={rule}&from={from}&to={to}"), cookie));
        }
        for ms in &states {
            answers.push(answer(&format!("/api/findings?member_state={ms}&from={from}&to={to}"), cookie));
        }
    }
    let deadline_rules: BTreeSet<String> =
        data.deadlines.iter().map(|f| f.rule.clone()).chain([String::new()]).collect();
    for rule in &deadline_rules {
        for status in ["", "overdue", "due_soon", "late", "unmet"] {
            for severity in ["", "violation", "warning"] {
                answers.push(answer(
                    &format!("/api/deadlines?rule={rule}&status={status}&severity={severity}"),
                    cookie,
                ));
            }
        }
    }
    for page in ["breaches", "requests"] {
        answers.push(answer(&format!("/api/{page}"), cookie));
        for y in &years {
            answers.push(answer(&format!("/api/{page}?year={y}"), cookie));
        }
    }
    answers
}

#[test]
fn nothing_the_commission_may_ask_recovers_a_suppressed_value() {
    let cookie = login("commission");
    let answers = everything(&cookie);
    let (determined, hidden) = solve(&answers, &truth());
    assert!(hidden > 50, "too few suppressed values for the test to mean anything: {hidden}");
    assert!(
        determined.is_empty(),
        "{} of {hidden} suppressed values recovered: {determined:#?}",
        determined.len()
    );
    // A filter on an actor is detail: refused alike for one that exists and one that does not.
    let someone = world().state.data().ntk.iter().find_map(|f| f.user_id.clone()).unwrap();
    let authority = world().state.data().ntk.iter().find_map(|f| f.authority_id.clone()).unwrap();
    for (page, filter, real) in [
        ("findings", "user", someone.as_str()),
        ("findings", "authority", authority.as_str()),
        ("deadlines", "actor", authority.as_str()),
    ] {
        let (status, _, body) = get(&format!("/api/{page}?{filter}={real}"), &cookie);
        let (status_none, _, body_none) = get(&format!("/api/{page}?{filter}=NO-SUCH-ACTOR"), &cookie);
        assert_eq!(status, axum::http::StatusCode::FORBIDDEN, "{page}?{filter}");
        assert_eq!((status, body), (status_none, body_none), "{page}?{filter}");
    }
}

/// The same attacker against the old way, each view protected on its own: it recovers
/// values, so the test above can fail.
#[test]
fn views_protected_one_by_one_give_suppressed_values_away() {
    let truth = truth();
    let mut recovered = 0;
    for ((grid, year), counts) in truth.iter().filter(|((g, _), _)| g == "need-to-know") {
        let protect = |keep: &dyn Fn(&(String, String)) -> bool| {
            let part: BTreeMap<(String, String), u64> =
                counts.iter().filter(|(c, _)| keep(c)).map(|(c, n)| (c.clone(), *n)).collect();
            custos_reports::grid::pivot(&part, 5)
        };
        let as_answer = |p: custos_engine::disclosure::Protected, rows: Value, cols: Value| serde_json::json!({"grid": grid, "year": year, "rows_selected": rows, "cols_selected": cols, "table": p});
        let whole = protect(&|_| true);
        let (rows, cols) = (whole.rows.clone(), whole.cols.clone());
        let mut answers = vec![as_answer(whole, "all".into(), "all".into())];
        for r in &rows {
            answers.push(as_answer(protect(&|c| &c.0 == r), serde_json::json!([r]), "all".into()));
        }
        for c in &cols {
            answers.push(as_answer(protect(&|x| &x.1 == c), "all".into(), serde_json::json!([c])));
        }
        // A view of one row protects its own totals, which the attacker reads over the
        // columns that row has.
        let answers: Vec<Value> = answers
            .into_iter()
            .map(|mut a| {
                for (sel, axis, all) in [("rows_selected", "rows", &rows), ("cols_selected", "cols", &cols)] {
                    if a[sel] != "all" {
                        continue;
                    }
                    let shown = labels(&a["table"][axis]);
                    if shown.len() != all.len() {
                        a[sel] = serde_json::json!(shown);
                    }
                }
                a
            })
            .collect();
        let (determined, _) = solve(&answers, &truth);
        recovered += determined.len();
    }
    assert!(recovered > 0, "the attacker recovers nothing even from views protected one by one");
}

#[test]
fn bisecting_a_window_learns_nothing_finer_than_a_year() {
    let cookie = login("commission");
    let truth = truth();
    // A finding alone, or nearly, in its cell: the one bisection would try to pin.
    let data = world().state.data();
    let (f, year) = data
        .ntk
        .iter()
        .find_map(|f| {
            let t = f.ts?.micros();
            let year: i64 = custos_engine::period::brussels_date(t)[..4].parse().ok()?;
            let cell = (f.rule.clone(), f.member_state.clone()?);
            let n = truth[&("need-to-know".to_owned(), Some(year))][&cell];
            (1..5).contains(&n).then_some((f, year))
        })
        .unwrap();
    let (rule, ms) = (f.rule.clone(), f.member_state.clone().unwrap());
    let at = |t: i64| custos_engine::finding::format_micros(t);
    let zone = custos_engine::calendar::zone("EU");
    let start = custos_engine::period::local_midnight(year as i32, 1, 1, &zone).unwrap();
    let end = custos_engine::period::local_midnight(year as i32 + 1, 1, 1, &zone).unwrap();
    let of_year = |a: &Value| -> Vec<Value> {
        let mut found = Vec::new();
        parts(a, &mut found);
        found.into_iter().filter(|p| p["year"].as_i64() == Some(year)).collect()
    };
    let whole = of_year(&answer(&format!("/api/findings?rule={rule}&member_state={ms}"), &cookie));
    assert_eq!(whole.len(), 1);
    let ts = f.ts.unwrap().micros();
    let (mut lo, mut hi) = (start, end);
    for step in 0..28 {
        let mid = lo + (hi - lo) / 2;
        let a = answer(
            &format!("/api/findings?rule={rule}&member_state={ms}&from={}&to={}", at(lo), at(mid)),
            &cookie,
        );
        assert_eq!(
            of_year(&a),
            whole,
            "step {step}: the window [{}, {}) answers otherwise than the year",
            at(lo),
            at(mid)
        );
        // The attacker would follow the answer; it learns nothing, so follow the truth and
        // check every window down to the second holds the same.
        if ts < mid { hi = mid } else { lo = mid }
    }
}

/// The annual report publishes the breach and request grids the Commission sees on the
/// dashboard, value for value: a second protection of the same counts would differ from the
/// first and the two could be combined.
#[test]
fn the_annual_report_publishes_the_dashboards_grids() {
    use custos_reports::report::{self, ReportKind};
    let w = world();
    let engine = w.state.engine().unwrap();
    let (_, grids) = w.rt.block_on(w.state.grids()).unwrap();
    let mut compared = 0;
    for year in grids.breaches.keys().chain(grids.requests.keys()).copied().collect::<BTreeSet<_>>() {
        let req = report::Request { kind: ReportKind::Annual, year, member_state: None, k: grids.k };
        let r = w.rt.block_on(report::produce(&engine, &req)).unwrap();
        let tables: Vec<_> = r.parts.iter().flat_map(|p| &p.tables).collect();
        for (caption, grid) in [
            ("Breaches by risk and notification", grids.breaches.get(&year)),
            ("Requests by right and outcome", grids.requests.get(&year)),
        ] {
            let table = tables.iter().find(|t| t.caption == caption).unwrap();
            let Some(grid) = grid else {
                assert!(
                    table.rows.iter().all(|r| r.iter().skip(1).all(|c| c == "0" || c.is_empty())),
                    "{caption} {year}"
                );
                continue;
            };
            let t = &grid.table;
            let mut rows: Vec<Vec<String>> = t
                .rows
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let mut row = vec![r.clone()];
                    row.extend(t.cells[i].iter().map(ToString::to_string));
                    row.push(t.row_totals.as_ref().unwrap()[i].to_string());
                    row
                })
                .collect();
            let mut last = vec!["total".to_owned()];
            last.extend(t.col_totals.as_ref().unwrap().iter().map(ToString::to_string));
            last.push(t.total.unwrap().to_string());
            rows.push(last);
            assert_eq!(table.rows, rows, "{caption}, {year}");
            compared += 1;
        }
    }
    assert!(compared >= 4, "{compared}");
}
