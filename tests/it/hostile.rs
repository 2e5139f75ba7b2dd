//! Issue 17's corpus: a store and an importer tried as an attacker or a careless operator
//! would. Each test names the point it guards and asserts the message, the exit code, and
//! that the store is byte for byte (directories included) what it was.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema};

use crate::{base, base_store, run, snapshot, stderr, stdout};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `custos import --store STORE ARGS…`.
fn import(store: &Path, args: &[&str]) -> Output {
    let mut all = vec!["import", "--store", s(store)];
    all.extend_from_slice(args);
    run(&all)
}

/// Asserts that `out` failed with `code` and says each of `expect` on standard error.
fn refused(out: &Output, code: i32, expect: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr:\n{err}");
    for e in expect {
        assert!(err.contains(e), "expected `{e}` in:\n{err}");
    }
}

/// Writes `files` (name, content) into a new directory `name` under `tmp`.
fn dir_of(tmp: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, content) in files {
        std::fs::write(dir.join(file), content).unwrap();
    }
    dir
}

/// The store's committed data files of `table` (paths relative to the store).
fn data_files(store: &Path, table: &str) -> Vec<String> {
    let manifest = std::fs::read_to_string(store.join("manifest.jsonl")).unwrap();
    manifest
        .lines()
        .flat_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["files"].as_array().unwrap().clone()
        })
        .filter(|f| f["table"] == table)
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect()
}

