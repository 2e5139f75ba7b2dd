//! The store's manifest: an append-only list of commits, each chained to the one before by
//! SHA-256, each listing the files it added with their sizes and SHA-256 digests.
//!
//! ```text
//! manifest.jsonl
//!   {"seq":1,"prev":"000…","committed_at":"…","sources":[…],"files":[…],"hash":"a1…"}
//!   {"seq":2,"prev":"a1…",  …                                             "hash":"7c…"}
//! ```
//!
//! An entry's `hash` is the SHA-256 of its canonical JSON without the `hash` field; `prev` is
//! the previous entry's `hash` (64 zeros for the first). Changing any byte of a committed file
//! changes its digest; changing an entry changes its hash; removing or reordering entries
//! breaks the chain. Only a cut after a complete entry goes unnoticed by the chain itself:
//! the files that entry listed are then found unrecorded, and the head hash that
//! `custos verify` prints can be written down elsewhere to anchor the chain.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Formats Unix seconds as an RFC 3339 UTC timestamp (`2026-11-22T07:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A file a commit added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Path relative to the store's root, with `/` separators.
    pub path: String,
    /// The table the file holds rows of.
    pub table: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
}

/// What an entry records, everything its hash covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryBody {
    /// 1 for the first entry, then one more each time.
    pub seq: u64,
    /// The previous entry's hash.
    pub prev: String,
    /// When the commit was made (RFC 3339, UTC).
    pub committed_at: String,
    /// What the commit was: `import` or `audit`, say.
    pub kind: String,
    /// The input files the commit came from, as named on the command line.
    pub sources: Vec<String>,
    /// The files it added.
    pub files: Vec<FileRecord>,
    /// How the files are laid out: [`LAYOUT`] for files written now. Layout 1 (the field
    /// absent) had no surrogate columns (see [`crate::catalog::Surrogate`]).
    #[serde(default = "layout_one", skip_serializing_if = "is_layout_one")]
    pub layout: u32,
    /// For a commit of findings (an audit): the store it judged and the window of time.
    /// Absent from imports, and from entries written before Custos recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged: Option<Judged>,
    /// For a commit of the dashboard's accounts: each account of the new version as
    /// `name (role)`, so that `verify` can name an account added to a file by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<String>>,
}

/// What a run of findings judged: the store as of one entry, over a window of event times.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judged {
    /// The newest entry of the store the run read (0: an empty store).
    pub seq: u64,
    /// That entry's hash (the chain's head as the run read it).
    pub head: String,
    /// First event time judged (RFC 3339, UTC), if the run was limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// First event time not judged (RFC 3339, UTC), if the run was limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl Judged {
    /// Whether the run judged every event (no window).
    pub fn is_whole(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }
}

/// The layout of the files this version of Custos writes: 2, with surrogate columns.
pub const LAYOUT: u32 = 2;

fn layout_one() -> u32 {
    1
}

fn is_layout_one(n: &u32) -> bool {
    *n == 1
}

impl EntryBody {
    /// The SHA-256 of this body's canonical JSON, lowercase hex.
    pub fn digest(&self) -> String {
        // INVARIANT: serde_json writes struct fields in declaration order, so the same body
        // always serialises to the same bytes.
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }
}

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// What the entry records.
    #[serde(flatten)]
    pub body: EntryBody,
    /// [`EntryBody::digest`] of `body`.
    pub hash: String,
}

impl Entry {
    /// Seals a body with its hash.
    pub fn seal(body: EntryBody) -> Entry {
        let hash = body.digest();
        Entry { body, hash }
    }

    /// The entry as one manifest line, newline included.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// What is wrong with a manifest's text, entry by entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainProblem {
    /// The last line has no newline: a cut-off write, or the file was truncated.
    Truncated { line: usize },
    /// A line is not an entry.
    Unreadable { line: usize, reason: String },
    /// An entry's content does not hash to its recorded hash.
    Altered { line: usize, recorded: String, actual: String },
    /// An entry's `prev` is not the previous entry's hash, or its `seq` is out of order.
    Broken { line: usize, expected_prev: String, found_prev: String },
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainProblem::Truncated { line } => write!(
                f,
                "manifest line {line} is incomplete: the manifest was truncated or a write was cut off"
            ),
            ChainProblem::Unreadable { line, reason } => {
                write!(f, "manifest line {line} is not a valid entry: {reason}")
            }
            ChainProblem::Altered { line, recorded, actual } => write!(
                f,
                "manifest entry {line} was altered: it records hash {recorded} but its content hashes to {actual}"
            ),
            ChainProblem::Broken { line, expected_prev, found_prev } => write!(
                f,
                "manifest entry {line} does not follow the entry before it (prev {found_prev}, expected {expected_prev}): an entry was removed, inserted or reordered"
            ),
        }
    }
}

/// Splits a manifest's text after its last newline: the whole lines, and what follows them.
/// What follows is empty unless a commit's append was cut off (the process died mid-write)
/// or the file was cut; it is never an entry, since an entry is committed by its newline.
pub fn split_torn(text: &[u8]) -> (&[u8], &[u8]) {
    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    text.split_at(whole)
}

