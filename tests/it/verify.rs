//! `custos verify`: every alteration, addition and removal is named.

use std::path::Path;

use crate::{base_store, run, stdout};

fn verify(store: &Path) -> (Option<i32>, String) {
    let out = run(&["verify", "--store", store.to_str().unwrap()]);
    (out.status.code(), stdout(&out))
}

fn a_data_file(store: &Path) -> (String, std::path::PathBuf) {
    let dir = store.join("data/access_log/month=2024-01");
    let name = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().file_name();
    let rel = format!("data/access_log/month=2024-01/{}", name.to_string_lossy());
    (rel, dir.join(name))
}

#[test]
fn an_untouched_store_is_intact() {
    let (_tmp, store) = base_store();
    let (code, out) = verify(&store);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("is intact: 1 entries"), "{out}");
}

#[test]
fn a_flipped_byte_names_the_file() {
    let (_tmp, store) = base_store();
    let (rel, path) = a_data_file(&store);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let (code, out) = verify(&store);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("file `{rel}` (manifest entry 1) was altered")), "{out}");
    assert_eq!(out.matches("ALTERED").count(), 1, "{out}");
}

#[test]
fn a_deleted_file_is_named() {
    let (_tmp, store) = base_store();
    let (rel, path) = a_data_file(&store);
    std::fs::remove_file(path).unwrap();
    let (code, out) = verify(&store);
    assert_eq!(code, Some(1));
    assert!(out.contains(&format!("file `{rel}` (manifest entry 1) was removed")), "{out}");
}

#[test]
fn an_added_file_is_named() {
    let (_tmp, store) = base_store();
    std::fs::write(store.join("data/cases/extra.parquet"), b"PAR1").unwrap();
    let (code, out) = verify(&store);
    assert_eq!(code, Some(1));
    assert!(out.contains("file `data/cases/extra.parquet` is in no manifest entry"), "{out}");
}

#[test]
fn a_truncated_manifest_is_named() {
    let (_tmp, store) = base_store();
    let manifest = store.join("manifest.jsonl");
    let bytes = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &bytes[..bytes.len() - 30]).unwrap();
    let (code, out) = verify(&store);
    assert_eq!(code, Some(1));
    assert!(out.contains("manifest line 1 is incomplete: the manifest was truncated"), "{out}");
    // The files the cut entry listed are now recorded nowhere.
    assert!(out.contains("is in no manifest entry"), "{out}");
}

#[test]
fn a_commit_cut_off_mid_line_by_a_killed_writer_is_noted_not_altered() {
    let (_tmp, store) = base_store();
    // As a writer killed while appending entry 1 leaves it: the line without its newline,
    // and the note naming its files.
    let manifest = store.join("manifest.jsonl");
    let bytes = std::fs::read(&manifest).unwrap();
    let entry: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let files: Vec<&str> =
        entry["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    std::fs::write(&manifest, &bytes[..bytes.len() - 30]).unwrap();
    std::fs::create_dir_all(store.join("pending")).unwrap();
    std::fs::write(store.join("pending/c000001.json"), serde_json::to_vec(&files).unwrap()).unwrap();
    let (code, out) = verify(&store);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("manifest line 1 is a commit cut off before it completed and is not part of the store"),
        "{out}"
    );
    assert!(out.contains("is intact: 0 entries"), "{out}");
    assert!(!out.contains("ALTERED"), "{out}");
}

#[test]
fn an_edited_manifest_entry_is_named() {
    let (_tmp, store) = base_store();
    let manifest = store.join("manifest.jsonl");
    let text = std::fs::read_to_string(&manifest).unwrap();
    // Claim fewer rows than were imported.
    let edited = text.replacen("\"rows\":4", "\"rows\":3", 1);
    assert_ne!(edited, text);
    std::fs::write(&manifest, edited).unwrap();
    let (code, out) = verify(&store);
    assert_eq!(code, Some(1));
    assert!(out.contains("manifest entry 1 was altered"), "{out}");
}

#[test]
fn verify_of_a_directory_that_is_no_store_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&["verify", "--store", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(crate::stderr(&out).contains("not a Custos store"), "{}", crate::stderr(&out));
}

#[test]
fn a_store_written_before_surrogate_keys_is_refused_with_what_to_do() {
    let (_tmp, store) = base_store();
    crate::as_written_before_surrogates(&store);
    let out = run(&["audit", "--store", store.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", crate::stderr(&out));
    let err = crate::stderr(&out);
    assert!(
        err.contains("written by an earlier Custos") && err.contains("import the source files again"),
        "{err}"
    );
}

#[test]
fn the_demo_makes_its_store_again_when_an_earlier_custos_wrote_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let demo = || run(&["demo", "--dir", dir.to_str().unwrap(), "--no-serve"]);
    let out = demo();
    assert!(out.status.success(), "{}", crate::stderr(&out));
    let said = crate::stdout(&out);
    assert!(said.contains(&format!("remove it with: rm -r {}", dir.display())), "{said}");
    assert!(
        crate::stderr(&out).is_empty() || !crate::stderr(&out).contains("error"),
        "{}",
        crate::stderr(&out)
    );
    crate::as_written_before_surrogates(&dir.join("store"));
    let out = demo();
    assert!(out.status.success(), "{}", crate::stderr(&out));
    // Made again: the store opens, and the logins printed are the new store's accounts.
    let out = run(&["audit", "--store", dir.join("store").to_str().unwrap()]);
    assert!(out.status.success(), "{}", crate::stderr(&out));
    let logins = std::fs::read_to_string(dir.join("logins.txt")).unwrap();
    let accounts = custos_dashboard::account::Accounts::load(&dir.join("store")).unwrap();
    assert_eq!(logins.lines().count(), 5, "{logins}");
    for line in logins.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert!(accounts.verify(f[0], f[3]).is_some(), "{} cannot log in to the new store", f[0]);
    }
}

#[test]
fn every_file_of_a_store_is_its_owners_alone_and_strays_at_the_root_are_named() {
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, store) = base_store();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store), 0o700, "the store's directory");
    let mut seen = 0;
    let mut stack = vec![store.clone()];
    while let Some(dir) = stack.pop() {
        for item in std::fs::read_dir(&dir).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                seen += 1;
            }
        }
    }
    assert!(seen > 5, "{seen}");
    // Something Custos never writes, at the root: named, and the store is not intact.
    std::fs::write(store.join("accounts.json"), "[]").unwrap();
    std::fs::create_dir(store.join("reports")).unwrap();
    let (code, out) = verify(&store);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("`accounts.json` at the store's root is no part of the store"), "{out}");
    assert!(out.contains("`reports` at the store's root"), "{out}");
}
