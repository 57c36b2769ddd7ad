//! App bundles for tests: good ones, and every kind of bad one an attacker would send
//! (entries climbing out, links, devices, bombs, forged signatures), built byte by byte.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One entry of a hand-made archive.
pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    /// A symbolic or hard link named `.0` pointing at `.1`.
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    CharDevice(&'a str),
    Fifo(&'a str),
    /// A file whose name is written into the header as is: `../x`, `/etc/x`.
    RawName(&'a [u8], &'a [u8]),
}

/// A `.tar.gz` of these entries, with no checks on the way (the daemon must make them).
pub fn tar_gz(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_mtime(0);
        let (name, data): (&[u8], &[u8]) = match entry {
            Entry::File(name, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                (name.as_bytes(), data)
            }
            Entry::RawName(name, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                (name, data)
            }
            Entry::Symlink(name, target) | Entry::HardLink(name, target) => {
                header.set_entry_type(if matches!(entry, Entry::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                header.as_gnu_mut().unwrap().linkname[..target.len()]
                    .copy_from_slice(target.as_bytes());
                (name.as_bytes(), &[])
            }
            Entry::CharDevice(name) => {
                header.set_entry_type(tar::EntryType::Char);
                (name.as_bytes(), &[])
            }
            Entry::Fifo(name) => {
                header.set_entry_type(tar::EntryType::Fifo);
                (name.as_bytes(), &[])
            }
        };
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    gzip(&builder.into_inner().unwrap())
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A manifest: `caps` as (capability, reason).
pub fn manifest(id: &str, version: &str, caps: &[&str]) -> Value {
    let permissions: serde_json::Map<String, Value> = caps
        .iter()
        .map(|c| ((*c).to_owned(), json!(format!("needed for {c}"))))
        .collect();
    json!({ "id": id, "name": format!("App {id}"), "version": version,
            "description": format!("the test app {id}"),
            "permissions": permissions, "entry": "app.wasm" })
}

/// A WASI command that does nothing.
pub fn noop_module() -> Vec<u8> {
    wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#).unwrap()
}

/// A command that makes one bus request through the `aether` interface and prints what came
/// back (the answer, or the error) on stdout.
pub fn request_module(topic: &str, data: &str) -> Vec<u8> {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    wat::parse_str(format!(
        r#"(module
  (import "aether" "request" (func $req (param i32 i32 i32 i32 i32) (result i32)))
  (import "aether" "result" (func $res (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 64) "{topic}")
  (data (i32.const 512) "{data}")
  (func (export "_start") (local $n i32)
    (local.set $n (call $req (i32.const 64) (i32.const {tlen}) (i32.const 512) (i32.const {dlen}) (i32.const 0)))
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then (local.set $n (i32.sub (i32.const 0) (local.get $n)))))
    (local.set $n (call $res (i32.const 4096) (local.get $n)))
    (i32.store (i32.const 0) (i32.const 4096))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        topic = esc(topic),
        data = esc(data),
        tlen = topic.len(),
        dlen = data.len(),
    ))
    .unwrap()
}

/// A command that subscribes to `topic`, publishes `data` on it, and prints the message
/// `next` gives it (or the error).
pub fn echo_module(topic: &str, data: &str) -> Vec<u8> {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    wat::parse_str(format!(
        r#"(module
  (import "aether" "subscribe" (func $sub (param i32 i32) (result i32)))
  (import "aether" "publish" (func $pub (param i32 i32 i32 i32) (result i32)))
  (import "aether" "next" (func $next (param i32) (result i32)))
  (import "aether" "result" (func $res (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 64) "{topic}")
  (data (i32.const 512) "{data}")
  (func $print (param $n i32)
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then (local.set $n (i32.sub (i32.const 0) (local.get $n)))))
    (local.set $n (call $res (i32.const 4096) (local.get $n)))
    (i32.store (i32.const 0) (i32.const 4096))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start") (local $n i32)
    (local.set $n (call $sub (i32.const 64) (i32.const {tlen})))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then (call $print (local.get $n)) (return)))
    (local.set $n (call $pub (i32.const 64) (i32.const {tlen}) (i32.const 512) (i32.const {dlen})))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then (call $print (local.get $n)) (return)))
    (call $print (call $next (i32.const 2000)))))"#,
        topic = esc(topic),
        data = esc(data),
        tlen = topic.len(),
        dlen = data.len(),
    ))
    .unwrap()
}