/// Parses a manifest's text, checking the chain. Returns the entries that read, and every
/// problem found; a store is sound only when the problems are none.
pub fn parse(text: &[u8]) -> (Vec<Entry>, Vec<ChainProblem>) {
    parse_after(&[], text)
}

/// Parses `tail`, the text of a manifest after the lines of the entries `known` (already
/// parsed and found sound), checking that its entries continue their chain. Returns the new
/// entries and every problem found, lines numbered in the whole manifest.
pub fn parse_after(known: &[Entry], tail: &[u8]) -> (Vec<Entry>, Vec<ChainProblem>) {
    let text = tail;
    let offset = known.len();
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let mut prev = known.last().map_or_else(|| GENESIS.to_owned(), |e| e.hash.clone());
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    // A well-formed manifest ends with a newline, which leaves one empty piece at the end.
    let tail = lines.pop().unwrap_or_default();
    if !tail.is_empty() {
        problems.push(ChainProblem::Truncated { line: offset + lines.len() + 1 });
    }
    for (i, line) in lines.iter().enumerate() {
        let n = offset + i + 1;
        let entry: Entry = match serde_json::from_slice(line) {
            Ok(e) => e,
            Err(e) => {
                problems.push(ChainProblem::Unreadable { line: n, reason: e.to_string() });
                continue;
            }
        };
        let actual = entry.body.digest();
        if actual != entry.hash {
            problems.push(ChainProblem::Altered { line: n, recorded: entry.hash.clone(), actual });
        } else if entry.body.prev != prev || entry.body.seq != n as u64 {
            problems.push(ChainProblem::Broken {
                line: n,
                expected_prev: prev.clone(),
                found_prev: entry.body.prev.clone(),
            });
        }
        prev = entry.hash.clone();
        entries.push(entry);
    }
    (entries, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(seq: u64, prev: &str) -> EntryBody {
        EntryBody {
            seq,
            prev: prev.to_owned(),
            committed_at: "2026-01-01T00:00:00Z".into(),
            kind: "import".into(),
            sources: vec!["cases.csv".into()],
            files: vec![],
            layout: LAYOUT,
            judged: None,
            accounts: None,
        }
    }

    fn chain(n: u64) -> String {
        let mut prev = GENESIS.to_owned();
        let mut text = String::new();
        for seq in 1..=n {
            let e = Entry::seal(body(seq, &prev));
            prev = e.hash.clone();
            text.push_str(&e.to_line());
        }
        text
    }

    #[test]
    fn a_sound_chain_parses_without_problems() {
        let (entries, problems) = parse(chain(3).as_bytes());
        assert_eq!(entries.len(), 3);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn an_edited_entry_is_named() {
        let edited = chain(3).replacen("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", 2);
        let (_, problems) = parse(edited.as_bytes());
        assert!(matches!(problems[0], ChainProblem::Altered { line: 1, .. }), "{problems:?}");
        assert!(matches!(problems[1], ChainProblem::Altered { line: 2, .. }), "{problems:?}");
    }

    #[test]
    fn a_removed_entry_breaks_the_chain() {
        let text = chain(3);
        let lines: Vec<&str> = text.lines().collect();
        let without_second = format!("{}\n{}\n", lines[0], lines[2]);
        let (_, problems) = parse(without_second.as_bytes());
        assert!(matches!(problems[..], [ChainProblem::Broken { line: 2, .. }]), "{problems:?}");
    }

    #[test]
    fn a_manifest_parsed_after_its_known_entries_is_the_whole_parsed_at_once() {
        let text = chain(5);
        let cut = text.match_indices('\n').nth(2).unwrap().0 + 1;
        let (known, problems) = parse(&text.as_bytes()[..cut]);
        assert!(problems.is_empty());
        let (more, problems) = parse_after(&known, &text.as_bytes()[cut..]);
        assert!(problems.is_empty(), "{problems:?}");
        let whole: Vec<Entry> = known.into_iter().chain(more).collect();
        assert_eq!(whole, parse(text.as_bytes()).0);
        // A tail that does not continue the chain is named with its line in the whole.
        let (known, _) = parse(&text.as_bytes()[..cut]);
        let other = chain(5);
        let (_, problems) = parse_after(&known[..2], &other.as_bytes()[cut..]);
        assert!(matches!(problems[..], [ChainProblem::Broken { line: 3, .. }, ..]), "{problems:?}");
    }

    #[test]
    fn a_torn_last_line_is_split_from_the_whole_lines() {
        let text = chain(2);
        let cut = &text.as_bytes()[..text.len() - 10];
        let (whole, torn) = split_torn(cut);
        assert_eq!(parse(whole).0.len(), 1);
        assert!(!torn.is_empty() && !torn.contains(&b'\n'));
        assert_eq!(split_torn(text.as_bytes()), (text.as_bytes(), &b""[..]));
        assert_eq!(split_torn(b"no newline"), (&b""[..], &b"no newline"[..]));
    }

    #[test]
    fn a_truncated_manifest_is_named() {
        let text = chain(2);
        let cut = &text.as_bytes()[..text.len() - 10];
        let (entries, problems) = parse(cut);
        assert_eq!(entries.len(), 1);
        assert!(matches!(problems[..], [ChainProblem::Truncated { line: 2 }]), "{problems:?}");
    }
}
