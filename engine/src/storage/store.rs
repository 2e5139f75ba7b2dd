//! The store: a directory of Parquet files and the manifest that makes them a store.
//!
//! ```text
//! STORE/
//!   manifest.jsonl                      the chained list of commits (the only source of truth)
//!   data/<table>/c000001-0.parquet      files of unpartitioned tables
//!   data/access_log/month=2024-03/…     files of the access log, one directory per month
//!   data/accounts/c000009-0.json        the dashboard's accounts, a new version per change
//!   data/reports/c000010-0.html, -1.pdf a report the dashboard produced (named in `sources`)
//!   pending/<txn>.json                  files an import is writing and has not committed
//!   .lock                               held by the one process writing
//! ```
//!
//! Every file is written once and never changed: a change is a new file in a new entry.
//! Files are readable by their owner only (0600, directories 0700).
//!
//! A commit is one line appended to the manifest, and it is committed by that line's newline:
//! data files are written and synced first under names no reader looks at (readers read only
//! the files the manifest lists), then the entry is appended in one write and synced. A
//! commit costs what it adds, however long the store's history. Readers take the manifest up
//! to its last newline: a line without one is a commit still being written, or one a killed
//! process cut off, and is not part of the store. A process killed before its newline leaves
//! that torn line and some unlisted files; the `pending/` note it wrote first names them,
//! and the next writer (under the lock, so the torn line's writer is gone) cuts the line off
//! and removes them. A torn line that no note explains was not left by a write: the next
//! writer refuses the store and `verify` names it. Killed after the newline, the commit is
//! whole.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::manifest::{self, ChainProblem, Entry, EntryBody, FileRecord, GENESIS};

const MANIFEST: &str = "manifest.jsonl";

/// The first entry that added files of a numbered table (`catalog::Surrogate`) in a layout
/// before [`manifest::LAYOUT`], without the numbers.
fn outdated(entries: &[Entry]) -> Option<&Entry> {
    let numbered = |f: &FileRecord| crate::catalog::table(&f.table).is_some_and(|t| !t.surrogates.is_empty());
    entries.iter().find(|e| e.body.layout < manifest::LAYOUT && e.body.files.iter().any(numbered))
}
const DATA: &str = "data";
const PENDING: &str = "pending";
const LOCK: &str = ".lock";

/// Tables whose files are documents rather than Parquet, with the extensions they take.
pub const DOCUMENTS: [(&str, &[&str]); 2] = [("accounts", &["json"]), ("reports", &["html", "pdf"])];

/// What may sit at a store's root besides what the manifest lists: anything else was put
/// there by something other than Custos, and `verify` names it.
const ROOT_NAMES: [&str; 6] = [MANIFEST, "manifest.tmp", DATA, PENDING, LOCK, ".accounts.lock"];

/// An opened store: its root and its committed entries.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Shared with every store this process opened at the same head (see [`parsed`]):
    /// opening a store copies none of its history.
    entries: std::sync::Arc<Vec<Entry>>,
    /// Bytes of the manifest's whole lines, the entries'.
    whole: u64,
    /// Whether a torn line followed them (see [`manifest::split_torn`]).
    torn: bool,
}

