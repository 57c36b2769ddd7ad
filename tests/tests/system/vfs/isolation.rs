//! Who may reach what: another user's files, and apps without the VFS capabilities.

use std::os::unix::fs::symlink;

use aether_proto::ErrorCode;
use aether_tests::TestDaemon;
use serde_json::json;

use super::{
    chunk, daemon_code, list_names, next_event, ok, owner_files, read_text, refused, says,
    start_upload, user_root, write_text,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_files_are_unreachable_through_every_operation() {
    let d = TestDaemon::start().await;
    d.add_user("ana", "ana password 1").await;
    d.add_user("bob", "bob password 1").await;
    let ana = d.sign_in("ana", "ana password 1").await;
    let bob = d.sign_in("bob", "bob password 1").await;
    let (af, bf) = (ana.app("files"), bob.app("files"));
    assert_ne!(ana.welcome().user.id, bob.welcome().user.id);

    let mut bob_events = bf.subscribe("vfs.events.>").await.unwrap();
    let secret = write_text(&af, "/secret.txt", "ana's secret").await;
    ok(
        &af,
        "vfs.write",
        json!({ "path": "/private/plan.txt", "data": "ana's plan", "parents": true }),
    )
    .await;
    let ana_upload = start_upload(&af, "/upload.bin", b"ana's ").await;

    // The same paths name bob's own (empty) root.
    for (topic, body) in [
        ("vfs.read", json!({ "path": "/secret.txt" })),
        ("vfs.stat", json!({ "path": "/secret.txt" })),
        ("vfs.list", json!({ "path": "/private" })),
        ("vfs.read", json!({ "path": "/private/plan.txt" })),
        ("vfs.remove", json!({ "path": "/secret.txt" })),
        (
            "vfs.remove",
            json!({ "path": "/private", "recursive": true }),
        ),
        (
            "vfs.move",
            json!({ "from": "/secret.txt", "to": "/mine.txt" }),
        ),
        (
            "vfs.copy",
            json!({ "from": "/secret.txt", "to": "/mine.txt" }),
        ),
        ("vfs.copy", json!({ "from": "/private", "to": "/mine" })),
    ] {
        let shown_body = body.to_string();
        let msg = refused(&bf, topic, body, ErrorCode::NotFound).await;
        assert!(!msg.contains("ana's"), "{topic} {shown_body} leaks: {msg}");
    }
    assert_eq!(list_names(&bf, "/").await, Vec::<String>::new());
    // Ana's upload id is not bob's to use.
    let msg = daemon_code(
        chunk(&bf, "/upload.bin", Some(&ana_upload), 6, b"bob's", false).await,
        ErrorCode::NotFound,
    );
    says(&msg, &[&ana_upload]);
    // Bob writing the same path makes his own file.
    let bobs = write_text(&bf, "/secret.txt", "bob's own").await;
    assert_eq!(bobs["created"], true, "{bobs}");
    // Bob saw only his own change.
    let (kind, _, data) = next_event(&mut bob_events, "bob").await;
    assert_eq!(kind, "created");
    assert_eq!(
        data["version"], bobs["version"],
        "bob received an event about ana's files: {data}"
    );

    // Nor can a symlink planted in bob's root reach ana's.
    let bob_root = user_root(&d, &bob);
    let ana_root = user_root(&d, &ana);
    symlink(&ana_root, bob_root.join("ana")).unwrap();
    symlink("..", bob_root.join("up")).unwrap();
    let ana_id = ana.welcome().user.id;
    for secret_path in [
        "/ana/secret.txt".to_owned(),
        format!("/up/{ana_id}/secret.txt"),
    ] {
        for (topic, body) in [
            ("vfs.read", json!({ "path": secret_path })),
            ("vfs.stat", json!({ "path": secret_path })),
            (
                "vfs.write",
                json!({ "path": secret_path, "data": "bob was here" }),
            ),
            ("vfs.remove", json!({ "path": secret_path })),
            ("vfs.move", json!({ "from": secret_path, "to": "/stolen" })),
            ("vfs.copy", json!({ "from": secret_path, "to": "/stolen" })),
        ] {
            let shown_body = body.to_string();
            let msg = refused(&bf, topic, body, ErrorCode::Forbidden).await;
            assert!(!msg.contains("ana's"), "{topic} {shown_body} leaks: {msg}");
        }
    }
    for dir in ["/ana", "/up", "/ana/private"] {
        refused(
            &bf,
            "vfs.list",
            json!({ "path": dir }),
            ErrorCode::Forbidden,
        )
        .await;
    }

    // Ana's files are exactly as she left them, and her upload finishes.
    let now = ok(&af, "vfs.read", json!({ "path": "/secret.txt" })).await;
    assert_eq!(now["data"], "ana's secret");
    assert_eq!(now["version"], secret["version"]);
    assert_eq!(read_text(&af, "/private/plan.txt").await, "ana's plan");
    chunk(&af, "/upload.bin", Some(&ana_upload), 6, b"upload", false)
        .await
        .expect("ana's upload is intact");
    assert_eq!(read_text(&af, "/upload.bin").await, "ana's upload");
    assert_eq!(
        list_names(&af, "/").await,
        ["private", "secret.txt", "upload.bin"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_without_the_vfs_capabilities_is_forbidden() {
    let d = TestDaemon::start().await;
    let (owner, files) = owner_files(&d).await;
    write_text(&files, "/mine.txt", "mine").await;
    let chat = owner.app("chat");

    let msg = refused(
        &chat,
        "vfs.read",
        json!({ "path": "/mine.txt" }),
        ErrorCode::Forbidden,
    )
    .await;
    says(&msg, &["`vfs_read`"]);
    let msg = refused(
        &chat,
        "vfs.write",
        json!({ "path": "/mine.txt", "data": "chat was here" }),
        ErrorCode::Forbidden,
    )
    .await;
    says(&msg, &["`vfs_write`"]);
    for (topic, capability) in [
        ("vfs.list", "`vfs_read`"),
        ("vfs.stat", "`vfs_read`"),
        ("vfs.mkdir", "`vfs_write`"),
        ("vfs.remove", "`vfs_write`"),
    ] {
        let msg = refused(
            &chat,
            topic,
            json!({ "path": "/mine.txt" }),
            ErrorCode::Forbidden,
        )
        .await;
        says(&msg, &[capability]);
    }
    for topic in ["vfs.move", "vfs.copy"] {
        let msg = refused(
            &chat,
            topic,
            json!({ "from": "/mine.txt", "to": "/chat.txt" }),
            ErrorCode::Forbidden,
        )
        .await;
        says(&msg, &["`vfs_write`"]);
    }
    let watching = chat.subscribe("vfs.events.>").await.map(|s| s.id());
    daemon_code(watching, ErrorCode::Forbidden);

    assert_eq!(read_text(&files, "/mine.txt").await, "mine");
    assert_eq!(list_names(&files, "/").await, ["mine.txt"]);
    owner.ping().await.expect("the connection lives on");
}
