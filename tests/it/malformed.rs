//! The malformed-input corpus: every file is refused with a message naming the file, the
//! place and what was expected, exit code 2, and the store byte for byte as before.

use std::path::Path;

use crate::{base_store, run, snapshot, stderr};

/// One malformed input: the files to import (name, content) and what the message must say.
struct Case {
    name: &'static str,
    files: Vec<(&'static str, Vec<u8>)>,
    expect: &'static [&'static str],
}

fn text(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

const CASES_HEADER: &str = "case_id,domain,procedure,requesting_authority,created_at,sent_at,accepted_at,answered_at,due_at,closed_at,last_activity_at,inactivity_justified,personal_data,special_categories,retention_months,repository_basis,blocked_at,deleted_at,early_deletion_requested_at,subject_consent,rating_timeliness,rating_effort";
const LOG_HEADER: &str = "event_id,ts,user_id,authority_id,case_id,action,purpose,legal_ground,outcome";
const USERS_HEADER: &str = "user_id,authority_id,domains,registered_at,deactivated_at,blocked_at,deleted_at";

fn case_row(id: &str, domain: &str, procedure: &str, personal: &str, retention: &str) -> String {
    format!(
        "{id},{domain},{procedure},A-DE-1,2024-05-01T09:00:00Z,,,,,,2024-05-01T09:00:00Z,false,{personal},false,{retention},,,,,false,,"
    )
}

fn corpus() -> Vec<Case> {
    let mut huge = String::from(USERS_HEADER);
    huge.push_str("\nU9,A-DE-1,services,");
    huge.push_str(&"9".repeat(200_000));
    huge.push_str(",,,\n");
    let mut bad_utf8 = format!("{USERS_HEADER}\nU9,A-DE-1,services,2020-01-01,,,\n").into_bytes();
    bad_utf8.extend_from_slice(b"U\xff\xfe,A-DE-1,services,2020-01-01,,,\n");
    vec![
        Case {
            name: "wrong type: a word where a number belongs",
            files: vec![(
                "domains.csv",
                text(
                    "domain,name,legal_act,retention_months,commission_participates,special_categories_basis,third_countries,repository\nfisheries,Fisheries,Reg. X,six,false,false,,false\n",
                ),
            )],
            expect: &["domains.csv:2: column `retention_months`: value `six`: expected a whole number"],
        },
        Case {
            name: "missing required column",
            files: vec![("cases.csv", text("case_id,domain,procedure\nC9,services,request\n"))],
            expect: &["cases.csv: missing required columns `requesting_authority`, `created_at`"],
        },
        Case {
            name: "unknown enum value",
            files: vec![(
                "cases.csv",
                text(&format!("{CASES_HEADER}\n{}\n", case_row("C9", "services", "inquiry", "true", ""))),
            )],
            expect: &[
                "cases.csv:2: column `procedure`: value `inquiry`: expected one of `request`, `notification`",
            ],
        },
        Case {
            name: "dangling reference: a user's authority",
            files: vec![("users.csv", text(&format!("{USERS_HEADER}\nU9,A-XX-9,services,2020-01-01,,,\n")))],
            expect: &["users.csv:2: column `authority_id`: value `A-XX-9`: no authority has this id"],
        },
        Case {
            name: "event under another authority than its user's",
            files: vec![(
                "access_log.csv",
                text(&format!(
                    "{LOG_HEADER}\nE9,2024-05-01T10:00:00Z,U1,A-FR-1,C1,view,administrative_cooperation,,granted\n"
                )),
            )],
            expect: &[
                "access_log.csv:2: column `authority_id`: value `A-FR-1`: user `U1` works for authority `A-DE-1`",
            ],
        },
        Case {
            name: "duplicate key with different content than the store",
            files: vec![("users.csv", text(&format!("{USERS_HEADER}\nU1,A-DE-1,services,2020-01-01,,,\n")))],
            expect: &[
                "users.csv:2: column `user_id`: value `U1`: a row with this key already exists in the store with other content",
            ],
        },
        Case {
            name: "duplicate key within one file",
            files: vec![(
                "cases.csv",
                text(&format!(
                    "{CASES_HEADER}\n{}\n{}\n",
                    case_row("C9", "services", "request", "true", ""),
                    case_row("C9", "services", "request", "false", "")
                )),
            )],
            expect: &[
                "cases.csv:3: column `case_id`: value `C9`: a row with this key already exists earlier in this file",
            ],
        },
        Case {
            name: "invalid UTF-8",
            files: vec![("users.csv", bad_utf8)],
            expect: &["users.csv:3: column `user_id`: not valid UTF-8 text"],
        },
        Case {
            name: "impossible date",
            files: vec![(
                "access_log.csv",
                text(&format!(
                    "{LOG_HEADER}\nE9,2024-02-30T10:00:00Z,U1,A-DE-1,C1,view,administrative_cooperation,,granted\n"
                )),
            )],
            expect: &[
                "access_log.csv:2: column `ts`: value `2024-02-30T10:00:00Z`: expected an RFC 3339 timestamp",
            ],
        },
        Case {
            name: "timestamp without an offset",
            files: vec![(
                "access_log.csv",
                text(&format!(
                    "{LOG_HEADER}\nE9,2024-03-15T10:37:00,U1,A-DE-1,C1,view,administrative_cooperation,,granted\n"
                )),
            )],
            expect: &[
                "access_log.csv:2: column `ts`: value `2024-03-15T10:37:00`: expected an RFC 3339 timestamp with `Z` or an offset",
            ],
        },
        Case {
            name: "empty file",
            files: vec![("holidays.csv", Vec::new())],
            expect: &["holidays.csv: the file is empty: expected a header row"],
        },
        Case {
            name: "huge field",
            files: vec![("users.csv", text(&huge))],
            expect: &[
                "users.csv:2: column `registered_at`: a field of 200000 bytes: expected at most 65536 (`--max-field-bytes`)",
            ],
        },
        Case {
            name: "record with too many fields",
            files: vec![(
                "access_log.csv",
                text(&format!(
                    "{LOG_HEADER}\nE9,2024-05-01T10:00:00Z,U1,A-DE-1,C1,view,administrative_cooperation,,granted,extra\n"
                )),
            )],
            expect: &["access_log.csv:2: the record has 10 fields, but the header has 9"],
        },
        Case {
            name: "boolean spelled as a word",
            files: vec![(
                "cases.csv",
                text(&format!("{CASES_HEADER}\n{}\n", case_row("C9", "services", "request", "yes", ""))),
            )],
            expect: &["cases.csv:2: column `personal_data`: value `yes`: expected `true` or `false`"],
        },
        Case {
            name: "JSON line that is not an object",
            files: vec![(
                "users.jsonl",
                text(
                    "{\"user_id\":\"U9\",\"authority_id\":\"A-DE-1\",\"domains\":[\"services\"],\"registered_at\":\"2020-01-01\"}\n[1,2]\n",
                ),
            )],
            expect: &["users.jsonl:2: not a JSON object"],
        },
        Case {
            name: "JSON number where a timestamp belongs",
            files: vec![(
                "access_log.jsonl",
                text(
                    "{\"event_id\":\"E9\",\"ts\":1714557600,\"user_id\":\"U1\",\"authority_id\":\"A-DE-1\",\"action\":\"login\",\"purpose\":\"administrative_cooperation\",\"outcome\":\"granted\"}\n",
                ),
            )],
            expect: &["access_log.jsonl:1: column `ts`: value `1714557600`: expected an RFC 3339 timestamp"],
        },
        Case {
            name: "retention beyond eighteen months",
            files: vec![(
                "cases.csv",
                text(&format!("{CASES_HEADER}\n{}\n", case_row("C9", "services", "request", "true", "24"))),
            )],
            expect: &["cases.csv:2: column `retention_months`: value `24`: expected a number from 1 to 18"],
        },
        Case {
            name: "the Commission placed in a member state",
            files: vec![(
                "authorities.csv",
                text("authority_id,member_state,kind,name,domains\nA-X,DE,commission,Commission,services\n"),
            )],
            expect: &[
                "authorities.csv:2: column `member_state`: value `DE`: expected `EU` for the Commission",
            ],
        },
        Case {
            name: "unknown domain in a list",
            files: vec![(
                "users.csv",
                text(&format!("{USERS_HEADER}\nU9,A-DE-1,services;fishing,2020-01-01,,,\n")),
            )],
            expect: &["users.csv:2: column `domains`: value `fishing`: no domain has this id"],
        },
        Case {
            name: "participant of a case that does not exist",
            files: vec![(
                "case_participants.csv",
                text(
                    "case_id,authority_id,role,joined_at,left_at\nC404,A-DE-1,informed,2024-05-01T09:00:00Z,\n",
                ),
            )],
            expect: &["case_participants.csv:2: column `case_id`: value `C404`: no case has this id"],
        },
        Case {
            name: "event by a user that does not exist",
            files: vec![(
                "access_log.csv",
                text(
                    "event_id,ts,user_id,authority_id,case_id,action,purpose,legal_ground,outcome\nE90,2024-05-01T09:00:00Z,U404,A-DE-1,C1,view,administrative_cooperation,,granted\n",
                ),
            )],
            expect: &["access_log.csv:2: column `user_id`: value `U404`: no user has this id"],
        },
        Case {
            name: "event on a case that does not exist",
            files: vec![(
                "access_log.csv",
                text(
                    "event_id,ts,user_id,authority_id,case_id,action,purpose,legal_ground,outcome\nE90,2024-05-01T09:00:00Z,U1,A-DE-1,C1,view,administrative_cooperation,,granted\nE91,2024-05-01T09:00:00Z,U1,A-DE-1,C404,view,administrative_cooperation,,granted\n",
                ),
            )],
            expect: &["access_log.csv:3: column `case_id`: value `C404`: no case has this id"],
        },
        Case {
            name: "case requested by an authority that does not exist",
            files: vec![(
                "cases.csv",
                text(
                    "case_id,domain,procedure,requesting_authority,created_at,sent_at,accepted_at,answered_at,due_at,closed_at,last_activity_at,inactivity_justified,personal_data,special_categories,retention_months,repository_basis,blocked_at,deleted_at,early_deletion_requested_at,subject_consent,rating_timeliness,rating_effort\nN9,services,request,A-XX-9,2024-04-01T09:00:00Z,,,,,,2024-04-01T09:00:00Z,false,true,false,,,,,,false,,\n",
                ),
            )],
            expect: &["cases.csv:2: column `requesting_authority`: value `A-XX-9`: no authority has this id"],
        },
        Case {
            name: "breach naming a case that does not exist",
            files: vec![(
                "breaches.csv",
                text(
                    "breach_id,controller_id,aware_at,risk,supervisor,case_ids\nB9,A-DE-1,2024-05-01T10:00:00Z,risk,DE,C1;C404\n",
                ),
            )],
            expect: &["breaches.csv:2: column `case_ids`: value `C404`: no case has this id"],
        },
        Case {
            name: "required value missing",
            files: vec![(
                "access_log.csv",
                text(&format!(
                    "{LOG_HEADER}\nE9,2024-05-01T10:00:00Z,,A-DE-1,C1,view,administrative_cooperation,,granted\n"
                )),
            )],
            expect: &["access_log.csv:2: column `user_id`: a value is required"],
        },
        Case {
            name: "country name instead of code",
            files: vec![("holidays.csv", text("calendar,date\nGermany,2024-12-25\n"))],
            expect: &["holidays.csv:2: column `calendar`: value `Germany`: expected a country code"],
        },
        Case {
            name: "Arrow file that is not Arrow",
            files: vec![("users.arrow", text("this is not an Arrow IPC file\n"))],
            expect: &["users.arrow: not a readable Arrow IPC file"],
        },
        Case {
            name: "a good file with a bad one: neither lands",
            files: vec![
                (
                    "authorities.csv",
                    text(
                        "authority_id,member_state,kind,name,domains\nA-IT-1,IT,competent_authority,Ministero,services\n",
                    ),
                ),
                ("users.csv", text(&format!("{USERS_HEADER}\nU9,A-IT-1,services,2020-13-01,,,\n"))),
            ],
            expect: &["users.csv:2: column `registered_at`: value `2020-13-01`"],
        },
    ]
}

fn assert_refused(store: &Path, dir: &Path, name: &str, expect: &[&str]) {
    let before = snapshot(store);
    let out = run(&["import", "--store", store.to_str().unwrap(), dir.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{name}: exit code; stderr: {err}");
    for e in expect {
        assert!(err.contains(e), "{name}: expected `{e}` in:\n{err}");
    }
    assert!(snapshot(store) == before, "{name}: the store changed");
}

#[test]
fn every_malformed_input_is_refused_and_leaves_the_store_unchanged() {
    let (tmp, store) = base_store();
    let corpus = corpus();
    assert!(corpus.iter().map(|c| c.files.len()).sum::<usize>() >= 20);
    for (n, case) in corpus.iter().enumerate() {
        let dir = tmp.path().join(format!("case{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (file, content) in &case.files {
            std::fs::write(dir.join(file), content).unwrap();
        }
        assert_refused(&store, &dir, case.name, case.expect);
    }
}

#[test]
fn a_truncated_parquet_file_is_refused() {
    let (tmp, store) = base_store();
    // A real Parquet file of the access log, cut in half.
    let good = store.join(
        std::fs::read_dir(store.join("data/access_log/month=2024-01"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    );
    let bytes = std::fs::read(good).unwrap();
    let dir = tmp.path().join("truncated");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("access_log.parquet"), &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(&store, &dir, "truncated Parquet", &["access_log.parquet: not a readable Parquet file"]);
}

#[test]
fn a_file_named_after_no_table_is_refused() {
    let (tmp, store) = base_store();
    let file = tmp.path().join("citizens.csv");
    std::fs::write(&file, "a,b\n1,2\n").unwrap();
    let before = snapshot(&store);
    let out = run(&["import", "--store", store.to_str().unwrap(), file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("citizens.csv: no table is called `citizens`"), "{}", stderr(&out));
    assert!(snapshot(&store) == before);
}
