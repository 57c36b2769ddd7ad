//! The shell without a terminal or a daemon: scripted input, snapshots of each step.

use aether_proto::api::apps::AppInfo;
use aether_proto::api::chat;
use app_kit::{KeyCode, Mods};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::*;

fn desktop(width: u16, height: u16) -> Desktop {
    let mut desktop = Desktop::new(
        Keymap::default(),
        Theme::dark(),
        "ada".into(),
        Instant::now(),
    );
    desktop.resize(width, height);
    desktop.default_layout();
    desktop.start();
    desktop
}

fn draw(desktop: &Desktop) -> String {
    let area = desktop.screen;
    let mut terminal = Terminal::new(TestBackend::new(area.width, area.height)).unwrap();
    terminal
        .draw(|frame| desktop.render(frame.area(), frame.buffer_mut()))
        .unwrap();
    terminal.backend().to_string()
}

fn keys(desktop: &mut Desktop, keys: &[Key]) {
    for key in keys {
        desktop.on_input(Input::Key(*key));
    }
}

fn prefix(desktop: &mut Desktop, key: Key) {
    keys(desktop, &[Key::ctrl('g'), key]);
}

/// Snapshot the desktop at 80x24 and 120x40 after the same steps.
macro_rules! both_sizes {
    ($name:expr, $steps:expr) => {
        for (w, h) in [(80u16, 24u16), (120, 40)] {
            let mut d = desktop(w, h);
            let steps: &dyn Fn(&mut Desktop) = &$steps;
            steps(&mut d);
            insta::assert_snapshot!(format!("{}_{w}x{h}", $name), draw(&d));
        }
    };
}

#[test]
fn the_default_layout() {
    both_sizes!("default_layout", |_| {});
}

#[test]
fn the_first_start_shows_the_keys_that_matter() {
    both_sizes!("welcome", |d: &mut Desktop| d.show_welcome());
    let mut d = desktop(80, 24);
    d.show_welcome();
    keys(&mut d, &[Key::char('x')]);
    assert!(d.layers.is_empty(), "any key dismisses the hint");
}

#[test]
fn command_mode_shows_its_keys_in_the_status_bar() {
    both_sizes!("command_mode", |d: &mut Desktop| keys(d, &[Key::ctrl('g')]));
}

#[test]
fn focus_moves_by_direction_and_with_alt() {
    let mut d = desktop(120, 40);
    let files = d.focused().unwrap();
    prefix(&mut d, Key::char('l'));
    let editor = d.focused().unwrap();
    assert_ne!(files, editor);
    keys(&mut d, &[Key::new(KeyCode::Char('j'), Mods::ALT)]);
    let terminal = d.focused().unwrap();
    assert_ne!(terminal, editor);
    assert_eq!(d.windows[&terminal].kind(), apps::terminal::APP);
    keys(&mut d, &[Key::new(KeyCode::Left, Mods::ALT)]);
    assert_eq!(d.focused(), Some(files));
    assert_eq!(d.mode, Mode::Normal);
}

#[test]
fn split_opens_the_launcher_then_the_app_beside_the_window() {
    both_sizes!("launcher", |d: &mut Desktop| prefix(d, Key::char('v')));
    let mut d = desktop(120, 40);
    prefix(&mut d, Key::char('v'));
    keys(&mut d, &[Key::char('3')]);
    assert_eq!(d.layout().len(), 4);
    let focused = d.focused().unwrap();
    assert_eq!(d.windows[&focused].kind(), apps::terminal::APP);
    // The new window started: its subscription is on its way out.
    assert!(d.take_outputs().iter().any(|o| matches!(o, Output::Bus(id, kind, Effect::Subscribe { .. }) if *id == focused && *kind == apps::terminal::APP)));
    prefix(&mut d, Key::char('x'));
    assert_eq!(d.layout().len(), 3, "closed; its sibling took the space");
    assert!(d.take_outputs().contains(&Output::Closed(focused)));
}

