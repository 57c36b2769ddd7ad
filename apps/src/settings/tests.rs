use aether_proto::{ErrorBody, ErrorCode};
use serde_json::json;

use super::*;
use crate::snapshot_sizes;
use crate::testing::{answer, draw, request_on, requests};
use app_kit::Key;

/// Settings with every answer in.
fn loaded() -> Settings {
    let mut settings = Settings::new();
    let effects = settings.start();
    for (ticket, topic, _) in requests(&effects) {
        let data = match topic {
            "sys.whoami" => {
                json!({ "user": { "id": 1, "name": "ada", "admin": true, "guest": false },
                                    "app": "desktop", "bound_app": null })
            }
            "sys.token.list" => json!({ "tokens": [
                { "id": 3, "app": null, "label": "laptop", "created_at": 1_790_000_000, "expires_at": null, "current": false },
                { "id": 7, "app": "desktop", "label": "this terminal", "created_at": 1_790_000_100, "expires_at": 1_800_000_000, "current": true },
            ]}),
            "sys.perms.show" => json!({ "apps": [
                { "id": "files", "name": "File Explorer", "version": "0.1.0", "capabilities": ["vfs_read", "vfs_write"] },
                { "id": "terminal", "name": "VM Terminal", "version": "0.1.0", "capabilities": ["vm_run", "vfs_read"] },
            ], "errors": [] }),
            "sys.stats" => json!({ "version": "0.1.0", "uptime_secs": 3600,
                "hub": { "connections": 2, "subscriptions": 9, "published": 120, "delivered": 300, "dropped": 0,
                         "slow_consumers": 0, "requests": 80, "pending_requests": 0, "no_responders": 0, "timeouts": 0 },
                "apps": 8, "manifest_errors": [], "audit_dropped": 0, "tcp": "127.0.0.1:7470", "tls": false }),
            "ai.status" => json!({ "providers": [
                { "name": "local", "kind": "openai", "base_url": "http://127.0.0.1:11434/v1", "model": "llama3.2",
                  "embed_model": null, "has_key": false, "reachable": true, "latency_ms": 4 },
                { "name": "gemini", "kind": "gemini", "base_url": "https://generativelanguage.googleapis.com/v1beta",
                  "model": "gemini-2.5-flash", "embed_model": null, "has_key": true, "reachable": false,
                  "error": "cannot reach the provider: dns error" },
            ], "default": "local", "usage": [
                { "app": "terminal", "requests": 3, "input_tokens": 900, "output_tokens": 120 },
            ], "daily_token_quota": 200000 }),
            other => panic!("unexpected {other}"),
        };
        answer(&mut settings, ticket, data);
    }
    settings
}

#[test]
fn each_section_draws() {
    let mut settings = loaded();
    snapshot_sizes!("settings_account", &settings);
    settings.update(Event::Key(Key::char('2')));
    snapshot_sizes!("settings_tokens", &settings);
    settings.update(Event::Key(Key::char('3')));
    snapshot_sizes!("settings_apps", &settings);
    settings.update(Event::Key(Key::char('4')));
    snapshot_sizes!("settings_ai", &settings);
    settings.update(Event::Key(Key::char('5')));
    snapshot_sizes!("settings_daemon", &settings);
}

#[test]
fn revoking_a_token_asks_and_the_current_one_is_refused() {
    let mut settings = loaded();
    settings.update(Event::Key(Key::char('2')));
    let effects = settings.update(Event::Key(Key::char('d')));
    let Some(Effect::Confirm { ticket, question }) = effects.first().cloned() else {
        panic!("{effects:?}")
    };
    assert!(question.contains("Revoke token 3"), "{question}");
    let effects = settings.update(Event::Confirmed { ticket, yes: true });
    let (_, topic, data) = requests(&effects).remove(0);
    assert_eq!((topic, data), ("sys.token.revoke", json!({ "id": 3 })));
    settings.update(Event::Key(Key::plain(KeyCode::Down)));
    assert!(settings.update(Event::Key(Key::char('d'))).is_empty());
    assert!(draw(&settings, 80, 24, true).contains("this session's own token"));
}

#[test]
fn a_refusal_shows_in_the_window() {
    let mut settings = Settings::new();
    let effects = settings.start();
    let (ticket, _, _) = requests(&effects).remove(0);
    settings.update(Event::Answer {
        ticket,
        result: Err(ErrorBody::new(
            ErrorCode::Unavailable,
            "the daemon is not reachable right now",
        )),
    });
    assert!(draw(&settings, 80, 24, true).contains("not reachable"));
}

