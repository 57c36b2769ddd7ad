//! Full-text search: one tantivy index per user, outside every user's root.
//!
//! Changes reach the index through a per-user indexer task that applies them
//! in batches and commits once the burst is over, so a thousand writes cost a
//! handful of commits. An index that is missing, corrupt or half-built (no
//! `complete` marker) is rebuilt from the user's files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, STORED, STRING, Schema, TEXT, Value};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term, doc};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use aether_proto::{ErrorBody, ErrorCode};

use super::disk::{Kind, UserRoot};
use super::path::VfsPath;

/// Files larger than this are not indexed (their names still are not: search is by content).
pub const MAX_INDEXED_BYTES: u64 = 1 << 20;
const WRITER_MEMORY: usize = 15_000_000;
/// Commit after the burst of changes has been quiet this long.
const COMMIT_AFTER: Duration = Duration::from_millis(50);
const MARKER: &str = "complete";

#[derive(Debug, Clone)]
pub enum Change {
    /// A file or a directory tree was created or changed.
    Upsert(VfsPath),
    /// A file or a directory tree is gone.
    Remove(VfsPath),
    /// Files may have gone without a word: drop what no longer exists.
    Prune,
}

#[derive(Clone, Copy)]
struct Fields {
    path: Field,
    /// Every ancestor directory, so a directory's files can be dropped in one term.
    dirs: Field,
    body: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let path = builder.add_text_field("path", STRING | STORED);
    let dirs = builder.add_text_field("dirs", STRING);
    let body = builder.add_text_field("body", TEXT);
    (builder.build(), Fields { path, dirs, body })
}

pub use aether_proto::api::vfs::Hit;

pub struct UserIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    changes: mpsc::UnboundedSender<Change>,
}

/// Open an index and a reader over all its segments: any damage shows here.
fn try_open(dir: &Path, schema: &Schema) -> anyhow::Result<(Index, IndexReader)> {
    let index = Index::open_in_dir(dir)?;
    anyhow::ensure!(index.schema() == *schema, "the schema changed");
    let reader: IndexReader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    // Touch every segment's data so truncated files are found now, not at the first query.
    let searcher = reader.searcher();
    for segment in searcher.segment_readers() {
        segment.get_store_reader(0)?;
    }
    Ok((index, reader))
}

fn internal(e: impl std::fmt::Display) -> ErrorBody {
    tracing::error!("search index: {e}");
    ErrorBody::new(
        ErrorCode::Internal,
        "the search index failed; see the daemon log",
    )
}

impl UserIndex {
    /// Open the user's index, rebuilding it from `root` when it is missing or broken.
    /// Its indexer runs on `tasks`, so shutting down waits for its last commit.
    pub fn open(
        dir: &Path,
        root: Arc<UserRoot>,
        tasks: &TaskTracker,
    ) -> anyhow::Result<Arc<UserIndex>> {
        let (schema, fields) = schema();
        let existing = if dir.join(MARKER).exists() {
            // tantivy can panic on damaged files: that is corruption too.
            let opened =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| try_open(dir, &schema)))
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("reading it panicked")));
            match opened {
                Ok(opened) => Some(opened),
                Err(e) => {
                    tracing::warn!(
                        "search index at {} is broken ({e:#}): rebuilding",
                        dir.display()
                    );
                    None
                }
            }
        } else {
            None
        };
        let (index, reader, rebuild) = match existing {
            Some((index, reader)) => (index, reader, false),
            None => {
                if dir.exists() {
                    std::fs::remove_dir_all(dir)?;
                }
                std::fs::create_dir_all(dir)?;
                let index = Index::create_in_dir(dir, schema)?;
                let reader = index
                    .reader_builder()
                    .reload_policy(ReloadPolicy::Manual)
                    .try_into()?;
                (index, reader, true)
            }
        };
        let (changes, rx) = mpsc::unbounded_channel();
        let indexer = Indexer {
            index: index.clone(),
            reader: reader.clone(),
            fields,
            root,
            marker: dir.join(MARKER),
        };
        tasks.spawn(indexer.run(rx, rebuild));
        Ok(Arc::new(UserIndex {
            index,
            reader,
            fields,
            changes,
        }))
    }

    pub fn changed(&self, change: Change) {
        let _ = self.changes.send(change);
    }

    /// Run a query; blocking (reads the hit files for their line and snippet).
    pub fn search(
        &self,
        root: &UserRoot,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Hit>, ErrorBody> {
        // A damaged index can make tantivy panic: answer `internal`, never drop the request.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run_query(root, query, limit)
        }))
        .unwrap_or_else(|_| Err(internal("a query panicked; the index may be damaged")))
    }

    fn run_query(&self, root: &UserRoot, query: &str, limit: usize) -> Result<Vec<Hit>, ErrorBody> {
        let parser = QueryParser::for_index(&self.index, vec![self.fields.body]);
        let parsed = parser
            .parse_query(query)
            .map_err(|e| ErrorBody::new(ErrorCode::BadFrame, format!("query syntax: {e}")))?;
        self.reader.reload().map_err(internal)?;
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&parsed, &TopDocs::with_limit(limit).order_by_score())
            .map_err(internal)?;
        let terms = query_words(query);
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address).map_err(internal)?;
            let Some(path) = doc
                .get_first(self.fields.path)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
            else {
                continue;
            };
            let (line, snippet) = VfsPath::parse(&path)
                .ok()
                .and_then(|p| read_text(root, &p))
                .map(|text| locate(&text, &terms))
                .unwrap_or((None, String::new()));
            hits.push(Hit {
                path,
                score,
                line,
                snippet,
            });
        }
        Ok(hits)
    }
}

