use aether_proto::{ErrorBody, ErrorCode};
use serde_json::json;

use super::*;
use crate::snapshot_sizes;
use crate::testing::{answer, draw, request_on};
use app_kit::Key;

fn read_answer(path: &str, data: &str, version: &str) -> Value {
    json!({ "path": path, "offset": 0, "length": data.len(), "size": data.len(), "eof": true,
            "version": version, "encoding": "utf8", "data": data })
}

/// An editor with `/src/main.rs` open at version v1.
fn opened() -> Editor {
    let mut editor = Editor::new(Some("/src/main.rs"));
    let effects = editor.start();
    let (read, data) = request_on(&effects, "vfs.read");
    assert_eq!(data["path"], "/src/main.rs");
    answer(
        &mut editor,
        read,
        read_answer(
            "/src/main.rs",
            "fn main() {\n    println!(\"hi\");\n}\n",
            "v1",
        ),
    );
    editor
}

fn typed(editor: &mut Editor, text: &str) {
    for c in text.chars() {
        editor.update(Event::Key(Key::char(c)));
    }
}

#[test]
fn a_file_opens_with_line_numbers_and_a_status_line() {
    let editor = opened();
    snapshot_sizes!("editor_open", &editor);
}

#[test]
fn edits_mark_the_file_and_save_checks_the_version() {
    let mut editor = opened();
    typed(&mut editor, "// ");
    assert!(editor.title().ends_with('●'));
    assert!(editor.unsaved().is_some());
    let effects = editor.update(Event::Key(Key::ctrl('s')));
    let (save, data) = request_on(&effects, "vfs.write");
    assert_eq!(data["if_version"], "v1");
    assert_eq!(data["data"], "// fn main() {\n    println!(\"hi\");\n}\n");
    answer(
        &mut editor,
        save,
        json!({ "path": "/src/main.rs", "size": 37, "version": "v2", "created": false }),
    );
    assert!(editor.unsaved().is_none());
    assert_eq!(editor.doc().version.as_deref(), Some("v2"));
    snapshot_sizes!("editor_saved", &editor);
}

#[test]
fn undo_and_redo_and_undoing_back_to_the_saved_text_is_clean() {
    let mut editor = opened();
    typed(&mut editor, "x");
    assert!(editor.unsaved().is_some());
    editor.update(Event::Key(Key::ctrl('z')));
    assert_eq!(
        editor.doc().text(),
        "fn main() {\n    println!(\"hi\");\n}\n"
    );
    assert!(
        editor.unsaved().is_none(),
        "back to the saved text is clean"
    );
    editor.update(Event::Key(Key::ctrl('y')));
    assert!(editor.doc().text().starts_with("xfn"));
    assert!(editor.unsaved().is_some());
}

#[test]
fn a_conflict_offers_reload_overwrite_keep_both_and_the_diff() {
    let mut editor = opened();
    typed(&mut editor, "mine ");
    let effects = editor.update(Event::Key(Key::ctrl('s')));
    let (save, _) = request_on(&effects, "vfs.write");
    let effects = editor.update(Event::Answer {
        ticket: save,
        result: Err(ErrorBody::new(
            ErrorCode::Conflict,
            "/src/main.rs is at version v9, not v1",
        )),
    });
    let Some(Effect::Choose {
        ticket, options, ..
    }) = effects.first().cloned()
    else {
        panic!("a choice: {effects:?}");
    };
    assert_eq!(
        options,
        ["Reload theirs", "Overwrite", "Keep both", "Show the diff"]
    );
    // Show the diff: their version is read and compared with ours.
    let effects = editor.update(Event::Chose {
        ticket,
        index: Some(3),
    });
    let (read, _) = request_on(&effects, "vfs.read");
    answer(
        &mut editor,
        read,
        read_answer(
            "/src/main.rs",
            "fn main() {\n    println!(\"bye\");\n}\n",
            "v9",
        ),
    );
    snapshot_sizes!("editor_conflict_diff", &editor);
    editor.update(Event::Key(Key::plain(KeyCode::Esc)));
    assert!(editor.diff.is_none());
    assert!(editor.unsaved().is_some(), "the edits are still here");
}