#[test]
fn zoom_floating_and_workspaces() {
    both_sizes!("zoomed", |d: &mut Desktop| prefix(d, Key::char('z')));
    both_sizes!("floating", |d: &mut Desktop| {
        prefix(d, Key::char('w'));
        keys(d, &[Key::char('4')]);
    });
    let mut d = desktop(120, 40);
    prefix(&mut d, Key::char('t'));
    keys(&mut d, &[Key::char('1')]);
    assert_eq!(d.workspaces.len(), 2);
    assert_eq!(d.active, 1);
    prefix(&mut d, Key::char('r'));
    for c in "work".chars() {
        keys(&mut d, &[Key::char(c)]);
    }
    // The prompt starts with the old name: clear it first with Ctrl-u.
    keys(&mut d, &[Key::ctrl('u')]);
    for c in "logs".chars() {
        keys(&mut d, &[Key::char(c)]);
    }
    keys(&mut d, &[Key::plain(KeyCode::Enter)]);
    assert_eq!(d.workspaces[1].name, "logs");
    prefix(&mut d, Key::char('1'));
    assert_eq!(d.active, 0);
    insta::assert_snapshot!("two_workspaces", draw(&d));
}

#[test]
fn the_palette_finds_apps_and_commands() {
    both_sizes!("palette", |d: &mut Desktop| {
        prefix(d, Key::char('p'));
        for c in "split".chars() {
            keys(d, &[Key::char(c)]);
        }
    });
    let mut d = desktop(120, 40);
    prefix(&mut d, Key::char('p'));
    for c in "settings".chars() {
        keys(&mut d, &[Key::char(c)]);
    }
    keys(&mut d, &[Key::plain(KeyCode::Enter)]);
    let focused = d.focused().unwrap();
    assert_eq!(d.windows[&focused].kind(), apps::settings::APP);
}

#[test]
fn help_lists_the_focused_apps_keys_and_the_desktops() {
    both_sizes!("help", |d: &mut Desktop| prefix(d, Key::char('?')));
}

#[test]
fn quitting_with_unsaved_edits_asks_first() {
    let mut d = desktop(80, 24);
    // An untitled editor with text in it.
    prefix(&mut d, Key::char('l'));
    for c in "draft".chars() {
        keys(&mut d, &[Key::char(c)]);
    }
    prefix(&mut d, Key::char('q'));
    assert!(!d.quitting());
    insta::assert_snapshot!("quit_unsaved_80x24", draw(&d));
    keys(&mut d, &[Key::char('n')]);
    assert!(!d.quitting());
    prefix(&mut d, Key::char('q'));
    keys(&mut d, &[Key::char('y')]);
    assert!(d.quitting());
    assert!(d.take_outputs().contains(&Output::Quit));
}

#[test]
fn locked_mode_passes_the_desktops_keys_through() {
    let mut d = desktop(80, 24);
    prefix(&mut d, Key::char('!'));
    assert_eq!(d.mode, Mode::Locked);
    let before = d.focused();
    keys(&mut d, &[Key::new(KeyCode::Char('l'), Mods::ALT)]);
    assert_eq!(d.focused(), before, "Alt-l went to the window");
    insta::assert_snapshot!("locked_80x24", draw(&d));
    keys(&mut d, &[Key::ctrl('g')]);
    assert_eq!(d.mode, Mode::Normal);
}

#[test]
fn an_unbound_key_after_the_prefix_says_so() {
    let mut d = desktop(80, 24);
    prefix(&mut d, Key::char('é'));
    assert_eq!(d.mode, Mode::Normal);
    let last = d.notifications.shown().next_back().unwrap();
    assert!(last.text.contains("does nothing"));
}

#[test]
fn a_tiny_terminal_and_a_resize_storm_draw_without_panicking() {
    let mut d = desktop(20, 5);
    insta::assert_snapshot!("tiny_20x5", draw(&d));
    for i in 0..200u16 {
        d.on_input(Input::Resize(1 + i % 150, 1 + i % 50));
        draw(&d);
    }
    d.on_input(Input::Resize(0, 0));
    draw(&Desktop {
        screen: Rect::new(0, 0, 1, 1),
        ..desktop(1, 1)
    });
    prefix(&mut d, Key::char('p'));
    d.on_input(Input::Resize(3, 2));
    draw(&d);
}

#[test]
fn keys_faster_than_frames_are_all_applied() {
    let mut d = desktop(80, 24);
    prefix(&mut d, Key::char('l'));
    for _ in 0..500 {
        keys(&mut d, &[Key::char('a')]);
    }
    let editor = d.focused().unwrap();
    assert!(d.windows[&editor].unsaved().is_some());
    let screen = draw(&d);
    assert!(screen.contains("Col 501"), "{screen}");
}

