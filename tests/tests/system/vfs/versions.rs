//! Versions and concurrent writers: `if_version`, `if_absent`, racing saves and
//! appends, and reads that always pair data with its own version.

use std::sync::Arc;

use aether_proto::ErrorCode;
use aether_proto::client::ClientError;
use aether_tests::TestDaemon;
use serde_json::{Value, json};

use super::{
    MIB, assert_absent, chunk, daemon_code, noise, ok, owner_files, read_text, refused, says,
    shown, start_upload, stat, unb64, write_bytes, write_text,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_naming_the_current_version_succeeds_and_a_stale_one_is_a_conflict() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let v1 = write_text(&files, "/doc.txt", "draft 1").await["version"].clone();
    assert_eq!(stat(&files, "/doc.txt").await["version"], v1);

    let second = ok(
        &files,
        "vfs.write",
        json!({ "path": "/doc.txt", "data": "draft 2", "if_version": v1 }),
    )
    .await;
    let v2 = second["version"].clone();
    assert_ne!(v2, v1);

    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/doc.txt", "data": "draft 2 from a stale copy", "if_version": v1 }),
        ErrorCode::Conflict,
    )
    .await;
    says(
        &msg,
        &["/doc.txt", v1.as_str().unwrap(), v2.as_str().unwrap()],
    );
    assert_eq!(read_text(&files, "/doc.txt").await, "draft 2");

    // Appending under a version works the same way.
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/doc.txt", "data": "+", "append": true, "if_version": v1 }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &[v1.as_str().unwrap()]);
    ok(
        &files,
        "vfs.write",
        json!({ "path": "/doc.txt", "data": "+", "append": true, "if_version": v2 }),
    )
    .await;
    assert_eq!(read_text(&files, "/doc.txt").await, "draft 2+");

    // A version for a file that does not exist is a conflict, not a creation.
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/absent.txt", "data": "x", "if_version": v1 }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/absent.txt", "absent"]);
    assert_absent(&files, "/absent.txt").await;

    // Reads can be conditional too.
    let msg = refused(
        &files,
        "vfs.read",
        json!({ "path": "/doc.txt", "if_version": v1 }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/doc.txt", v1.as_str().unwrap()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_absent_creates_but_never_replaces() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let created = ok(
        &files,
        "vfs.write",
        json!({ "path": "/once.txt", "data": "first", "if_absent": true }),
    )
    .await;
    assert_eq!(created["created"], true, "{created}");
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/once.txt", "data": "second", "if_absent": true }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/once.txt", "already exists"]);
    assert_eq!(read_text(&files, "/once.txt").await, "first");

    // On an upload, `if_absent` (given with the first chunk) is checked when it commits.
    let started = ok(
        &files,
        "vfs.write",
        json!({ "path": "/twice.txt", "data": "a", "more": true, "if_absent": true }),
    )
    .await;
    let id = started["upload"].as_str().unwrap().to_owned();
    write_text(&files, "/twice.txt", "got there first").await;
    let msg = daemon_code(
        chunk(&files, "/twice.txt", Some(&id), 1, b"b", false).await,
        ErrorCode::Conflict,
    );
    says(&msg, &["/twice.txt", "already exists"]);
    assert_eq!(read_text(&files, "/twice.txt").await, "got there first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_condition_sent_with_the_last_chunk_is_not_silently_ignored() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let base = write_text(&files, "/doc.txt", "base").await["version"].clone();
    let id = start_upload(&files, "/doc.txt", b"an edit of base, ").await;
    // Meanwhile another client saves.
    let other = d.owner().await;
    write_text(&other.app("editor"), "/doc.txt", "the other save").await;
    // The last chunk says which version the upload replaces: it must be honoured
    // (conflict) or refused as misplaced (bad_frame), never ignored.
    let last = files
        .request_json::<_, Value>(
            "vfs.write",
            &json!({ "path": "/doc.txt", "upload": id, "offset": 17, "data": "sent in two chunks", "if_version": base }),
        )
        .await;
    match last {
        Err(ClientError::Daemon(e))
            if matches!(e.code, ErrorCode::Conflict | ErrorCode::BadFrame) =>
        {
            assert!(!e.msg.is_empty());
        }
        other => panic!(
            "an upload whose last chunk names the stale version {base} replaced a newer save: {other:?}"
        ),
    }
    assert_eq!(read_text(&files, "/doc.txt").await, "the other save");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_editing_one_file_never_silently_lose_a_save() {
    let d = TestDaemon::start().await;
    let alice_window = d.owner().await;
    let bob_window = d.owner().await;
    let (a, b) = (alice_window.app("files"), bob_window.app("editor"));
    write_text(&a, "/shared.md", "# Plan\n").await;

    // Both open the file.
    let opened_a = ok(&a, "vfs.read", json!({ "path": "/shared.md" })).await;
    let opened_b = ok(&b, "vfs.read", json!({ "path": "/shared.md" })).await;
    assert_eq!(opened_a["version"], opened_b["version"]);
    let base = opened_a["version"].clone();

    // A saves first.
    let saved_a = ok(
        &a,
        "vfs.write",
        json!({ "path": "/shared.md", "data": "# Plan\n- from A\n", "if_version": base }),
    )
    .await;
    // B's save, based on what B opened, is refused rather than overwriting A's.
    let msg = refused(
        &b,
        "vfs.write",
        json!({ "path": "/shared.md", "data": "# Plan\n- from B\n", "if_version": base }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/shared.md", base.as_str().unwrap(), "reload"]);
    assert_eq!(read_text(&b, "/shared.md").await, "# Plan\n- from A\n");

    // B reloads, merges, and saves on top of A's version.
    let reloaded = ok(&b, "vfs.read", json!({ "path": "/shared.md" })).await;
    assert_eq!(reloaded["version"], saved_a["version"]);
    ok(
        &b,
        "vfs.write",
        json!({ "path": "/shared.md", "data": "# Plan\n- from A\n- from B\n", "if_version": reloaded["version"] }),
    )
    .await;
    assert_eq!(
        read_text(&a, "/shared.md").await,
        "# Plan\n- from A\n- from B\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_concurrent_writers_from_one_version_exactly_one_wins() {
    const WRITERS: usize = 20;
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let base = write_text(&files, "/race.txt", "base").await["version"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut clients = vec![];
    for _ in 0..WRITERS {
        clients.push(d.owner().await);
    }
    let start = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let mut writers = tokio::task::JoinSet::new();
    for (i, client) in clients.into_iter().enumerate() {
        let (start, base) = (start.clone(), base.clone());
        writers.spawn(async move {
            let body =
                json!({ "path": "/race.txt", "data": format!("writer {i}"), "if_version": base });
            start.wait().await;
            (
                i,
                client
                    .app("files")
                    .request_json::<_, Value>("vfs.write", &body)
                    .await,
            )
        });
    }
    let mut winners = vec![];
    let mut conflicts = 0;
    while let Some(done) = writers.join_next().await {
        let (i, result) = done.expect("a writer task panicked");
        match result {
            Ok(answer) => winners.push((i, answer)),
            Err(ClientError::Daemon(e)) if e.code == ErrorCode::Conflict => {
                says(&e.msg, &["/race.txt", &base]);
                conflicts += 1;
            }
            Err(other) => panic!("writer {i} failed with something else than conflict: {other:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one writer from version {base} may win: {winners:?}"
    );
    assert_eq!(conflicts, WRITERS - 1);
    let (winner, answer) = &winners[0];
    let now = ok(&files, "vfs.read", json!({ "path": "/race.txt" })).await;
    assert_eq!(now["data"], format!("writer {winner}"), "{now}");
    assert_eq!(now["version"], answer["version"], "{now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_all_land_whole() {
    const WRITERS: usize = 20;
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let mut appends = tokio::task::JoinSet::new();
    for i in 0..WRITERS {
        let files = files.clone();
        appends.spawn(async move {
            ok(
                &files,
                "vfs.write",
                json!({ "path": "/log.txt", "data": format!("line {i:02}\n"), "append": true }),
            )
            .await
        });
    }
    let mut created = 0;
    while let Some(done) = appends.join_next().await {
        if done.expect("an append task panicked")["created"] == true {
            created += 1;
        }
    }
    assert_eq!(created, 1, "one append created the file, the rest appended");
    let text = read_text(&files, "/log.txt").await;
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), WRITERS, "an append was lost: {text:?}");
    lines.sort();
    let expected: Vec<String> = (0..WRITERS).map(|i| format!("line {i:02}")).collect();
    assert_eq!(lines, expected, "{text:?}");
}

/// What the readers of a race saw, and when to stop.
struct Race {
    reads: std::sync::atomic::AtomicUsize,
    wanted: usize,
    deadline: std::time::Instant,
    mismatches: std::sync::Mutex<Vec<String>>,
}
impl Race {
    fn done(&self) -> bool {
        self.reads.load(std::sync::atomic::Ordering::Relaxed) >= self.wanted
            || std::time::Instant::now() >= self.deadline
            || !self.mismatches.lock().unwrap().is_empty()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_never_pairs_data_with_the_version_of_other_content() {
    // A race, so it has a bounded number of reads (and time) to show: each read of a
    // freshly replaced file must answer the version of the bytes it returns, or a save
    // based on it would overwrite changes its author never saw.
    const SIZE: usize = 2 * MIB;
    const READERS: usize = 3;
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let (a, b) = (Arc::new(noise(SIZE, 1)), Arc::new(noise(SIZE, 2)));
    let va = write_bytes(&files, "/a.bin", &a).await["version"].clone();
    let vb = write_bytes(&files, "/b.bin", &b).await["version"].clone();
    ok(
        &files,
        "vfs.copy",
        json!({ "from": "/a.bin", "to": "/g.bin" }),
    )
    .await;
    let race = Arc::new(Race {
        reads: Default::default(),
        wanted: 60,
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(6),
        mismatches: Default::default(),
    });

    let mut tasks = tokio::task::JoinSet::new();
    // One client keeps replacing /g.bin with A or B (a copy leaves no version cached)...
    {
        let (files, race) = (files.clone(), race.clone());
        tasks.spawn(async move {
            let mut i = 0;
            while !race.done() {
                let from = if i % 2 == 0 { "/b.bin" } else { "/a.bin" };
                ok(
                    &files,
                    "vfs.copy",
                    json!({ "from": from, "to": "/g.bin", "overwrite": true }),
                )
                .await;
                i += 1;
            }
        });
    }
    // ...while others keep reading it.
    for _ in 0..READERS {
        let client = d.owner().await;
        let (a, b, va, vb, race) = (a.clone(), b.clone(), va.clone(), vb.clone(), race.clone());
        tasks.spawn(async move {
            let files = client.app("files");
            while !race.done() {
                let answer = ok(
                    &files,
                    "vfs.read",
                    json!({ "path": "/g.bin", "length": SIZE, "encoding": "base64" }),
                )
                .await;
                let n = race
                    .reads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                let head = unb64(&answer["data"].as_str().unwrap()[..44]);
                let content = if a.starts_with(&head) {
                    "A"
                } else if b.starts_with(&head) {
                    "B"
                } else {
                    panic!("/g.bin holds neither A nor B")
                };
                let version = if answer["version"] == va {
                    "A"
                } else if answer["version"] == vb {
                    "B"
                } else {
                    panic!(
                        "/g.bin has a version of neither A nor B: {}",
                        shown(&answer)
                    )
                };
                if content != version {
                    race.mismatches.lock().unwrap().push(format!(
                        "read {n} returned the bytes of {content} with the version of {version}"
                    ));
                }
            }
        });
    }
    while let Some(task) = tasks.join_next().await {
        task.expect("a reader or writer panicked");
    }
    let mismatches = race.mismatches.lock().unwrap();
    assert!(
        mismatches.is_empty(),
        "a read answered one content with another's version: {mismatches:?} ({} reads in all)",
        race.reads.load(std::sync::atomic::Ordering::Relaxed)
    );
}