#[test]
fn keep_both_writes_a_copy_beside_the_file() {
    let mut editor = opened();
    typed(&mut editor, "mine ");
    let effects = editor.update(Event::Key(Key::ctrl('s')));
    let (save, _) = request_on(&effects, "vfs.write");
    let effects = editor.update(Event::Answer {
        ticket: save,
        result: Err(ErrorBody::new(ErrorCode::Conflict, "changed")),
    });
    let Some(Effect::Choose { ticket, .. }) = effects.first().cloned() else {
        panic!()
    };
    let effects = editor.update(Event::Chose {
        ticket,
        index: Some(2),
    });
    let (_, data) = request_on(&effects, "vfs.write");
    assert_eq!(data["path"], "/src/main (mine).rs");
    assert_eq!(data["if_absent"], true);
    let overwrite = {
        let mut editor = opened();
        typed(&mut editor, "x");
        let (save, _) = request_on(&editor.update(Event::Key(Key::ctrl('s'))), "vfs.write");
        let effects = editor.update(Event::Answer {
            ticket: save,
            result: Err(ErrorBody::new(ErrorCode::Conflict, "changed")),
        });
        let Some(Effect::Choose { ticket, .. }) = effects.first().cloned() else {
            panic!()
        };
        editor.update(Event::Chose {
            ticket,
            index: Some(1),
        })
    };
    let (_, data) = request_on(&overwrite, "vfs.write");
    assert!(
        data.get("if_version").is_none(),
        "overwrite does not check the version"
    );
}

#[test]
fn binary_and_huge_files_are_refused_clearly() {
    let mut editor = Editor::new(Some("/bin/tool.wasm"));
    let (read, _) = request_on(&editor.start(), "vfs.read");
    answer(
        &mut editor,
        read,
        json!({ "path": "/bin/tool.wasm", "offset": 0, "length": 4, "size": 63000, "eof": true,
                "version": "v1", "encoding": "base64", "data": "AGFzbQ==" }),
    );
    let screen = draw(&editor, 80, 24, true);
    assert!(screen.contains("is a binary file"), "{screen}");
    snapshot_sizes!("editor_binary", &editor);
    let mut editor = Editor::new(Some("/big.log"));
    let (read, _) = request_on(&editor.start(), "vfs.read");
    answer(
        &mut editor,
        read,
        json!({ "path": "/big.log", "offset": 0, "length": 2097152, "size": 52428800, "eof": false,
                "version": "v1", "encoding": "utf8", "data": "x" }),
    );
    let screen = draw(&editor, 80, 24, true);
    assert!(
        screen.contains("/big.log is 50.0 MiB; the editor opens files up to 2.0 MiB"),
        "{screen}"
    );
    // Typing does nothing to a refused file.
    typed(&mut editor, "abc");
    assert!(editor.unsaved().is_none());
}

#[test]
fn a_file_changed_elsewhere_reloads_unless_edited_here() {
    let mut editor = opened();
    let events = editor.events.unwrap();
    let effects = editor.update(Event::Delivery {
        ticket: events,
        topic: "vfs.events.written".into(),
        data: json!({ "path": "/src/main.rs", "version": "v5" }),
    });
    let (read, _) = request_on(&effects, "vfs.read");
    answer(
        &mut editor,
        read,
        read_answer("/src/main.rs", "fn main() {}\n", "v5"),
    );
    assert_eq!(editor.doc().text(), "fn main() {}\n");
    typed(&mut editor, "x");
    let effects = editor.update(Event::Delivery {
        ticket: events,
        topic: "vfs.events.written".into(),
        data: json!({ "path": "/src/main.rs", "version": "v6" }),
    });
    assert!(effects.is_empty(), "edits here are never replaced");
    assert!(editor.doc().changed_elsewhere);
    // Our own save's event (same version) changes nothing.
    let effects = editor.update(Event::Delivery {
        ticket: events,
        topic: "vfs.events.written".into(),
        data: json!({ "path": "/src/main.rs", "version": "v5" }),
    });
    assert!(effects.is_empty());
}

#[test]
fn after_a_reconnect_each_open_file_is_checked_for_changes_missed_meanwhile() {
    let mut editor = opened();
    editor.update(Event::Key(Key::plain(KeyCode::Down)));
    let effects = editor.update(Event::Reconnected);
    let (stat, data) = request_on(&effects, "vfs.stat");
    assert_eq!(data["path"], "/src/main.rs");
    let effects = answer(
        &mut editor,
        stat,
        json!({ "path": "/src/main.rs", "kind": "file", "size": 9, "modified_ms": 0, "version": "v9" }),
    );
    let (read, _) = request_on(&effects, "vfs.read");
    answer(
        &mut editor,
        read,
        read_answer("/src/main.rs", "// new\nfn main() {}\n", "v9"),
    );
    assert_eq!(editor.doc().version.as_deref(), Some("v9"));
    assert_eq!(
        editor.doc().cursor(),
        (1, 0),
        "the cursor stays on its line"
    );
    // Unchanged: nothing more.
    let effects = editor.update(Event::Reconnected);
    let (stat, _) = request_on(&effects, "vfs.stat");
    let effects = answer(
        &mut editor,
        stat,
        json!({ "path": "/src/main.rs", "kind": "file", "size": 9, "modified_ms": 0, "version": "v9" }),
    );
    assert!(effects.is_empty());
}