#[test]
fn the_mouse_focuses_resizes_and_scrolls() {
    let mut d = desktop(120, 40);
    let placed = d.layout();
    let terminal = placed[2];
    let click = |kind, column, row| Input::Mouse(MouseInput { kind, column, row });
    d.on_input(click(
        MouseKind::Down,
        terminal.area.x + 5,
        terminal.area.y + 3,
    ));
    assert_eq!(d.focused(), Some(terminal.id));
    // Drag the border between the explorer and the rest to column 30.
    let border = placed[0].area.right() - 1;
    d.on_input(click(MouseKind::Down, border, 10));
    d.on_input(click(MouseKind::Drag, 29, 10));
    d.on_input(click(MouseKind::Up, 29, 10));
    assert_eq!(d.layout()[0].area.width, 30);
    d.on_input(click(
        MouseKind::ScrollUp,
        terminal.area.x + 5,
        terminal.area.y + 3,
    ));
}

#[test]
fn the_session_round_trips_and_skips_what_it_cannot_restore() {
    let mut d = desktop(120, 40);
    prefix(&mut d, Key::char('z'));
    let saved = d.snapshot();
    let mut back = Desktop::new(
        Keymap::default(),
        Theme::dark(),
        "ada".into(),
        Instant::now(),
    );
    back.resize(120, 40);
    assert!(back.restore(&saved));
    back.start();
    assert_eq!(back.snapshot(), saved);
    assert_eq!(draw(&back), draw(&d));
    // A window of an app this build does not know is left out, and the layout closes up.
    let mut odd = saved.clone();
    odd["windows"]["2"]["app"] = "hologram".into();
    let mut partial = Desktop::new(
        Keymap::default(),
        Theme::dark(),
        "ada".into(),
        Instant::now(),
    );
    assert!(partial.restore(&odd));
    assert_eq!(partial.windows.len(), 2);
    // Garbage is refused whole, and the caller falls back to the default layout.
    let mut fresh = Desktop::new(
        Keymap::default(),
        Theme::dark(),
        "ada".into(),
        Instant::now(),
    );
    assert!(!fresh.restore(&serde_json::json!({ "format": 1, "workspaces": "nope" })));
    assert!(!fresh.restore(&serde_json::json!([1, 2, 3])));
    assert!(fresh.windows.is_empty());
}

#[test]
fn a_file_opened_from_the_explorer_goes_to_the_editor() {
    let mut d = desktop(120, 40);
    let files = d.focused().unwrap();
    d.deliver(files, Event::Key(Key::char('n')));
    assert!(
        matches!(d.layers.last(), Some(Layer::Dialog(_))),
        "a prompt layer"
    );
    insta::assert_snapshot!("prompt_120x40", draw(&d));
    d.take_outputs();
    d.open_path(apps::editor::APP, "/notes.txt".into(), None);
    let focused = d.focused().unwrap();
    assert_eq!(d.windows[&focused].kind(), apps::editor::APP);
    assert!(d.take_outputs().iter().any(|o| matches!(
        o,
        Output::Bus(
            _,
            kind,
            Effect::Request {
                topic: "vfs.read",
                ..
            }
        ) if *kind == apps::editor::APP
    )));
}

#[test]
fn the_connection_state_shows_in_the_status_bar() {
    let mut d = desktop(80, 24);
    d.link = LinkState::Reconnecting(3);
    insta::assert_snapshot!("reconnecting_80x24", draw(&d));
    d.link = LinkState::Down("auth_expired: the token was revoked".into());
    let screen = draw(&d);
    assert!(screen.contains("offline: auth_expired"), "{screen}");
}

#[test]
fn the_linux_console_gets_plain_borders_and_ascii_marks() {
    let mut theme = Theme::dark().with_palette(app_kit::Palette::Ansi16);
    theme.plain_glyphs = true;
    let mut d = Desktop::new(Keymap::default(), theme, "ada".into(), Instant::now());
    d.resize(80, 24);
    d.default_layout();
    d.start();
    d.show_welcome();
    let screen = draw(&d);
    for rich in ['┏', '╭', '●', '▸'] {
        assert!(!screen.contains(rich), "{rich} on the console:\n{screen}");
    }
    insta::assert_snapshot!("console_80x24", screen);
}

