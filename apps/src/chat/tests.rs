use aether_proto::{ErrorBody, ErrorCode};
use serde_json::json;

use super::*;
use crate::snapshot_sizes;
use crate::testing::{NOW_MS, answer, draw, request_on, requests};
use app_kit::{Key, KeyCode};

const MIN: u64 = 60_000;

fn rooms_json() -> Value {
    // The daemon's order: yours by name, then the public ones to join.
    json!({ "rooms": [
        { "room": "design", "private": false, "members": 4, "joined": true,
          "unread": 5, "mentions": 1, "last_seq": 30 },
        { "room": "dm-1-2", "private": true, "with": "ana", "members": 2, "joined": true,
          "unread": 1, "mentions": 0, "last_seq": 4 },
        { "room": "team", "topic": "the build and the release", "private": true, "members": 3,
          "joined": true, "unread": 2, "mentions": 1, "last_seq": 12 },
        { "room": "random", "private": false, "members": 9, "joined": false,
          "unread": 0, "mentions": 0, "last_seq": 100 },
    ]})
}

fn message(seq: u64, user: &str, minutes_ago: u64, text: &str) -> Value {
    json!({ "room": "team", "seq": seq, "user": user, "text": text,
            "at_ms": NOW_MS - minutes_ago * MIN })
}

fn team_page() -> Value {
    let mut edited = message(9, "bob", 165, "nice, @carol");
    edited["edited_ms"] = json!(NOW_MS - 160 * MIN);
    let mut deleted = message(10, "ana", 160, "");
    deleted["deleted"] = json!(true);
    let mut reply = message(11, "carol", 118, "also **windows** now");
    reply["reply_to"] = json!(8);
    let mut mention = message(12, "ana", 2, "@bob can you tag the release? It is `v0.4.0`");
    mention["mentions"] = json!(["bob"]);
    json!({ "room": "team", "more": true, "messages": [
        message(7, "ana", 18 * 60 + 30, "release notes are in `docs/release.md`"),
        message(8, "carol", 168, "**build is green** on main\n- linux\n- macos *(slow)*"),
        edited, deleted, reply, mention,
    ]})
}

/// Chat as bob, restored showing #team, everything answered.
fn opened() -> Chat {
    let mut chat = Chat::restore(&json!({ "room": "team" }));
    let effects = chat.start();
    assert!(
        matches!(&effects[0], Effect::Subscribe { pattern, .. } if pattern == "chat.>"),
        "{effects:?}"
    );
    let (whoami, _) = request_on(&effects, "sys.whoami");
    answer(
        &mut chat,
        whoami,
        json!({ "user": { "id": 2, "name": "bob", "admin": false,
        "guest": false }, "app": "chat", "bound_app": null }),
    );
    let (rooms, _) = request_on(&effects, "chat.rooms");
    let effects = answer(&mut chat, rooms, rooms_json());
    let (history, data) = request_on(&effects, "chat.history");
    assert_eq!(data, json!({ "room": "team", "limit": 50 }));
    let (members, _) = request_on(&effects, "chat.members");
    answer(
        &mut chat,
        members,
        json!({ "room": "team", "members": ["ana", "bob", "carol"] }),
    );
    // Shown, so read.
    let effects = answer(&mut chat, history, team_page());
    let (_, data) = request_on(&effects, "chat.read");
    assert_eq!(data, json!({ "room": "team" }));
    chat
}

fn key(chat: &mut Chat, code: KeyCode) -> Vec<Effect> {
    chat.update(Event::Key(Key::plain(code)))
}

fn typed(chat: &mut Chat, text: &str) {
    for c in text.chars() {
        assert!(chat.update(Event::Key(Key::char(c))).is_empty());
    }
}

fn deliver(chat: &mut Chat, topic: &str, data: Value) -> Vec<Effect> {
    let ticket = chat.events.unwrap();
    chat.update(Event::Delivery {
        ticket,
        topic: topic.into(),
        data,
    })
}

fn info<'a>(chat: &'a Chat, room: &str) -> &'a RoomInfo {
    chat.room_infos().iter().find(|r| r.room == room).unwrap()
}

fn seqs(chat: &Chat) -> Vec<u64> {
    chat.shown
        .as_ref()
        .unwrap()
        .messages
        .iter()
        .map(|m| m.seq)
        .collect()
}

