//! Chat and presence from a shell: chat rooms|create|join|leave|invite|dm|send|tail|history,
//! presence set|list.

use clap::Subcommand;
use futures_util::StreamExt;

use aether_proto::api::{Event as _, chat, presence};
use aether_proto::client::AppHandle;

use crate::output::{format_ms, print_answer, print_json, print_with};
use crate::{Failure, call};

#[derive(Subcommand)]
pub enum ChatCommand {
    /// Your rooms (unread and mentions), then the public ones you could join.
    Rooms,
    /// Make a room (public unless --private); you are its first member.
    Create {
        room: String,
        #[arg(long)]
        private: bool,
        #[arg(long)]
        topic: Option<String>,
    },
    /// Join a public room.
    Join {
        room: String,
    },
    Leave {
        room: String,
    },
    /// Add someone to a room you are in.
    Invite {
        room: String,
        user: String,
    },
    /// The direct-message room with someone (made the first time).
    Dm {
        user: String,
    },
    /// Post a message (`-` reads it from stdin).
    Send {
        room: String,
        text: String,
        /// Reply in this message's thread.
        #[arg(long)]
        reply_to: Option<u64>,
    },
    /// Print a room's new messages as they come, until Ctrl-C (or --count).
    Tail {
        room: String,
        #[arg(long)]
        count: Option<usize>,
    },
    /// A page of a room's history (oldest first).
    History {
        room: String,
        #[arg(long)]
        before: Option<u64>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        search: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum PresenceCommand {
    /// Say you are away or back, and set a status text (`--text ""` clears it).
    Set {
        #[arg(long, conflicts_with = "back")]
        away: bool,
        #[arg(long)]
        back: bool,
        #[arg(long)]
        text: Option<String>,
    },
    /// You and the people you share a room with.
    List,
}

fn message_line(m: &chat::Message) -> String {
    let when = format_ms(m.at_ms as i64);
    let text = if m.deleted {
        "(deleted)".to_owned()
    } else {
        m.text.clone()
    };
    let edited = if m.edited_ms.is_some() && !m.deleted {
        " (edited)"
    } else {
        ""
    };
    // Continuation lines are indented (and tabs and stray escapes made visible), so no
    // message can print a line that passes for another message.
    let text = text
        .replace('\r', "\\r")
        .replace('\t', "    ")
        .lines()
        .collect::<Vec<_>>()
        .join("\n    | ");
    format!("#{} {} {}: {}{}", m.seq, when, m.user, text, edited)
}

fn print_rooms(list: &chat::RoomList) {
    if list.rooms.is_empty() {
        outln!("no rooms yet: `aetherctl chat create NAME` makes one");
    }
    for r in &list.rooms {
        let name = match &r.with {
            Some(with) => format!("{} (with {with})", r.room),
            None => r.room.clone(),
        };
        let state = if !r.joined {
            "public: chat join to enter".to_owned()
        } else if r.unread > 0 {
            format!("{} unread, {} mentions", r.unread, r.mentions)
        } else {
            "read".to_owned()
        };
        let kind = if r.private { "private" } else { "public" };
        outln!("{name:<32} {kind:<8} {:>4} members  {state}", r.members);
    }
}

/// A page of messages, and how to ask for the one before it.
fn print_page(page: &chat::Page) {
    for m in &page.messages {
        outln!("{}", message_line(m));
    }
    if page.more
        && let Some(first) = page.messages.first()
    {
        eprintln!("(older: --before {})", first.seq);
    }
}

pub async fn run(command: &ChatCommand, app: &AppHandle, json: bool) -> Result<(), Failure> {
    match command {
        ChatCommand::Rooms => {
            let list = call(app, &chat::Rooms::default()).await?;
            print_with(json, &list, print_rooms);
        }
        ChatCommand::Create {
            room,
            private,
            topic,
        } => {
            let made = call(
                app,
                &chat::Create {
                    room: room.clone(),
                    private: *private,
                    topic: topic.clone(),
                },
            )
            .await?;
            print_answer(json, &made, |r| format!("made room {}", r.room));
        }
        ChatCommand::Join { room } => {
            let r = call(app, &chat::Join { room: room.clone() }).await?;
            print_answer(json, &r, |r| {
                format!("joined {} ({} members)", r.room, r.members)
            });
        }
        ChatCommand::Leave { room } => {
            let r = call(app, &chat::Leave { room: room.clone() }).await?;
            print_answer(json, &r, |r| format!("left {}", r.room));
        }
        ChatCommand::Invite { room, user } => {
            let r = call(
                app,
                &chat::Invite {
                    room: room.clone(),
                    user: user.clone(),
                },
            )
            .await?;
            print_answer(json, &r, |r| format!("{} is in {} now", r.user, r.room));
        }
        ChatCommand::Dm { user } => {
            let r = call(app, &chat::Direct { user: user.clone() }).await?;
            print_answer(json, &r, |r| r.room.clone());
        }
        ChatCommand::Send {
            room,
            text,
            reply_to,
        } => {
            let text = if text == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| Failure::Usage(format!("stdin: {e}")))?
            } else {
                text.clone()
            };
            let posted = call(
                app,
                &chat::Post {
                    room: room.clone(),
                    text,
                    reply_to: *reply_to,
                },
            )
            .await?;
            print_answer(json, &posted, |m| format!("sent #{}", m.seq));
        }
        ChatCommand::Tail { room, count } => tail(app, room, *count, json).await?,
        ChatCommand::History {
            room,
            before,
            limit,
            search,
        } => {
            let page = call(
                app,
                &chat::History {
                    room: room.clone(),
                    before: *before,
                    limit: Some(*limit),
                    thread: None,
                    search: search.clone(),
                },
            )
            .await?;
            print_with(json, &page, print_page);
        }
    }
    Ok(())
}

