//! Opening a bundle: a `.tar.gz` read entirely in memory under limits, every entry checked
//! before anything is written anywhere. Nothing here touches the file system.

use std::collections::BTreeMap;
use std::io::Read;

use sha2::{Digest, Sha256};

use aether_proto::api::apps::{HOST_FUNCTIONS, HOST_MODULE};
use aether_proto::{ErrorBody, ErrorCode, Manifest};

/// The most a bundle may be, packed and unpacked, and what it may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub packed_bytes: u64,
    pub unpacked_bytes: u64,
    pub files: usize,
}

/// A bundle that passed every check: its identity, its manifest and its files.
#[derive(Debug)]
pub struct Bundle {
    /// SHA-256 of the packed bytes, hex: the bundle's identity.
    pub sha256: String,
    pub size: u64,
    pub manifest: Manifest,
    /// Relative path → content, sorted; `manifest.json` and the entry among them.
    pub files: BTreeMap<String, Vec<u8>>,
}

fn refuse(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadFrame, msg)
}

fn too_large(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::TooLarge, msg)
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Check `bytes` as a bundle.
pub fn open(bytes: &[u8], limits: Limits) -> Result<Bundle, ErrorBody> {
    if bytes.len() as u64 > limits.packed_bytes {
        return Err(too_large(format!(
            "the bundle is {} bytes; at most {} MiB is accepted",
            bytes.len(),
            limits.packed_bytes >> 20
        )));
    }
    if bytes.len() < 2 || bytes[..2] != [0x1f, 0x8b] {
        return Err(refuse("the bundle is not a .tar.gz (no gzip header)"));
    }
    let files = unpack(bytes, limits)?;
    let manifest_text = files
        .get("manifest.json")
        .ok_or_else(|| refuse("the bundle has no manifest.json at its top"))?;
    let manifest_text = std::str::from_utf8(manifest_text)
        .map_err(|_| refuse("the bundle's manifest.json is not UTF-8"))?;
    let manifest = Manifest::from_json("manifest.json", manifest_text)
        .map_err(|e| refuse(format!("the bundle's {e}")))?;
    let entry = manifest.entry.as_deref().ok_or_else(|| {
        refuse("manifest.json: field `entry`: an installed app needs an entry module to run")
    })?;
    let module = files.get(entry).ok_or_else(|| {
        refuse(format!(
            "manifest.json: field `entry`: {entry:?} is not in the bundle"
        ))
    })?;
    check_module(module).map_err(|problem| refuse(format!("the entry {entry:?}: {problem}")))?;
    Ok(Bundle {
        sha256: sha256_hex(bytes),
        size: bytes.len() as u64,
        manifest,
        files,
    })
}

/// Stops reading once more than `left` bytes came out: a decompression bomb ends here.
struct Capped<R> {
    inner: R,
    left: u64,
    hit: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min(self.left.saturating_add(1) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            self.hit = true;
            return Err(std::io::Error::other("unpacked size limit"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn unpack(bytes: &[u8], limits: Limits) -> Result<BTreeMap<String, Vec<u8>>, ErrorBody> {
    let mut capped = Capped {
        inner: flate2::read::GzDecoder::new(bytes),
        left: limits.unpacked_bytes,
        hit: false,
    };
    let result = read_entries(&mut capped, limits);
    if capped.hit {
        return Err(too_large(format!(
            "the bundle unpacks to more than {} MiB (a decompression bomb?)",
            limits.unpacked_bytes >> 20
        )));
    }
    result
}

fn read_entries<R: Read>(
    reader: &mut R,
    limits: Limits,
) -> Result<BTreeMap<String, Vec<u8>>, ErrorBody> {
    let broken = |e: std::io::Error| refuse(format!("the bundle is not a valid tar.gz: {e}"));
    let mut archive = tar::Archive::new(reader);
    let mut files = BTreeMap::new();
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let path = entry_path(&raw).map_err(|problem| {
            refuse(format!("the bundle's entry {name:?} is refused: {problem}"))
        })?;
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            // Folders are made as files need them; `git archive` starts with a global PAX
            // header (the commit id), which names no file.
            tar::EntryType::Directory | tar::EntryType::XGlobalHeader => continue,
            kind => {
                return Err(refuse(format!(
                    "the bundle's entry {name:?} is a {}: bundles hold plain files only",
                    kind_name(kind)
                )));
            }
        }
        if files.len() >= limits.files {
            return Err(too_large(format!(
                "the bundle holds more than {} files",
                limits.files
            )));
        }
        let mut content = Vec::with_capacity(entry.size().min(1 << 20) as usize);
        entry.read_to_end(&mut content).map_err(broken)?;
        if files.insert(path.clone(), content).is_some() {
            return Err(refuse(format!("the bundle holds {path:?} twice")));
        }
    }
    // A file cannot also be a folder: `a` and `a/b` would fail while writing, after checks
    // that promised the bundle whole.
    for name in files.keys() {
        let folder = format!("{name}/");
        if let Some((inside, _)) = files.range(folder.clone()..).next()
            && inside.starts_with(&folder)
        {
            return Err(refuse(format!(
                "the bundle holds a file {name:?} and a folder of the same name ({inside:?})"
            )));
        }
    }
    Ok(files)
}

fn kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "FIFO",
        _ => "special entry",
    }
}