#[test]
fn a_room_with_markdown_edits_deletes_replies_and_a_mention() {
    let chat = opened();
    snapshot_sizes!("chat_room", &chat);
    let screen = draw(&chat, 120, 40, true);
    for shown in [
        "#team",
        "public rooms",
        "(edited)",
        "message deleted",
        "↳ #8",
        "• linux",
        "yesterday",
        "PgUp loads older messages",
    ] {
        assert!(screen.contains(shown), "{shown} in\n{screen}");
    }
    assert_eq!(chat.title(), "Chat: #team");
}

#[test]
fn posting_sends_the_line_and_shows_the_answer() {
    let mut chat = opened();
    typed(&mut chat, "ship it **today**");
    let effects = key(&mut chat, KeyCode::Enter);
    let (post, data) = request_on(&effects, "chat.post");
    assert_eq!(data, json!({ "room": "team", "text": "ship it **today**" }));
    assert_eq!(chat.compose.input.text(), "");
    answer(&mut chat, post, message(13, "bob", 0, "ship it **today**"));
    // The live event of the same message comes too: it lands once.
    deliver(
        &mut chat,
        "chat.room.team.message",
        message(13, "bob", 0, "ship it **today**"),
    );
    assert_eq!(seqs(&chat), [7, 8, 9, 10, 11, 12, 13]);
    // An empty line sends nothing.
    assert!(key(&mut chat, KeyCode::Enter).is_empty());
}

#[test]
fn a_refused_post_keeps_its_text_and_says_how_long_to_wait() {
    let mut chat = opened();
    typed(&mut chat, "one more");
    let (post, _) = request_on(&key(&mut chat, KeyCode::Enter), "chat.post");
    chat.update(Event::Answer {
        ticket: post,
        result: Err(ErrorBody::new(
            ErrorCode::RateLimited,
            "too many messages at once: wait 1200 ms (retry_after_ms)",
        )),
    });
    assert_eq!(chat.compose.input.text(), "one more");
    snapshot_sizes!("chat_error", &chat);
    assert!(draw(&chat, 80, 24, true).contains("wait 1.2 s, then Enter"));
}

#[test]
fn a_message_in_the_shown_room_appears_and_elsewhere_counts_as_unread() {
    let mut chat = opened();
    let effects = deliver(
        &mut chat,
        "chat.room.team.message",
        message(13, "carol", 0, "tagged"),
    );
    assert_eq!(seqs(&chat).last(), Some(&13));
    let (_, data) = request_on(&effects, "chat.read");
    assert_eq!(data, json!({ "room": "team", "seq": 13 }));
    let mut elsewhere = message(31, "ana", 0, "@bob look");
    elsewhere["room"] = json!("design");
    elsewhere["mentions"] = json!(["bob"]);
    assert!(deliver(&mut chat, "chat.room.design.message", elsewhere).is_empty());
    assert_eq!(
        (info(&chat, "design").unread, info(&chat, "design").mentions),
        (6, 2)
    );
    assert_eq!(seqs(&chat).last(), Some(&13), "not shown here");
    // A room not listed yet (an invitation, a first direct message) lists them again.
    let mut new_room = message(1, "dan", 0, "welcome");
    new_room["room"] = json!("ops");
    let effects = deliver(&mut chat, "chat.room.ops.message", new_room);
    request_on(&effects, "chat.rooms");
}

#[test]
fn a_room_read_on_another_terminal_is_read_here() {
    let mut chat = opened();
    let mut elsewhere = message(40, "ana", 0, "@bob over here");
    elsewhere["room"] = json!("design");
    deliver(&mut chat, "chat.room.design.message", elsewhere);
    let unread = |chat: &Chat| (info(chat, "design").unread, info(chat, "design").mentions);
    let before = unread(&chat);
    assert!(before.0 > 0, "{before:?}");
    let effects = deliver(
        &mut chat,
        "chat.room.design.read",
        json!({ "room": "design", "private": false, "members": 2, "joined": true,
                "unread": 0, "mentions": 0, "last_seq": 40 }),
    );
    assert!(effects.is_empty());
    assert_eq!(unread(&chat), (0, 0));
    // Mentions are the desktop's to announce now.
    assert!(deliver(&mut chat, "chat.mention", message(41, "ana", 0, "@bob")).is_empty());
}