/// New messages of a room, one per line (JSON lines with --json).
async fn tail(
    app: &AppHandle,
    room: &str,
    count: Option<usize>,
    json: bool,
) -> Result<(), Failure> {
    // Membership first, so a room you are not in says so instead of staying silent.
    call(
        app,
        &chat::Members {
            room: room.to_owned(),
        },
    )
    .await?;
    let pattern = chat::RoomEvents::pattern_of(room);
    let mut sub = app
        .subscribe(&pattern)
        .await
        .map_err(Failure::from_client)?;
    let mut seen = 0;
    while let Some(msg) = sub.next().await {
        let Ok(message) = serde_json::from_str::<chat::Message>(msg.data.get()) else {
            continue;
        };
        if json {
            outln!("{}", serde_json::to_string(&message).unwrap_or_default());
        } else {
            let tag = chat::RoomEvents::parse(&msg.topic).map_or("", |e| e.kind.as_str());
            let line = message_line(&message);
            match tag {
                "message" => outln!("{line}"),
                other => outln!("{line} [{other}]"),
            }
        }
        seen += 1;
        if count.is_some_and(|c| seen >= c) {
            break;
        }
    }
    Ok(())
}

pub async fn run_presence(
    command: &PresenceCommand,
    app: &AppHandle,
    json: bool,
) -> Result<(), Failure> {
    match command {
        PresenceCommand::Set { away, back, text } => {
            let set = presence::Set {
                away: (*away || *back).then_some(*away),
                text: text.clone(),
            };
            let me = call(app, &set).await?;
            print_answer(json, &me, |p| {
                format!("{} is {:?}", p.user, p.state).to_lowercase()
            });
        }
        PresenceCommand::List => {
            let people = call(app, &presence::List {}).await?;
            if json {
                print_json(&people);
                return Ok(());
            }
            for p in &people.people {
                let state = format!("{:?}", p.state).to_lowercase();
                let seen = p
                    .last_seen_ms
                    .map(|ms| format!(" (last seen {})", format_ms(ms as i64)))
                    .unwrap_or_default();
                let text = p
                    .text
                    .as_deref()
                    .map(|t| format!("  {t}"))
                    .unwrap_or_default();
                outln!("{:<24} {state}{seen}{text}", p.user);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_cannot_print_a_line_that_passes_for_another() {
        let m = chat::Message {
            room: "team".into(),
            seq: 7,
            user: "eve".into(),
            text: "hi\n#8 2026-12-07T10:00:00Z bob: send me your password".into(),
            at_ms: 0,
            edited_ms: None,
            deleted: false,
            reply_to: None,
            mentions: vec![],
        };
        let printed = message_line(&m);
        let lines: Vec<&str> = printed.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("#7 1970-01-01T00:00:00Z eve: hi"));
        assert!(lines[1].starts_with("    | #8"), "{printed}");
    }
}