/// The plain words of a query, lowercased, to find the matching line.
fn query_words(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !matches!(*w, "AND" | "OR" | "NOT"))
        .map(str::to_lowercase)
        .collect()
}

/// The first line holding one of the words (1-based), and that line trimmed.
fn locate(text: &str, words: &[String]) -> (Option<usize>, String) {
    for (n, line) in text.lines().enumerate() {
        let lower = line.to_lowercase();
        if words.iter().any(|w| lower.contains(w.as_str())) {
            let snippet: String = line.trim().chars().take(200).collect();
            return (Some(n + 1), snippet);
        }
    }
    (
        None,
        text.lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect(),
    )
}

fn read_text(root: &UserRoot, path: &VfsPath) -> Option<String> {
    let (bytes, info) = root.read_at(path, 0, MAX_INDEXED_BYTES as usize).ok()?;
    (info.size <= MAX_INDEXED_BYTES).then_some(())?;
    String::from_utf8(bytes).ok()
}

/// Applies changes to one user's index. It holds the index, never the `UserIndex`
/// whose sender feeds it, so it ends once the VFS lets the user's index go.
struct Indexer {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    root: Arc<UserRoot>,
    marker: PathBuf,
}

impl Indexer {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Change>, rebuild: bool) {
        let this = Arc::new(self);
        let mut writer: Option<IndexWriter> = None;
        let mut batch: Vec<Change> = if rebuild {
            vec![Change::Upsert(VfsPath::root())]
        } else {
            vec![]
        };
        loop {
            if batch.is_empty() {
                // Idle: let the writer (and its memory) go until the next change.
                match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                    Ok(Some(change)) => batch.push(change),
                    Ok(None) => return,
                    Err(_) => {
                        writer = None;
                        continue;
                    }
                }
            }
            // Gather the rest of the burst.
            while let Ok(Some(change)) = tokio::time::timeout(COMMIT_AFTER, rx.recv()).await {
                batch.push(change);
                if batch.len() >= 10_000 {
                    break;
                }
            }
            let changes = std::mem::take(&mut batch);
            let me = this.clone();
            let taken = writer.take();
            let result = tokio::task::spawn_blocking(move || me.apply(taken, changes)).await;
            match result {
                Ok(Ok(kept)) => writer = Some(kept),
                Ok(Err(e)) => tracing::error!("search index update failed: {e:#}"),
                Err(e) => tracing::error!("search index task failed: {e}"),
            }
        }
    }

    fn apply(
        &self,
        writer: Option<IndexWriter>,
        changes: Vec<Change>,
    ) -> anyhow::Result<IndexWriter> {
        let mut writer = match writer {
            Some(writer) => writer,
            None => self.index.writer_with_num_threads(1, WRITER_MEMORY)?,
        };
        let fields = self.fields;
        for change in changes {
            match change {
                Change::Remove(path) => forget(&writer, fields, &path),
                Change::Prune => {
                    if let Err(e) = self.prune(&writer) {
                        tracing::warn!("search index: pruning failed: {e:#}");
                    }
                }
                Change::Upsert(path) => {
                    forget(&writer, fields, &path);
                    let mut files = vec![];
                    // A vanished path is simply not indexed; never follows symlinks.
                    let _ = self.root.walk(&path, &mut |p, info| {
                        if info.kind == Kind::File && info.size <= MAX_INDEXED_BYTES {
                            files.push(p.clone());
                        }
                    });
                    for file in files {
                        if let Some(text) = read_text(&self.root, &file) {
                            writer.add_document(document(fields, &file, &text))?;
                        }
                    }
                }
            }
        }
        writer.commit()?;
        if !self.marker.exists() {
            std::fs::write(&self.marker, b"")?;
        }
        Ok(writer)
    }
}

