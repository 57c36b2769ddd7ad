//! Search by meaning: each text file's start is embedded (through `ai.embed`, a request
//! only the VFS makes for its users) and kept per user, keyed by a hash of what was
//! embedded, so a file is embedded again only after it changed. A query is embedded and
//! compared by cosine similarity, and the ranking is fused with the full-text one
//! (reciprocal rank fusion). The vectors live beside the search index, never in a root.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::disk::{Kind, UserRoot};
use super::path::VfsPath;

/// What of a file is embedded: its path and its first bytes.
pub const EMBEDDED_BYTES: usize = 8 * 1024;
/// Files looked at per search; more are left to full text.
pub const MAX_FILES: usize = 2_000;
/// Texts per `ai.embed`.
pub const BATCH: usize = 64;
/// Reciprocal rank fusion's constant.
const RRF_K: f32 = 60.0;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    hash: String,
    model: String,
    vector: Vec<f32>,
    /// Why this content could not be embedded: it is not asked for again until it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed: Option<String>,
}

/// One user's file vectors, loaded from and saved to a file.
pub struct Vectors {
    file: PathBuf,
    entries: parking_lot::Mutex<Option<HashMap<String, Entry>>>,
}

/// A text file as it would be embedded.
pub struct Candidate {
    pub path: String,
    pub text: String,
    pub hash: String,
}