/// An `apps.list` entry.
fn listed(id: &str, name: &str, built_in: bool, runnable: bool) -> AppInfo {
    AppInfo {
        id: id.into(),
        name: name.into(),
        version: "1.0.0".into(),
        description: None,
        built_in,
        runnable,
        capabilities: Vec::new(),
        signature: None,
        installed_at_ms: None,
    }
}

#[test]
fn the_launcher_names_apps_as_their_manifests_do() {
    let mut d = desktop(80, 24);
    d.set_catalog(&[
        listed("files", "Files (manifest)", true, false),
        listed("desktop", "Aether Desktop", true, false),
        listed("chat", "Chat and People", true, false),
    ]);
    prefix(&mut d, Key::char('a'));
    let screen = draw(&d);
    assert!(
        screen.contains("1  Files (manifest)") && screen.contains("2  Settings"),
        "{screen}"
    );
    assert!(
        !screen.contains("Terminal  "),
        "no manifest, not offered:\n{screen}"
    );
    keys(&mut d, &[Key::char('2')]);
    let focused = d.focused().unwrap();
    assert_eq!(d.windows[&focused].kind(), apps::settings::APP);
}

#[test]
fn installed_programs_are_offered_and_open_in_a_program_window() {
    let mut d = desktop(120, 40);
    d.set_catalog(&[
        listed("files", "File Explorer", true, false),
        listed("store", "App Store", true, false),
        listed("todo", "To-do", false, true),
        listed("theme-pack", "Themes", false, false),
    ]);
    prefix(&mut d, Key::char('a'));
    let screen = draw(&d);
    assert!(
        screen.contains("2  App Store") && screen.contains("3  To-do  installed"),
        "{screen}"
    );
    assert!(!screen.contains("Themes"), "nothing to run:\n{screen}");
    d.take_outputs();
    keys(&mut d, &[Key::char('3')]);
    let focused = d.focused().unwrap();
    assert_eq!(d.windows[&focused].kind(), apps::program::APP);
    assert_eq!(d.windows[&focused].save()["id"], "todo");
    // It subscribes to its output first, as the terminal (which may run programs).
    assert!(d.take_outputs().iter().any(|o| matches!(
        o,
        Output::Bus(id, kind, Effect::Subscribe { .. })
            if *id == focused && *kind == apps::program::APP
    )));
    // `p` opens the App Store; the palette offers the program too.
    prefix(&mut d, Key::char('a'));
    keys(&mut d, &[Key::char('p')]);
    let focused = d.focused().unwrap();
    assert_eq!(d.windows[&focused].kind(), apps::store::APP);
    prefix(&mut d, Key::char('p'));
    for c in "to-do".chars() {
        keys(&mut d, &[Key::char(c)]);
    }
    keys(&mut d, &[Key::plain(KeyCode::Enter)]);
    let focused = d.focused().unwrap();
    assert_eq!(d.windows[&focused].kind(), apps::program::APP);
}

#[test]
fn the_store_launches_programs_and_asks_for_the_launcher_again() {
    let mut d = desktop(120, 40);
    let store = d.open_app(apps::store::APP, Placement::Auto, None);
    d.take_outputs();
    d.apply(
        store,
        vec![
            Effect::AppsChanged,
            Effect::Open {
                app: apps::program::APP,
                path: "todo".into(),
                line: None,
            },
        ],
    );
    let outputs = d.take_outputs();
    // The launcher's catalog (a headless app, acting as the desktop) lists them again.
    assert!(
        outputs.iter().any(|o| matches!(o,
            Output::Bus(Owner::Headless(Headless::Catalog), kind, Effect::Request { topic, .. })
                if *topic == "apps.list" && kind.manifest() == "desktop")),
        "{outputs:?}"
    );
    let focused = d.focused().unwrap();
    assert_ne!(focused, store);
    assert_eq!(d.windows[&focused].kind(), apps::program::APP);
    assert_eq!(d.windows[&focused].title(), "todo");
    // Both come back with the session.
    let saved = d.snapshot();
    let mut back = Desktop::new(
        Keymap::default(),
        Theme::dark(),
        "ada".into(),
        Instant::now(),
    );
    back.resize(120, 40);
    assert!(back.restore(&saved));
    let kinds: Vec<AppKind> = back.windows.values().map(|a| a.kind()).collect();
    assert!(kinds.contains(&apps::store::APP) && kinds.contains(&apps::program::APP));
    assert_eq!(back.snapshot(), saved);
}