#[test]
fn find_and_replace() {
    let mut editor = opened();
    editor.update(Event::Key(Key::ctrl('r')));
    typed(&mut editor, "hi");
    editor.update(Event::Key(Key::plain(KeyCode::Tab)));
    typed(&mut editor, "hello");
    snapshot_sizes!("editor_replace", &editor);
    editor.update(Event::Key(Key::new(KeyCode::Char('a'), app_kit::Mods::ALT)));
    assert_eq!(
        editor.doc().text(),
        "fn main() {\n    println!(\"hello\");\n}\n"
    );
    editor.update(Event::Key(Key::plain(KeyCode::Esc)));
    assert!(editor.find.is_none());
    // Replacing all is two edits for the text area: the old text out, the new in.
    editor.update(Event::Key(Key::ctrl('z')));
    editor.update(Event::Key(Key::ctrl('z')));
    assert_eq!(
        editor.doc().text(),
        "fn main() {\n    println!(\"hi\");\n}\n",
        "undo takes it back"
    );
}

#[test]
fn wide_characters_emoji_and_right_to_left_text() {
    let mut editor = Editor::new(Some("/intl.txt"));
    let (read, _) = request_on(&editor.start(), "vfs.read");
    let text = "日本語のテキスト\nemoji 👩‍👩‍👧 ok\ne\u{301} combining\nשלום עולם\n";
    answer(&mut editor, read, read_answer("/intl.txt", text, "v1"));
    snapshot_sizes!("editor_international", &editor);
    assert_eq!(editor.doc().text(), text);
}

#[test]
fn a_line_of_a_hundred_thousand_characters_opens_and_draws() {
    let mut editor = Editor::new(Some("/long.txt"));
    let (read, _) = request_on(&editor.start(), "vfs.read");
    let text = format!("{}\n", "x".repeat(100_000));
    answer(&mut editor, read, read_answer("/long.txt", &text, "v1"));
    editor.update(Event::Key(Key::plain(KeyCode::End)));
    let screen = draw(&editor, 80, 24, true);
    assert!(screen.contains("Col 100001"), "{screen}");
    // Scrolled far right, the line number stays in its gutter.
    let row = screen.lines().nth(1).unwrap_or_default();
    assert!(row.starts_with("\" 1 x"), "{screen}");
}

#[test]
fn a_new_file_is_created_on_save() {
    let mut editor = Editor::new(Some("/new.txt"));
    let (read, _) = request_on(&editor.start(), "vfs.read");
    editor.update(Event::Answer {
        ticket: read,
        result: Err(ErrorBody::new(ErrorCode::NotFound, "no such file")),
    });
    typed(&mut editor, "hello");
    let (_, data) = request_on(&editor.update(Event::Key(Key::ctrl('s'))), "vfs.write");
    assert_eq!(data["if_absent"], true);
    assert_eq!(data["data"], "hello\n");
}

#[test]
fn the_session_keeps_open_files_and_cursors() {
    let mut editor = opened();
    editor.update(Event::Key(Key::plain(KeyCode::Down)));
    let saved = editor.save();
    assert_eq!(
        saved,
        json!({ "tabs": [{ "path": "/src/main.rs", "row": 1, "col": 0 }], "active": 0 })
    );
    let mut restored = Editor::restore(&saved);
    let (read, _) = request_on(&restored.start(), "vfs.read");
    answer(
        &mut restored,
        read,
        read_answer("/src/main.rs", "a\nb\n", "v1"),
    );
    assert_eq!(restored.doc().cursor(), (1, 0));
}

#[test]
fn rust_is_drawn_in_colour_and_edits_recolour() {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    let mut editor = opened();
    let theme = app_kit::Theme::dark();
    let colours_of = |editor: &Editor| {
        let mut terminal = Terminal::new(TestBackend::new(60, 10)).unwrap();
        terminal
            .draw(|f| {
                editor.view(
                    f.area(),
                    f.buffer_mut(),
                    &app_kit::ViewCx {
                        theme: &theme,
                        focused: true,
                        clock: crate::testing::CLOCK,
                    },
                )
            })
            .unwrap();
        let buffer = terminal.backend().buffer().clone();
        // Row 1 is the first line of text: `fn main() {`, after the line number.
        (0..60).map(|x| buffer[(x, 1)].fg).collect::<Vec<_>>()
    };
    let before = colours_of(&editor);
    let distinct: std::collections::HashSet<_> = before.iter().collect();
    assert!(
        distinct.len() >= 3,
        "keyword, name and punctuation differ: {before:?}"
    );
    // Turning the line into a comment changes its colours.
    typed(&mut editor, "// ");
    assert_ne!(colours_of(&editor), before);
}