#[test]
fn a_password_change_asks_twice_hidden() {
    let mut settings = loaded();
    let effects = settings.update(Event::Key(Key::char('p')));
    let Some(Effect::Prompt { ticket, secret, .. }) = effects.first().cloned() else {
        panic!("{effects:?}")
    };
    assert!(secret, "typed passwords are never shown");
    let effects = settings.update(Event::Prompted {
        ticket,
        text: Some("n3w-secret".into()),
    });
    let Some(Effect::Prompt { ticket, .. }) = effects.first().cloned() else {
        panic!()
    };
    // Typed differently the second time: nothing is sent.
    assert!(
        settings
            .update(Event::Prompted {
                ticket,
                text: Some("other".into())
            })
            .is_empty()
    );
    assert!(draw(&settings, 80, 24, true).contains("the two passwords differ"));
    let effects = settings.update(Event::Key(Key::char('p')));
    let Some(Effect::Prompt { ticket, .. }) = effects.first().cloned() else {
        panic!()
    };
    let effects = settings.update(Event::Prompted {
        ticket,
        text: Some("n3w-secret".into()),
    });
    let Some(Effect::Prompt { ticket, .. }) = effects.first().cloned() else {
        panic!()
    };
    let effects = settings.update(Event::Prompted {
        ticket,
        text: Some("n3w-secret".into()),
    });
    let (_, topic, data) = requests(&effects).remove(0);
    assert_eq!(
        (topic, data),
        ("sys.user.passwd", json!({ "password": "n3w-secret" }))
    );
}

#[test]
fn an_apps_capabilities_show_with_their_reasons() {
    let mut settings = loaded();
    settings.update(Event::Key(Key::char('3')));
    let effects = settings.update(Event::Key(Key::plain(KeyCode::Enter)));
    let (ticket, topic, data) = requests(&effects).remove(0);
    assert_eq!((topic, data), ("sys.perms.show", json!({ "app": "files" })));
    answer(
        &mut settings,
        ticket,
        json!({ "app": { "id": "files", "name": "File Explorer", "version": "0.1.0",
                         "permissions": { "vfs_read": "browse and search your files", "vfs_write": "create, move and delete files" },
                         "entry": null },
                "grants": [], "own_namespace": "app.files.>" }),
    );
    snapshot_sizes!("settings_app_reasons", &settings);
}

#[test]
fn the_ai_designs_a_theme_that_is_previewed_then_applied() {
    let mut settings = loaded();
    settings.update(Event::Key(Key::char('4')));
    let effects = settings.update(Event::Key(Key::char('t')));
    let Some(Effect::Prompt { ticket, .. }) = effects.first().cloned() else {
        panic!("{effects:?}");
    };
    let effects = settings.update(Event::Prompted {
        ticket,
        text: Some("a calm dark theme with teal accents".into()),
    });
    let (generate, data) = request_on(&effects, "ai.generate");
    assert!(data["prompt"].as_str().unwrap().contains("teal accents"));
    assert_eq!(data["stream"], false);
    assert_eq!(
        data["schema"]["properties"]["accent"]["pattern"],
        "^#[0-9a-fA-F]{6}$"
    );
    let colours = json!({ "name": "Tidepool", "fg": "#d0e4e4", "dim": "#6f8f8f", "accent": "#2ec4b6",
        "border": "#2f4f4f", "border_focused": "#2ec4b6", "selection_fg": "#0b1f1f", "selection_bg": "#2ec4b6",
        "dir": "#5fb3b3", "info": "#8fd694", "warn": "#f2c14e", "error": "#e76f51",
        "bar_fg": "#d0e4e4", "bar_bg": "#173434" });
    answer(
        &mut settings,
        generate,
        json!({ "text": colours.to_string(), "json": colours, "provider": "p", "model": "m",
                "usage": { "input": 1, "output": 1 } }),
    );
    snapshot_sizes!("settings_ai_theme", &settings);
    let effects = settings.update(Event::Key(Key::plain(KeyCode::Enter)));
    let Some(Effect::SetTheme(theme)) = effects.first() else {
        panic!("{effects:?}");
    };
    assert_eq!(theme.name, "Tidepool");
    assert_eq!(theme.accent, ratatui::style::Color::Rgb(0x2e, 0xc4, 0xb6));
    // A colour that is not one is refused, and nothing is applied.
    let effects = settings.update(Event::Key(Key::char('t')));
    let Some(Effect::Prompt { ticket, .. }) = effects.first().cloned() else {
        panic!("{effects:?}");
    };
    let (generate, _) = request_on(
        &settings.update(Event::Prompted {
            ticket,
            text: Some("teal".into()),
        }),
        "ai.generate",
    );
    let mut bad = colours.clone();
    bad["fg"] = json!("teal");
    answer(
        &mut settings,
        generate,
        json!({ "text": "", "json": bad, "provider": "p", "model": "m", "usage": { "input": 1, "output": 1 } }),
    );
    assert!(settings.theme_preview.is_none());
    assert!(draw(&settings, 80, 24, true).contains("fg is \"teal\", not #rrggbb"));
}
