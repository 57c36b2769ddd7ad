use aether_proto::ErrorCode;
use serde_json::json;

use super::*;
use crate::snapshot_sizes;
use crate::testing::{answer, draw, request_on, requests};
use app_kit::Key;

fn catalog_json() -> Value {
    json!({
        "catalogs": [{ "location": "builtin", "name": "Aether samples" }],
        "apps": [
            { "id": "ask", "name": "Ask", "version": "1.0.0", "versions": ["1.0.0"],
              "description": "Asks the daemon's AI your questions and prints the answers.",
              "catalog": "builtin", "size": 48213, "sha256": "9f2c41d0b7a3e5f8c6d1",
              "signature": { "state": "verified", "publisher": "aether" },
              "capabilities": [{ "capability": "ai_access",
                                 "reason": "send your questions to the AI provider this daemon is set up with" }] },
            { "id": "todo", "name": "To-do", "version": "1.1.0", "versions": ["1.1.0", "1.0.0"],
              "description": "A to-do list kept in /todo.md as markdown checkboxes.",
              "catalog": "builtin", "size": 61440, "sha256": "0a1b2c3d4e5f60718293",
              "signature": { "state": "unsigned" },
              "capabilities": [
                  { "capability": "vfs_read", "reason": "read your to-do list, /todo.md" },
                  { "capability": "vfs_write", "reason": "save your to-do list, /todo.md" }],
              "installed": "1.0.0" },
            { "id": "wordcount", "name": "Word Count", "version": "1.0.0", "versions": ["1.0.0"],
              "description": "Counts the lines, words and bytes of text files.",
              "catalog": "builtin", "size": 70000, "sha256": "77aa88bb99cc00dd11ee",
              "signature": { "state": "unknown_publisher", "publisher": "wordsmiths" },
              "capabilities": [{ "capability": "vfs_read",
                                 "reason": "read the files and folders you ask it to count" }],
              "installed": "1.0.0" },
        ]
    })
}

fn list_json() -> Value {
    json!({ "apps": [
        { "id": "files", "name": "File Explorer", "version": "0.1.0", "built_in": true,
          "runnable": false, "capabilities": ["vfs_read"] },
        { "id": "todo", "name": "To-do", "version": "1.0.0", "built_in": false, "runnable": true,
          "description": "A to-do list kept in /todo.md as markdown checkboxes.",
          "capabilities": ["vfs_read", "vfs_write"], "signature": { "state": "unsigned" },
          "installed_at_ms": 1 },
        { "id": "wordcount", "name": "Word Count", "version": "1.0.0", "built_in": false,
          "runnable": true, "capabilities": ["vfs_read"],
          "signature": { "state": "unknown_publisher", "publisher": "wordsmiths" } },
    ]})
}

fn ask_inspected() -> Value {
    json!({ "id": "ask", "name": "Ask", "version": "1.0.0", "sha256": "9f2c", "size": 48213,
        "signature": { "state": "verified", "publisher": "aether" },
        "capabilities": [{ "capability": "ai_access",
                           "reason": "send your questions to the AI provider this daemon is set up with" }],
        "needs_consent": ["ai_access"],
        "warnings": ["it talks to the AI provider, which may keep what you send"] })
}

/// A store with both lists answered.
fn opened() -> Store {
    let mut store = Store::new();
    let effects = store.start();
    assert!(matches!(&effects[0], Effect::Subscribe { pattern, .. } if pattern == "apps.events.*"));
    let (catalog, data) = request_on(&effects, "apps.catalog");
    assert_eq!(data, json!({}));
    let (list, _) = request_on(&effects, "apps.list");
    answer(&mut store, catalog, catalog_json());
    answer(&mut store, list, list_json());
    store
}

fn key(store: &mut Store, c: char) -> Vec<Effect> {
    store.update(Event::Key(Key::char(c)))
}

fn enter(store: &mut Store) -> Vec<Effect> {
    store.update(Event::Key(Key::plain(KeyCode::Enter)))
}