impl Store {
    /// Opens an existing store for reading. The manifest's chain is checked (cheaply: the
    /// files' digests are left to [`verify`](Store::verify)); a broken chain is an error.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        let manifest = root.join(MANIFEST);
        if !manifest.is_file() {
            return Err(Error::Store {
                path: root,
                message: format!(
                    "no `{MANIFEST}` here: not a Custos store (create one with `custos import --store DIR FILES`)"
                ),
            });
        }
        let mut text = fs::read(&manifest).map_err(Error::io(&manifest))?;
        let (whole, torn) = manifest::split_torn(&text);
        let (whole, torn) = (whole.len(), !torn.is_empty());
        text.truncate(whole);
        let (entries, problems) = parsed(&root, text);
        if let Some(p) = problems.first() {
            return Err(Error::Store { path: root, message: format!("{p}; run `custos verify`") });
        }
        if let Some(old) = outdated(&entries) {
            return Err(Error::Store {
                path: root,
                message: format!(
                    "commit {} was written by an earlier Custos, without the surrogate key columns this one joins on: import the source files again into a new store",
                    old.body.seq
                ),
            });
        }
        Ok(Store { root, entries, whole: whole as u64, torn })
    }

    /// Whether the store at `root` holds files of an earlier layout (see [`manifest::LAYOUT`]),
    /// which [`open`](Store::open) refuses.
    pub fn is_outdated(root: impl AsRef<Path>) -> Result<bool> {
        let manifest = root.as_ref().join(MANIFEST);
        let text = fs::read(&manifest).map_err(Error::io(&manifest))?;
        Ok(outdated(&manifest::parse(manifest::split_torn(&text).0).0).is_some())
    }

    /// Opens the store at `root`, creating an empty one if the directory has none.
    pub fn open_or_create(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref();
        if !root.join(MANIFEST).exists() {
            if !root.exists() {
                if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fs::create_dir_all(parent).map_err(Error::io(parent))?;
                }
                // Another process may make it at the same time: that is as good.
                match private_dir(root) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                        return Err(Error::io(root)(e));
                    }
                    _ => {}
                }
            }
            // Two first imports at once: the one that takes the lock makes the store, the
            // other waits for it and finds the store made.
            let _lock = lock(root)?;
            if !root.join(MANIFEST).exists() {
                let mut others = fs::read_dir(root).map_err(Error::io(root))?.filter_map(|e| e.ok());
                if others.any(|e| e.file_name() != LOCK) {
                    return Err(Error::Store {
                        path: root.to_path_buf(),
                        message:
                            "the directory is not empty and holds no store: choose an empty or new directory"
                                .into(),
                    });
                }
                write_atomically(&root.join(MANIFEST), b"")?;
            }
        }
        Store::open(root)
    }

    /// Undoes [`open_or_create`](Store::open_or_create) where a first write into a new store
    /// failed: if the store at `root` is still empty (no entry committed), the files that
    /// made it a store are removed, and the directory too if `made_dir` (it was created for
    /// it) and it is empty. Anything else in the directory is left as it is.
    pub fn remove_if_empty(root: impl AsRef<Path>, made_dir: bool) -> Result<()> {
        let root = root.as_ref();
        {
            let _lock = lock(root)?;
            let manifest = root.join(MANIFEST);
            if fs::metadata(&manifest).map_err(Error::io(&manifest))?.len() != 0 {
                return Ok(());
            }
            for dir in [PENDING, DATA] {
                let _ = fs::remove_dir(root.join(dir));
            }
            fs::remove_file(&manifest).map_err(Error::io(&manifest))?;
        }
        let _ = fs::remove_file(root.join(LOCK));
        if made_dir {
            let _ = fs::remove_dir(root);
        }
        Ok(())
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The committed entries, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The hash of the newest entry (the chain's head), or the genesis hash when empty.
    pub fn head(&self) -> &str {
        self.entries.last().map_or(GENESIS, |e| e.hash.as_str())
    }

    /// The committed files of `table`, oldest first.
    pub fn files(&self, table: &str) -> Vec<&FileRecord> {
        self.entries.iter().flat_map(|e| &e.body.files).filter(|f| f.table == table).collect()
    }

    /// The files of `table` committed by the entries after the first `seen`: what a reader
    /// that has read `seen` entries has not read yet.
    pub fn files_since(&self, table: &str, seen: usize) -> Vec<&FileRecord> {
        self.entries.iter().skip(seen).flat_map(|e| &e.body.files).filter(|f| f.table == table).collect()
    }

    /// Reads the rows of `files` (of this store, checked first), file by file.
    pub fn read_files(&self, files: &[&FileRecord]) -> Result<Vec<arrow::array::RecordBatch>> {
        let mut batches = Vec::new();
        for path in self.checked(files)? {
            batches.extend(read_parquet(&path)?);
        }
        Ok(batches)
    }

    /// The files of `table` in the newest entry that has any and judged the whole store,
    /// checked (see [`checked`](Store::checked)): the latest run of a derived table
    /// (findings), where each run replaces the one before. A run limited to a window of time
    /// is kept beside it, never in its place.
    pub fn latest_paths(&self, table: &str) -> Result<Vec<PathBuf>> {
        let newest = self.entries.iter().rev().find(|e| {
            e.body.judged.as_ref().is_none_or(manifest::Judged::is_whole)
                && e.body.files.iter().any(|f| f.table == table)
        });
        let files: Vec<&FileRecord> =
            newest.map(|e| e.body.files.iter().filter(|f| f.table == table).collect()).unwrap_or_default();
        self.checked(&files)
    }

    /// The committed files of `table`, checked (see [`checked`](Store::checked)).
    pub fn paths(&self, table: &str) -> Result<Vec<PathBuf>> {
        self.checked(&self.files(table))
    }

    /// The absolute paths of `files`, each checked before it is handed out: its recorded
    /// path is a data file's inside the store, reached through no symbolic link; it is a
    /// regular file of the recorded size; and its SHA-256 is the recorded one. The digest is
    /// computed once per file per process (both cores at once), then remembered with the
    /// file's size, modification time and inode, so that a file replaced while a server
    /// runs is hashed again. A file that fails stops the caller with [`Error::Store`] naming
    /// it: never a result computed from it.
    pub fn checked(&self, files: &[&FileRecord]) -> Result<Vec<PathBuf>> {
        let mut paths = Vec::with_capacity(files.len());
        let mut unhashed = Vec::new();
        for f in files {
            let (path, stamp) = self.regular(f)?;
            if !digested().lock().map(|d| d.contains(&stamp)).unwrap_or(false) {
                unhashed.push((*f, path.clone(), stamp));
            }
            paths.push(path);
        }
        let threads = std::thread::available_parallelism().map_or(1, usize::from).min(unhashed.len()).max(1);
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let mine: Vec<_> = unhashed.iter().skip(t).step_by(threads).collect();
                    scope.spawn(move || -> Result<()> {
                        for (record, path, stamp) in mine {
                            let (bytes, digest) = sha256_of(path)?;
                            if bytes != record.bytes || digest != record.sha256 {
                                return Err(self.damaged(
                                    path,
                                    format!(
                                        "its SHA-256 is {digest}, the manifest records {}: the file was altered; run `custos verify`",
                                        record.sha256
                                    ),
                                ));
                            }
                            if let Ok(mut d) = digested().lock() {
                                d.insert(stamp.clone());
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(Error::Internal("a digest thread failed".into()))))
                .collect()
        });
        results.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(paths)
    }

    /// Where `record` lies, if it is a regular file of its recorded size inside the data
    /// directory, reached through no symbolic link; and what identifies its present bytes.
    fn regular(&self, record: &FileRecord) -> Result<(PathBuf, Stamp)> {
        let path = self.root.join(&record.path);
        let meta = match self.plain(&record.path) {
            Ok(Some(meta)) => meta,
            Ok(None) => return Err(self.damaged(&path, "the file was removed; run `custos verify`".into())),
            Err(problem) => return Err(self.damaged(&path, format!("{problem}; run `custos verify`"))),
        };
        if meta.len() != record.bytes {
            return Err(self.damaged(
                &path,
                format!(
                    "it holds {} bytes, the manifest records {}: the file was altered; run `custos verify`",
                    meta.len(),
                    record.bytes
                ),
            ));
        }
        let stamp = Stamp {
            path: path.clone(),
            sha256: record.sha256.clone(),
            bytes: meta.len(),
            modified: meta.modified().ok(),
            inode: inode(&meta),
        };
        Ok((path, stamp))
    }

    /// The metadata of the store's data file `rel`: `Ok(None)` when it is absent, an error
    /// when `rel` is not a data file's path, or a symbolic link, a directory, a device or a
    /// FIFO lies on the way. Nothing is followed or opened, so nothing can hang.
    fn plain(&self, rel: &str) -> Result<Option<fs::Metadata>, String> {
        if data_file_seq(rel).is_none() {
            return Err("the manifest names a path that is not one of the store's data files".into());
        }
        let mut at = self.root.clone();
        let parts: Vec<&str> = rel.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            let meta = match fs::symlink_metadata(&at) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(format!("cannot be examined: {e}")),
            };
            let last = i + 1 == parts.len();
            if meta.file_type().is_symlink() {
                return Err(format!(
                    "`{}` is a symbolic link where the store keeps its own files: refused",
                    relative(&self.root, &at)
                ));
            }
            if last && !meta.is_file() {
                return Err("not a regular file (a directory, a device or a FIFO): refused".into());
            }
            if !last && !meta.is_dir() {
                return Err(format!("`{}` is not a directory", relative(&self.root, &at)));
            }
            if last {
                return Ok(Some(meta));
            }
        }
        Ok(None)
    }

    fn damaged(&self, file: &Path, problem: String) -> Error {
        Error::Store {
            path: self.root.clone(),
            message: format!("file `{}`: {problem}", relative(&self.root, file)),
        }
    }

    /// Rows committed to `table`.
    pub fn rows(&self, table: &str) -> u64 {
        self.files(table).iter().map(|f| f.rows).sum()
    }

    /// Reads every committed row of `table`, file by file.
    pub fn read(&self, table: &str) -> Result<Vec<arrow::array::RecordBatch>> {
        self.read_files(&self.files(table))
    }

    /// Starts a write. Takes the store's lock (waiting for another writer to finish) and
    /// removes what an interrupted write left behind.
    pub fn begin(&self, kind: &str) -> Result<Transaction> {
        let lock = lock(&self.root)?;
        // Another writer may have committed while we waited: read the manifest afresh.
        let mut store = Store::open(&self.root)?;
        if store.torn {
            store.cut_torn()?;
        }
        store.recover()?;
        let seq = store.entries.len() as u64 + 1;
        let txn = format!("c{seq:06}");
        Ok(Transaction {
            store,
            _lock: lock,
            kind: kind.to_owned(),
            txn,
            staged: Vec::new(),
            written: Vec::new(),
            committed: false,
            judged: None,
            accounts: None,
            made: Vec::new(),
        })
    }

    /// Cuts off the manifest's torn last line, a commit whose writer died before its newline,
    /// as the `pending/` note of that commit shows. Called under the lock, so that writer is
    /// gone. A torn line without its note was not left by a write (the manifest was cut or
    /// written to by hand): the store is refused, for `verify` to name what happened.
    fn cut_torn(&mut self) -> Result<()> {
        let line = self.entries.len() + 1;
        let note = note_of(&self.root, line as u64);
        if !note.is_file() {
            return Err(Error::Store {
                path: self.root.clone(),
                message: format!(
                    "{}, and no interrupted write explains it; run `custos verify`",
                    ChainProblem::Truncated { line }
                ),
            });
        }
        let path = self.root.join(MANIFEST);
        let file = OpenOptions::new().write(true).open(&path).map_err(Error::io(&path))?;
        file.set_len(self.whole).map_err(Error::io(&path))?;
        file.sync_all().map_err(Error::io(&path))?;
        tracing::info!(line, "cut off a manifest line an interrupted commit left incomplete");
        self.torn = false;
        Ok(())
    }

    /// Removes the files of writes that never committed, as their `pending/` notes list them.
    /// Only what a pending write could have made is removed (see [`leftover`](Store::leftover)):
    /// a note naming anything else, `../x` or an absolute path, a committed file, a link,
    /// removes nothing of it.
    fn recover(&self) -> Result<()> {
        for (note, files) in self.pending()? {
            for f in files.iter().filter(|f| self.leftover(f)) {
                let path = self.root.join(f);
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&path)(e)),
                    _ => tracing::info!(file = %f, "removed a file an interrupted write left behind"),
                }
            }
            fs::remove_file(&note).map_err(Error::io(&note))?;
        }
        Ok(())
    }

    /// Whether `rel` is a file that a write which never committed could have made: the exact
    /// shape of a transaction's data file, numbered after the head (so no committed file),
    /// a regular file reached through no symbolic link.
    fn leftover(&self, rel: &str) -> bool {
        data_file_seq(rel).is_some_and(|seq| seq > self.entries.len() as u64)
            && matches!(self.plain(rel), Ok(Some(_)))
    }

    /// The notes of uncommitted writes, with the files each lists. A note is a regular file
    /// named as a transaction names it (`c000007.json`); anything else in `pending/` is not
    /// read (a FIFO would block) and is left for `verify` to report.
    fn pending(&self) -> Result<Vec<(PathBuf, Vec<String>)>> {
        let dir = self.root.join(PENDING);
        let Ok(read) = fs::read_dir(&dir) else { return Ok(Vec::new()) };
        let mut notes = Vec::new();
        for item in read {
            let item = item.map_err(Error::io(&dir))?;
            let path = item.path();
            let name = item.file_name();
            let is_note = name
                .to_str()
                .and_then(|n| n.strip_prefix('c'))
                .and_then(|n| n.strip_suffix(".json"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if !is_note || !item.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            // A note cut off mid-write lists nothing that can have been written after it.
            let files: Vec<String> =
                fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
            notes.push((path, files));
        }
        notes.sort();
        Ok(notes)
    }

    /// Copies the store as it stands into `dest` (a new directory) while writers may go on:
    /// the manifest is read once, every file it lists is copied and its SHA-256 checked as it
    /// goes, and the manifest is written last. Files never change once listed and a commit
    /// only adds, so the copy is the store at that manifest's head, whole, and verifies; what
    /// is committed meanwhile is simply not in it.
    pub fn backup(root: impl AsRef<Path>, dest: impl AsRef<Path>) -> Result<Backup> {
        let (root, dest) = (root.as_ref(), dest.as_ref());
        let manifest = root.join(MANIFEST);
        let mut text = fs::read(&manifest).map_err(Error::io(&manifest))?;
        // A commit being written now is not yet part of the store, nor of its copy.
        let whole = manifest::split_torn(&text).0.len();
        text.truncate(whole);
        let (entries, chain) = manifest::parse(&text);
        if let Some(problem) = chain.first() {
            return Err(Error::Store {
                path: root.to_path_buf(),
                message: format!("{problem}; run `custos verify` before a backup"),
            });
        }
        if dest.exists() && fs::read_dir(dest).map_err(Error::io(dest))?.next().is_some() {
            return Err(Error::Usage(format!(
                "`{}` is not empty: a backup goes into a new directory",
                dest.display()
            )));
        }
        private_dir(dest)
            .or_else(|e| if e.kind() == std::io::ErrorKind::AlreadyExists { Ok(()) } else { Err(e) })
            .map_err(Error::io(dest))?;
        let store = Store {
            root: root.to_path_buf(),
            entries: entries.clone().into(),
            whole: whole as u64,
            torn: false,
        };
        let mut copied = Backup { entries: entries.len(), files: 0, bytes: 0, head: store.head().to_owned() };
        for record in entries.iter().flat_map(|e| &e.body.files) {
            let (from, _) = store.regular(record)?;
            let to = dest.join(&record.path);
            let mut dir = dest.to_path_buf();
            for part in Path::new(&record.path).parent().into_iter().flat_map(Path::components) {
                dir.push(part);
                match private_dir(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                        return Err(Error::io(&dir)(e));
                    }
                    _ => {}
                }
            }
            let mut input = File::open(&from).map_err(Error::io(&from))?;
            let out = private_file(&to)?;
            let mut out = HashingFile { file: out, hasher: Sha256::new(), bytes: 0 };
            std::io::copy(&mut input, &mut out).map_err(Error::io(&to))?;
            let done = out.finish().map_err(Error::io(&to))?;
            if done.sha256 != record.sha256 || done.bytes != record.bytes {
                return Err(store.damaged(
                    &from,
                    format!(
                        "its SHA-256 is {}, the manifest records {}: not copied; run `custos verify`",
                        done.sha256, record.sha256
                    ),
                ));
            }
            copied.files += 1;
            copied.bytes += done.bytes;
        }
        write_atomically(&dest.join(MANIFEST), &text)?;
        Ok(copied)
    }

    /// Recomputes everything: the manifest's chain, every listed file's size and digest, and
    /// which files are in the data directory without being listed.
    pub fn verify(root: impl AsRef<Path>) -> Result<Verification> {
        let root = root.as_ref().to_path_buf();
        let manifest_path = root.join(MANIFEST);
        let text = fs::read(&manifest_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Store {
                path: root.clone(),
                message: format!("no `{MANIFEST}` here: not a Custos store, or its manifest was removed"),
            },
            _ => Error::io(&manifest_path)(e),
        })?;
        let (whole, torn) = manifest::split_torn(&text);
        let (mut entries, chain) = manifest::parse(whole);
        let mut problems: Vec<Problem> = chain.into_iter().map(Problem::Chain).collect();
        // A torn last line is a commit cut off before its newline if the write's note is still
        // there; otherwise the manifest was cut (or that write ended while this one read: the
        // manifest is read again then, and its new lines are checked too).
        let mut cut_commit = None;
        if !torn.is_empty() {
            let line = entries.len() + 1;
            if note_of(&root, line as u64).is_file() {
                cut_commit = Some(line);
            } else {
                let again = fs::read(&manifest_path).map_err(Error::io(&manifest_path))?;
                let (whole_again, torn_again) = manifest::split_torn(&again);
                if whole_again.starts_with(whole) {
                    let (more, chain) = manifest::parse_after(&entries, &whole_again[whole.len()..]);
                    entries.extend(more);
                    problems.extend(chain.into_iter().map(Problem::Chain));
                }
                if !torn_again.is_empty() || !whole_again.starts_with(whole) {
                    problems.push(Problem::Chain(ChainProblem::Truncated { line }));
                }
            }
        }
        let mut listed = BTreeMap::new();
        for e in &entries {
            for f in &e.body.files {
                listed.insert(f.path.clone(), (e.body.seq, f));
            }
        }
        let store = Store {
            root: root.clone(),
            entries: entries.clone().into(),
            whole: whole.len() as u64,
            torn: false,
        };
        for (path, (seq, record)) in &listed {
            let full = root.join(path);
            match store.plain(path) {
                Ok(None) => problems.push(Problem::Removed { path: path.clone(), entry: *seq }),
                Err(reason) => problems.push(Problem::Refused { path: path.clone(), entry: *seq, reason }),
                Ok(Some(_)) => {
                    let (bytes, digest) = sha256_of(&full)?;
                    if digest != record.sha256 || bytes != record.bytes {
                        problems.push(Problem::Altered {
                            path: path.clone(),
                            entry: *seq,
                            expected: record.sha256.clone(),
                            actual: digest,
                        });
                    }
                }
            }
        }
        // A note hides only what a write that never committed could have made.
        let leftovers: BTreeSet<String> = store
            .pending()?
            .into_iter()
            .flat_map(|(_, f)| f)
            .filter(|f| !listed.contains_key(f) && store.leftover(f))
            .collect();
        let mut interrupted = Vec::new();
        let mut on_disk = Vec::new();
        walk(&root.join(DATA), &mut on_disk)?;
        for path in on_disk {
            let rel = relative(&root, &path);
            if listed.contains_key(&rel) {
                continue;
            }
            if leftovers.contains(&rel) {
                interrupted.push(rel);
            } else {
                problems.push(Problem::Added { path: rel });
            }
        }
        // Beside the data: only what Custos itself keeps there.
        let root_items = fs::read_dir(&root).map_err(Error::io(&root))?;
        for item in root_items {
            let item = item.map_err(Error::io(&root))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if !ROOT_NAMES.contains(&name.as_str()) {
                problems.push(Problem::Stray { path: name });
            }
        }
        // An accounts file added or altered by hand: name the accounts no version recorded.
        // The accounts an altered file's own entry recorded; for an added file, the newest.
        let recorded_in = |seq: Option<u64>| -> BTreeSet<String> {
            let entry = match seq {
                Some(seq) => entries.iter().find(|e| e.body.seq == seq),
                None => entries.iter().rev().find(|e| e.body.accounts.is_some()),
            };
            entry.and_then(|e| e.body.accounts.clone()).unwrap_or_default().into_iter().collect()
        };
        let touched: Vec<(String, BTreeSet<String>)> = problems
            .iter()
            .filter_map(|p| match p {
                Problem::Added { path } => Some((path.clone(), recorded_in(None))),
                Problem::Altered { path, entry, .. } => Some((path.clone(), recorded_in(Some(*entry)))),
                _ => None,
            })
            .filter(|(p, _)| p.starts_with(&format!("{DATA}/accounts/")))
            .collect();
        for (path, recorded) in touched {
            let held: Vec<serde_json::Value> = fs::read(root.join(&path))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let names: Vec<String> = held
                .iter()
                .map(|a| {
                    format!("{} ({})", a["name"].as_str().unwrap_or("?"), a["role"].as_str().unwrap_or("?"))
                })
                .filter(|n| !recorded.contains(n))
                .collect();
            if !names.is_empty() {
                problems.push(Problem::Accounts { path, names });
            }
        }
        let files = listed.len();
        let head = entries.last().map_or(GENESIS.to_owned(), |e| e.hash.clone());
        Ok(Verification { entries: entries.len(), files, head, problems, interrupted, cut_commit })
    }
}