impl Indexer {
    /// Forget every indexed file that is no longer a file on disk.
    fn prune(&self, writer: &IndexWriter) -> anyhow::Result<()> {
        let fields = self.fields;
        self.reader.reload()?;
        let searcher = self.reader.searcher();
        for segment in searcher.segment_readers() {
            let store = segment.get_store_reader(64)?;
            for id in segment.doc_ids_alive() {
                let doc: TantivyDocument = store.get(id)?;
                let Some(path) = doc.get_first(fields.path).and_then(|v| v.as_str()) else {
                    continue;
                };
                let gone = VfsPath::parse(path)
                    .map(|p| !matches!(self.root.info(&p), Ok(info) if info.kind == Kind::File))
                    .unwrap_or(true);
                if gone {
                    writer.delete_term(Term::from_field_text(fields.path, path));
                }
            }
        }
        Ok(())
    }
}

/// Drop the documents of a file, or of everything under a directory.
fn forget(writer: &IndexWriter, fields: Fields, path: &VfsPath) {
    let text = path.to_string();
    writer.delete_term(Term::from_field_text(fields.path, &text));
    writer.delete_term(Term::from_field_text(fields.dirs, &text));
}

fn document(fields: Fields, path: &VfsPath, text: &str) -> TantivyDocument {
    let mut doc = doc!(fields.path => path.to_string(), fields.body => text);
    let mut dir = path.parent();
    while let Some(d) = dir {
        doc.add_text(fields.dirs, d.to_string());
        dir = d.parent();
    }
    doc
}

/// Every user's index, opened on first use.
pub struct Indexes {
    base: PathBuf,
    users: parking_lot::Mutex<HashMap<i64, Arc<UserIndex>>>,
    tasks: TaskTracker,
}

impl Indexes {
    pub fn new(base: PathBuf, tasks: TaskTracker) -> Indexes {
        Indexes {
            base,
            users: parking_lot::Mutex::default(),
            tasks,
        }
    }

    pub fn for_user(
        &self,
        user_id: i64,
        root: &Arc<UserRoot>,
    ) -> Result<Arc<UserIndex>, ErrorBody> {
        let mut users = self.users.lock();
        if let Some(index) = users.get(&user_id) {
            return Ok(index.clone());
        }
        let index = UserIndex::open(
            &self.base.join(user_id.to_string()),
            root.clone(),
            &self.tasks,
        )
        .map_err(internal)?;
        users.insert(user_id, index.clone());
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_snippets() {
        let words = query_words("Quarterly AND report");
        assert_eq!(words, ["quarterly", "report"]);
        let (line, snippet) = locate("intro\n  the quarterly numbers  \nend", &words);
        assert_eq!(line, Some(2));
        assert_eq!(snippet, "the quarterly numbers");
    }
}

#[cfg(test)]
mod index_tests {
    use super::*;

    async fn search_until(
        index: &UserIndex,
        root: &UserRoot,
        q: &str,
        want: &[&str],
    ) -> Vec<String> {
        let mut last = vec![];
        for _ in 0..100 {
            last = index
                .search(root, q, 10)
                .unwrap()
                .into_iter()
                .map(|h| h.path)
                .collect::<Vec<_>>();
            last.sort();
            if last == want {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        last
    }

    #[tokio::test]
    async fn follows_moves_and_removals() {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("files");
        std::fs::create_dir_all(files.join("docs")).unwrap();
        std::fs::write(files.join("docs/q.md"), "the quarterly report").unwrap();
        let root = Arc::new(UserRoot::open(&files, &dir.path().join("scratch")).unwrap());
        let index =
            UserIndex::open(&dir.path().join("index"), root.clone(), &TaskTracker::new()).unwrap();
        assert_eq!(
            search_until(&index, &root, "quarterly", &["/docs/q.md"]).await,
            ["/docs/q.md"]
        );
        std::fs::rename(files.join("docs"), files.join("archive")).unwrap();
        index.changed(Change::Remove(VfsPath::parse("/docs").unwrap()));
        index.changed(Change::Upsert(VfsPath::parse("/archive").unwrap()));
        assert_eq!(
            search_until(&index, &root, "quarterly", &["/archive/q.md"]).await,
            ["/archive/q.md"]
        );
        std::fs::remove_dir_all(files.join("archive")).unwrap();
        index.changed(Change::Remove(VfsPath::parse("/archive").unwrap()));
        assert!(
            search_until(&index, &root, "quarterly", &[])
                .await
                .is_empty()
        );
    }
}