#[test]
fn page_up_loads_the_page_before_the_first_message() {
    let mut chat = opened();
    let effects = key(&mut chat, KeyCode::PageUp);
    let (older, data) = request_on(&effects, "chat.history");
    assert_eq!(data, json!({ "room": "team", "before": 7, "limit": 50 }));
    // Once is enough while it is on its way.
    assert!(requests(&key(&mut chat, KeyCode::PageUp)).is_empty());
    assert!(draw(&chat, 80, 24, true).contains("loading older messages…"));
    answer(
        &mut chat,
        older,
        json!({ "room": "team", "more": false, "messages": [
            message(5, "ana", 3000, "the first"), message(6, "ana", 2990, "the second") ] }),
    );
    assert_eq!(seqs(&chat), [5, 6, 7, 8, 9, 10, 11, 12]);
    assert!(
        requests(&key(&mut chat, KeyCode::PageUp)).is_empty(),
        "no more"
    );
    let screen = draw(&chat, 120, 40, true);
    assert!(screen.contains("the start of #team"), "{screen}");
}

#[test]
fn stale_answers_are_dropped() {
    let mut chat = opened();
    // Up to @ana, on to #design, back to @ana before either page came.
    let (first_dm, _) = request_on(&chat.update(Event::Key(Key::ctrl('p'))), "chat.history");
    let effects = chat.update(Event::Key(Key::ctrl('p')));
    let (design, data) = request_on(&effects, "chat.history");
    assert_eq!(data["room"], "design");
    let effects = chat.update(Event::Key(Key::ctrl('n')));
    let (dm, data) = request_on(&effects, "chat.history");
    assert_eq!(data["room"], "dm-1-2");
    let stale = json!({ "room": "design", "more": false, "messages": [
        { "room": "design", "seq": 30, "user": "ana", "text": "stale", "at_ms": NOW_MS } ] });
    answer(&mut chat, design, stale);
    answer(
        &mut chat,
        first_dm,
        json!({ "room": "dm-1-2", "more": false, "messages": [
            { "room": "dm-1-2", "seq": 4, "user": "ana", "text": "stale", "at_ms": NOW_MS } ] }),
    );
    assert!(!chat.shown.as_ref().unwrap().loaded);
    answer(
        &mut chat,
        dm,
        json!({ "room": "dm-1-2", "more": false, "messages": [] }),
    );
    assert!(draw(&chat, 80, 24, true).contains("nothing said here yet"));
    // Of two listings, the older one's answer is not drawn.
    let (first, _) = request_on(
        &chat.update(Event::Key(Key::plain(KeyCode::F(5)))),
        "chat.rooms",
    );
    let (second, _) = request_on(&chat.update(Event::Reconnected), "chat.rooms");
    assert!(answer(&mut chat, first, json!({ "rooms": [] })).is_empty());
    answer(&mut chat, second, rooms_json());
    assert_eq!(chat.room_infos().len(), 4);
}

#[test]
fn up_in_an_empty_line_edits_your_last_message() {
    let mut chat = opened();
    key(&mut chat, KeyCode::Up);
    assert_eq!(chat.compose.input.text(), "nice, @carol");
    assert!(draw(&chat, 80, 24, true).contains("editing your message #9"));
    chat.update(Event::Key(Key::ctrl('u')));
    typed(&mut chat, "nice work, @carol");
    let (_, data) = request_on(&key(&mut chat, KeyCode::Enter), "chat.edit");
    assert_eq!(
        data,
        json!({ "room": "team", "seq": 9, "text": "nice work, @carol" })
    );
    // Esc gives up an edit, and the line it filled.
    key(&mut chat, KeyCode::Up);
    key(&mut chat, KeyCode::Esc);
    assert_eq!(
        (chat.compose.input.text(), chat.compose.draft),
        ("", Draft::New)
    );
}

#[test]
fn deleting_your_message_asks_first() {
    let mut chat = opened();
    // Esc: the messages, the newest selected (ana's, not yours).
    key(&mut chat, KeyCode::Esc);
    assert_eq!(chat.focus, Focus::Messages);
    assert!(key(&mut chat, KeyCode::Char('d')).is_empty());
    assert!(draw(&chat, 80, 24, true).contains("only ana may delete that message"));
    for _ in 0..3 {
        key(&mut chat, KeyCode::Up);
    }
    assert_eq!(chat.selected, Some(9));
    let effects = key(&mut chat, KeyCode::Delete);
    let [Effect::Confirm { ticket, question }] = effects.as_slice() else {
        panic!("a confirm in {effects:?}");
    };
    assert!(question.starts_with("Delete your message #9"), "{question}");
    let effects = chat.update(Event::Confirmed {
        ticket: *ticket,
        yes: true,
    });
    let (delete, data) = request_on(&effects, "chat.delete");
    assert_eq!(data, json!({ "room": "team", "seq": 9 }));
    let mut gone = message(9, "bob", 165, "");
    gone["deleted"] = json!(true);
    answer(&mut chat, delete, gone);
    assert!(chat.shown.as_ref().unwrap().get(9).unwrap().deleted);
}