impl Vectors {
    pub fn new(file: PathBuf) -> Vectors {
        Vectors {
            file,
            entries: parking_lot::Mutex::new(None),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        let mut entries = self.entries.lock();
        let map = entries.get_or_insert_with(|| {
            std::fs::read(&self.file)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default()
        });
        f(map)
    }

    /// The candidates whose vector is missing or stale for `model`.
    pub fn stale<'a>(&self, candidates: &'a [Candidate], model: &str) -> Vec<&'a Candidate> {
        self.with(|map| {
            candidates
                .iter()
                .filter(|c| {
                    map.get(&c.path)
                        .is_none_or(|e| e.hash != c.hash || e.model != model)
                })
                .collect()
        })
    }

    /// Keep new vectors (and which contents could not be embedded, and why), drop those
    /// of files that are gone, and save.
    pub fn update(
        &self,
        fresh: Vec<(&Candidate, Vec<f32>)>,
        failed: Vec<(&Candidate, String)>,
        present: &HashSet<String>,
        model: &str,
    ) -> std::io::Result<()> {
        let text = self.with(|map| {
            map.retain(|path, _| present.contains(path));
            let entries = fresh
                .into_iter()
                .map(|(c, vector)| (c, vector, None))
                .chain(
                    failed
                        .into_iter()
                        .map(|(c, why)| (c, Vec::new(), Some(why))),
                );
            for (candidate, vector, failed) in entries {
                map.insert(
                    candidate.path.clone(),
                    Entry {
                        hash: candidate.hash.clone(),
                        model: model.to_owned(),
                        vector,
                        failed,
                    },
                );
            }
            serde_json::to_vec(map).unwrap_or_default()
        });
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Written whole then renamed: a crash leaves the old file or the new one.
        let temp = self.file.with_extension("tmp");
        std::fs::write(&temp, text)?;
        std::fs::rename(&temp, &self.file)
    }

    /// Files whose current content could not be embedded, with why.
    pub fn failures(&self, model: &str) -> Vec<(String, String)> {
        let mut failed: Vec<(String, String)> = self.with(|map| {
            map.iter()
                .filter(|(_, e)| e.model == model)
                .filter_map(|(path, e)| Some((path.clone(), e.failed.clone()?)))
                .collect()
        });
        failed.sort();
        failed
    }

    /// The files closest in meaning to `query`, best first: (path, similarity).
    pub fn nearest(&self, query: &[f32], model: &str, limit: usize) -> Vec<(String, f32)> {
        let mut scored: Vec<(String, f32)> = self.with(|map| {
            map.iter()
                .filter(|(_, e)| e.model == model && e.failed.is_none())
                .map(|(path, e)| (path.clone(), cosine(query, &e.vector)))
                .collect()
        });
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        scored.truncate(limit);
        scored
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// The user's text files (up to [`MAX_FILES`]), each as it would be embedded. Binary
/// files (not UTF-8 at the start, or holding NUL) are left out.
pub fn candidates(root: &UserRoot) -> Vec<Candidate> {
    let mut paths = Vec::new();
    let _ = root.walk(&VfsPath::root(), &mut |path, info| {
        if info.kind == Kind::File && info.size > 0 && paths.len() < MAX_FILES {
            paths.push(path.clone());
        }
    });
    paths
        .into_iter()
        .filter_map(|path| {
            let (bytes, _) = root.read_at(&path, 0, EMBEDDED_BYTES).ok()?;
            let text = match std::str::from_utf8(&bytes) {
                Ok(text) => text.to_owned(),
                // Cut inside a character at the end is fine; invalid earlier is binary.
                Err(e) if e.error_len().is_none() => {
                    String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned()
                }
                Err(_) => return None,
            };
            if text.contains('\0') || text.trim().is_empty() {
                return None;
            }
            let shown = path.to_string();
            let text = format!("{shown}\n\n{text}");
            let hash = blake3::hash(text.as_bytes()).to_hex().to_string();
            Some(Candidate {
                path: shown,
                text,
                hash,
            })
        })
        .collect()
}

/// Fuse two rankings (best first) into one: each list gives 1 / (k + rank).
pub fn fuse(words: &[String], meaning: &[String], limit: usize) -> Vec<(String, f32)> {
    let mut scores: HashMap<&str, f32> = HashMap::new();
    for list in [words, meaning] {
        for (rank, path) in list.iter().enumerate() {
            *scores.entry(path.as_str()).or_default() += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    let mut fused: Vec<(String, f32)> = scores
        .into_iter()
        .map(|(path, score)| (path.to_owned(), score))
        .collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    fused.truncate(limit);
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_and_fusion() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 2.0]), 0.0, "different models' sizes");
        let fused = fuse(&["/a".into(), "/b".into()], &["/b".into(), "/c".into()], 10);
        assert_eq!(fused[0].0, "/b", "in both lists: first");
        assert_eq!(fused.len(), 3);
    }

    #[test]
    fn vectors_persist_and_only_changed_files_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("1.vectors.json");
        let a = Candidate {
            path: "/a".into(),
            text: "a".into(),
            hash: "h1".into(),
        };
        let vectors = Vectors::new(file.clone());
        assert_eq!(vectors.stale(std::slice::from_ref(&a), "m").len(), 1);
        let present: HashSet<String> = ["/a".to_owned()].into();
        vectors
            .update(vec![(&a, vec![1.0, 0.0])], vec![], &present, "m")
            .unwrap();
        let again = Vectors::new(file);
        assert!(again.stale(std::slice::from_ref(&a), "m").is_empty());
        assert_eq!(again.stale(std::slice::from_ref(&a), "other").len(), 1);
        assert_eq!(again.nearest(&[1.0, 0.1], "m", 5)[0].0, "/a");
    }

    #[test]
    fn a_file_that_failed_is_not_asked_again_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let vectors = Vectors::new(dir.path().join("v.json"));
        let bad = Candidate {
            path: "/bad".into(),
            text: "x".into(),
            hash: "h1".into(),
        };
        let present: HashSet<String> = ["/bad".to_owned()].into();
        vectors
            .update(vec![], vec![(&bad, "refused".into())], &present, "m")
            .unwrap();
        assert!(vectors.stale(std::slice::from_ref(&bad), "m").is_empty());
        assert_eq!(vectors.failures("m"), [("/bad".into(), "refused".into())]);
        assert!(vectors.nearest(&[1.0], "m", 5).is_empty());
        let changed = Candidate {
            hash: "h2".into(),
            ..bad
        };
        assert_eq!(vectors.stale(std::slice::from_ref(&changed), "m").len(), 1);
    }
}