fn confirm(effects: &[Effect]) -> (Ticket, String) {
    match effects {
        [Effect::Confirm { ticket, question }] => (*ticket, question.clone()),
        _ => panic!("one confirm in {effects:?}"),
    }
}

fn progress(store: &mut Store, step: &str, done: u32) {
    let ticket = store.events.unwrap();
    store.update(Event::Delivery {
        ticket,
        topic: "apps.events.progress".into(),
        data: json!({ "id": "ask", "step": step, "done": done, "of": 4 }),
    });
}

/// Ask selected, Enter, its inspection answered: the consent dialog's ticket and question.
fn asking_consent(store: &mut Store) -> (Ticket, String) {
    let (inspect, data) = request_on(&enter(store), "apps.inspect");
    assert_eq!(data, json!({ "id": "ask" }));
    confirm(&answer(store, inspect, ask_inspected()))
}

#[test]
fn the_catalog_shows_versions_marks_and_who_vouches_for_each_app() {
    let mut store = opened();
    snapshot_sizes!("store_catalog", &store);
    key(&mut store, 'j');
    snapshot_sizes!("store_detail", &store);
    let screen = draw(&store, 120, 40, true);
    assert!(screen.contains("1.1.0 update"), "{screen}");
    assert!(
        screen.contains("not signed: no publisher vouches for it"),
        "{screen}"
    );
    assert!(
        screen.contains("save your to-do list, /todo.md"),
        "{screen}"
    );
    key(&mut store, 'j');
    let screen = draw(&store, 120, 40, true);
    assert!(screen.contains("1.0.0 installed"), "{screen}");
    assert!(
        screen.contains("whose key this daemon does not know"),
        "{screen}"
    );
}

#[test]
fn installing_inspects_then_asks_consent_then_installs_with_exactly_that_consent() {
    let mut store = opened();
    let (ticket, question) = asking_consent(&mut store);
    assert!(question.starts_with("Install Ask 1.0.0?"), "{question}");
    assert!(
        question.contains(
            "• ai_access: send your questions to the AI provider this daemon is set up with"
        ),
        "{question}"
    );
    assert!(
        question.contains("Warning: it talks to the AI provider"),
        "{question}"
    );
    assert!(
        question.contains("signed by aether (verified)"),
        "{question}"
    );
    let effects = store.update(Event::Confirmed { ticket, yes: true });
    let (install, data) = request_on(&effects, "apps.install");
    assert_eq!(
        data,
        json!({ "id": "ask", "version": "1.0.0", "consent": ["ai_access"], "sha256": "9f2c" })
    );
    progress(&mut store, "verify", 1);
    progress(&mut store, "stage", 2);
    snapshot_sizes!("store_installing", &store);
    assert_eq!(store.busy().as_deref(), Some("installing Ask"));
    let effects = answer(
        &mut store,
        install,
        json!({ "id": "ask", "version": "1.0.0", "sha256": "9f2c", "granted": ["ai_access"],
                "signature": { "state": "verified", "publisher": "aether" }, "took_ms": 40 }),
    );
    assert!(effects.contains(&Effect::AppsChanged), "{effects:?}");
    assert!(effects.contains(&Effect::notify(
        Level::Info,
        "installed Ask 1.0.0 — Enter (or l) launches it"
    )));
    // Both lists come again; Ask stays selected and now launches.
    let (catalog, _) = request_on(&effects, "apps.catalog");
    let mut installed = catalog_json();
    installed["apps"][0]["installed"] = json!("1.0.0");
    answer(&mut store, catalog, installed);
    assert_eq!(store.busy(), None);
    assert_eq!(
        enter(&mut store),
        [Effect::Open {
            app: crate::program::APP,
            path: "ask".into(),
            line: None,
        }]
    );
}