#[test]
fn two_windows_of_the_same_title_are_numbered_and_closing_focuses_the_neighbour() {
    let mut d = desktop(120, 40);
    let second = d.open_app(apps::terminal::APP, Placement::Auto, None);
    let screen = draw(&d);
    assert!(screen.contains("Terminal / (2)"), "{screen}");
    assert_eq!(d.focused(), Some(second));
    prefix(&mut d, Key::char('z'));
    prefix(&mut d, Key::char('x'));
    let screen = draw(&d);
    assert!(!screen.contains("(2)"), "{screen}");
    let focused = d
        .focused()
        .and_then(|id| d.windows.get(&id))
        .map(|a| a.kind());
    assert_eq!(focused, Some(apps::files::APP), "the window it split from");
}

#[test]
fn a_theme_from_settings_applies_at_once_and_is_kept() {
    let mut d = desktop(80, 24);
    d.take_outputs();
    let settings = d.open_app(apps::settings::APP, Placement::Auto, None);
    let mut theme = Theme::light();
    theme.name = "mine".into();
    d.apply(settings, vec![Effect::SetTheme(Box::new(theme.clone()))]);
    assert_eq!(d.theme.accent, theme.accent);
    assert!(
        d.take_outputs()
            .iter()
            .any(|o| matches!(o, Output::SaveTheme(t) if t.name == "mine"))
    );
}

