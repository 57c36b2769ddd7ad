//! Catalogs: where apps come from. Each is `builtin` (the sample apps compiled into aetherd),
//! a folder, or an `http(s)://` URL, and serves an `index.json` naming bundles beside it.
//! Everything a catalog says is untrusted: the index is size-capped and parsed strictly, each
//! entry's manifest is validated, bundle names are plain file names (never a path or another
//! host), and a fetched bundle must match the size and SHA-256 its entry gives.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;

use aether_proto::{ErrorBody, ErrorCode, Manifest};

/// The largest `index.json` read.
const MAX_INDEX_BYTES: u64 = 4 << 20;
const MAX_ENTRIES: usize = 10_000;

/// The sample catalog inside aetherd, built from `guests/apps` by `scripts/build-catalog`.
const BUILTIN: &[(&str, &[u8])] = super::builtin::FILES;

#[derive(Debug, Clone)]
pub enum Location {
    Builtin,
    Folder(PathBuf),
    Http(reqwest::Url),
}

impl Location {
    pub fn parse(text: &str) -> Location {
        if text == "builtin" {
            return Location::Builtin;
        }
        match reqwest::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Location::Http(url),
            _ => Location::Folder(PathBuf::from(text)),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Location::Builtin => "builtin".into(),
            Location::Folder(dir) => dir.display().to_string(),
            Location::Http(url) => url.to_string(),
        }
    }
}

/// One app version a catalog offers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The bundle's file name beside the index.
    pub bundle: String,
    pub sha256: String,
    pub size: u64,
    #[serde(default)]
    pub publisher: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
    /// Parsed strictly later: a bad one skips the entry, not the catalog.
    pub manifest: serde_json::Value,
    #[serde(skip)]
    pub parsed: Option<Manifest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexFile {
    catalog: u32,
    name: String,
    apps: Vec<Entry>,
}

/// A catalog as read: its name, its good entries, and what was wrong with the others.
#[derive(Debug)]
pub struct Index {
    pub name: String,
    pub entries: Vec<Entry>,
    pub skipped: Vec<String>,
}

fn unavailable(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::Unavailable, msg)
}

fn garbage(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadFrame, msg)
}

/// Reads catalogs over the file system and HTTP.
pub struct Fetcher {
    http: reqwest::Client,
    max_bundle: u64,
}

impl Fetcher {
    pub fn new(timeout: Duration, max_bundle: u64) -> anyhow::Result<Fetcher> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // A catalog's files come from its own address, never from where it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Fetcher { http, max_bundle })
    }

    /// Read a catalog's index.
    pub async fn index(&self, location: &Location) -> Result<Index, ErrorBody> {
        let bytes = self.read(location, "index.json", MAX_INDEX_BYTES).await?;
        parse_index(&bytes).map_err(|e| {
            garbage(format!(
                "the catalog {} serves a bad index.json: {}",
                location.describe(),
                e.msg
            ))
        })
    }

    /// Fetch an entry's bundle and check it is what the index says.
    pub async fn bundle(&self, location: &Location, entry: &Entry) -> Result<Vec<u8>, ErrorBody> {
        if entry.size > self.max_bundle {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!(
                    "{} {} is {} bytes; at most {} MiB is accepted",
                    entry.id,
                    entry.version,
                    entry.size,
                    self.max_bundle >> 20
                ),
            ));
        }
        let bytes = self.read(location, &entry.bundle, self.max_bundle).await?;
        if bytes.len() as u64 != entry.size {
            return Err(garbage(format!(
                "the bundle of {} {} is {} bytes, but the catalog says {}",
                entry.id,
                entry.version,
                bytes.len(),
                entry.size
            )));
        }
        let hash = super::bundle::sha256_hex(&bytes);
        if !hash.eq_ignore_ascii_case(&entry.sha256) {
            return Err(garbage(format!(
                "the bundle of {} {} has SHA-256 {hash}, but the catalog says {}: it was \
                 altered or damaged on the way",
                entry.id, entry.version, entry.sha256
            )));
        }
        Ok(bytes)
    }

    /// A file beside the index: `name` is a plain file name, checked when the index was read.
    async fn read(&self, location: &Location, name: &str, max: u64) -> Result<Vec<u8>, ErrorBody> {
        let too_large = || {
            ErrorBody::new(
                ErrorCode::TooLarge,
                format!(
                    "{name} in the catalog {} is larger than {} bytes",
                    location.describe(),
                    max
                ),
            )
        };
        match location {
            Location::Builtin => BUILTIN
                .iter()
                .find(|(file, _)| *file == name)
                .map(|(_, bytes)| bytes.to_vec())
                .ok_or_else(|| garbage(format!("the built-in catalog has no {name}"))),
            Location::Folder(dir) => {
                let path = dir.join(name);
                let bytes = tokio::task::spawn_blocking(move || read_capped(&path, max))
                    .await
                    .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?;
                bytes.map_err(|e| match e.kind() {
                    std::io::ErrorKind::FileTooLarge => too_large(),
                    _ => unavailable(format!(
                        "cannot read {name} in the catalog {}: {e}",
                        location.describe()
                    )),
                })
            }
            Location::Http(base) => {
                let url = base
                    .join(name)
                    .map_err(|e| garbage(format!("{name}: {e}")))?;
                let fail = |e: reqwest::Error| {
                    unavailable(format!(
                        "the catalog {} cannot be reached: {e}",
                        location.describe()
                    ))
                };
                let response = self.http.get(url).send().await.map_err(fail)?;
                if !response.status().is_success() {
                    return Err(unavailable(format!(
                        "the catalog {} answered {} for {name}",
                        location.describe(),
                        response.status()
                    )));
                }
                if response.content_length().is_some_and(|n| n > max) {
                    return Err(too_large());
                }
                let mut body = Vec::new();
                let mut stream = response.bytes_stream();
                while let Some(chunk) = stream.next().await {
                    body.extend_from_slice(&chunk.map_err(fail)?);
                    if body.len() as u64 > max {
                        return Err(too_large());
                    }
                }
                Ok(body)
            }
        }
    }
}

