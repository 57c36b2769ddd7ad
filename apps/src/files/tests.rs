use aether_proto::{ErrorBody, ErrorCode};
use serde_json::json;

use super::*;
use crate::snapshot_sizes;
use crate::testing::{answer, draw, request_on};
use app_kit::Key;
use app_kit::key::KeyCode;

fn entry(name: &str, kind: &str, size: u64) -> Value {
    json!({ "name": name, "kind": kind, "size": size, "modified_ms": 0 })
}

/// An explorer showing `/docs` with a few entries, its preview of the first file answered.
fn docs() -> Files {
    let mut files = Files::new("/docs");
    let effects = files.start();
    let (listing, _) = request_on(&effects, "vfs.list");
    let (usage, _) = request_on(&effects, "vfs.usage");
    let effects = answer(
        &mut files,
        listing,
        json!({ "path": "/docs", "entries": [
            entry("zeta.txt", "file", 12),
            entry("archive", "dir", 0),
            entry("notes.md", "file", 2048),
            entry("日本語のファイル名.txt", "file", 5),
            entry("photo.png", "file", 1_500_000),
        ]}),
    );
    answer(
        &mut files,
        usage,
        json!({ "bytes": 1_572_864, "files": 4, "quota_bytes": 1_073_741_824u64, "quota_files": 100000 }),
    );
    // Folders first, so the selection starts on `archive`: no read for a folder.
    assert!(crate::testing::requests(&effects).is_empty());
    files
}

#[test]
fn a_folder_lists_folders_first_with_sizes_and_usage() {
    let files = docs();
    snapshot_sizes!("files_listing", &files);
}