/// One thing [`Store::verify`] found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The manifest itself.
    Chain(ChainProblem),
    /// A listed file is gone.
    Removed { path: String, entry: u64 },
    /// A listed file's bytes changed.
    Altered { path: String, entry: u64, expected: String, actual: String },
    /// A file is in the data directory but in no entry.
    Added { path: String },
    /// Something at the store's root that Custos never writes.
    Stray { path: String },
    /// An accounts file, added or altered, names accounts the manifest records in no version.
    Accounts { path: String, names: Vec<String> },
    /// A listed file is not one Custos reads: outside the data directory, a symbolic link,
    /// a directory, a device or a FIFO.
    Refused { path: String, entry: u64, reason: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Chain(c) => c.fmt(f),
            Problem::Removed { path, entry } => {
                write!(f, "file `{path}` (manifest entry {entry}) was removed")
            }
            Problem::Altered { path, entry, expected, actual } => write!(
                f,
                "file `{path}` (manifest entry {entry}) was altered: its SHA-256 is {actual}, the manifest records {expected}"
            ),
            Problem::Refused { path, entry, reason } => {
                write!(f, "file `{path}` (manifest entry {entry}): {reason}")
            }
            Problem::Added { path } => write!(
                f,
                "file `{path}` is in no manifest entry: it was added, or the entry listing it was cut from the manifest"
            ),
            Problem::Stray { path } => write!(
                f,
                "`{path}` at the store's root is no part of the store: Custos never writes it there, and \
                 neither reads nor serves it (accounts and reports are recorded under `data/`)"
            ),
            Problem::Accounts { path, names } => write!(
                f,
                "accounts file `{path}` holds accounts that no recorded version has: {}",
                names.join(", ")
            ),
        }
    }
}