#[test]
fn declining_consent_installs_nothing() {
    let mut store = opened();
    let (ticket, _) = asking_consent(&mut store);
    let effects = store.update(Event::Confirmed { ticket, yes: false });
    assert!(requests(&effects).is_empty(), "{effects:?}");
    assert!(store.change.is_none());
    assert!(draw(&store, 80, 24, true).contains("Ask was not installed"));
    // A second answer to the same dialog does nothing either.
    assert!(
        store
            .update(Event::Confirmed { ticket, yes: true })
            .is_empty()
    );
}

#[test]
fn the_daemons_refusal_is_shown_in_the_window() {
    let mut store = opened();
    let (ticket, _) = asking_consent(&mut store);
    let (install, _) = request_on(
        &store.update(Event::Confirmed { ticket, yes: true }),
        "apps.install",
    );
    let effects = store.update(Event::Answer {
        ticket: install,
        result: Err(ErrorBody::new(
            ErrorCode::Forbidden,
            "ask 1.0.0 needs your consent to `ai_access` (send your questions to the AI \
             provider this daemon is set up with); nothing was installed",
        )),
    });
    assert!(!effects.contains(&Effect::AppsChanged));
    snapshot_sizes!("store_error", &store);
    // Another install may start now.
    let (inspect, _) = request_on(&enter(&mut store), "apps.inspect");
    assert!(inspect > install);
}

#[test]
fn one_change_at_a_time() {
    let mut store = opened();
    request_on(&enter(&mut store), "apps.inspect");
    key(&mut store, 'j');
    assert!(requests(&key(&mut store, 'u')).is_empty());
    assert!(draw(&store, 80, 24, true).contains("installing Ask first"));
}

#[test]
fn uninstalling_asks_first_and_says_what_goes() {
    let mut store = opened();
    key(&mut store, 'j');
    let (ticket, question) = confirm(&key(&mut store, 'x'));
    assert!(question.starts_with("Uninstall To-do 1.0.0?"), "{question}");
    assert!(question.contains("Your own files stay"), "{question}");
    let effects = store.update(Event::Confirmed { ticket, yes: true });
    let (uninstall, data) = request_on(&effects, "apps.uninstall");
    assert_eq!(data, json!({ "id": "todo" }));
    let effects = answer(
        &mut store,
        uninstall,
        json!({ "id": "todo", "version": "1.0.0", "files_removed": true, "tokens_revoked": 0 }),
    );
    assert!(effects.contains(&Effect::AppsChanged));
    assert!(effects.contains(&Effect::notify(Level::Info, "uninstalled To-do 1.0.0")));
    // Not installed: nothing to ask.
    key(&mut store, 'k');
    assert!(key(&mut store, 'x').is_empty());
}

#[test]
fn updating_asks_consent_for_what_is_new_only() {
    let mut store = opened();
    key(&mut store, 'j');
    // Enter on an app with a newer version updates it.
    let (inspect, data) = request_on(&enter(&mut store), "apps.inspect");
    assert_eq!(data, json!({ "id": "todo" }));
    let effects = answer(
        &mut store,
        inspect,
        json!({ "id": "todo", "name": "To-do", "version": "1.1.0", "sha256": "0a1b", "size": 61440,
            "signature": { "state": "unsigned" }, "installed": "1.0.0",
            "capabilities": [], "needs_consent": [] }),
    );
    let (ticket, question) = confirm(&effects);
    assert!(
        question.starts_with("Update To-do 1.0.0 to 1.1.0?"),
        "{question}"
    );
    assert!(question.contains("It asks for nothing new."), "{question}");
    let (_, data) = request_on(
        &store.update(Event::Confirmed { ticket, yes: true }),
        "apps.update",
    );
    assert_eq!(
        data,
        json!({ "id": "todo", "consent": [], "sha256": "0a1b" })
    );
}