#[test]
fn replying_to_the_selected_message() {
    let mut chat = opened();
    key(&mut chat, KeyCode::Esc);
    key(&mut chat, KeyCode::Up);
    key(&mut chat, KeyCode::Char('r'));
    assert_eq!(chat.focus, Focus::Input);
    assert!(draw(&chat, 120, 40, true).contains("replying to #11 carol: also **windows** now"));
    typed(&mut chat, "great");
    let (_, data) = request_on(&key(&mut chat, KeyCode::Enter), "chat.post");
    assert_eq!(
        data,
        json!({ "room": "team", "text": "great", "reply_to": 11 })
    );
    assert_eq!(chat.compose.draft, Draft::New);
}

#[test]
fn tab_completes_a_members_name() {
    let mut chat = opened();
    typed(&mut chat, "thanks @ca");
    key(&mut chat, KeyCode::Tab);
    assert_eq!(chat.compose.input.text(), "thanks @carol ");
    // Someone joining can be named too.
    deliver(
        &mut chat,
        "chat.room.team.member",
        json!({ "room": "team", "user": "cara", "joined": true }),
    );
    assert_eq!(info(&chat, "team").members, 4);
    chat.update(Event::Key(Key::ctrl('u')));
    typed(&mut chat, "@ca");
    key(&mut chat, KeyCode::Tab);
    key(&mut chat, KeyCode::Tab);
    assert_eq!(chat.compose.input.text(), "@carol ");
}

#[test]
fn a_new_room_asks_its_name_then_who_may_join() {
    let mut chat = opened();
    key(&mut chat, KeyCode::Esc);
    let effects = key(&mut chat, KeyCode::Char('n'));
    let [Effect::Prompt { ticket, .. }] = effects.as_slice() else {
        panic!("a prompt in {effects:?}");
    };
    let effects = chat.update(Event::Prompted {
        ticket: *ticket,
        text: Some("Ops".into()),
    });
    let [
        Effect::Choose {
            ticket, options, ..
        },
    ] = effects.as_slice()
    else {
        panic!("a choice in {effects:?}");
    };
    assert_eq!(options.len(), 2);
    let effects = chat.update(Event::Chose {
        ticket: *ticket,
        index: Some(1),
    });
    let (create, data) = request_on(&effects, "chat.create");
    assert_eq!(data, json!({ "room": "ops", "private": true }));
    let effects = answer(
        &mut chat,
        create,
        json!({ "room": "ops", "private": true, "members": 1, "joined": true,
                "unread": 0, "mentions": 0, "last_seq": 0 }),
    );
    let (rooms, _) = request_on(&effects, "chat.rooms");
    let mut listed = rooms_json();
    listed["rooms"].as_array_mut().unwrap().insert(
        2,
        json!({ "room": "ops", "private": true, "members": 1, "joined": true,
                "unread": 0, "mentions": 0, "last_seq": 0 }),
    );
    let effects = answer(&mut chat, rooms, listed);
    let (_, data) = request_on(&effects, "chat.history");
    assert_eq!(data["room"], "ops");
    // A name that cannot be a room's is refused here.
    let effects = key(&mut chat, KeyCode::Esc);
    assert!(effects.is_empty());
    let effects = key(&mut chat, KeyCode::Char('n'));
    let [Effect::Prompt { ticket, .. }] = effects.as_slice() else {
        panic!("a prompt in {effects:?}");
    };
    let effects = chat.update(Event::Prompted {
        ticket: *ticket,
        text: Some("no spaces".into()),
    });
    assert!(effects.is_empty());
    assert!(draw(&chat, 80, 24, true).contains("is not a room name"));
}