/// What [`Store::verify`] found.
#[derive(Debug, Clone)]
pub struct Verification {
    /// Entries in the manifest.
    pub entries: usize,
    /// Files they list.
    pub files: usize,
    /// The hash of the last entry: write it down to anchor the chain.
    pub head: String,
    /// Everything altered, added or removed.
    pub problems: Vec<Problem>,
    /// Files an interrupted write left, which the next write removes (not tampering).
    pub interrupted: Vec<String>,
    /// The manifest line of a commit cut off before its newline, which the next write cuts
    /// off (not tampering: that write's note is still there).
    pub cut_commit: Option<usize>,
}

impl Verification {
    /// Whether the store is exactly as its manifest says.
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What [`Store::backup`] copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub entries: usize,
    pub files: usize,
    pub bytes: u64,
    /// The head of the copy: the store's at the instant its manifest was read.
    pub head: String,
}

/// A manifest parsed and found sound: its store, its text and its entries.
type Parsed = (PathBuf, Vec<u8>, std::sync::Arc<Vec<Entry>>);

/// The manifests this process parsed and found sound.
static PARSED: std::sync::LazyLock<std::sync::Mutex<Vec<Parsed>>> =
    std::sync::LazyLock::new(|| std::sync::Mutex::new(Vec::new()));