/// The ticket of the request on `topic` among the desktop's outputs.
fn requested(outputs: &[Output], topic: &str) -> app_kit::Ticket {
    outputs
        .iter()
        .find_map(|o| match o {
            Output::Bus(
                _,
                _,
                Effect::Request {
                    ticket, topic: t, ..
                },
            ) if *t == topic => Some(*ticket),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {topic} in {outputs:?}"))
}

#[test]
fn the_store_asks_consent_in_a_dialog_above_every_window() {
    let mut d = desktop(80, 24);
    d.take_outputs();
    let store = d.open_app(apps::store::APP, Placement::Auto, None);
    prefix(&mut d, Key::char('z'));
    let outputs = d.take_outputs();
    let answer = |d: &mut Desktop, ticket, data: serde_json::Value| {
        d.deliver(
            store,
            Event::Answer {
                ticket,
                result: Ok(data.into()),
            },
        )
    };
    answer(
        &mut d,
        requested(&outputs, "apps.catalog"),
        serde_json::json!({ "catalogs": [{ "location": "builtin", "name": "samples" }], "apps": [
            { "id": "todo", "name": "To-do", "version": "1.0.0", "versions": ["1.0.0"],
              "catalog": "builtin", "size": 61440, "sha256": "0a1b",
              "signature": { "state": "unsigned" },
              "capabilities": [
                  { "capability": "vfs_read", "reason": "read your to-do list, /todo.md" },
                  { "capability": "vfs_write", "reason": "save your to-do list, /todo.md" }] }] }),
    );
    keys(&mut d, &[Key::plain(KeyCode::Enter)]);
    let inspect = requested(&d.take_outputs(), "apps.inspect");
    answer(
        &mut d,
        inspect,
        serde_json::json!({ "id": "todo", "name": "To-do", "version": "1.0.0", "sha256": "0a1b",
            "size": 61440, "signature": { "state": "unsigned" },
            "capabilities": [
                { "capability": "vfs_read", "reason": "read your to-do list, /todo.md" },
                { "capability": "vfs_write", "reason": "save your to-do list, /todo.md" }],
            "needs_consent": ["vfs_read", "vfs_write"],
            "warnings": ["no publisher vouches for this bundle"] }),
    );
    insta::assert_snapshot!("store_consent_80x24", draw(&d));
    keys(&mut d, &[Key::char('y')]);
    let outputs = d.take_outputs();
    let install = outputs.iter().find_map(|o| match o {
        Output::Bus(
            id,
            kind,
            Effect::Request {
                topic: "apps.install",
                data,
                ..
            },
        ) if *id == store && *kind == apps::store::APP => Some(data.clone()),
        _ => None,
    });
    assert_eq!(
        install,
        Some(
            serde_json::json!({ "id": "todo", "version": "1.0.0", "consent": ["vfs_read", "vfs_write"], "sha256": "0a1b" })
        )
    );
}

/// The `presence.set` requests among these outputs: what each says of `away`.
fn away_said(outputs: &[Output]) -> Vec<serde_json::Value> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Bus(
                Owner::Headless(Headless::Away),
                kind,
                Effect::Request { topic, data, .. },
            ) if *topic == "presence.set" && kind.manifest() == "chat" => {
                Some(data["away"].clone())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn idle_for_five_minutes_you_are_away_and_the_next_key_brings_you_back() {
    let mut d = desktop(80, 24);
    let start = Instant::now();
    d.set_now(start);
    keys(&mut d, &[Key::char('x')]);
    d.take_outputs();
    assert_eq!(d.away_at(), Some(start + AWAY_AFTER));
    d.check_idle(start + AWAY_AFTER - Duration::from_secs(1));
    assert!(away_said(&d.take_outputs()).is_empty(), "not yet");
    d.check_idle(start + AWAY_AFTER);
    assert_eq!(away_said(&d.take_outputs()), [serde_json::json!(true)]);
    // Once: an idle desktop sets no timer for it again.
    assert_eq!(d.away_at(), None);
    d.check_idle(start + AWAY_AFTER * 3);
    assert!(away_said(&d.take_outputs()).is_empty());
    // A resize is not you; a key is.
    d.on_input(Input::Resize(100, 30));
    assert!(away_said(&d.take_outputs()).is_empty());
    let back = start + AWAY_AFTER * 4;
    d.set_now(back);
    keys(&mut d, &[Key::char('y')]);
    assert_eq!(away_said(&d.take_outputs()), [serde_json::json!(false)]);
    assert_eq!(d.away_at(), Some(back + AWAY_AFTER));
    keys(&mut d, &[Key::char('z')]);
    assert!(away_said(&d.take_outputs()).is_empty(), "already back");
}

#[test]
fn people_opens_a_direct_message_in_a_chat_window() {
    let mut d = desktop(120, 40);
    prefix(&mut d, Key::char('v'));
    keys(&mut d, &[Key::char('o')]);
    let people = d.focused().unwrap();
    assert_eq!(d.windows[&people].kind(), apps::people::APP);
    assert_eq!(d.windows[&people].title(), "People");
    d.take_outputs();
    d.apply(
        people,
        vec![Effect::Open {
            app: apps::chat::APP,
            path: "dm-1-2".into(),
            line: None,
        }],
    );
    let chat = d.focused().unwrap();
    assert_eq!(d.windows[&chat].kind(), apps::chat::APP);
    // It lists the rooms, as the chat app, and keeps the room with the session.
    let outputs = d.take_outputs();
    assert!(outputs.iter().any(|o| matches!(o,
        Output::Bus(id, kind, Effect::Request { topic, .. })
            if *id == chat && *kind == apps::chat::APP && *topic == "chat.rooms")));
    let saved = d.snapshot();
    assert_eq!(
        saved["windows"][chat.0.to_string()]["state"]["room"],
        "dm-1-2"
    );
    // The launcher names them as themselves, not as their shared manifest.
    d.set_catalog(&[AppInfo {
        id: "chat".into(),
        name: "Chat and People".into(),
        version: "0.1.0".into(),
        description: None,
        built_in: true,
        runnable: false,
        capabilities: vec![],
        signature: None,
        installed_at_ms: None,
    }]);
    let names: Vec<String> = d.catalog.iter().map(|a| a.name.clone()).collect();
    assert_eq!(names, ["Chat", "People"]);
}

#[test]
fn unread_chat_and_mentions_show_in_the_status_bar_with_no_chat_window() {
    let mut d = desktop(120, 40);
    let outputs = d.take_outputs();
    let watch = outputs
        .iter()
        .find_map(|o| match o {
            Output::Bus(
                Owner::Headless(Headless::Unread),
                kind,
                Effect::Subscribe { ticket, pattern },
            ) if pattern == "chat.>" && kind.manifest() == "chat" => Some(*ticket),
            _ => None,
        })
        .expect("the desktop listens to chat itself");
    d.deliver(Headless::Unread, Event::Subscribed { ticket: watch });
    let rooms = requested(&d.take_outputs(), "chat.rooms");
    let team = chat::RoomInfo {
        room: "team".into(),
        topic: None,
        private: false,
        with: None,
        members: 3,
        joined: true,
        unread: 3,
        mentions: 1,
        last_seq: 9,
    };
    let body = serde_json::to_string(&chat::RoomList {
        rooms: vec![team],
        more_public: None,
    })
    .unwrap();
    d.deliver(
        Headless::Unread,
        Event::Answer {
            ticket: rooms,
            result: Ok(app_kit::Payload::new(&body)),
        },
    );
    let screen = draw(&d);
    let status = screen.lines().last().unwrap();
    assert!(
        status.contains(" 3 unread ") && status.contains(" @1 "),
        "{status}"
    );
    // Someone mentions you: a notice, and the counts asked for again.
    d.deliver(
        Headless::Unread,
        Event::Delivery {
            ticket: watch,
            topic: "chat.mention".into(),
            data: serde_json::to_value(chat::Message {
                room: "team".into(),
                seq: 10,
                user: "bob".into(),
                text: "@ada look".into(),
                at_ms: 1,
                edited_ms: None,
                deleted: false,
                reply_to: None,
                mentions: vec!["ada".into()],
            })
            .unwrap(),
        },
    );
    assert!(draw(&d).contains("bob mentioned you in #team: @ada look"));
}

/// An Agent Console whose graph waits for approval of a long write.
fn agents_waiting(d: &mut Desktop) -> WindowId {
    d.take_outputs();
    let agents = d.open_app(apps::agents::APP, Placement::Auto, None);
    let outputs = d.take_outputs();
    let answer = |d: &mut Desktop, ticket, data: serde_json::Value| {
        d.deliver(
            agents,
            Event::Answer {
                ticket,
                result: Ok(data.into()),
            },
        )
    };
    answer(
        d,
        requested(&outputs, "agent.list"),
        serde_json::json!({ "graphs": [{ "id": "g1", "name": "notes", "state": "waiting",
            "app": "terminal", "updated_ms": 0, "counts": { "approval": 1 } }] }),
    );
    let get = requested(&d.take_outputs(), "agent.get");
    let data: String = (1..=40)
        .map(|i| format!("Line {i} of the meeting notes, which go on and on.\n"))
        .collect();
    answer(
        d,
        get,
        serde_json::json!({ "id": "g1", "name": "notes", "state": "waiting", "app": "terminal",
            "created_ms": 0, "updated_ms": 0, "auto_approve": false, "nodes": [
            { "id": "save", "tool": "vfs.write", "args": { "path": "/notes/a.md", "data": "${read.data}" },
              "needs": [], "state": "approval", "attempts": 0, "ask": {
                "action": "Replace /notes/a.md (1.2 KB) with 2.0 KB of new content: what it holds now is lost\nIt starts: \"Line 1 of the meeting notes, which go on and on.\"",
                "args": { "path": "/notes/a.md", "data": data } } }] }),
    );
    keys(d, &[Key::plain(KeyCode::Tab), Key::char('a')]);
    agents
}

#[test]
fn an_agent_step_is_reviewed_in_words_then_in_full_before_it_is_allowed() {
    both_sizes!("agent_review", |d: &mut Desktop| {
        agents_waiting(d);
    });
    let mut d = desktop(80, 24);
    agents_waiting(&mut d);
    keys(
        &mut d,
        &[Key::plain(KeyCode::PageDown), Key::plain(KeyCode::PageDown)],
    );
    let screen = draw(&d);
    assert!(screen.contains("Line 20 of the"), "{screen}");
    assert!(screen.contains("of 42"), "where the view is: {screen}");
    keys(&mut d, &[Key::plain(KeyCode::End)]);
    assert!(draw(&d).contains("Line 40 of the"), "nothing is cut");
    keys(&mut d, &[Key::plain(KeyCode::Enter)]);
    requested(&d.take_outputs(), "agent.approve");
    assert!(!draw(&d).contains("Review"), "the dialog is gone");
}