/// Ask the Architect (Alt-a), answer its prompt; the `ai.generate` request.
fn ask_architect(editor: &mut Editor, instruction: &str) -> (Ticket, Value) {
    let effects = editor.update(Event::Key(Key::new(KeyCode::Char('a'), app_kit::Mods::ALT)));
    let Some(Effect::Prompt {
        ticket, question, ..
    }) = effects.first().cloned()
    else {
        panic!("a prompt: {effects:?}");
    };
    assert!(question.contains("Architect"), "{question}");
    let effects = editor.update(Event::Prompted {
        ticket,
        text: Some(instruction.into()),
    });
    request_on(&effects, "ai.generate")
}

#[test]
fn the_architect_streams_a_diff_and_applies_it_as_one_undo_step() {
    let mut editor = opened();
    let (generate, data) = ask_architect(&mut editor, "greet the world");
    assert!(data["prompt"].as_str().unwrap().contains("greet the world"));
    assert!(
        data["prompt"]
            .as_str()
            .unwrap()
            .contains("println!(\"hi\")")
    );
    let stream = |editor: &mut Editor, kind: &str, data: Value| {
        let ticket = editor.ai_events.unwrap();
        editor.update(Event::Delivery {
            ticket,
            topic: format!("ai.stream.s1.{kind}"),
            data,
        })
    };
    // A piece may come before the answer that names the stream.
    stream(
        &mut editor,
        "delta",
        json!({ "seq": 0, "text": "```rust\nfn main() {\n" }),
    );
    answer(
        &mut editor,
        generate,
        json!({ "stream": "s1", "topic": "ai.stream.s1", "provider": "p", "model": "m" }),
    );
    stream(
        &mut editor,
        "delta",
        json!({ "seq": 1, "text": "    println!(\"hello, world\");\n}\n```" }),
    );
    // Keys do not reach the text while the panel is open.
    editor.update(Event::Key(Key::char('x')));
    stream(
        &mut editor,
        "done",
        json!({ "text": "", "provider": "p", "model": "m", "usage": { "input": 1, "output": 1 } }),
    );
    snapshot_sizes!("editor_architect", &editor);
    editor.update(Event::Key(Key::char('y')));
    assert_eq!(
        editor.doc().text(),
        "fn main() {\n    println!(\"hello, world\");\n}\n",
        "the fence is dropped"
    );
    assert!(editor.unsaved().is_some());
    editor.update(Event::Key(Key::ctrl('z')));
    assert_eq!(
        editor.doc().text(),
        "fn main() {\n    println!(\"hi\");\n}\n",
        "one undo takes the whole change back"
    );
    editor.update(Event::Key(Key::ctrl('y')));
    assert!(
        editor.doc().text().contains("hello, world"),
        "and one redo brings it"
    );
}

#[test]
fn the_architect_rewrites_only_the_selection_and_says_why_it_cannot() {
    let mut editor = opened();
    // Select the second line (Shift-Down from the start of it).
    editor.update(Event::Key(Key::plain(KeyCode::Down)));
    editor.update(Event::Key(Key::new(KeyCode::Down, app_kit::Mods::SHIFT)));
    let (generate, data) = ask_architect(&mut editor, "louder");
    let prompt = data["prompt"].as_str().unwrap();
    assert!(
        prompt.contains("The part of the file") && !prompt.contains("fn main"),
        "{prompt}"
    );
    answer(
        &mut editor,
        generate,
        json!({ "text": "    println!(\"HI\");", "provider": "p", "model": "m", "usage": { "input": 1, "output": 1 } }),
    );
    editor.update(Event::Key(Key::plain(KeyCode::Enter)));
    assert_eq!(
        editor.doc().text(),
        "fn main() {\n    println!(\"HI\");\n}\n"
    );
    // No AI: the panel says so; Esc closes it and the text is as it was.
    let (generate, _) = ask_architect(&mut editor, "anything");
    editor.update(Event::Answer {
        ticket: generate,
        result: Err(ErrorBody::new(
            ErrorCode::Unavailable,
            "no AI provider is configured",
        )),
    });
    assert!(draw(&editor, 120, 40, true).contains("no AI provider is configured"));
    editor.update(Event::Key(Key::plain(KeyCode::Esc)));
    assert!(editor.architect.is_none());
    assert_eq!(
        editor.doc().text(),
        "fn main() {\n    println!(\"HI\");\n}\n"
    );
}