/// The entries of the manifest `text` of the store at `root`, and its problems. A manifest
/// only grows by lines added at its end: when `text` begins with the text parsed last time,
/// byte for byte, only the lines after it are parsed, continuing the chain, and the same
/// text again gives the same entries, shared rather than copied. Anything else (an edit
/// anywhere, a shorter file) is parsed whole, so no problem is ever missed; a server's every
/// open then costs what was committed since, not the size of the store's history.
fn parsed(root: &Path, text: Vec<u8>) -> (std::sync::Arc<Vec<Entry>>, Vec<manifest::ChainProblem>) {
    let Ok(mut cache) = PARSED.lock() else {
        let (entries, problems) = manifest::parse(&text);
        return (entries.into(), problems);
    };
    let known = cache.iter().find(|(r, t, _)| r == root && text.starts_with(t));
    let (entries, problems) = match known {
        Some((_, t, entries)) if t.len() == text.len() => {
            return (std::sync::Arc::clone(entries), Vec::new());
        }
        Some((_, t, entries)) => {
            let (more, problems) = manifest::parse_after(entries, &text[t.len()..]);
            let mut all = Vec::with_capacity(entries.len() + more.len());
            all.extend(entries.iter().cloned());
            all.extend(more);
            (std::sync::Arc::new(all), problems)
        }
        None => {
            let (entries, problems) = manifest::parse(&text);
            (std::sync::Arc::new(entries), problems)
        }
    };
    if problems.is_empty() {
        cache.retain(|(r, _, _)| r != root);
        // A few stores at most: a test process opens many, a server one.
        if cache.len() >= 8 {
            cache.remove(0);
        }
        cache.push((root.to_path_buf(), text, std::sync::Arc::clone(&entries)));
    }
    (entries, problems)
}