#[test]
fn joining_a_public_room_and_leaving_one() {
    let mut chat = opened();
    chat.update(Event::Key(Key::ctrl('n')));
    assert_eq!(chat.selected_room().unwrap().room, "random");
    assert!(chat.shown.is_none());
    assert!(draw(&chat, 80, 24, true).contains("#random is public, with 9 members"));
    let (join, data) = request_on(&key(&mut chat, KeyCode::Enter), "chat.join");
    assert_eq!(data, json!({ "room": "random" }));
    let (rooms, _) = request_on(
        &answer(
            &mut chat,
            join,
            json!({ "room": "random", "private": false, "members": 10, "joined": true,
                    "unread": 0, "mentions": 0, "last_seq": 100 }),
        ),
        "chat.rooms",
    );
    let mut listed = rooms_json();
    listed["rooms"][3]["joined"] = json!(true);
    let effects = answer(&mut chat, rooms, listed);
    assert_eq!(request_on(&effects, "chat.history").1["room"], "random");
    // Leaving asks.
    key(&mut chat, KeyCode::Esc);
    let effects = key(&mut chat, KeyCode::Char('l'));
    let [Effect::Confirm { ticket, question }] = effects.as_slice() else {
        panic!("a confirm in {effects:?}");
    };
    assert_eq!(question, "Leave #random?");
    request_on(
        &chat.update(Event::Confirmed {
            ticket: *ticket,
            yes: true,
        }),
        "chat.leave",
    );
}

#[test]
fn searching_the_room() {
    let mut chat = opened();
    chat.update(Event::Key(Key::ctrl('f')));
    typed(&mut chat, "release");
    let (search, data) = request_on(&key(&mut chat, KeyCode::Enter), "chat.history");
    assert_eq!(
        data,
        json!({ "room": "team", "limit": 50, "search": "release" })
    );
    answer(
        &mut chat,
        search,
        json!({ "room": "team", "more": false, "messages": [
            message(7, "ana", 18 * 60 + 30, "release notes are in `docs/release.md`") ] }),
    );
    let screen = draw(&chat, 80, 24, true);
    assert!(screen.contains("\"release\" in #team: 1 found"), "{screen}");
    assert!(!screen.contains("build is green"), "{screen}");
    key(&mut chat, KeyCode::Esc);
    assert!(draw(&chat, 80, 24, true).contains("build is green"));
}

#[test]
fn opening_a_direct_message_shows_it_listing_the_rooms_when_new() {
    let mut chat = opened();
    let effects = chat.update(Event::OpenPath {
        path: "dm-1-2".into(),
        line: None,
    });
    assert_eq!(request_on(&effects, "chat.history").1["room"], "dm-1-2");
    let effects = chat.update(Event::OpenPath {
        path: "dm-2-3".into(),
        line: None,
    });
    let (rooms, _) = request_on(&effects, "chat.rooms");
    let mut listed = rooms_json();
    listed["rooms"].as_array_mut().unwrap().insert(
        2,
        json!({ "room": "dm-2-3", "private": true, "with": "carol", "members": 2,
                "joined": true, "unread": 0, "mentions": 0, "last_seq": 0 }),
    );
    let effects = answer(&mut chat, rooms, listed);
    assert_eq!(request_on(&effects, "chat.history").1["room"], "dm-2-3");
    assert_eq!(chat.title(), "Chat: @carol");
    assert_eq!(chat.save(), json!({ "room": "dm-2-3" }));
}

#[test]
fn no_rooms_yet_says_how_to_get_one() {
    let mut chat = Chat::new();
    let (rooms, _) = request_on(&chat.start(), "chat.rooms");
    answer(&mut chat, rooms, json!({ "rooms": [] }));
    snapshot_sizes!("chat_empty", &chat);
}

#[test]
fn page_up_moves_by_what_the_window_showed() {
    let mut chat = opened();
    let page: Vec<Value> = (100..150)
        .map(|seq| message(seq, "ana", 150 - seq, &format!("line {seq}")))
        .collect();
    let effects = chat.update(Event::Reconnected);
    let (history, _) = request_on(&effects, "chat.history");
    answer(
        &mut chat,
        history,
        json!({ "room": "team", "more": true, "messages": page }),
    );
    let screen = draw(&chat, 80, 24, true);
    assert!(
        screen.contains("line 149") && screen.contains("line 128"),
        "{screen}"
    );
    assert!(!screen.contains("line 127"), "{screen}");
    // The oldest shown goes to the bottom; fewer than a window's worth are left above,
    // so the page before them is asked for.
    let (_, data) = request_on(&key(&mut chat, KeyCode::PageUp), "chat.history");
    assert_eq!(data["before"], 100);
    let screen = draw(&chat, 80, 24, true);
    assert!(
        screen.contains("line 128") && !screen.contains("line 129"),
        "{screen}"
    );
    assert!(screen.contains("more below"), "{screen}");
    key(&mut chat, KeyCode::PageDown);
    let screen = draw(&chat, 80, 24, true);
    assert!(
        screen.contains("line 149") && !screen.contains("more below"),
        "{screen}"
    );
}
