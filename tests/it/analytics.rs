//! `custos indicators` and `custos query` as a supervisor uses them.

use std::path::{Path, PathBuf};

use super::{run, stderr, stdout};

fn fixture_store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/analytics");
    let out = run(&["import", "--store", store.to_str().unwrap(), fixture.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    (tmp, store)
}

fn indicators(store: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "indicators",
        "--store",
        store.to_str().unwrap(),
        "--year",
        "2024",
        "--as-of",
        "2025-01-01T00:00:00Z",
        "--format",
        "json",
        "--domains",
        "services,professional_qualifications",
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn row<'a>(
    doc: &'a serde_json::Value,
    level: &str,
    ms: Option<&str>,
    domain: Option<&str>,
) -> &'a serde_json::Value {
    doc["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["level"] == level && r["member_state"].as_str() == ms && r["domain"].as_str() == domain)
        .unwrap_or_else(|| panic!("no {level} {ms:?} {domain:?} row"))
}

#[test]
fn indicators_are_coloured_and_scored_as_rules_md_defines_them() {
    let (_tmp, store) = fixture_store();
    let doc = indicators(&store, &[]);
    let overall = row(&doc, "overall", None, None);
    // 9 requests (X4, sent at 23:30 UTC on 31 December 2024, is 2025's in Brussels, where the
    // Commission's year is counted): 5 accepted within 7 days (55.6 %: red), 7 answered in
    // 94.375 days (13.48: green), 4 of 8 with an agreed date answered by it (50 %: red), 2 of
    // 6 ratings negative for timeliness and for effort (33 %: red, red): score -3, poor.
    assert_eq!(overall["received"], 9);
    assert!((overall["ind1"].as_f64().unwrap() - 500.0 / 9.0).abs() < 1e-9);
    assert!((overall["ind2"].as_f64().unwrap() - 94.375 / 7.0).abs() < 1e-9);
    assert_eq!(overall["colours"], serde_json::json!(["red", "green", "red", "red", "red"]));
    assert_eq!(overall["score"], -3);
    assert_eq!(overall["rating"], "poor");
    // FR: 100 % accepted in time, 16.7 days (yellow: 16-25), 2 of 3 on time (66.7: yellow).
    let fr = row(&doc, "member_state", Some("FR"), None);
    assert_eq!(fr["colours"], serde_json::json!(["green", "yellow", "yellow", "red", "green"]));
    assert_eq!(fr["rating"], "medium");
    // IT: nothing answered and nothing rated: those indicators have no value and no colour.
    let it = row(&doc, "member_state", Some("IT"), None);
    assert_eq!(it["ind2"], serde_json::Value::Null);
    assert_eq!(it["colours"], serde_json::json!(["red", null, "red", null, null]));
    // The readings used are stated.
    assert_eq!(doc["options"]["answer_from"], "sending");
    assert_eq!(doc["options"]["agreed_date"], "end_of_day");
    assert!(doc["readings"].as_str().unwrap().contains("24:00 of the agreed day"));
}

#[test]
fn the_readings_left_open_are_options_and_change_the_figures() {
    let (_tmp, store) = fixture_store();
    let default = indicators(&store, &[]);
    let other = indicators(&store, &["--answer-days-from", "acceptance", "--agreed-date", "instant"]);
    assert_eq!(other["options"]["answer_from"], "acceptance");
    assert_eq!(other["options"]["agreed_date"], "instant");
    // S3 was answered at 23:30 Berlin time on its agreed day: on time by the day, late by the
    // agreed instant (10:00 UTC).
    let on_time = |d: &serde_json::Value| {
        row(d, "member_state_domain", Some("DE"), Some("services"))["on_time"].clone()
    };
    assert_eq!(on_time(&default), 1);
    assert_eq!(on_time(&other), 0);
    assert_ne!(row(&default, "overall", None, None)["ind2"], row(&other, "overall", None, None)["ind2"]);
}

#[test]
fn benchmarking_ranks_authorities_among_peers_with_trends() {
    let (_tmp, store) = fixture_store();
    let doc = indicators(&store, &[]);
    let fr = doc["authorities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["authority_id"] == "A-FR-1" && b["domain"] == "services")
        .unwrap();
    assert_eq!(fr["received"], 3);
    assert_eq!(fr["rank"], 2);
    // Four peers in services in 2024 (A-DE-2 answers X4, which is 2025's in Brussels).
    assert_eq!(fr["peers"], 4);
    assert!((fr["percentile"].as_f64().unwrap() - 200.0 / 3.0).abs() < 1e-9);
    // 2023: one request answered in 20 days, late; 2024: median 10.2 days, one late in three.
    assert!((fr["answer_median_change"].as_f64().unwrap() - (10.0 + 5.0 / 24.0 - 20.0)).abs() < 1e-9);
    assert!((fr["share_late_change"].as_f64().unwrap() - (1.0 / 3.0 - 1.0)).abs() < 1e-9);
    let states: Vec<&str> = doc["member_states"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["domain"] == "services")
        .map(|b| b["member_state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["PT", "FR", "DE", "IT"]);
}

#[test]
fn indicators_as_table_and_csv() {
    let (_tmp, store) = fixture_store();
    let s = store.to_str().unwrap();
    let out = run(&["indicators", "--store", s, "--year", "2024", "--as-of", "2025-01-01"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Readings: domains: professional_qualifications, services, posting_of_workers"),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("overall") && l.contains("poor")), "{text}");
    let out =
        run(&["indicators", "--store", s, "--year", "2024", "--format", "csv", "--view", "member-states"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = stdout(&out);
    assert!(csv.starts_with("level,authority_id,member_state,domain,received,"), "{csv}");
    assert!(csv.lines().count() > 1);
}

#[test]
fn query_refuses_anything_but_a_query_and_points_at_mistakes() {
    let (tmp, store) = fixture_store();
    let s = store.to_str().unwrap();
    let before = super::snapshot(&store);
    for sql in [
        "INSERT INTO cases SELECT * FROM cases",
        "CREATE TABLE x AS SELECT 1",
        "COPY (SELECT 1) TO '/tmp/custos-copy.csv'",
        "SET datafusion.execution.batch_size = 1",
        "DROP TABLE cases",
    ] {
        let out = run(&["query", "--store", s, sql]);
        assert_eq!(out.status.code(), Some(2), "{sql}");
        assert!(
            stderr(&out).contains("refused: `custos query` runs queries only"),
            "{sql}: {}",
            stderr(&out)
        );
    }
    let out = run(&["query", "--store", s, "SELECT 1; SELECT 2"]);
    assert!(stderr(&out).contains("one query at a time"));
    let out = run(&["query", "--store", s, "SELECT case_id,\n  domain FORM cases"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    // `FORM` reads as an alias of `domain`; the mistake is found at `cases`.
    assert!(err.contains("line 2, column 15"), "{err}");
    assert!(err.contains("    domain FORM cases\n                ^"), "{err}");
    let out = run(&["query", "--store", s, "SELECT nosuch FROM cases"]);
    assert!(stderr(&out).contains("nosuch"), "{}", stderr(&out));
    assert_eq!(super::snapshot(&store), before, "a refused query changed the store");
    // A failed query leaves no output file behind.
    let file = tmp.path().join("out.parquet");
    let out =
        run(&["query", "--store", s, "--format", "parquet", "--out", file.to_str().unwrap(), "SELECT 1/0"]);
    assert!(!out.status.success());
    assert!(!file.exists() && !tmp.path().join("out.parquet.partial").exists());
}

#[test]
fn datafusion_options_come_from_the_environment_and_bad_ones_are_refused() {
    let (_tmp, store) = fixture_store();
    let s = store.to_str().unwrap();
    let sql =
        "SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.batch_size'";
    let default = run(&["query", "--store", s, "--format", "csv", sql]);
    assert!(stdout(&default).contains("16384"), "{}", stdout(&default));
    let set = super::custos()
        .env("DATAFUSION_EXECUTION_BATCH_SIZE", "4096")
        .args(["query", "--store", s, "--format", "csv", sql])
        .output()
        .unwrap();
    assert!(stdout(&set).contains("4096") && !stdout(&set).contains("16384"), "{}", stdout(&set));
    let bad = super::custos()
        .env("DATAFUSION_EXECUTION_BATCH_SIZE", "many")
        .args(["query", "--store", s, "SELECT 1"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("DATAFUSION_EXECUTION_BATCH_SIZE=many"), "{}", stderr(&bad));
}

#[test]
fn query_results_as_csv_json_and_parquet() {
    let (tmp, store) = fixture_store();
    let s = store.to_str().unwrap();
    let sql = "SELECT case_id, end_of_local_day(due_at, 'PT') AS due_end FROM cases WHERE case_id = 'S4'";
    let out = run(&["query", "--store", s, "--format", "csv", sql]);
    assert_eq!(stdout(&out), "case_id,due_end\nS4,2024-07-10T23:00:00Z\n");
    let out = run(&["query", "--store", s, "--format", "json", sql]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json[0]["case_id"], "S4");
    let file = tmp.path().join("cases.parquet");
    let out = run(&[
        "query",
        "--store",
        s,
        "--format",
        "parquet",
        "--out",
        file.to_str().unwrap(),
        "SELECT * FROM cases",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reader =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&file).unwrap()).unwrap();
    use parquet::file::reader::FileReader;
    assert_eq!(reader.metadata().file_metadata().num_rows(), 15);
    let out = run(&["query", "--store", s, "--format", "parquet", "SELECT 1"]);
    assert!(stderr(&out).contains("needs `--out FILE`"));
}

#[test]
fn query_writes_list_columns_to_csv_as_imports_read_them_and_stops_at_its_limits() {
    let (tmp, store) = fixture_store();
    let s = store.to_str().unwrap();
    // A list column, joined with `;`: the same text `users.csv` holds.
    let out = run(&[
        "query",
        "--store",
        s,
        "--format",
        "csv",
        "SELECT user_id, domains FROM users ORDER BY user_id LIMIT 1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("user_id,domains\n"), "{text}");
    assert_eq!(text.lines().nth(1), Some("U1,services;professional_qualifications"), "{text}");
    // A query past its time is stopped, and its file is not written.
    let file = tmp.path().join("slow.csv");
    let slow = "SELECT count(*) FROM (SELECT a.value FROM generate_series(1, 200000) a, generate_series(1, 200000) b WHERE a.value + b.value = -1)";
    let out = run(&[
        "query",
        "--store",
        s,
        "--timeout",
        "1",
        "--format",
        "csv",
        "--out",
        file.to_str().unwrap(),
        slow,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("ran longer than 1 s and was stopped"), "{}", stderr(&out));
    assert!(!file.exists() && !tmp.path().join("slow.csv.partial").exists());
    // A query past its memory fails rather than take the machine.
    let big = "SELECT a.value, count(*) FROM generate_series(1, 5000000) a GROUP BY a.value ORDER BY 2 DESC";
    let out = run(&["query", "--store", s, "--memory-mb", "64", "--format", "csv", big]);
    assert!(!out.status.success(), "a 64 MiB query grouped 5 million keys");
    assert!(stderr(&out).contains("Resources exhausted"), "{}", stderr(&out));
}