/// A write in progress. Dropped without [`commit`](Transaction::commit), it removes what it wrote.
pub struct Transaction {
    store: Store,
    _lock: File,
    kind: String,
    txn: String,
    staged: Vec<FileRecord>,
    written: Vec<String>,
    committed: bool,
    judged: Option<manifest::Judged>,
    accounts: Option<Vec<String>>,
    /// Directories this write created, in order of creation.
    made: Vec<PathBuf>,
}

impl Transaction {
    /// The store as it was when the write began.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Records what the findings this write commits judged (see [`manifest::Judged`]).
    pub fn judged(&mut self, judged: manifest::Judged) {
        self.judged = Some(judged);
    }

    /// Records the accounts of the version this write commits (see [`EntryBody::accounts`]).
    pub fn accounts(&mut self, accounts: Vec<String>) {
        self.accounts = Some(accounts);
    }

    /// Creates a new data file for `table` (in `partition`, a directory name such as
    /// `month=2024-03`, if given). Its path is noted in `pending/` before it exists.
    pub fn create(&mut self, table: &str, partition: Option<&str>) -> Result<(String, HashingFile)> {
        let n = self.written.len();
        let mut rel = format!("{DATA}/{table}/");
        if let Some(p) = partition {
            rel.push_str(p);
            rel.push('/');
        }
        rel.push_str(&format!("{}-{n}.parquet", self.txn));
        self.new_file(rel)
    }

    /// Creates the new file `rel` of this write, noted in `pending/` before it exists.
    fn new_file(&mut self, rel: String) -> Result<(String, HashingFile)> {
        self.written.push(rel.clone());
        let written = self.written.clone();
        self.write_note(&written)?;
        let path = self.store.root.join(&rel);
        if let Some(dir) = path.parent() {
            self.make_dir(dir)?;
        }
        let file = private_file(&path)?;
        Ok((rel, HashingFile { file, hasher: Sha256::new(), bytes: 0 }))
    }

    /// Writes `bytes` as a new document of `table` (one of [`DOCUMENTS`], with extension
    /// `ext`) counting `rows` items, and records it.
    pub fn write_document(&mut self, table: &str, ext: &str, bytes: &[u8], rows: u64) -> Result<()> {
        if !DOCUMENTS.iter().any(|(t, exts)| *t == table && exts.contains(&ext)) {
            return Err(Error::Usage(format!("the store table `{table}` holds no `.{ext}` documents")));
        }
        let n = self.written.len();
        let (rel, mut file) = self.new_file(format!("{DATA}/{table}/{}-{n}.{ext}", self.txn))?;
        let path = self.store.root.join(&rel);
        file.write_all(bytes).map_err(Error::io(&path))?;
        let done = file.finish().map_err(Error::io(&path))?;
        self.add(rel, table, rows, done);
        Ok(())
    }

    fn note_path(&self) -> PathBuf {
        note_of(&self.store.root, self.store.entries.len() as u64 + 1)
    }

    fn write_note(&mut self, files: &[String]) -> Result<()> {
        let dir = self.store.root.join(PENDING);
        self.make_dir(&dir)?;
        write_atomically(&self.note_path(), &serde_json::to_vec(files)?)
    }

