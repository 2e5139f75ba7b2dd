//! The store: a directory of Parquet files and the manifest that makes them a store.
//!
//! ```text
//! STORE/
//!   manifest.jsonl                      the chained list of commits (the only source of truth)
//!   data/<table>/c000001-0.parquet      files of unpartitioned tables
//!   data/access_log/month=2024-03/…     files of the access log, one directory per month
//!   pending/<txn>.json                  files an import is writing and has not committed
//!   .lock                               held by the one process writing
//! ```
//!
//! A commit is atomic because the manifest is replaced by `rename`, the one step a crash can
//! not cut in two: data files are written and synced first under names no reader looks at
//! (readers read only the files the manifest lists), then the new manifest, the old one plus
//! one entry, is written beside it, synced and renamed over it. A process killed before the
//! rename leaves the old manifest and some unlisted files; the `pending/` note it wrote first
//! names them, and the next writer removes them. Killed after it, the commit is whole.

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

/// An opened store: its root and its committed entries.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    entries: Vec<Entry>,
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
        let text = fs::read(&manifest).map_err(Error::io(&manifest))?;
        let (entries, problems) = manifest::parse(&text);
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
        Ok(Store { root, entries })
    }

    /// Whether the store at `root` holds files of an earlier layout (see [`manifest::LAYOUT`]),
    /// which [`open`](Store::open) refuses.
    pub fn is_outdated(root: impl AsRef<Path>) -> Result<bool> {
        let manifest = root.as_ref().join(MANIFEST);
        let text = fs::read(&manifest).map_err(Error::io(&manifest))?;
        Ok(outdated(&manifest::parse(&text).0).is_some())
    }

    /// Opens the store at `root`, creating an empty one if the directory has none.
    pub fn open_or_create(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref();
        if !root.join(MANIFEST).exists() {
            fs::create_dir_all(root).map_err(Error::io(root))?;
            let is_empty = fs::read_dir(root).map_err(Error::io(root))?.next().is_none();
            if !is_empty {
                return Err(Error::Store {
                    path: root.to_path_buf(),
                    message:
                        "the directory is not empty and holds no store: choose an empty or new directory"
                            .into(),
                });
            }
            write_atomically(&root.join(MANIFEST), b"")?;
        }
        Store::open(root)
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

    /// Absolute paths of the files of `table` in the newest entry that has any: the latest
    /// run of a derived table (findings), where each run replaces the one before.
    pub fn latest_paths(&self, table: &str) -> Vec<PathBuf> {
        let newest = self.entries.iter().rev().find(|e| e.body.files.iter().any(|f| f.table == table));
        newest
            .map(|e| {
                e.body.files.iter().filter(|f| f.table == table).map(|f| self.root.join(&f.path)).collect()
            })
            .unwrap_or_default()
    }

    /// Absolute paths of the committed files of `table`.
    pub fn paths(&self, table: &str) -> Vec<PathBuf> {
        self.files(table).iter().map(|f| self.root.join(&f.path)).collect()
    }

    /// Rows committed to `table`.
    pub fn rows(&self, table: &str) -> u64 {
        self.files(table).iter().map(|f| f.rows).sum()
    }

    /// Reads every committed row of `table`, file by file.
    pub fn read(&self, table: &str) -> Result<Vec<arrow::array::RecordBatch>> {
        let mut batches = Vec::new();
        for path in self.paths(table) {
            let file = File::open(&path).map_err(Error::io(&path))?;
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?
                .with_batch_size(64 * 1024)
                .build()?;
            for batch in reader {
                batches.push(batch?);
            }
        }
        Ok(batches)
    }

    /// Starts a write. Takes the store's lock (waiting for another writer to finish) and
    /// removes what an interrupted write left behind.
    pub fn begin(&self, kind: &str) -> Result<Transaction> {
        let lock_path = self.root.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io(&lock_path))?;
        lock.lock().map_err(Error::io(&lock_path))?;
        // Another writer may have committed while we waited: read the manifest afresh.
        let store = Store::open(&self.root)?;
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
        })
    }

    /// Removes the files of writes that never committed, as their `pending/` notes list them.
    fn recover(&self) -> Result<()> {
        let committed: BTreeSet<&str> =
            self.entries.iter().flat_map(|e| &e.body.files).map(|f| f.path.as_str()).collect();
        for (note, files) in self.pending()? {
            for f in files.iter().filter(|f| !committed.contains(f.as_str())) {
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

    /// The notes of uncommitted writes, with the files each lists.
    fn pending(&self) -> Result<Vec<(PathBuf, Vec<String>)>> {
        let dir = self.root.join(PENDING);
        let Ok(read) = fs::read_dir(&dir) else { return Ok(Vec::new()) };
        let mut notes = Vec::new();
        for item in read {
            let path = item.map_err(Error::io(&dir))?.path();
            // A note cut off mid-write lists nothing that can have been written after it.
            let files: Vec<String> =
                fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
            notes.push((path, files));
        }
        notes.sort();
        Ok(notes)
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
        let (entries, chain) = manifest::parse(&text);
        let mut problems: Vec<Problem> = chain.into_iter().map(Problem::Chain).collect();
        let mut listed = BTreeMap::new();
        for e in &entries {
            for f in &e.body.files {
                listed.insert(f.path.clone(), (e.body.seq, f));
            }
        }
        for (path, (seq, record)) in &listed {
            let full = root.join(path);
            match File::open(&full) {
                Err(_) => problems.push(Problem::Removed { path: path.clone(), entry: *seq }),
                Ok(mut file) => {
                    let mut hasher = Sha256::new();
                    let bytes = std::io::copy(&mut file, &mut hasher).map_err(Error::io(&full))?;
                    let digest = hex::encode(hasher.finalize());
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
        let store = Store { root: root.clone(), entries: entries.clone() };
        let leftovers: BTreeSet<String> = store.pending()?.into_iter().flat_map(|(_, f)| f).collect();
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
        let files = listed.len();
        let head = entries.last().map_or(GENESIS.to_owned(), |e| e.hash.clone());
        Ok(Verification { entries: entries.len(), files, head, problems, interrupted })
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
            Problem::Added { path } => write!(
                f,
                "file `{path}` is in no manifest entry: it was added, or the entry listing it was cut from the manifest"
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
}

impl Verification {
    /// Whether the store is exactly as its manifest says.
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
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
}

impl Transaction {
    /// The store as it was when the write began.
    pub fn store(&self) -> &Store {
        &self.store
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
        self.written.push(rel.clone());
        self.write_note(&self.written)?;
        let path = self.store.root.join(&rel);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(Error::io(dir))?;
        }
        let file = File::create_new(&path).map_err(Error::io(&path))?;
        Ok((rel, HashingFile { file, hasher: Sha256::new(), bytes: 0 }))
    }

    fn note_path(&self) -> PathBuf {
        self.store.root.join(PENDING).join(format!("{}.json", self.txn))
    }

    fn write_note(&self, files: &[String]) -> Result<()> {
        let dir = self.store.root.join(PENDING);
        fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        write_atomically(&self.note_path(), &serde_json::to_vec(files)?)
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
        };
        let entry = Entry::seal(body);
        for dir in self.staged.iter().filter_map(|s| Path::new(&s.path).parent().map(Path::to_path_buf)) {
            sync_dir(&self.store.root.join(dir))?;
        }
        let manifest = self.store.root.join(MANIFEST);
        let mut text = fs::read(&manifest).map_err(Error::io(&manifest))?;
        text.extend_from_slice(entry.to_line().as_bytes());
        // The commit point.
        write_atomically(&manifest, &text)?;
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

/// Writes `bytes` to `path` so that a reader sees the old content or the new, never a mix:
/// a temporary file beside it, synced, renamed over it, and the directory synced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(Error::io(&tmp))?;
    f.write_all(bytes).map_err(Error::io(&tmp))?;
    f.sync_all().map_err(Error::io(&tmp))?;
    fs::rename(&tmp, path).map_err(Error::io(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(Error::io(dir))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(read) = fs::read_dir(dir) else { return Ok(()) };
    for item in read {
        let path = item.map_err(Error::io(dir))?.path();
        if path.is_dir() {
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
