//! The fuzz targets (`fuzz/`, run for long with cargo-fuzz on nightly) on stable, briefly:
//! every input of each committed corpus (the seeds, and every crash found, kept as a
//! regression), then a few thousand deterministic mutations of them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("frames", aether_proto::fuzz::frames),
    ("websocket", aetherd::fuzz::websocket),
    ("topics", aether_proto::fuzz::topics),
    ("manifest", aether_proto::fuzz::manifest),
    ("bundle", aetherd::fuzz::bundle),
    ("catalog_index", aetherd::fuzz::catalog_index),
    ("graph", aetherd::fuzz::graph),
    ("vfs_path", aetherd::fuzz::vfs_path),
    ("markdown", apps::fuzz::markdown),
    ("program_output", apps::fuzz::program_output),
    ("desktop_config", aether_tui::fuzz::config),
];

/// Mutations tried per target, at most, and the time they may take.
const MUTATIONS: usize = 3_000;
const BUDGET: Duration = Duration::from_millis(1500);

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|entry| {
            let path = entry.path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} has no seeds", dir.display());
    inputs
}

/// Run `target` on `input`; a panic fails the test, naming the input (kept in a file).
fn run(name: &str, target: Target, input: &[u8], origin: &str) {
    let outcome = std::panic::catch_unwind(|| target(input));
    if outcome.is_err() {
        let kept = std::env::temp_dir().join(format!("aether-fuzz-{name}-{}", input.len()));
        let _ = std::fs::write(&kept, input);
        panic!(
            "fuzz target {name} panicked on {origin}; the input is in {} (add it to fuzz/corpus/{name}/)",
            kept.display()
        );
    }
}

/// A small deterministic mutator (xorshift), with tokens the decoders care about.
struct Mutator(u64);

const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b"\\u",
    b":",
    b",",
    b"${",
    b"$${",
    b"..",
    b"/",
    b"*",
    b">",
    b"\n",
    b"\r",
    b"\x00",
    b"\x1b[",
    b"\x1b]",
    b"**",
    b"`",
    b"@",
    b"null",
    b"-1",
    b"18446744073709551616",
    b"\xff",
    b"\xe2\x80\xae",
];

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn mutate(&mut self, input: &[u8], other: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(out.len() + 1);
            match self.below(7) {
                0 if !out.is_empty() => {
                    let i = self.below(out.len());
                    out[i] ^= 1 << self.below(8);
                }
                1 if !out.is_empty() => {
                    let i = self.below(out.len());
                    out[i] = self.next() as u8;
                }
                2 => {
                    let token = TOKENS[self.below(TOKENS.len())];
                    out.splice(at..at, token.iter().copied());
                }
                3 if !out.is_empty() => {
                    let end = (at + self.below(16)).min(out.len());
                    out.drain(at.min(end)..end);
                }
                4 if !out.is_empty() => {
                    let from = self.below(out.len());
                    let end = (from + self.below(32)).min(out.len());
                    let piece = out[from..end].to_vec();
                    out.splice(at..at, piece);
                }
                5 if !other.is_empty() => {
                    let from = self.below(other.len());
                    let end = (from + self.below(64)).min(other.len());
                    out.splice(at..at, other[from..end].iter().copied());
                }
                _ => out.truncate(at),
            }
        }
        out.truncate(64 << 10);
        out
    }
}

#[test]
fn every_fuzz_targets_corpus_runs_clean_and_so_do_mutations_of_it() {
    for (name, target) in TARGETS {
        let inputs = corpus(name);
        for (path, bytes) in &inputs {
            run(name, *target, bytes, &path.display().to_string());
        }
        let mut mutator = Mutator(0x2545_f491_4f6c_dd1d ^ name.len() as u64);
        let started = Instant::now();
        for i in 0..MUTATIONS {
            if started.elapsed() > BUDGET {
                break;
            }
            let (_, base) = &inputs[mutator.below(inputs.len())];
            let (_, other) = &inputs[mutator.below(inputs.len())];
            let input = mutator.mutate(base, other);
            run(name, *target, &input, &format!("mutation {i}"));
        }
    }
}