#[test]
fn an_app_already_at_its_newest_version_is_not_updated() {
    let mut store = opened();
    key(&mut store, 'j');
    key(&mut store, 'j');
    let (inspect, _) = request_on(&key(&mut store, 'u'), "apps.inspect");
    let effects = answer(
        &mut store,
        inspect,
        json!({ "id": "wordcount", "name": "Word Count", "version": "1.0.0", "sha256": "77",
            "size": 1, "signature": { "state": "unsigned" }, "installed": "1.0.0",
            "capabilities": [], "needs_consent": [] }),
    );
    assert!(effects.is_empty(), "{effects:?}");
    assert!(draw(&store, 80, 24, true).contains("is the newest version"));
}

#[test]
fn stale_answers_are_dropped() {
    let mut store = opened();
    // Two refreshes: the first one's answer comes last and is not drawn.
    let first = request_on(&key(&mut store, 'r'), "apps.catalog").0;
    let second = request_on(&key(&mut store, 'r'), "apps.catalog").0;
    answer(&mut store, second, catalog_json());
    answer(&mut store, first, json!({ "catalogs": [], "apps": [] }));
    assert_eq!(store.catalog_apps().len(), 3);
    // A progress event for another app leaves the bar alone.
    let (ticket, _) = asking_consent(&mut store);
    store.update(Event::Confirmed { ticket, yes: true });
    let events = store.events.unwrap();
    store.update(Event::Delivery {
        ticket: events,
        topic: "apps.events.progress".into(),
        data: json!({ "id": "todo", "step": "commit", "done": 3, "of": 4 }),
    });
    assert!(matches!(
        &store.change,
        Some(Change {
            stage: Stage::Working { done: 0, .. },
            ..
        })
    ));
}

#[test]
fn the_installed_tab_and_its_empty_state() {
    let mut store = opened();
    store.update(Event::Key(Key::plain(KeyCode::Tab)));
    snapshot_sizes!("store_installed", &store);
    assert_eq!(
        key(&mut store, 'l'),
        [Effect::Open {
            app: crate::program::APP,
            path: "todo".into(),
            line: None,
        }]
    );
    let mut empty = Store::new();
    let effects = empty.start();
    let (list, _) = request_on(&effects, "apps.list");
    answer(&mut empty, list, json!({ "apps": [] }));
    empty.update(Event::Key(Key::plain(KeyCode::Tab)));
    let screen = draw(&empty, 80, 24, true);
    assert!(
        screen.contains("nothing installed yet — Tab for the catalog"),
        "{screen}"
    );
}

#[test]
fn no_catalog_answering_says_why() {
    let mut store = Store::new();
    let (catalog, _) = request_on(&store.start(), "apps.catalog");
    answer(
        &mut store,
        catalog,
        json!({ "catalogs": [
            { "location": "https://apps.example.org/index.json", "name": "example",
              "error": "connection refused" }], "apps": [] }),
    );
    let screen = draw(&store, 80, 24, true);
    assert!(
        screen.contains("no catalog answered: https://apps.example.org/index.json:")
            && screen.contains("connection refused"),
        "{screen}"
    );
}

#[test]
fn search_asks_the_catalog_and_esc_clears_it() {
    let mut store = opened();
    key(&mut store, '/');
    for c in "count".chars() {
        assert!(key(&mut store, c).is_empty());
    }
    let (_, data) = request_on(&enter(&mut store), "apps.catalog");
    assert_eq!(data, json!({ "query": "count" }));
    assert!(draw(&store, 80, 24, true).contains("search: \"count\""));
    let (_, data) = request_on(
        &store.update(Event::Key(Key::plain(KeyCode::Esc))),
        "apps.catalog",
    );
    assert_eq!(data, json!({}));
    // The session keeps the tab and the search.
    key(&mut store, '/');
    key(&mut store, 'x');
    enter(&mut store);
    store.update(Event::Key(Key::plain(KeyCode::Tab)));
    let back = Store::restore(&store.save());
    assert_eq!(
        (back.tab, back.query.as_deref()),
        (Tab::Installed, Some("x"))
    );
}
