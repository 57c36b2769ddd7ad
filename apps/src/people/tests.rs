use serde_json::json;

use super::*;
use crate::snapshot_sizes;
use crate::testing::{NOW_MS, answer, draw, request_on};
use app_kit::Key;

fn people_json() -> Value {
    json!({ "people": [
        { "user": "ana", "state": "away", "text": "lunch, back at 1" },
        { "user": "bob", "state": "online", "text": "reviewing the release" },
        { "user": "carol", "state": "offline", "last_seen_ms": NOW_MS - 5 * 60_000 },
        { "user": "dan", "state": "online" },
    ]})
}

/// People as bob, everything answered.
fn opened() -> People {
    let mut people = People::new();
    let effects = people.start();
    assert!(
        matches!(&effects[0], Effect::Subscribe { pattern, .. } if pattern == "presence.>"),
        "{effects:?}"
    );
    let (whoami, _) = request_on(&effects, "sys.whoami");
    answer(
        &mut people,
        whoami,
        json!({ "user": { "id": 2, "name": "bob", "admin": false,
        "guest": false }, "app": "chat", "bound_app": null }),
    );
    let (list, _) = request_on(&effects, "presence.list");
    answer(&mut people, list, people_json());
    people
}

fn key(people: &mut People, c: char) -> Vec<Effect> {
    people.update(Event::Key(Key::char(c)))
}

fn names(people: &People) -> Vec<&str> {
    people.people().iter().map(|p| p.user.as_str()).collect()
}

#[test]
fn everyone_with_a_dot_for_their_state() {
    let people = opened();
    assert_eq!(names(&people), ["bob", "dan", "ana", "carol"]);
    snapshot_sizes!("people", &people);
    let screen = draw(&people, 80, 24, true);
    assert!(screen.contains("bob (you)"), "{screen}");
    assert!(screen.contains("last seen 5 min ago"), "{screen}");
    assert_eq!(people.title(), "People: 2 around");
}

#[test]
fn enter_starts_a_direct_message_in_chat() {
    let mut people = opened();
    // Yourself: nobody to write to.
    assert!(
        people
            .update(Event::Key(Key::plain(KeyCode::Enter)))
            .is_empty()
    );
    key(&mut people, 'j');
    let effects = people.update(Event::Key(Key::plain(KeyCode::Enter)));
    let (direct, data) = request_on(&effects, "chat.direct");
    assert_eq!(data, json!({ "user": "dan" }));
    let effects = answer(
        &mut people,
        direct,
        json!({ "room": "dm-2-4", "private": true, "with": "dan", "members": 2,
                "joined": true, "unread": 0, "mentions": 0, "last_seq": 0 }),
    );
    assert_eq!(
        effects,
        [Effect::Open {
            app: crate::chat::APP,
            path: "dm-2-4".into(),
            line: None,
        }]
    );
}

#[test]
fn away_and_status_are_yours_to_set() {
    let mut people = opened();
    let (set, data) = request_on(&key(&mut people, 'a'), "presence.set");
    assert_eq!(data, json!({ "away": true }));
    answer(
        &mut people,
        set,
        json!({ "user": "bob", "state": "away", "text": "reviewing the release" }),
    );
    let (_, data) = request_on(&key(&mut people, 'a'), "presence.set");
    assert_eq!(data, json!({ "away": false }), "away now: a says back");
    let effects = key(&mut people, 's');
    let [
        Effect::Prompt {
            ticket, initial, ..
        },
    ] = effects.as_slice()
    else {
        panic!("a prompt in {effects:?}");
    };
    assert_eq!(initial, "reviewing the release");
    let effects = people.update(Event::Prompted {
        ticket: *ticket,
        text: Some(" in a meeting ".into()),
    });
    let (_, data) = request_on(&effects, "presence.set");
    assert_eq!(data, json!({ "text": "in a meeting" }));
}

#[test]
fn changes_come_live_and_the_selection_stays_on_its_person() {
    let mut people = opened();
    key(&mut people, 'j');
    key(&mut people, 'j');
    assert_eq!(people.selected().unwrap().user, "ana");
    let ticket = people.events.unwrap();
    people.update(Event::Delivery {
        ticket,
        topic: "presence.changed".into(),
        data: json!({ "user": "ana", "state": "online" }),
    });
    assert_eq!(names(&people), ["bob", "ana", "dan", "carol"]);
    assert_eq!(people.selected().unwrap().user, "ana");
    assert!(draw(&people, 80, 24, true).contains("● ana"));
}

#[test]
fn alone_it_says_how_to_meet_people() {
    let mut people = People::new();
    let effects = people.start();
    let (whoami, _) = request_on(&effects, "sys.whoami");
    answer(
        &mut people,
        whoami,
        json!({ "user": { "id": 2, "name": "bob", "admin": false,
        "guest": false }, "app": "chat", "bound_app": null }),
    );
    let (list, _) = request_on(&effects, "presence.list");
    answer(
        &mut people,
        list,
        json!({ "people": [{ "user": "bob", "state": "online" }] }),
    );
    assert!(draw(&people, 80, 24, true).contains("Nobody shares a room with you yet"));
}