/// A file's place in the bundle: relative, no `..`, no `.`, at most 8 deep, tidy UTF-8.
fn entry_path(raw: &[u8]) -> Result<String, &'static str> {
    let text = std::str::from_utf8(raw).map_err(|_| "its name is not UTF-8")?;
    let text = text.strip_prefix("./").unwrap_or(text);
    let text = text.strip_suffix('/').unwrap_or(text);
    if text.starts_with('/') {
        return Err("an absolute path");
    }
    if text.is_empty() || text.len() > 255 || text.contains(['\\', '\0']) {
        return Err("an empty, long or odd name");
    }
    let segments: Vec<&str> = text.split('/').collect();
    if segments.contains(&"..") {
        return Err("it climbs out with `..`");
    }
    if segments.iter().any(|s| s.is_empty() || *s == ".") || segments.len() > 8 {
        return Err("an odd path");
    }
    if segments.iter().any(|s| s.chars().any(char::is_control)) {
        return Err("control characters in its name");
    }
    Ok(text.to_owned())
}

/// WASI preview1: what the sandbox links (`wasmtime_wasi::p1`).
const WASI_FUNCTIONS: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// A valid core module, a WASI command (`_start`), importing only functions the sandbox
/// provides: WASI preview1 and the `aether` host interface.
pub fn check_module(wasm: &[u8]) -> Result<(), String> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err("not a WebAssembly module (no \\0asm header)".into());
    }
    if wasm[4..8] != [1, 0, 0, 0] {
        return Err("a WebAssembly component, not a core module: only WASI preview1 command modules run here".into());
    }
    wasmparser::Validator::new()
        .validate_all(wasm)
        .map_err(|e| format!("not a valid module: {e}"))?;
    let mut has_start = false;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| format!("not a valid module: {e}"))? {
            wasmparser::Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| format!("not a valid module: {e}"))?;
                    let known = match import.module {
                        "wasi_snapshot_preview1" => WASI_FUNCTIONS.contains(&import.name),
                        HOST_MODULE => HOST_FUNCTIONS.contains(&import.name),
                        _ => false,
                    };
                    if !known || !matches!(import.ty, wasmparser::TypeRef::Func(_)) {
                        return Err(format!(
                            "it imports `{}::{}`, which the sandbox does not provide (WASI preview1 and `{HOST_MODULE}` functions only)",
                            import.module, import.name
                        ));
                    }
                }
            }
            wasmparser::Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| format!("not a valid module: {e}"))?;
                    has_start |=
                        export.name == "_start" && export.kind == wasmparser::ExternalKind::Func;
                }
            }
            _ => {}
        }
    }
    if !has_start {
        return Err("it exports no `_start` function: it is not a WASI command".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths() {
        assert_eq!(entry_path(b"./app.wasm").unwrap(), "app.wasm");
        assert_eq!(entry_path(b"doc/a.md").unwrap(), "doc/a.md");
        for bad in [
            &b"../x"[..],
            b"/etc/passwd",
            b"a/../../b",
            b"",
            b"a//b",
            b"a\\b",
            b"\xff",
            b"a/./b",
        ] {
            assert!(entry_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn modules() {
        let ok = wat::parse_str(
            r#"(module (import "aether" "request" (func (param i32 i32 i32 i32 i32) (result i32)))
                (memory (export "memory") 1) (func (export "_start")))"#,
        )
        .unwrap();
        check_module(&ok).unwrap();
        let sock =
            wat::parse_str(r#"(module (import "env" "socket" (func)) (func (export "_start")))"#)
                .unwrap();
        assert!(check_module(&sock).unwrap_err().contains("env::socket"));
        let unknown =
            wat::parse_str(r#"(module (import "aether" "spawn" (func)) (func (export "_start")))"#)
                .unwrap();
        assert!(
            check_module(&unknown)
                .unwrap_err()
                .contains("aether::spawn")
        );
        let lib = wat::parse_str(r#"(module (func (export "main")))"#).unwrap();
        assert!(check_module(&lib).unwrap_err().contains("_start"));
        assert!(
            check_module(b"#!/bin/sh\necho hi")
                .unwrap_err()
                .contains("header")
        );
    }
}