/// A good bundle: this manifest and module as `app.wasm`.
pub fn bundle(manifest: &Value, module: &[u8]) -> Vec<u8> {
    let text = serde_json::to_vec_pretty(manifest).unwrap();
    tar_gz(&[
        Entry::File("manifest.json", &text),
        Entry::File("app.wasm", module),
    ])
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A publisher's key pair, from a seed.
pub struct Publisher {
    pub name: String,
    key: SigningKey,
}

impl Publisher {
    pub fn new(name: &str, seed: u8) -> Publisher {
        Publisher {
            name: name.into(),
            key: SigningKey::from_bytes(&[seed; 32]),
        }
    }

    /// The public key as config takes it.
    pub fn public_key(&self) -> String {
        BASE64.encode(self.key.verifying_key().as_bytes())
    }

    /// The signature over a bundle's SHA-256 digest, base64.
    pub fn sign(&self, bundle: &[u8]) -> String {
        BASE64.encode(self.key.sign(&Sha256::digest(bundle)).to_bytes())
    }
}

/// A catalog folder: `index.json` and the bundles, each (manifest, bundle, publisher).
pub fn write_catalog(dir: &std::path::Path, apps: &[(&Value, &[u8], Option<&Publisher>)]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut entries = vec![];
    for (manifest, bytes, publisher) in apps {
        let id = manifest["id"].as_str().unwrap();
        let version = manifest["version"].as_str().unwrap();
        let file = format!("{id}-{version}.tar.gz");
        std::fs::write(dir.join(&file), bytes).unwrap();
        entries.push(json!({
            "id": id, "name": manifest["name"], "version": version,
            "description": manifest["description"],
            "bundle": file, "sha256": sha256_hex(bytes), "size": bytes.len(),
            "publisher": publisher.map(|p| p.name.clone()),
            "signature": publisher.map(|p| p.sign(bytes)),
            "manifest": manifest,
        }));
    }
    let index = json!({ "catalog": 1, "name": "test catalog", "apps": entries });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec_pretty(&index).unwrap(),
    )
    .unwrap();
}

/// A command that writes `text` to `/name` in the files its app may change (WASI, through
/// the preopened root), then prints `wrote`.
pub fn writer_module(name: &str, text: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{name}")
  (data (i32.const 256) "{text}")
  (data (i32.const 512) "wrote\n")
  (func (export "_start")
    (if (call $open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const {nlen})
          (i32.const 9) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 16))
      (then (unreachable)))
    (i32.store (i32.const 0) (i32.const 256))
    (i32.store (i32.const 4) (i32.const {tlen}))
    (drop (call $write (i32.load (i32.const 16)) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const 512))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        nlen = name.len(),
        tlen = text.len(),
    ))
    .unwrap()
}

/// A command whose `fd_write` import has the wrong type: it validates, and cannot link.
pub fn mislinked_module() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $write (i32.const 1)))))"#,
    )
    .unwrap()
}

/// A valid command with `functions` functions of some work each: slow to compile.
pub fn heavy_module(functions: usize, seed: u32) -> Vec<u8> {
    let mut wat = String::from("(module (memory (export \"memory\") 1)\n");
    for f in 0..functions {
        wat.push_str(&format!(
            "(func $f{f} (param i32) (result i32) local.get 0\n"
        ));
        for k in 0..40 {
            wat.push_str(&format!(
                "i32.const {} i32.mul i32.const {} i32.add i32.const {} i32.rotl\n",
                (f as u32).wrapping_mul(31).wrapping_add(k) | 1,
                seed.wrapping_add(k),
                k % 31
            ));
        }
        wat.push_str(")\n");
    }
    wat.push_str("(func (export \"_start\") i32.const 1 call $f0 drop))");
    wat::parse_str(wat).unwrap()
}

/// A command that reads `/name` through WASI and prints it, or `denied` if it cannot open
/// it; then lists `/` and prints `listed` or `unlisted`.
pub fn reader_module(name: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir" (func $readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{name}")
  (data (i32.const 320) "denied\n")
  (data (i32.const 336) "listed\n")
  (data (i32.const 352) "unlisted\n")
  (func $print (param $at i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (if (call $open (i32.const 3) (i32.const 1) (i32.const 64) (i32.const {nlen})
          (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 16))
      (then (call $print (i32.const 320) (i32.const 7)))
      (else
        (i32.store (i32.const 24) (i32.const 1024))
        (i32.store (i32.const 28) (i32.const 4096))
        (drop (call $read (i32.load (i32.const 16)) (i32.const 24) (i32.const 1) (i32.const 32)))
        (call $print (i32.const 1024) (i32.load (i32.const 32)))))
    (if (call $readdir (i32.const 3) (i32.const 8192) (i32.const 4096) (i64.const 0) (i32.const 36))
      (then (call $print (i32.const 352) (i32.const 9)))
      (else (call $print (i32.const 336) (i32.const 7))))))"#,
        nlen = name.len(),
    ))
    .unwrap()
}

/// A command that makes a symbolic link `/name` pointing at `target` through WASI, then
/// prints `linked` (or `refused`).
pub fn linker_module(target: &str, name: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_symlink"
    (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{target}")
  (data (i32.const 256) "{name}")
  (data (i32.const 512) "linked\n")
  (data (i32.const 528) "refused\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 512))
    (i32.store (i32.const 4) (i32.const 7))
    (if (call $symlink (i32.const 64) (i32.const {tlen}) (i32.const 3) (i32.const 256) (i32.const {nlen}))
      (then (i32.store (i32.const 0) (i32.const 528)) (i32.store (i32.const 4) (i32.const 8))))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        tlen = target.len(),
        nlen = name.len(),
    ))
    .unwrap()
}