#[test]
fn moving_down_previews_the_file_and_drops_stale_previews() {
    let mut files = docs();
    let first = files.update(Event::Key(Key::char('j')));
    let (stale, _) = request_on(&first, "vfs.read");
    let second = files.update(Event::Key(Key::char('j')));
    let (current, data) = request_on(&second, "vfs.read");
    assert_eq!(data["path"], "/docs/photo.png");
    answer(
        &mut files,
        current,
        json!({ "path": "/docs/photo.png", "offset": 0, "length": 16, "size": 1_500_000, "eof": false,
                "version": "v1", "encoding": "base64", "data": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB" }),
    );
    // The answer for the entry passed over arrives late: it must not replace the preview.
    answer(
        &mut files,
        stale,
        json!({ "path": "/docs/notes.md", "offset": 0, "length": 5, "size": 5, "eof": true,
                "version": "v2", "encoding": "utf8", "data": "stale" }),
    );
    let screen = draw(&files, 120, 40, true);
    assert!(screen.contains("89 50 4e 47"), "{screen}");
    assert!(!screen.contains("stale"));
    snapshot_sizes!("files_binary_preview", &files);
}

#[test]
fn a_text_preview_shows_the_start_of_the_file() {
    let mut files = docs();
    files.update(Event::Key(Key::char('G')));
    let effects = files.update(Event::Key(Key::char('k')));
    let (read, _) = request_on(&effects, "vfs.read");
    answer(
        &mut files,
        read,
        json!({ "path": "/docs/notes.md", "offset": 0, "length": 30, "size": 30, "eof": true,
                "version": "v1", "encoding": "utf8", "data": "# Notes\n\n- first\n- second\tTAB\n" }),
    );
    snapshot_sizes!("files_text_preview", &files);
}

#[test]
fn enter_opens_folders_here_files_in_the_editor_and_programs_in_the_terminal() {
    let mut files = docs();
    let effects = files.update(Event::Key(Key::plain(KeyCode::Enter)));
    let (_, data) = request_on(&effects, "vfs.list");
    assert_eq!(data["path"], "/docs/archive");
    assert_eq!(files.cwd(), "/docs/archive");
    let back = files.update(Event::Key(Key::plain(KeyCode::Backspace)));
    let (listing, _) = request_on(&back, "vfs.list");
    answer(
        &mut files,
        listing,
        json!({ "path": "/docs", "entries": [
            entry("archive", "dir", 0), entry("a.txt", "file", 1), entry("go.wasm", "file", 9)
        ] }),
    );
    assert_eq!(
        files.selected().map(|e| e.name.as_str()),
        Some("archive"),
        "back where we came from"
    );
    files.update(Event::Key(Key::char('j')));
    let open = files.update(Event::Key(Key::plain(KeyCode::Enter)));
    assert_eq!(
        open,
        vec![Effect::Open {
            app: crate::editor::APP,
            path: "/docs/a.txt".into(),
            line: None
        }]
    );
    // A program runs in the terminal instead.
    files.update(Event::Key(Key::char('j')));
    let open = files.update(Event::Key(Key::plain(KeyCode::Enter)));
    assert_eq!(
        open,
        vec![Effect::Open {
            app: crate::terminal::APP,
            path: "/docs/go.wasm".into(),
            line: None
        }]
    );
}

#[test]
fn delete_asks_first_and_only_yes_deletes() {
    let mut files = docs();
    let effects = files.update(Event::Key(Key::char('D')));
    let Some(Effect::Confirm { ticket, question }) = effects.first().cloned() else {
        panic!("a confirmation: {effects:?}");
    };
    assert!(
        question.contains("/docs/archive and everything in it"),
        "{question}"
    );
    assert!(
        files
            .update(Event::Confirmed { ticket, yes: false })
            .is_empty()
    );
    let effects = files.update(Event::Key(Key::plain(KeyCode::Delete)));
    let Some(Effect::Confirm { ticket, .. }) = effects.first().cloned() else {
        panic!()
    };
    let effects = files.update(Event::Confirmed { ticket, yes: true });
    let (_, data) = request_on(&effects, "vfs.remove");
    assert_eq!(data, json!({ "path": "/docs/archive", "recursive": true }));
}

#[test]
fn rename_and_new_file_go_through_prompts() {
    let mut files = docs();
    files.update(Event::Key(Key::char('j')));
    let effects = files.update(Event::Key(Key::char('r')));
    let Some(Effect::Prompt {
        ticket, initial, ..
    }) = effects.first().cloned()
    else {
        panic!()
    };
    assert_eq!(initial, "notes.md");
    let effects = files.update(Event::Prompted {
        ticket,
        text: Some("renamed.md".into()),
    });
    let (_, data) = request_on(&effects, "vfs.move");
    assert_eq!(
        data,
        json!({ "from": "/docs/notes.md", "to": "/docs/renamed.md" })
    );
    let effects = files.update(Event::Key(Key::char('n')));
    let Some(Effect::Prompt { ticket, .. }) = effects.first().cloned() else {
        panic!()
    };
    assert!(
        files
            .update(Event::Prompted { ticket, text: None })
            .is_empty(),
        "cancelled"
    );
    let effects = files.update(Event::Key(Key::char('n')));
    let Some(Effect::Prompt { ticket, .. }) = effects.first().cloned() else {
        panic!()
    };
    let effects = files.update(Event::Prompted {
        ticket,
        text: Some("../escape.txt".into()),
    });
    let (_, data) = request_on(&effects, "vfs.write");
    assert_eq!(
        data["path"], "/escape.txt",
        "relative to the folder, never above the root"
    );
    assert_eq!(data["if_absent"], true);
}

#[test]
fn a_denied_listing_says_so_in_the_window() {
    let mut files = Files::new("/secret");
    let effects = files.start();
    let (listing, _) = request_on(&effects, "vfs.list");
    files.update(Event::Answer {
        ticket: listing,
        result: Err(ErrorBody::new(
            ErrorCode::Forbidden,
            "app files lacks capability vfs_read",
        )),
    });
    let screen = draw(&files, 80, 24, true);
    assert!(
        screen.contains("app files lacks capability vfs_read"),
        "{screen}"
    );
    snapshot_sizes!("files_denied", &files);
}

#[test]
fn search_results_open_at_their_line() {
    let mut files = docs();
    let effects = files.update(Event::Key(Key::char('/')));
    let Some(Effect::Prompt { ticket, .. }) = effects.first().cloned() else {
        panic!()
    };
    let effects = files.update(Event::Prompted {
        ticket,
        text: Some("budget".into()),
    });
    let (search, data) = request_on(&effects, "vfs.search");
    assert_eq!(data["query"], "budget");
    answer(
        &mut files,
        search,
        json!({ "hits": [
            { "path": "/docs/plan.md", "score": 2.5, "line": 12, "snippet": "the budget for 2027" },
            { "path": "/notes/todo.txt", "score": 1.0, "line": null, "snippet": "budget?" },
        ]}),
    );
    snapshot_sizes!("files_search", &files);
    let open = files.update(Event::Key(Key::plain(KeyCode::Enter)));
    assert_eq!(
        open,
        vec![Effect::Open {
            app: crate::editor::APP,
            path: "/docs/plan.md".into(),
            line: Some(12)
        }]
    );
    files.update(Event::Key(Key::plain(KeyCode::Esc)));
    assert!(files.search.is_none());
    // `~ words` asks for meaning too; the note of how it went shows.
    let effects = files.update(Event::Key(Key::char('/')));
    let Some(Effect::Prompt { ticket, .. }) = effects.first().cloned() else {
        panic!()
    };
    let effects = files.update(Event::Prompted {
        ticket,
        text: Some("~ money plans".into()),
    });
    let (search, data) = request_on(&effects, "vfs.search");
    assert_eq!(
        (data["query"].as_str(), data["semantic"].as_bool()),
        (Some("money plans"), Some(true))
    );
    answer(
        &mut files,
        search,
        json!({ "hits": [], "semantic": { "ranked": false, "note": "full text only: no AI provider is configured" } }),
    );
    assert!(draw(&files, 120, 40, true).contains("full text only: no AI provider"));
}

#[test]
fn a_change_in_this_folder_relists_it() {
    let mut files = docs();
    let effects = files.update(Event::Delivery {
        ticket: files.events.unwrap(),
        topic: "vfs.events.written".into(),
        data: json!({ "path": "/docs/new.txt", "size": 3 }),
    });
    request_on(&effects, "vfs.list");
    let elsewhere = files.update(Event::Delivery {
        ticket: files.events.unwrap(),
        topic: "vfs.events.written".into(),
        data: json!({ "path": "/other/x.txt" }),
    });
    assert!(
        crate::testing::requests(&elsewhere)
            .iter()
            .all(|(_, t, _)| *t != "vfs.list")
    );
}

#[test]
fn a_hundred_thousand_entries_scroll_by_drawing_only_what_shows() {
    let mut files = Files::new("/big");
    let effects = files.start();
    let (listing, _) = request_on(&effects, "vfs.list");
    let entries: Vec<Value> = (0..100_000)
        .map(|i| entry(&format!("file-{i:06}.txt"), "file", i))
        .collect();
    answer(
        &mut files,
        listing,
        json!({ "path": "/big", "entries": entries }),
    );
    for _ in 0..50 {
        files.update(Event::Key(Key::plain(KeyCode::PageDown)));
        draw(&files, 80, 24, true);
    }
    files.update(Event::Key(Key::char('G')));
    let screen = draw(&files, 80, 24, true);
    assert!(screen.contains("file-099999.txt"), "{screen}");
}

#[test]
fn the_session_keeps_the_folder_and_the_selection() {
    let mut files = docs();
    files.update(Event::Key(Key::char('j')));
    let saved = files.save();
    assert_eq!(
        saved,
        json!({ "cwd": "/docs", "selected": "notes.md", "tree": false })
    );
    let mut restored = Files::restore(&saved);
    let effects = restored.start();
    let (listing, data) = request_on(&effects, "vfs.list");
    assert_eq!(data["path"], "/docs");
    answer(
        &mut restored,
        listing,
        json!({ "path": "/docs", "entries": [entry("a", "file", 1), entry("notes.md", "file", 1)] }),
    );
    assert_eq!(
        restored.selected().map(|e| e.name.as_str()),
        Some("notes.md")
    );
}

#[test]
fn the_folder_tree_opens_folders_lazily_and_shows_them_in_the_list() {
    let mut files = docs();
    let effects = files.update(Event::Key(Key::char('t')));
    let (root, data) = request_on(&effects, "vfs.list");
    assert_eq!(data["path"], "/");
    answer(
        &mut files,
        root,
        json!({ "path": "/", "entries": [
            entry("docs", "dir", 0), entry("readme.md", "file", 10), entry("zeta", "dir", 0),
        ]}),
    );
    // Down to `docs` (shown already), then `zeta`: the list follows.
    assert!(files.update(Event::Key(Key::char('j'))).is_empty());
    let effects = files.update(Event::Key(Key::char('j')));
    let (_, data) = request_on(&effects, "vfs.list");
    assert_eq!(data["path"], "/zeta");
    // Opening `zeta` in the tree lists it for its sub-folders.
    let effects = files.update(Event::Key(Key::char('l')));
    let (sub, data) = request_on(&effects, "vfs.list");
    assert_eq!(data["path"], "/zeta");
    answer(
        &mut files,
        sub,
        json!({ "path": "/zeta", "entries": [entry("inner", "dir", 0)] }),
    );
    snapshot_sizes!("files_tree", &files);
    files.update(Event::Key(Key::char('h')));
    assert_eq!(
        files.tree.as_ref().unwrap().visible().len(),
        3,
        "zeta closed again"
    );
    files.update(Event::Key(Key::plain(KeyCode::Tab)));
    assert!(!files.in_tree, "Tab goes back to the list");
    assert_eq!(files.save()["tree"], true);
}

#[test]
fn an_image_previews_as_a_picture() {
    let mut files = docs();
    files.update(Event::Key(Key::char('j')));
    let effects = files.update(Event::Key(Key::char('j')));
    let (read, data) = request_on(&effects, "vfs.read");
    assert_eq!(data["path"], "/docs/photo.png");
    assert_eq!(
        data["length"],
        2 << 20,
        "an image is read whole, up to 2 MiB"
    );
    let picture = ::image::RgbImage::from_fn(64, 32, |x, y| {
        ::image::Rgb([(x * 4) as u8, (y * 8) as u8, 128])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut png, ::image::ImageFormat::Png)
        .unwrap();
    let png = png.into_inner();
    answer(
        &mut files,
        read,
        json!({ "path": "/docs/photo.png", "offset": 0, "length": png.len(), "size": png.len(), "eof": true,
                "version": "v1", "encoding": "base64",
                "data": base64::engine::general_purpose::STANDARD.encode(&png) }),
    );
    let screen = draw(&files, 120, 40, true);
    assert!(screen.contains("image 64x32"), "{screen}");
    assert!(
        screen.contains('▀') || screen.contains('▄'),
        "half-blocks:\n{screen}"
    );
}

#[test]
fn a_saved_state_of_the_wrong_shape_restores_the_defaults() {
    for state in [
        json!({ "cwd": 7, "tree": "yes" }),
        json!([1, 2]),
        json!(null),
    ] {
        assert_eq!(Files::restore(&state).cwd(), "/");
        assert_eq!(crate::terminal::Terminal::restore(&state).cwd(), "/");
        let editor = crate::editor::Editor::restore(&state);
        assert_eq!(editor.title(), "Editor untitled");
    }
}