fn read_capped(path: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    // Looked at before opening: opening a FIFO would block, and a link may lead anywhere.
    if !std::fs::symlink_metadata(path)?.is_file() {
        return Err(std::io::Error::other("not a plain file"));
    }
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a plain file"));
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::ErrorKind::FileTooLarge.into());
    }
    Ok(bytes)
}

/// A bundle's name in an index: one plain file name ending in `.tar.gz`.
fn plain_bundle_name(name: &str) -> bool {
    name.len() <= 128
        && name.ends_with(".tar.gz")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
}

pub fn parse_index(bytes: &[u8]) -> Result<Index, ErrorBody> {
    let file: IndexFile =
        serde_json::from_slice(bytes).map_err(|e| garbage(format!("not a catalog index: {e}")))?;
    if file.catalog != 1 {
        return Err(garbage(format!(
            "catalog format {} is not known here (1 is)",
            file.catalog
        )));
    }
    if file.apps.len() > MAX_ENTRIES {
        return Err(garbage(format!(
            "{} entries; at most {MAX_ENTRIES}",
            file.apps.len()
        )));
    }
    let mut index = Index {
        name: file.name.chars().take(64).collect(),
        entries: vec![],
        skipped: vec![],
    };
    for mut entry in file.apps {
        match check_entry(&entry) {
            Ok(manifest) => {
                entry.parsed = Some(manifest);
                index.entries.push(entry);
            }
            Err(problem) => index.skipped.push(format!(
                "{} {}: {problem}",
                entry.id.chars().take(40).collect::<String>(),
                entry.version.chars().take(20).collect::<String>()
            )),
        }
    }
    Ok(index)
}

fn check_entry(entry: &Entry) -> Result<Manifest, String> {
    if !plain_bundle_name(&entry.bundle) {
        return Err(format!(
            "bundle {:?} is not a plain .tar.gz file name",
            entry.bundle
        ));
    }
    if entry.sha256.len() != 64 || !entry.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("sha256 is not 64 hex digits".into());
    }
    let manifest =
        Manifest::from_json("manifest", &entry.manifest.to_string()).map_err(|e| e.to_string())?;
    if manifest.id != entry.id || manifest.version != entry.version {
        return Err(format!(
            "the entry says {} {} but its manifest {} {}",
            entry.id, entry.version, manifest.id, manifest.version
        ));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_index_parses_and_names_its_bundles() {
        let (_, bytes) = BUILTIN.iter().find(|(n, _)| *n == "index.json").unwrap();
        let index = parse_index(bytes).unwrap();
        assert!(index.skipped.is_empty(), "{:?}", index.skipped);
        assert!(index.entries.len() >= 3);
        for entry in &index.entries {
            let (_, bundle) = BUILTIN
                .iter()
                .find(|(n, _)| *n == entry.bundle)
                .unwrap_or_else(|| panic!("{} is embedded", entry.bundle));
            assert_eq!(super::super::bundle::sha256_hex(bundle), entry.sha256);
        }
    }

    #[test]
    fn bad_entries_are_skipped_and_bad_indexes_refused() {
        assert!(parse_index(b"<html>").is_err());
        assert!(parse_index(br#"{"catalog": 2, "name": "x", "apps": []}"#).is_err());
        let index = parse_index(
            br#"{"catalog": 1, "name": "x", "apps": [
            {"id": "a", "name": "A", "version": "1.0.0", "bundle": "../../etc/passwd",
             "sha256": "00", "size": 1, "manifest": {}},
            {"id": "b", "name": "B", "version": "1.0.0", "bundle": "b.tar.gz",
             "sha256": "0000000000000000000000000000000000000000000000000000000000000000",
             "size": 1, "manifest": {"id": "b", "name": "B", "version": "1.0.0", "permissions": {"root": "x"}}}
        ]}"#,
        )
        .unwrap();
        assert!(index.entries.is_empty());
        assert_eq!(index.skipped.len(), 2, "{:?}", index.skipped);
        assert!(!plain_bundle_name("http://evil/x.tar.gz"));
        assert!(plain_bundle_name("todo-1.0.0.tar.gz"));
    }
}