    /// Creates `dir` and its missing parents, remembering which were new, so that a write
    /// that does not commit leaves no directory behind either.
    fn make_dir(&mut self, dir: &Path) -> Result<()> {
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(d) = at.filter(|d| !d.exists()) {
            missing.push(d.to_path_buf());
            at = d.parent();
        }
        for d in missing.iter().rev() {
            match private_dir(d) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(Error::io(d)(e)),
                _ => {}
            }
        }
        // Deepest last: removed in reverse order of creation.
        self.made.extend(missing.into_iter().rev());
        Ok(())
    }

    /// Writes `batches` as one new Parquet file of `table` and records it.
    pub fn write(
        &mut self,
        table: &str,
        schema: arrow::datatypes::SchemaRef,
        batches: &[arrow::array::RecordBatch],
    ) -> Result<()> {
        let (path, file) = self.create(table, None)?;
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(parquet::basic::ZstdLevel::try_new(1)?))
            .build();
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props))?;
        let mut rows = 0;
        for b in batches {
            writer.write(b)?;
            rows += b.num_rows() as u64;
        }
        let done = writer.into_inner()?.finish().map_err(Error::io(&path))?;
        self.add(path, table, rows, done);
        Ok(())
    }

    /// Records a finished data file (closed and synced by [`HashingFile::finish`]).
    pub fn add(&mut self, path: String, table: &str, rows: u64, done: Finished) {
        self.staged.push(FileRecord {
            path,
            table: table.to_owned(),
            rows,
            bytes: done.bytes,
            sha256: done.sha256,
        });
    }

    /// Publishes every added file in one new manifest entry. With nothing added, commits
    /// nothing and returns `None`: the store stays byte for byte as it was.
    pub fn commit(mut self, committed_at: &str, sources: Vec<String>) -> Result<Option<Entry>> {
        if self.staged.is_empty() {
            return Ok(None);
        }
        let body = EntryBody {
            seq: self.store.entries.len() as u64 + 1,
            prev: self.store.head().to_owned(),
            committed_at: committed_at.to_owned(),
            kind: self.kind.clone(),
            sources,
            files: self.staged.clone(),
            layout: manifest::LAYOUT,
            judged: self.judged.clone(),
            accounts: self.accounts.clone(),
        };
        let entry = Entry::seal(body);
        for dir in self.staged.iter().filter_map(|s| Path::new(&s.path).parent().map(Path::to_path_buf)) {
            sync_dir(&self.store.root.join(dir))?;
        }
        let manifest = self.store.root.join(MANIFEST);
        let mut file = OpenOptions::new().append(true).open(&manifest).map_err(Error::io(&manifest))?;
        // Under the lock nobody else appends: a manifest of another length was written by hand.
        let len = file.metadata().map_err(Error::io(&manifest))?.len();
        if len != self.store.whole {
            return Err(Error::Store {
                path: self.store.root.clone(),
                message: format!(
                    "the manifest changed while this write held the store's lock ({len} bytes, {} when the write began): not committed; run `custos verify`",
                    self.store.whole
                ),
            });
        }
        // The commit point: the line, newline last, in one write, then synced.
        file.write_all(entry.to_line().as_bytes()).map_err(Error::io(&manifest))?;
        file.sync_all().map_err(Error::io(&manifest))?;
        self.committed = true;
        let note = self.note_path();
        if note.exists() {
            fs::remove_file(&note).map_err(Error::io(&note))?;
        }
        Ok(Some(entry))
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for name in &self.written {
            let _ = fs::remove_file(self.store.root.join(name));
        }
        let _ = fs::remove_file(self.note_path());
        // Only if empty: another writer's files are never removed.
        for dir in self.made.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// A data file being written, hashed as it goes so it is never read back to be recorded.
pub struct HashingFile {
    file: File,
    hasher: Sha256,
    bytes: u64,
}

/// A closed, synced data file's size and digest.
pub struct Finished {
    bytes: u64,
    sha256: String,
}

impl HashingFile {
    /// Syncs the file to disk and returns its size and digest.
    pub fn finish(self) -> std::io::Result<Finished> {
        self.file.sync_all()?;
        Ok(Finished { bytes: self.bytes, sha256: hex::encode(self.hasher.finalize()) })
    }
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// The `pending/` note of the write that commits entry `seq` of the store at `root`.
fn note_of(root: &Path, seq: u64) -> PathBuf {
    root.join(PENDING).join(format!("c{seq:06}.json"))
}

/// The rows of the Parquet file at `path`, which the caller checked (see [`Store::checked`]).
pub fn read_parquet(path: &Path) -> Result<Vec<arrow::array::RecordBatch>> {
    let file = File::open(path).map_err(Error::io(path))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?
        .with_batch_size(64 * 1024)
        .build()?;
    reader.map(|b| b.map_err(Error::from)).collect()
}

/// Writes `bytes` to `path` so that a reader sees the old content or the new, never a mix:
/// a temporary file beside it, synced, renamed over it, and the directory synced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(Error::io(&tmp))?;
    f.write_all(bytes).map_err(Error::io(&tmp))?;
    f.sync_all().map_err(Error::io(&tmp))?;
    fs::rename(&tmp, path).map_err(Error::io(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Takes the store's write lock (waiting for another writer to release it).
fn lock(root: &Path) -> Result<File> {
    let path = root.join(LOCK);
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&path).map_err(Error::io(&path))?;
    file.lock().map_err(Error::io(&path))?;
    Ok(file)
}

/// Creates a new file at `path` that only its owner may read or write.
fn private_file(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(Error::io(path))
}

/// Creates the directory `dir` (its parent exists) that only its owner may enter.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(Error::io(dir))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(read) = fs::read_dir(dir) else { return Ok(()) };
    for item in read {
        let item = item.map_err(Error::io(dir))?;
        let path = item.path();
        // A link is listed as what it is, never followed (it could lead anywhere, or in a circle).
        if item.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// The commit number in a data file's path, if `path` has the exact shape a transaction gives
/// its files: `data/<table>/c<seq>-<n>.parquet`, or `data/<table>/month=<YYYY-MM>/c<seq>-<n>.parquet`,
/// or for a table of documents `data/<table>/c<seq>-<n>.<ext>` with one of its extensions.
fn data_file_seq(path: &str) -> Option<u64> {
    let parts: Vec<&str> = path.split('/').collect();
    let (table, month, name) = match parts.as_slice() {
        [DATA, table, name] => (*table, None, *name),
        [DATA, table, month, name] => (*table, Some(*month), *name),
        _ => return None,
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if table.is_empty() || !table.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return None;
    }
    if let Some(month) = month {
        let (year, m) = month.strip_prefix("month=")?.rsplit_once('-')?;
        if !digits(year.trim_start_matches('-')) || m.len() != 2 || !digits(m) {
            return None;
        }
    }
    let (stem, ext) = name.rsplit_once('.')?;
    let holds = match DOCUMENTS.iter().find(|(t, _)| *t == table) {
        Some((_, exts)) => month.is_none() && exts.contains(&ext),
        None => ext == "parquet",
    };
    let (seq, n) = stem.strip_prefix('c')?.split_once('-')?;
    (holds && digits(seq) && digits(n)).then(|| seq.parse().ok()).flatten()
}

/// What identifies a file's bytes as checked: its path and recorded digest, and the size,
/// modification time and inode it had when hashed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Stamp {
    path: PathBuf,
    sha256: String,
    bytes: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

/// The files whose digests this process has checked.
fn digested() -> &'static std::sync::Mutex<std::collections::HashSet<Stamp>> {
    static DIGESTED: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<Stamp>>> =
        std::sync::OnceLock::new();
    DIGESTED.get_or_init(Default::default)
}

#[cfg(unix)]
fn inode(meta: &fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &fs::Metadata) -> u64 {
    0
}

/// The size and SHA-256 (lowercase hex) of the regular file at `path`.
fn sha256_of(path: &Path) -> Result<(u64, String)> {
    let mut file = File::open(path).map_err(Error::io(path))?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher).map_err(Error::io(path))?;
    Ok((bytes, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store of two commits of one report each.
    fn two_commits() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store");
        let store = Store::open_or_create(&root).unwrap();
        for n in 0..2 {
            let mut txn = store.begin("report").unwrap();
            txn.write_document("reports", "html", format!("<p>{n}</p>").as_bytes(), 1).unwrap();
            txn.commit("2026-12-07T00:00:00Z", vec![]).unwrap();
        }
        (tmp, root)
    }

    /// Leaves the store as a writer killed while appending its second entry would: the line
    /// cut short, its files written, and (if `noted`) the note naming them.
    fn cut_second_commit(root: &Path, noted: bool) -> Vec<String> {
        let store = Store::open(root).unwrap();
        let files: Vec<String> = store.entries()[1].body.files.iter().map(|f| f.path.clone()).collect();
        let manifest = root.join(MANIFEST);
        let text = fs::read(&manifest).unwrap();
        fs::write(&manifest, &text[..text.len() - 20]).unwrap();
        if noted {
            fs::create_dir_all(root.join(PENDING)).unwrap();
            fs::write(root.join(PENDING).join("c000002.json"), serde_json::to_vec(&files).unwrap()).unwrap();
        }
        files
    }

    #[test]
    fn a_commit_appends_its_line_to_the_same_file() {
        let (_tmp, root) = two_commits();
        let manifest = root.join(MANIFEST);
        let (before, meta) = (fs::read(&manifest).unwrap(), fs::metadata(&manifest).unwrap());
        let mut txn = Store::open(&root).unwrap().begin("report").unwrap();
        txn.write_document("reports", "html", b"<p>2</p>", 1).unwrap();
        let entry = txn.commit("2026-12-07T00:00:01Z", vec![]).unwrap().unwrap();
        let after = fs::read(&manifest).unwrap();
        assert_eq!(after, [before, entry.to_line().into_bytes()].concat());
        assert_eq!(
            inode(&fs::metadata(&manifest).unwrap()),
            inode(&meta),
            "the manifest was replaced, not appended to"
        );
        assert!(Store::verify(&root).unwrap().is_sound());
    }

    #[test]
    fn a_commit_cut_off_before_its_newline_is_no_part_of_the_store_and_the_next_writer_removes_it() {
        let (_tmp, root) = two_commits();
        let first = Store::open(&root).unwrap().entries()[0].hash.clone();
        let files = cut_second_commit(&root, true);
        // Readers see the store as it was before the cut commit.
        let store = Store::open(&root).unwrap();
        assert_eq!((store.entries().len(), store.head()), (1, first.as_str()));
        // Verify names it as an interruption, not as tampering.
        let v = Store::verify(&root).unwrap();
        assert!(v.is_sound(), "{:?}", v.problems);
        assert_eq!((v.entries, v.cut_commit, &v.interrupted), (1, Some(2), &files));
        // The next writer cuts the line off and removes its files, then commits after entry 1.
        let mut txn = store.begin("report").unwrap();
        assert!(!root.join(&files[0]).exists());
        txn.write_document("reports", "html", b"<p>again</p>", 1).unwrap();
        let entry = txn.commit("2026-12-07T00:00:02Z", vec![]).unwrap().unwrap();
        assert_eq!((entry.body.seq, entry.body.prev.as_str()), (2, first.as_str()));
        let v = Store::verify(&root).unwrap();
        assert!(v.is_sound() && v.interrupted.is_empty() && v.cut_commit.is_none(), "{:?}", v.problems);
        assert_eq!(fs::read(root.join(&files[0])).unwrap(), b"<p>again</p>");
    }

    #[test]
    fn a_torn_line_no_write_explains_is_named_by_verify_and_refused_by_the_next_writer() {
        let (_tmp, root) = two_commits();
        let files = cut_second_commit(&root, false);
        // Readers still read what the whole lines commit.
        assert_eq!(Store::open(&root).unwrap().entries().len(), 1);
        let v = Store::verify(&root).unwrap();
        assert!(
            v.problems.contains(&Problem::Chain(ChainProblem::Truncated { line: 2 })),
            "{:?}",
            v.problems
        );
        assert!(v.problems.contains(&Problem::Added { path: files[0].clone() }), "{:?}", v.problems);
        let refused = Store::open(&root).unwrap().begin("report").err().unwrap().to_string();
        assert!(
            refused.contains("manifest line 2 is incomplete")
                && refused.contains("no interrupted write explains it"),
            "{refused}"
        );
        // Nothing was written or removed.
        assert!(root.join(&files[0]).exists());
    }

    #[test]
    fn only_a_transactions_own_file_names_have_a_commit_number() {
        assert_eq!(data_file_seq("data/cases/c000007-0.parquet"), Some(7));
        assert_eq!(data_file_seq("data/access_log/month=2024-03/c000012-3.parquet"), Some(12));
        for bad in [
            "../victim.txt",
            "/etc/passwd",
            "data/cases/../../victim.txt",
            "data/../manifest.jsonl",
            "manifest.jsonl",
            "data/cases/c000007-0.parquet.tmp",
            "data/cases/x000007-0.parquet",
            "data/cases/c-0.parquet",
            "data/Cases/c000007-0.parquet",
            "data/access_log/month=2024-3/c000001-0.parquet",
            "data/access_log/month=../c000001-0.parquet",
            "data//c000001-0.parquet",
            "data/cases/sub/dir/c000001-0.parquet",
        ] {
            assert_eq!(data_file_seq(bad), None, "{bad}");
        }
    }
}
