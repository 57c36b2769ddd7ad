//! Chunked uploads: chunks out of order, overlaps, gaps, unknown ids, bad base64,
//! and the limit on open uploads.

use aether_proto::ErrorCode;
use aether_proto::client::ClientError;
use aether_tests::TestDaemon;
use serde_json::json;

use super::{
    MIB, assert_absent, b64, chunk, daemon_code, noise, ok, owner_files, read_all, read_text,
    refused, says, shown, start_upload, stat, write_text,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_mib_upload_in_chunks_out_of_order_reads_back_byte_for_byte() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let data = noise(5 * MIB + 4321, 42);
    let chunks: Vec<&[u8]> = data.chunks(MIB).collect();
    assert_eq!(chunks.len(), 6);
    let path = "/big/upload.bin";
    ok(&files, "vfs.mkdir", json!({ "path": "/big" })).await;

    let id = start_upload(&files, path, chunks[0]).await;
    // Out of order: the tail first, then one in the middle...
    let mut received = MIB;
    for index in [5, 2] {
        let answer = chunk(&files, path, Some(&id), index * MIB, chunks[index], true)
            .await
            .unwrap_or_else(|e| panic!("chunk {index} failed: {e:?}"));
        received += chunks[index].len();
        assert_eq!(answer["received"], received, "{answer}");
        assert_eq!(answer["upload"], id.as_str(), "{answer}");
    }
    // ...then two at once, as a pipelining client sends them...
    let (three, four) = tokio::join!(
        chunk(&files, path, Some(&id), 3 * MIB, chunks[3], true),
        chunk(&files, path, Some(&id), 4 * MIB, chunks[4], true),
    );
    three.expect("chunk 3 failed");
    four.expect("chunk 4 failed");
    // Nothing is visible before the last chunk.
    assert_absent(&files, path).await;
    // ...and the one that closes the gap last.
    let done = chunk(&files, path, Some(&id), MIB, chunks[1], false)
        .await
        .expect("the last chunk failed");
    assert_eq!(done["size"], data.len(), "{done}");
    assert_eq!(done["created"], true, "{done}");
    assert_eq!(done["path"], path, "{done}");

    let info = stat(&files, path).await;
    assert_eq!(info["size"], data.len(), "{info}");
    assert_eq!(
        info["version"], done["version"],
        "the version is the content's: {info}"
    );

    let back = read_all(&files, path, MIB).await;
    assert_eq!(back.len(), data.len());
    if let Some(at) = back.iter().zip(&data).position(|(a, b)| a != b) {
        panic!("the file read back differs from what was uploaded at byte {at}");
    }

    // One read never returns more than the chunk limit (2 MiB by default).
    let capped = ok(
        &files,
        "vfs.read",
        json!({ "path": path, "length": 3 * MIB, "encoding": "base64" }),
    )
    .await;
    assert_eq!(capped["length"], 2 * MIB, "{}", shown(&capped));
    assert_eq!(capped["eof"], false, "{}", shown(&capped));

    // The upload is over: its id is gone.
    let msg = daemon_code(
        chunk(&files, path, Some(&id), data.len(), b"more", false).await,
        ErrorCode::NotFound,
    );
    says(&msg, &[&id]);
    assert_eq!(stat(&files, path).await["size"], data.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlapping_chunk_is_refused_and_the_upload_goes_on() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let data = noise(300, 9);
    let id = start_upload(&files, "/up.bin", &data[..100]).await;

    let msg = daemon_code(
        chunk(&files, "/up.bin", Some(&id), 50, &data[50..150], true).await,
        ErrorCode::Conflict,
    );
    says(&msg, &[&id, "50..100", "offset 50", "overlaps"]);
    // The same chunk again is an overlap too.
    let msg = daemon_code(
        chunk(&files, "/up.bin", Some(&id), 0, &data[..100], true).await,
        ErrorCode::Conflict,
    );
    says(&msg, &["0..100", "overlaps"]);

    // A chunk without an offset, or for another path, is refused too.
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/up.bin", "upload": id, "data": "x", "more": true }),
        ErrorCode::BadFrame,
    )
    .await;
    says(&msg, &["offset"]);
    let msg = daemon_code(
        chunk(
            &files,
            "/elsewhere.bin",
            Some(&id),
            100,
            &data[100..200],
            true,
        )
        .await,
        ErrorCode::Conflict,
    );
    says(&msg, &[&id, "/up.bin", "/elsewhere.bin"]);
    assert_absent(&files, "/elsewhere.bin").await;

    // A new upload must start at 0.
    let msg = daemon_code(
        chunk(&files, "/late.bin", None, 10, b"data", true).await,
        ErrorCode::Conflict,
    );
    says(&msg, &["offset 0"]);

    // None of that harmed the upload: it finishes with exactly the bytes sent.
    chunk(&files, "/up.bin", Some(&id), 100, &data[100..200], true)
        .await
        .unwrap();
    let done = chunk(&files, "/up.bin", Some(&id), 200, &data[200..], false)
        .await
        .unwrap();
    assert_eq!(done["size"], 300, "{done}");
    assert_eq!(read_all(&files, "/up.bin", MIB).await, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finishing_an_upload_with_a_missing_range_is_a_conflict_naming_the_offset() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    write_text(&files, "/gap.bin", "the old content").await;
    let data = noise(300, 11);
    let id = start_upload(&files, "/gap.bin", &data[..100]).await;

    let msg = daemon_code(
        chunk(&files, "/gap.bin", Some(&id), 200, &data[200..], false).await,
        ErrorCode::Conflict,
    );
    says(&msg, &[&id, "missing", "offset 100"]);
    // Nothing was committed: the old file is whole.
    assert_eq!(read_text(&files, "/gap.bin").await, "the old content");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_refused_for_a_gap_finishes_once_the_gap_is_sent_as_the_error_advises() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let data = noise(300, 12);
    let id = start_upload(&files, "/gap.bin", &data[..100]).await;
    let msg = daemon_code(
        chunk(&files, "/gap.bin", Some(&id), 200, &data[200..], false).await,
        ErrorCode::Conflict,
    );
    // The daemon's advice: "send them, then the last chunk again".
    says(
        &msg,
        &["offset 100", "send them, then the last chunk again"],
    );

    chunk(&files, "/gap.bin", Some(&id), 100, &data[100..200], true)
        .await
        .unwrap_or_else(|e| panic!("sending the missing bytes failed: {e:?}"));
    let done = chunk(&files, "/gap.bin", Some(&id), 200, &data[200..], false)
        .await
        .unwrap_or_else(|e| {
            panic!("sending the last chunk again, as the error said to, failed: {e:?}")
        });
    assert_eq!(done["size"], 300, "{done}");
    assert_eq!(read_all(&files, "/gap.bin", MIB).await, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_for_an_unknown_upload_is_not_found() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let msg = daemon_code(
        chunk(
            &files,
            "/x.bin",
            Some("u00000000deadbeef"),
            0,
            b"data",
            false,
        )
        .await,
        ErrorCode::NotFound,
    );
    says(&msg, &["no upload u00000000deadbeef"]);
    assert_absent(&files, "/x.bin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_open_uploads_are_rate_limited() {
    let d = TestDaemon::start_with(|c| c.vfs.max_uploads = 2).await;
    let (_owner, files) = owner_files(&d).await;
    let first = start_upload(&files, "/one.bin", b"1").await;
    start_upload(&files, "/two.bin", b"2").await;
    let msg = daemon_code(
        chunk(&files, "/three.bin", None, 0, b"3", true).await,
        ErrorCode::RateLimited,
    );
    says(&msg, &["2 uploads"]);
    // Finishing one frees its slot.
    chunk(&files, "/one.bin", Some(&first), 1, b"!", false)
        .await
        .unwrap();
    assert_eq!(read_text(&files, "/one.bin").await, "1!");
    start_upload(&files, "/three.bin", b"3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_that_is_not_base64_is_a_bad_frame() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/bad.bin", "data": "this is *not* base64!", "encoding": "base64" }),
        ErrorCode::BadFrame,
    )
    .await;
    says(&msg, &["not valid base64"]);
    assert_absent(&files, "/bad.bin").await;

    // In the middle of an upload too; the upload survives it.
    let id = start_upload(&files, "/up.bin", b"abc").await;
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/up.bin", "upload": id, "offset": 3, "data": "%%%%", "encoding": "base64", "more": false }),
        ErrorCode::BadFrame,
    )
    .await;
    says(&msg, &["not valid base64"]);
    chunk(&files, "/up.bin", Some(&id), 3, b"def", false)
        .await
        .unwrap();
    assert_eq!(read_text(&files, "/up.bin").await, "abcdef");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_started_together_never_exceed_the_upload_limit() {
    const LIMIT: usize = 2;
    const TRIED: usize = 12;
    let d = TestDaemon::start_with(|c| c.vfs.max_uploads = LIMIT).await;
    let (_owner, files) = owner_files(&d).await;
    // A tree of 8 MiB, so that copying it keeps the user busy for a while.
    let blob = noise(2 * MIB, 5);
    ok(
        &files,
        "vfs.write",
        json!({ "path": "/tree/0.bin", "data": b64(&blob), "encoding": "base64", "parents": true }),
    )
    .await;
    for i in 1..4 {
        ok(
            &files,
            "vfs.copy",
            json!({ "from": "/tree/0.bin", "to": format!("/tree/{i}.bin") }),
        )
        .await;
    }

    // The copy is sent first, then every start at once, as a busy client would.
    let paths: Vec<String> = (0..TRIED).map(|i| format!("/up{i}.bin")).collect();
    let starts = futures_util::future::join_all(
        paths
            .iter()
            .map(|path| chunk(&files, path, None, 0, b"first", true)),
    );
    let copy = ok(
        &files,
        "vfs.copy",
        json!({ "from": "/tree", "to": "/tree2" }),
    );
    let (_, starts) = tokio::join!(copy, starts);

    let (mut opened, mut limited) = (0, 0);
    for started in starts {
        match started {
            Ok(answer) => {
                assert!(answer["upload"].is_string(), "{answer}");
                opened += 1;
            }
            Err(ClientError::Daemon(e)) if e.code == ErrorCode::RateLimited => {
                says(&e.msg, &["2 uploads"]);
                limited += 1;
            }
            Err(other) => panic!("an upload start failed unexpectedly: {other:?}"),
        }
    }
    assert_eq!(
        (opened, limited),
        (LIMIT, TRIED - LIMIT),
        "{TRIED} uploads started together with a limit of {LIMIT} open uploads"
    );
}
