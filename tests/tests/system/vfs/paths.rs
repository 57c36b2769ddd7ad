//! Bad paths, refused by every operation with nothing created, and symlinks planted
//! on disk, which never lead outside the root.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use aether_proto::ErrorCode;
use aether_tests::TestDaemon;
use serde_json::{Value, json};

use super::{
    assert_absent, chunk, daemon_code, disk_names, list_names, names, ok, owner_files, read_text,
    refused, says, stat, user_root, write_text,
};

/// Every operation refuses `path` with `bad_frame` and a message saying `why`;
/// the root holds only the file this helper writes first.
async fn assert_bad_path_everywhere(d: &TestDaemon, path: &str, why: &str) {
    let (owner, files) = owner_files(d).await;
    write_text(&files, "/good.txt", "good").await;
    let requests = [
        ("vfs.read", json!({ "path": path })),
        ("vfs.write", json!({ "path": path, "data": "x" })),
        (
            "vfs.write",
            json!({ "path": path, "data": "x", "parents": true }),
        ),
        (
            "vfs.write",
            json!({ "path": path, "data": "x", "more": true }),
        ),
        ("vfs.list", json!({ "path": path })),
        ("vfs.stat", json!({ "path": path })),
        ("vfs.mkdir", json!({ "path": path, "parents": true })),
        ("vfs.remove", json!({ "path": path, "recursive": true })),
        ("vfs.move", json!({ "from": path, "to": "/moved" })),
        ("vfs.move", json!({ "from": "/good.txt", "to": path })),
        ("vfs.copy", json!({ "from": path, "to": "/copied" })),
        ("vfs.copy", json!({ "from": "/good.txt", "to": path })),
    ];
    for (topic, body) in requests {
        let msg = refused(&files, topic, body, ErrorCode::BadFrame).await;
        assert!(
            msg.contains("bad path") && msg.contains(why),
            "{topic} of {path:?} should say \"bad path\" and {why:?}: {msg}"
        );
    }
    assert_eq!(
        disk_names(&user_root(d, &owner)),
        ["good.txt"],
        "a bad path created something"
    );
    assert_eq!(read_text(&files, "/good.txt").await, "good");
    owner.ping().await.expect("the connection lives on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_dot_segments_are_refused() {
    let d = TestDaemon::start().await;
    for path in [
        "/../../etc/passwd",
        "/docs/../../../etc/passwd",
        "/..",
        "/a/./b",
    ] {
        assert_bad_path_everywhere(&d, path, "'.' and '..' are not allowed").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_path_is_refused() {
    let d = TestDaemon::start().await;
    for path in ["etc/passwd", "good.txt", "", "../x"] {
        assert_bad_path_everywhere(&d, path, "must start with '/'").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_slash_is_refused() {
    let d = TestDaemon::start().await;
    for path in ["//etc/passwd", "/a//b", "//"] {
        assert_bad_path_everywhere(&d, path, "empty segment").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trailing_slash_is_refused() {
    let d = TestDaemon::start().await;
    for path in ["/docs/", "/good.txt/"] {
        assert_bad_path_everywhere(&d, path, "trailing '/'").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_byte_or_control_character_is_refused() {
    let d = TestDaemon::start().await;
    for path in ["/a\0b", "/good.txt\0.png", "/line\nbreak", "/\u{7f}"] {
        assert_bad_path_everywhere(&d, path, "NUL or control character").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backslash_is_refused() {
    let d = TestDaemon::start().await;
    assert_bad_path_everywhere(&d, "/..\\..\\etc\\passwd", "backslash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_over_255_bytes_is_refused() {
    let d = TestDaemon::start().await;
    assert_bad_path_everywhere(
        &d,
        &format!("/{}", "n".repeat(256)),
        "a name is 256 bytes; the limit is 255",
    )
    .await;
    // Bytes, not characters: 128 two-byte characters are 256 bytes.
    assert_bad_path_everywhere(
        &d,
        &format!("/dir/{}", "é".repeat(128)),
        "a name is 256 bytes",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_over_4_kib_is_refused() {
    let d = TestDaemon::start().await;
    let path = "/abcdefg".repeat(513); // 4104 bytes of short, valid names
    assert_bad_path_everywhere(&d, &path, "4104 bytes; the limit is 4096").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_look_alikes_of_slash_and_dot_are_refused() {
    let d = TestDaemon::start().await;
    for path in [
        "/etc\u{FF0F}passwd",     // FULLWIDTH SOLIDUS
        "/etc\u{2215}passwd",     // DIVISION SLASH
        "/\u{2025}",              // TWO DOT LEADER
        "/\u{2024}\u{2024}",      // ONE DOT LEADER twice
        "/\u{FF0E}\u{FF0E}",      // FULLWIDTH FULL STOP twice
        "/report\u{202E}fdp.exe", // RIGHT-TO-LEFT OVERRIDE
        "/good\u{200B}.txt",      // ZERO WIDTH SPACE
    ] {
        assert_bad_path_everywhere(&d, path, "looks like a '/' or '.'").await;
    }
}

/// A directory outside every root with one file in it, to check it is never touched.
struct Outside {
    dir: tempfile::TempDir,
}
impl Outside {
    const SECRET: &str = "top secret, outside the root";

    fn new() -> Outside {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.txt"), Outside::SECRET).unwrap();
        Outside { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn secret(&self) -> PathBuf {
        self.dir.path().join("secret.txt")
    }

    #[track_caller]
    fn assert_untouched(&self, after: &str) {
        assert_eq!(
            disk_names(self.path()),
            ["secret.txt"],
            "after {after}, something was created or removed outside the root"
        );
        assert_eq!(
            std::fs::read_to_string(self.secret()).unwrap(),
            Outside::SECRET,
            "after {after}, the file outside the root changed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_planted_in_the_root_never_leads_outside_it() {
    let d = TestDaemon::start().await;
    let (owner, files) = owner_files(&d).await;
    write_text(&files, "/inside.txt", "inside").await;
    let root = user_root(&d, &owner);
    assert!(
        root.join("inside.txt").is_file(),
        "the root is where it should be"
    );

    let outside = Outside::new();
    symlink(outside.secret(), root.join("link_file")).unwrap();
    symlink(outside.path(), root.join("link_dir")).unwrap();
    // Relative, climbing out: `..` far above the root, then down to the outside dir.
    let climb = format!(
        "{}{}",
        "../".repeat(40),
        outside.path().strip_prefix("/").unwrap().display()
    );
    symlink(&climb, root.join("rel_dir")).unwrap();

    // Through the links: every operation is refused as forbidden.
    for dir in ["/link_dir", "/rel_dir"] {
        let secret = format!("{dir}/secret.txt");
        let requests = [
            ("vfs.read", json!({ "path": secret })),
            (
                "vfs.read",
                json!({ "path": secret, "offset": 3, "length": 4, "encoding": "base64" }),
            ),
            ("vfs.stat", json!({ "path": secret })),
            ("vfs.list", json!({ "path": dir })),
            ("vfs.write", json!({ "path": secret, "data": "pwned" })),
            (
                "vfs.write",
                json!({ "path": secret, "data": "pwned", "append": true }),
            ),
            (
                "vfs.write",
                json!({ "path": format!("{dir}/new.txt"), "data": "planted" }),
            ),
            (
                "vfs.write",
                json!({ "path": format!("{dir}/deep/new.txt"), "data": "planted", "parents": true }),
            ),
            ("vfs.mkdir", json!({ "path": format!("{dir}/newdir") })),
            (
                "vfs.mkdir",
                json!({ "path": format!("{dir}/a/b"), "parents": true }),
            ),
            ("vfs.remove", json!({ "path": secret })),
            ("vfs.remove", json!({ "path": secret, "recursive": true })),
            ("vfs.move", json!({ "from": secret, "to": "/stolen.txt" })),
            (
                "vfs.move",
                json!({ "from": "/inside.txt", "to": format!("{dir}/inside.txt") }),
            ),
            ("vfs.copy", json!({ "from": secret, "to": "/stolen.txt" })),
            (
                "vfs.copy",
                json!({ "from": "/inside.txt", "to": format!("{dir}/inside.txt") }),
            ),
        ];
        for (topic, body) in requests {
            let shown_body = body.to_string();
            let msg = refused(&files, topic, body, ErrorCode::Forbidden).await;
            says(&msg, &[dir]);
            assert!(
                msg.contains("outside your root") || msg.contains("symlink"),
                "{topic} {shown_body}: the message should say why: {msg}"
            );
            assert!(!msg.contains(Outside::SECRET), "{msg}");
            outside.assert_untouched(&format!("{topic} {shown_body}"));
        }
        // An upload through the link is refused, at the latest when it commits.
        let target = format!("{dir}/uploaded.bin");
        let msg = match chunk(&files, &target, None, 0, b"part one ", true).await {
            Ok(started) => daemon_code(
                chunk(
                    &files,
                    &target,
                    started["upload"].as_str(),
                    9,
                    b"part two",
                    false,
                )
                .await,
                ErrorCode::Forbidden,
            ),
            refused => daemon_code(refused, ErrorCode::Forbidden),
        };
        says(&msg, &[dir]);
        outside.assert_untouched("an upload through the link");
    }

    // The link to a file: reading or writing through it is refused.
    for (topic, body) in [
        ("vfs.read", json!({ "path": "/link_file" })),
        (
            "vfs.write",
            json!({ "path": "/link_file", "data": "pwned" }),
        ),
        (
            "vfs.write",
            json!({ "path": "/link_file", "data": "pwned", "append": true }),
        ),
        (
            "vfs.write",
            json!({ "path": "/link_file", "data": "pwned", "if_absent": true }),
        ),
    ] {
        let shown_body = body.to_string();
        let msg = refused(&files, topic, body, ErrorCode::Forbidden).await;
        says(&msg, &["/link_file"]);
        outside.assert_untouched(&format!("{topic} {shown_body}"));
    }
    // Copying a link would read the outside: refused (only files and directories are copied).
    for from in ["/link_file", "/link_dir"] {
        let msg = refused(
            &files,
            "vfs.copy",
            json!({ "from": from, "to": "/stolen" }),
            ErrorCode::BadFrame,
        )
        .await;
        says(&msg, &[from, "only files and directories"]);
    }
    assert_absent(&files, "/stolen.txt").await;
    assert_absent(&files, "/stolen").await;

    // Listing the root shows the links as links, never what they point at.
    let list = ok(&files, "vfs.list", json!({ "path": "/" })).await;
    assert_eq!(
        names(&list),
        ["inside.txt", "link_dir", "link_file", "rel_dir"],
        "{list}"
    );
    for entry in list["entries"].as_array().unwrap() {
        if entry["name"] != "inside.txt" {
            assert_eq!(entry["kind"], "symlink", "{entry}");
            assert_ne!(entry["size"], Outside::SECRET.len(), "{entry}");
        }
    }
    let link = stat(&files, "/link_file").await;
    assert_eq!(link["kind"], "symlink", "{link}");
    assert_eq!(link["version"], Value::Null, "{link}");

    // A directory copied with a link inside leaves the link behind.
    ok(&files, "vfs.mkdir", json!({ "path": "/box" })).await;
    symlink(outside.path(), root.join("box").join("escape")).unwrap();
    write_text(&files, "/box/note.txt", "note").await;
    ok(&files, "vfs.copy", json!({ "from": "/box", "to": "/box2" })).await;
    assert_eq!(list_names(&files, "/box2").await, ["note.txt"]);
    outside.assert_untouched("copying a directory holding a link");
    // Removing that directory removes the link, not what it points at.
    ok(
        &files,
        "vfs.remove",
        json!({ "path": "/box", "recursive": true }),
    )
    .await;
    outside.assert_untouched("removing a directory holding a link");

    // Removing a link removes the link itself, never its target.
    for (link, recursive) in [
        ("/link_file", false),
        ("/link_dir", true),
        ("/rel_dir", true),
    ] {
        let removed = ok(
            &files,
            "vfs.remove",
            json!({ "path": link, "recursive": recursive }),
        )
        .await;
        assert_eq!(removed["kind"], "symlink", "{removed}");
        outside.assert_untouched(&format!("removing {link}"));
        let on_disk = root.join(link.trim_start_matches('/'));
        assert!(
            std::fs::symlink_metadata(&on_disk).is_err(),
            "{} is still there",
            on_disk.display()
        );
    }
    assert_eq!(read_text(&files, "/inside.txt").await, "inside");
}
