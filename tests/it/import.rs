//! Import: idempotent, partitioned by month, every format, atomic under a kill.

use std::time::Duration;

use crate::{base, base_store, custos, run, snapshot, stderr, stdout};

#[test]
fn importing_the_same_rows_again_changes_nothing() {
    let (_tmp, store) = base_store();
    let before = snapshot(&store);
    let out = run(&["import", "--store", store.to_str().unwrap(), base().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("nothing new"), "{}", stdout(&out));
    assert!(snapshot(&store) == before, "a repeated import changed the store");
}

#[test]
fn the_access_log_is_stored_one_directory_per_month() {
    let (_tmp, store) = base_store();
    let mut months: Vec<String> = std::fs::read_dir(store.join("data/access_log"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    months.sort();
    assert_eq!(months, ["month=2024-01", "month=2024-02", "month=2024-03"]);
}

#[test]
fn json_lines_and_parquet_import_like_csv() {
    let (tmp, store) = base_store();
    let dir = tmp.path().join("more");
    std::fs::create_dir_all(&dir).unwrap();
    // New events as JSON Lines; a missing key is null.
    std::fs::write(
        dir.join("access_log.jsonl"),
        "{\"event_id\":\"E10\",\"ts\":\"2024-04-01T10:00:00+02:00\",\"user_id\":\"U2\",\"authority_id\":\"A-FR-1\",\"case_id\":\"C1\",\"action\":\"view\",\"purpose\":\"administrative_cooperation\",\"outcome\":\"granted\"}\n\n{\"event_id\":\"E11\",\"ts\":\"2024-04-02\",\"user_id\":\"U1\",\"authority_id\":\"A-DE-1\",\"action\":\"login\",\"purpose\":\"administrative_cooperation\",\"outcome\":\"granted\"}\n",
    )
    .unwrap();
    // The store's own Parquet file of cases is a valid input, and all of it is already known.
    let cases = std::fs::read_dir(store.join("data/cases")).unwrap().next().unwrap().unwrap().path();
    std::fs::copy(cases, dir.join("cases.parquet")).unwrap();
    let out = run(&["import", "--store", store.to_str().unwrap(), dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("access_log                    2 read            2 new"), "{text}");
    assert!(text.contains("cases                         2 read            0 new"), "{text}");
}

#[test]
fn every_case_user_and_authority_is_numbered_once_and_references_carry_the_number() {
    let (tmp, store) = base_store();
    // A second import: a new case, its participants, and events on it and on an old case.
    let dir = tmp.path().join("more");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("cases.csv"),
        "case_id,domain,procedure,requesting_authority,created_at,sent_at,accepted_at,answered_at,due_at,closed_at,last_activity_at,inactivity_justified,personal_data,special_categories,retention_months,repository_basis,blocked_at,deleted_at,early_deletion_requested_at,subject_consent,rating_timeliness,rating_effort\n\
         N1,services,request,A-FR-1,2024-04-01T09:00:00Z,,,,,,2024-04-01T09:00:00Z,false,true,false,,,,,,false,,\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("case_participants.csv"),
        "case_id,authority_id,role,joined_at,left_at\nN1,A-FR-1,requesting,2024-04-01T09:00:00Z,\nN1,A-DE-1,responding,2024-04-01T09:00:00Z,\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("access_log.csv"),
        "event_id,ts,user_id,authority_id,case_id,action,purpose,legal_ground,outcome\n\
         N-E1,2024-04-01T10:00:00Z,U2,A-FR-1,N1,view,administrative_cooperation,,granted\n\
         N-E2,2024-04-01T11:00:00Z,U1,A-DE-1,C1,view,administrative_cooperation,,granted\n\
         N-E3,2024-04-01T12:00:00Z,U1,A-DE-1,,login,administrative_cooperation,,granted\n",
    )
    .unwrap();
    let out = run(&["import", "--store", store.to_str().unwrap(), dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = store.to_str().unwrap();
    let count = |sql: &str| -> String {
        let out = run(&["query", "--store", s, "--format", "csv", sql]);
        assert!(out.status.success(), "{sql}: {}", stderr(&out));
        stdout(&out).lines().nth(1).unwrap_or_default().to_owned()
    };
    // Numbers are distinct, and the second import counted on from the first.
    for (table, key) in [("cases", "case_key"), ("users", "user_key"), ("authorities", "authority_key")] {
        let sql = format!(
            "SELECT count(*) = count(DISTINCT {key}) AND min({key}) = 0 AND max({key}) = count(*) - 1 FROM {table}"
        );
        assert_eq!(count(&sql), "true", "{table}");
    }
    assert_eq!(
        count("SELECT case_key FROM cases WHERE case_id = 'N1'"),
        count("SELECT count(*) - 1 FROM cases")
    );
    // Every reference carries the number of the row it names, and only a missing one is null.
    let mismatches = [
        "SELECT count(*) FROM access_log e LEFT JOIN users u ON u.user_id = e.user_id WHERE e.user_key IS DISTINCT FROM u.user_key",
        "SELECT count(*) FROM access_log e LEFT JOIN authorities a ON a.authority_id = e.authority_id WHERE e.authority_key IS DISTINCT FROM a.authority_key",
        "SELECT count(*) FROM access_log e LEFT JOIN cases c ON c.case_id = e.case_id WHERE e.case_key IS DISTINCT FROM c.case_key",
        "SELECT count(*) FROM case_participants p LEFT JOIN cases c ON c.case_id = p.case_id WHERE p.case_key IS DISTINCT FROM c.case_key",
        "SELECT count(*) FROM case_participants p LEFT JOIN authorities a ON a.authority_id = p.authority_id WHERE p.authority_key IS DISTINCT FROM a.authority_key",
        "SELECT count(*) FROM cases c LEFT JOIN authorities a ON a.authority_id = c.requesting_authority WHERE c.requesting_key IS DISTINCT FROM a.authority_key",
        "SELECT count(*) FROM users u LEFT JOIN authorities a ON a.authority_id = u.authority_id WHERE u.authority_key IS DISTINCT FROM a.authority_key",
    ];
    for sql in mismatches {
        assert_eq!(count(sql), "0", "{sql}");
    }
    assert_eq!(count("SELECT count(*) FROM access_log WHERE case_key IS NULL AND event_id = 'N-E3'"), "1");
    assert_eq!(count("SELECT count(*) FROM access_log WHERE event_id LIKE 'N-E%'"), "3");
}

#[test]
fn a_killed_import_leaves_the_store_without_it_or_with_all_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    let out = run(&["generate", "--out", export.to_str().unwrap(), "--scale", "0.01", "--events", "400000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_base_tmp, store) = base_store();
    let before = snapshot(&store);
    // A reference run tells how long a whole import takes here.
    let reference = tmp.path().join("reference");
    let started = std::time::Instant::now();
    let out = run(&["import", "--store", reference.to_str().unwrap(), export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let whole = started.elapsed();
    let mut outcomes = (0, 0);
    for step in 1..=8u32 {
        let store = tmp.path().join(format!("store{step}"));
        copy_dir(&_base_tmp.path().join("store"), &store);
        let mut child = custos()
            .args(["import", "--store", store.to_str().unwrap(), export.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(whole.mul_f64(f64::from(step) / 8.0).saturating_sub(Duration::from_millis(20)));
        let _ = child.kill();
        let _ = child.wait();
        // The store is readable and sound, and either as before or with the whole import.
        let verify = run(&["verify", "--store", store.to_str().unwrap()]);
        assert!(verify.status.success(), "step {step}: {}", stdout(&verify));
        let manifest = std::fs::read_to_string(store.join("manifest.jsonl")).unwrap();
        match manifest.lines().count() {
            1 => {
                outcomes.0 += 1;
                let now: Vec<_> =
                    snapshot(&store).into_iter().filter(|(p, _)| p.starts_with("manifest.jsonl")).collect();
                let was: Vec<_> =
                    before.clone().into_iter().filter(|(p, _)| p.starts_with("manifest.jsonl")).collect();
                assert_eq!(now, was, "step {step}");
            }
            2 => outcomes.1 += 1,
            n => panic!("step {step}: {n} manifest entries"),
        }
        // The next import cleans up and completes.
        let again = run(&["import", "--store", store.to_str().unwrap(), export.to_str().unwrap()]);
        assert!(again.status.success(), "step {step}: {}", stderr(&again));
        let verify = run(&["verify", "--store", store.to_str().unwrap()]);
        assert!(
            verify.status.success() && !stdout(&verify).contains("interrupted"),
            "step {step}: {}",
            stdout(&verify)
        );
        assert_eq!(committed_rows(&store, 2), committed_rows(&reference, 1), "step {step}");
    }
    // Kills spread over the whole import's duration land before its commit point.
    assert!(outcomes.0 >= 4, "{outcomes:?}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Rows listed by manifest entry `seq` of `store`.
fn committed_rows(store: &std::path::Path, seq: usize) -> u64 {
    let manifest = std::fs::read_to_string(store.join("manifest.jsonl")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(manifest.lines().nth(seq - 1).unwrap()).unwrap();
    entry["files"].as_array().unwrap().iter().map(|f| f["rows"].as_u64().unwrap()).sum()
}