fn entries(store: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(store.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

// ---- Point 1: every reader checks each file it reads ------------------------------------

/// The commands that read the store, each of which must refuse a damaged file.
fn readers(store: &Path, out: &Path) -> Vec<Vec<String>> {
    let st = s(store).to_owned();
    let out = s(out).to_owned();
    [
        vec!["audit", "--store", &st],
        vec!["check", "--store", &st, "--as-of", "2025-01-01"],
        vec![
            "report", "--store", &st, "--year", "2024", "--kind", "annual", "--format", "html", "--out", &out,
        ],
        vec!["indicators", "--store", &st, "--year", "2024"],
        vec!["query", "--store", &st, "SELECT count(*) FROM users"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(str::to_owned).collect())
    .collect()
}

/// Runs `custos ARGS…`, killed if it has not ended after `secs` seconds (a server that
/// started serving instead of refusing, a reader blocked on a FIFO).
fn run_for(args: &[&str], secs: u64) -> Output {
    let mut child = crate::custos()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn every_reader_refuses(tmp: &Path, store: &Path, file: &str, expect: &str) {
    let before = snapshot(store);
    // The dashboard loads the store before it serves: it refuses too, and never serves.
    let out = run_for(&["serve", "--store", s(store), "--addr", "127.0.0.1:0"], 60);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "serve: exit code; stderr:\n{err}");
    assert!(err.contains(file) && err.contains(expect), "serve: expected `{file}` and `{expect}` in:\n{err}");
    for args in readers(store, &tmp.join("out")) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{}: exit code; stderr:\n{err}", args[0]);
        assert!(
            err.contains(file) && err.contains(expect),
            "{}: expected `{file}` and `{expect}` in:\n{err}",
            args[0]
        );
        assert!(snapshot(store) == before, "{}: the store changed", args[0]);
    }
}

#[test]
fn point_1_a_users_file_truncated_to_nothing_stops_every_reader() {
    let (tmp, store) = base_store();
    let users = data_files(&store, "users").remove(0);
    std::fs::write(store.join(&users), b"").unwrap();
    every_reader_refuses(tmp.path(), &store, &users, "the manifest records");
}

#[test]
fn point_1_a_file_replaced_by_one_of_the_same_size_stops_every_reader() {
    let (tmp, store) = base_store();
    let cases = data_files(&store, "cases").remove(0);
    let path = store.join(&cases);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    every_reader_refuses(tmp.path(), &store, &cases, "was altered");
}

#[cfg(unix)]
#[test]
fn point_1_a_data_file_that_is_a_link_to_dev_zero_or_a_fifo_is_refused_at_once() {
    for kind in ["symlink", "fifo"] {
        let (tmp, store) = base_store();
        let users = data_files(&store, "users").remove(0);
        let path = store.join(&users);
        std::fs::remove_file(&path).unwrap();
        if kind == "symlink" {
            std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        } else {
            assert!(std::process::Command::new("mkfifo").arg(&path).status().unwrap().success());
        }
        for args in readers(&store, &tmp.path().join("out")) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{kind}, {}: {err}", args[0]);
            assert!(err.contains(&users), "{kind}, {}: {err}", args[0]);
        }
        // `verify` names it too, and does not hang on it.
        let out = run(&["verify", "--store", s(&store)]);
        assert_eq!(out.status.code(), Some(1), "{kind}");
        assert!(
            stdout(&out).contains(&format!("file `{users}` (manifest entry 1)")),
            "{kind}: {}",
            stdout(&out)
        );
    }
}

// ---- Point 2: recovery deletes only what a pending write could have made ----------------

#[test]
fn point_2_a_forged_note_deletes_nothing_outside_a_pending_write_and_hides_nothing() {
    let (tmp, store) = base_store();
    let victim = tmp.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let committed = data_files(&store, "cases").remove(0);
    // A file an attacker added under a committed commit's number, and one shaped like a
    // pending write's (commit 2 is the next), which recovery may remove.
    let added = "data/cases/c000001-9.parquet";
    std::fs::write(store.join(added), b"PAR1").unwrap();
    let leftover = "data/cases/c000002-0.parquet";
    std::fs::write(store.join(leftover), b"PAR1").unwrap();
    let note = serde_json::json!([
        "../victim.txt",
        s(&victim),
        committed,
        added,
        "manifest.jsonl",
        "data/cases/../../victim.txt",
        leftover
    ]);
    std::fs::write(store.join("pending/c000002.json"), note.to_string()).unwrap();
    // `verify` is not fooled by the note: the added file is named.
    let out = run(&["verify", "--store", s(&store)]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains(&format!("file `{added}` is in no manifest entry")), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("`{leftover}` was left by an interrupted import")),
        "{}",
        stdout(&out)
    );
    // The next write recovers: only the pending-shaped leftover goes.
    let more = dir_of(tmp.path(), "more", &[("holidays.csv", "calendar,date\nFR,2024-07-14\n")]);
    let out = import(&store, &[s(&more)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert!(store.join(&committed).exists());
    assert!(store.join(added).exists());
    assert!(store.join("manifest.jsonl").exists());
    assert!(!store.join(leftover).exists());
    assert!(!store.join("pending/c000002.json").exists());
}

// ---- Point 3: Parquet values converted only where no value changes ---------------------

fn parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let schema = Arc::new(Schema::new(
        columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(Arc::clone(&schema), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn text(values: &[&str]) -> ArrayRef {
    Arc::new(arrow::array::StringArray::from(values.to_vec()))
}

/// A `domains` file with `retention_months` and `repository` as given.
fn domains_file(dir: &Path, retention: ArrayRef, repository: ArrayRef) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("domains.parquet");
    parquet(
        &path,
        vec![
            ("domain", text(&["fisheries"])),
            ("name", text(&["Fisheries"])),
            ("legal_act", text(&["Reg. X"])),
            ("retention_months", retention),
            ("commission_participates", Arc::new(arrow::array::BooleanArray::from(vec![false]))),
            ("special_categories_basis", Arc::new(arrow::array::BooleanArray::from(vec![false]))),
            ("repository", repository),
        ],
    );
    path
}

#[test]
fn point_3_parquet_values_are_converted_only_where_no_value_changes() {
    let (tmp, store) = base_store();
    let before = snapshot(&store);
    let yes = || -> ArrayRef { Arc::new(arrow::array::BooleanArray::from(vec![true])) };
    let cases: Vec<(&str, ArrayRef, ArrayRef, &str)> = vec![
        (
            "a float with a fraction",
            Arc::new(arrow::array::Float64Array::from(vec![6.7])),
            yes(),
            "domains.parquet: row group 0, row 0: column `retention_months`: value `6.7`: expected a whole number",
        ),
        (
            "an integer other than 0 or 1 as a bool",
            Arc::new(arrow::array::Int64Array::from(vec![6])),
            Arc::new(arrow::array::Int32Array::from(vec![2])),
            "column `repository`: value `2`: expected `true` or `false`",
        ),
        (
            "a float as a bool",
            Arc::new(arrow::array::Int64Array::from(vec![6])),
            Arc::new(arrow::array::Float64Array::from(vec![1.0])),
            "column `repository`: type Float64 cannot be read as `true` or `false`",
        ),
    ];
    for (n, (name, retention, repository, expect)) in cases.into_iter().enumerate() {
        let path = domains_file(&tmp.path().join(format!("p3-{n}")), retention, repository);
        refused(&import(&store, &[s(&path)]), 2, &[expect]);
        assert!(snapshot(&store) == before, "{name}: the store changed");
    }
    // Epoch seconds in an int64 column are no instant: their unit is nowhere declared.
    let dir = tmp.path().join("p3-ts");
    std::fs::create_dir_all(&dir).unwrap();
    let holidays = dir.join("users.parquet");
    let registered: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![1_704_067_200]));
    parquet(
        &holidays,
        vec![("user_id", text(&["U9"])), ("authority_id", text(&["A-DE-1"])), ("registered_at", registered)],
    );
    refused(
        &import(&store, &[s(&holidays)]),
        2,
        &["column `registered_at`: type Int64 cannot be read as an RFC 3339 timestamp"],
    );
    // A dictionary-encoded text timestamp without an offset is refused like the plain text.
    let dict: ArrayRef = Arc::new(
        vec!["2024-01-01T10:00:00"]
            .into_iter()
            .collect::<arrow::array::DictionaryArray<arrow::datatypes::Int32Type>>(),
    );
    parquet(
        &holidays,
        vec![("user_id", text(&["U9"])), ("authority_id", text(&["A-DE-1"])), ("registered_at", dict)],
    );
    refused(
        &import(&store, &[s(&holidays)]),
        2,
        &[
            "users.parquet: row group 0, row 0: column `registered_at`: value `2024-01-01T10:00:00`: expected an RFC 3339 timestamp",
        ],
    );
    assert!(snapshot(&store) == before);
    // Where no value changes, the conversion is made: 6.0 is 6, 1 is true, seconds are seconds.
    let path = domains_file(
        &tmp.path().join("p3-ok"),
        Arc::new(arrow::array::Float32Array::from(vec![6.0])),
        Arc::new(arrow::array::UInt8Array::from(vec![1])),
    );
    let out = import(&store, &[s(&path)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let seconds: ArrayRef =
        Arc::new(arrow::array::TimestampSecondArray::from(vec![1_704_067_200]).with_timezone("+01:00"));
    parquet(
        &holidays,
        vec![("user_id", text(&["U9"])), ("authority_id", text(&["A-DE-1"])), ("registered_at", seconds)],
    );
    let out = import(&store, &[s(&holidays)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&[
        "query",
        "--store",
        s(&store),
        "--format",
        "csv",
        "SELECT d.retention_months, d.repository, CAST(u.registered_at AS VARCHAR) AS r FROM domains d, users u WHERE d.domain = 'fisheries' AND u.user_id = 'U9'",
    ]);
    assert!(stdout(&out).contains("6,true,2024-01-01T00:00:00"), "{}{}", stdout(&out), stderr(&out));
}

// ---- Point 4: no input dropped without consent -----------------------------------------

#[test]
fn point_4_unknown_columns_keys_duplicate_keys_and_subdirectories_are_refused_by_name() {
    let (tmp, store) = base_store();
    let before = snapshot(&store);
    // A misspelt optional CSV column.
    let csv = dir_of(
        tmp.path(),
        "p4-csv",
        &[(
            "users.csv",
            "user_id,authority_id,domains,registered_at,deactivted_at\nU9,A-DE-1,services,2024-01-01,2024-02-01\n",
        )],
    );
    refused(
        &import(&store, &[s(&csv)]),
        2,
        &[
            "users.csv: column not in the data model of `users`: `deactivted_at` (did you mean `deactivated_at`?)",
            "--ignore-unknown-columns",
        ],
    );
    // A misspelt JSON key: the row is refused by its line.
    let json = dir_of(
        tmp.path(),
        "p4-json",
        &[(
            "users.jsonl",
            "{\"user_id\":\"U9\",\"authority_id\":\"A-DE-1\",\"registered_at\":\"2024-01-01\"}\n{\"user_id\":\"U8\",\"authority_id\":\"A-DE-1\",\"registerd_at\":\"2024-01-01\",\"registered_at\":\"2024-01-01\"}\n",
        )],
    );
    refused(
        &import(&store, &[s(&json)]),
        2,
        &[
            "users.jsonl:2: key `registerd_at` is not in the data model of `users` (did you mean `registered_at`?)",
        ],
    );
    // A key written twice.
    let twice = dir_of(
        tmp.path(),
        "p4-twice",
        &[(
            "users.jsonl",
            "{\"user_id\":\"U9\",\"authority_id\":\"A-DE-1\",\"registered_at\":\"2024-01-01\",\"user_id\":\"U10\"}\n",
        )],
    );
    refused(
        &import(&store, &[s(&twice)]),
        2,
        &["users.jsonl:1: column `user_id`: the key appears twice in the object"],
    );
    // A subdirectory and a file named after no table, in a directory given to import.
    let nested = dir_of(
        tmp.path(),
        "p4-nested",
        &[("holidays.csv", "calendar,date\nFR,2024-07-14\n"), ("notes.txt", "x")],
    );
    dir_of(&nested, "2025", &[("holidays.csv", "calendar,date\nFR,2025-07-14\n")]);
    refused(
        &import(&store, &[s(&nested)]),
        2,
        &[
            "2 entries in the directories to import are not data of any table",
            "p4-nested/2025` is a subdirectory",
            "notes.txt: unknown format",
        ],
    );
    assert!(snapshot(&store) == before);
    // With consent, the unknown column is left out and the rest imported.
    let out = import(&store, &["--ignore-unknown-columns", s(&csv)]);
    assert!(out.status.success(), "{}", stderr(&out));
}

// ---- Point 5: every bad row, in line order ---------------------------------------------

#[test]
fn point_5_a_thousand_bad_rows_are_all_reported_in_line_order_and_written_to_rejects() {
    let (tmp, store) = base_store();
    let before = snapshot(&store);
    let mut csv =
        String::from("event_id,ts,user_id,authority_id,case_id,action,purpose,legal_ground,outcome\n");
    for i in 0..1_000 {
        // Every row is bad, alternately in its instant and in its action.
        if i % 2 == 0 {
            csv.push_str(&format!("X{i},yesterday,U1,A-DE-1,C1,view,administrative_cooperation,,granted\n"));
        } else {
            csv.push_str(&format!(
                "X{i},2024-05-01T10:00:00Z,U1,A-DE-1,C1,peek,administrative_cooperation,,granted\n"
            ));
        }
    }
    csv.push_str("X-good,2024-05-01T10:00:00Z,U1,A-DE-1,C1,view,administrative_cooperation,,granted\n");
    let dir = dir_of(tmp.path(), "p5", &[("access_log.csv", &csv)]);
    let rejects = tmp.path().join("rejects.csv");
    let out = import(&store, &["--rejects", s(&rejects), s(&dir)]);
    refused(
        &out,
        2,
        &[
            "1000 refusals; nothing was imported",
            "access_log.csv:2: column `ts`: value `yesterday`",
            "access_log.csv:3: column `action`: value `peek`",
            "… and 900 more",
            "500  ",
            "column `action`: expected one of",
        ],
    );
    let err = stderr(&out);
    // In line order: line 2 before line 3 before line 101.
    let at = |l: &str| err.find(l).unwrap_or_else(|| panic!("{l} in {err}"));
    assert!(
        at("access_log.csv:2:") < at("access_log.csv:3:")
            && at("access_log.csv:3:") < at("access_log.csv:101:")
    );
    assert!(!err.contains("access_log.csv:102:"), "only the first 100 are quoted");
    let rows: Vec<csv::StringRecord> =
        csv::Reader::from_path(&rejects).unwrap().records().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 1_000);
    assert_eq!(&rows[0][1], "2");
    assert!(rows[0][3].contains("value `yesterday`"), "{:?}", rows[0]);
    assert!(rows[0][4].contains("yesterday"), "{:?}", rows[0]);
    assert!(snapshot(&store) == before);
    let out = import(&store, &["--max-errors", "3", s(&dir)]);
    refused(&out, 2, &["… and 997 more"]);
}

// ---- Point 6: limits -------------------------------------------------------------------

#[test]
fn point_6_limits_refuse_with_clear_errors_and_leave_no_directory_behind() {
    let (tmp, store) = base_store();
    let before = snapshot(&store);
    let long = format!("calendar,date\nFR,2024-07-14\n{}\n", "x".repeat(5_000));
    let dir = dir_of(tmp.path(), "p6-line", &[("holidays.csv", &long)]);
    refused(
        &import(&store, &["--max-line-bytes", "1000", s(&dir)]),
        2,
        &["holidays.csv:3: a line longer than 1000 bytes"],
    );
    let wide: String = (0..50).map(|i| format!("c{i},")).collect::<String>() + "calendar,date\n";
    let dir = dir_of(tmp.path(), "p6-wide", &[("holidays.csv", &wide)]);
    refused(
        &import(&store, &["--max-columns", "20", s(&dir)]),
        2,
        &["holidays.csv: 52 columns: expected at most 20"],
    );
    let dir = dir_of(
        tmp.path(),
        "p6-field",
        &[("holidays.csv", &format!("calendar,date\n{},2024-07-14\n", "F".repeat(300)))],
    );
    refused(
        &import(&store, &["--max-field-bytes", "100", s(&dir)]),
        2,
        &["holidays.csv:2: column `calendar`: a field of 300 bytes"],
    );
    refused(
        &import(&store, &["--max-table-bytes", "10", s(&dir)]),
        2,
        &["bytes of `holidays` in one import: expected at most 10"],
    );
    // A refused access log of a new month leaves no month directory.
    let dir = dir_of(
        tmp.path(),
        "p6-month",
        &[(
            "access_log.csv",
            "event_id,ts,user_id,authority_id,case_id,action,purpose,legal_ground,outcome\nE90,2024-09-01T10:00:00Z,U1,A-DE-1,C1,view,administrative_cooperation,,granted\nE91,2024-09-01T10:00:00Z,U404,A-DE-1,C1,view,administrative_cooperation,,granted\n",
        )],
    );
    refused(
        &import(&store, &[s(&dir)]),
        2,
        &["access_log.csv:3: column `user_id`: value `U404`: no user has this id"],
    );
    assert!(snapshot(&store) == before);
    // A FIFO given as input is refused, not waited on.
    #[cfg(unix)]
    {
        let fifo = tmp.path().join("users.csv");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        refused(&import(&store, &[s(&fifo)]), 2, &["users.csv: not a regular file"]);
    }
    // A refused first import into a new directory leaves no directory at all.
    let fresh = tmp.path().join("new-store");
    refused(&import(&fresh, &[s(&dir)]), 2, &["no user has this id"]);
    assert!(!fresh.exists(), "the new store's directory was left behind");
}

// ---- Point 7: plausibility -------------------------------------------------------------

#[test]
fn point_7_implausible_instants_orders_identifiers_and_holidays_are_refused() {
    let (tmp, store) = base_store();
    let before = snapshot(&store);
    let users = |row: &str| {
        format!("user_id,authority_id,domains,registered_at,deactivated_at,blocked_at,deleted_at\n{row}\n")
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "year 0000",
            users("U9,A-DE-1,services,0000-01-01,,,"),
            "value `0000-01-01T00:00:00Z`: an implausible instant",
        ),
        (
            "year 9999",
            users("U9,A-DE-1,services,9999-01-01T00:00:00Z,,,"),
            "an implausible instant: expected one from 1990-01-01",
        ),
        (
            "year -1",
            users("U9,A-DE-1,services,-0001-01-01T00:00:00Z,,,"),
            "column `registered_at`: value `-0001-01-01T00:00:00Z`: expected",
        ),
        (
            "offset +23:59",
            users("U9,A-DE-1,services,2024-01-01T00:00:00+23:59,,,"),
            "expected an offset from -14:00 to +14:00",
        ),
        (
            "second 60 on an ordinary day",
            users("U9,A-DE-1,services,2024-01-01T10:00:60Z,,,"),
            "expected seconds from 00 to 59",
        ),
        (
            "nanoseconds",
            users("U9,A-DE-1,services,2024-01-01T10:00:00.123456789Z,,,"),
            "expected at most six decimals",
        ),
        (
            "deactivated before registered",
            users("U9,A-DE-1,services,2024-01-01,2023-01-01,,"),
            "column `deactivated_at`: value `2023-01-01T00:00:00Z`: an instant before `registered_at`",
        ),
        (
            "an empty identifier",
            "{\"user_id\":\"\",\"authority_id\":\"A-DE-1\",\"registered_at\":\"2024-01-01\"}\n".into(),
            "users.jsonl:1: column `user_id`: value ``: an empty identifier",
        ),
        (
            "a NUL in an identifier",
            users("U\u{0}9,A-DE-1,services,2024-01-01,,,"),
            "value `U\\09`: an identifier with a control character",
        ),
        (
            "a trailing space",
            users("U9 ,A-DE-1,services,2024-01-01,,,"),
            "an identifier with a space at its start or end",
        ),
        ("a Cyrillic letter", users("U9а,A-DE-1,services,2024-01-01,,,"), "a letter outside ASCII"),
        ("30 February", "calendar,date\nDE,2024-02-30\n".into(), "value `2024-02-30`: expected a date"),
        (
            "a breach notified before it was known",
            "breach_id,controller_id,aware_at,risk,supervisor,notified_at\nB9,A-DE-1,2024-05-02T10:00:00Z,risk,DE,2024-05-01T10:00:00Z\n".into(),
            "breaches.csv:2: column `notified_at`: value `2024-05-01T10:00:00Z`: an instant before `aware_at`",
        ),
    ];
    for (n, (name, content, expect)) in cases.iter().enumerate() {
        let file = if content.starts_with("calendar") {
            "holidays.csv"
        } else if content.starts_with("breach") {
            "breaches.csv"
        } else if content.starts_with('{') {
            "users.jsonl"
        } else {
            "users.csv"
        };
        let dir = dir_of(tmp.path(), &format!("p7-{n}"), &[(file, content)]);
        let out = import(&store, &[s(&dir)]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(expect), "{name}: expected `{expect}` in:\n{err}");
        assert!(snapshot(&store) == before, "{name}: the store changed");
    }
    // New holidays are said on import, by calendar.
    let dir = dir_of(
        tmp.path(),
        "p7-holidays",
        &[("holidays.csv", "calendar,date\nDE,2024-10-03\nDE,2024-12-25\nFR,2024-07-14\n")],
    );
    let out = import(&store, &[s(&dir)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("holidays of DE         1 new: 2024-12-25"), "{}", stdout(&out));
    assert!(stdout(&out).contains("holidays of FR         1 new: 2024-07-14"), "{}", stdout(&out));
}

// ---- Point 8: provenance ---------------------------------------------------------------

#[test]
fn point_8_audits_record_what_they_judged_and_a_windowed_audit_stands_beside_the_whole_one() {
    let (_tmp, store) = base_store();
    let count = || {
        let out = run(&[
            "query",
            "--store",
            s(&store),
            "--format",
            "csv",
            "SELECT count(*) AS n FROM ntk_findings",
        ]);
        stdout(&out).lines().nth(1).unwrap_or_default().to_owned()
    };
    assert!(run(&["audit", "--store", s(&store)]).status.success());
    let whole = count();
    let e = entries(&store);
    let judged = &e.last().unwrap()["judged"];
    assert_eq!(judged["seq"], 1, "{judged}");
    assert_eq!(judged["head"], e[0]["hash"], "{judged}");
    assert!(judged.get("from").is_none());
    let out = run(&["audit", "--store", s(&store), "--from", "2024-01-11", "--to", "2024-01-12"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e = entries(&store);
    let judged = &e.last().unwrap()["judged"];
    assert_eq!(judged["seq"], 2, "{judged}");
    assert_eq!(judged["from"], "2024-01-11T00:00:00Z", "{judged}");
    assert_eq!(count(), whole, "the windowed audit replaced the whole one");
    // An inverted or empty window is refused, and stores nothing.
    let before = snapshot(&store);
    let out = run(&["audit", "--store", s(&store), "--from", "2024-02-01", "--to", "2024-01-01"]);
    refused(&out, 2, &["holds no instant: `--from` must be before `--to`"]);
    assert!(snapshot(&store) == before);
}

#[test]
fn point_8_an_audit_of_a_store_that_changed_while_it_ran_records_what_it_read() {
    use custos_engine::audit;
    let (tmp, dir) = base_store();
    // The audit's view of the store, then another import commits before the audit records.
    let engine = custos_engine::Engine::open(&dir)
        .unwrap()
        .with_clock(custos_engine::Clock::Fixed(1_780_000_000_000_000));
    let more = dir_of(tmp.path(), "more", &[("holidays.csv", "calendar,date\nFR,2024-07-14\n")]);
    assert!(import(&dir, &[s(&more)]).status.success());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let found = rt.block_on(engine.audit(audit::Window::default())).unwrap();
    let entry = engine.record(&found).unwrap();
    // Entry 3 records that it judged the store as of entry 1, not the import of entry 2.
    assert_eq!(entry.body.seq, 3);
    let judged = entry.body.judged.unwrap();
    assert_eq!((judged.seq, judged.head.as_str()), (1, entries(&dir)[0]["hash"].as_str().unwrap()));
    assert!(run(&["verify", "--store", s(&dir)]).status.success());
}

#[test]
fn point_8_two_first_imports_into_one_new_directory_both_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let children: Vec<_> = (0..2)
        .map(|_| {
            crate::custos()
                .args(["import", "--store", s(&store), s(&base())])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // One committed the rows, the other found them there (a no-op).
    assert_eq!(entries(&store).len(), 1);
    assert!(run(&["verify", "--store", s(&store)]).status.success());
}

// ---- Point 9: no panic on any argument -------------------------------------------------

#[test]
fn point_9_out_of_range_arguments_exit_2_with_a_message_and_a_year_without_data_is_empty() {
    let (tmp, store) = base_store();
    let st = s(&store);
    let out_dir = tmp.path().join("out");
    let base = base();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["indicators", "--store", st, "--year", "2147483647"], "is not a year Custos reports on"),
        (
            vec!["report", "--store", st, "--year=-5", "--kind", "annual", "--out", s(&out_dir)],
            "is not a year",
        ),
        (
            vec!["check", "--store", st, "--as-of", "2025-01-01", "--horizon", "99999999999999w"],
            "is not a horizon",
        ),
        (vec!["check", "--store", st, "--as-of", "2025-01-01", "--horizon=-3d"], "is not a horizon"),
        (vec!["check", "--store", st, "--as-of", "9999-01-01"], "out of range"),
        (
            vec!["check", "--store", st, "--as-of", "2025-01-01", "--user-block-days", "4294967295"],
            "4294967295",
        ),
        (vec!["generate", "--out", s(&out_dir), "--scale", "NaN"], "is not a scale"),
        (vec!["generate", "--out", s(&out_dir), "--scale", "1e300"], "is not a scale"),
        (vec!["import", "--store", st, "--max-errors", "0", s(&base)], "0"),
    ];
    for (args, expect) in cases {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expect), "{args:?}: {}", stderr(&out));
    }
    // A year with no data: an empty, labelled result.
    let out = run(&["indicators", "--store", st, "--year", "1995"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1995"), "{}", stdout(&out));
}
