//! What the chat says, in words: rooms' names as people read them, refusals with what to do
//! next, the notification for a mention.

use aether_proto::api::chat::{Message, RoomInfo};
use aether_proto::{ErrorBody, ErrorCode};

use app_kit::widgets::fit;

/// `#team`, or `@ana` for a direct message with ana.
pub(crate) fn room_name(room: &RoomInfo) -> String {
    match &room.with {
        Some(user) => format!("@{user}"),
        None => format!("#{}", room.room),
    }
}

/// A room's name from its id alone (a direct message's id names both users' ids).
pub(crate) fn room_id_name(room: &str, rooms: &[RoomInfo]) -> String {
    rooms
        .iter()
        .find(|r| r.room == room)
        .map_or_else(|| format!("#{room}"), room_name)
}

/// A refusal as one line: the daemon's words, and for a rate limit how long to wait.
pub(crate) fn refusal(doing: &str, e: &ErrorBody) -> String {
    if e.code == ErrorCode::RateLimited {
        let wait = e.retry_after_ms.or_else(|| waited_ms(&e.msg));
        return match wait {
            Some(ms) => {
                // Rounded up: waiting what it says is always enough.
                let tenths = ms.div_ceil(100);
                format!(
                    "{doing}: too many messages at once; wait {}.{} s, then Enter sends it",
                    tenths / 10,
                    tenths % 10
                )
            }
            None => format!("{doing}: {} (Enter sends it again)", e.msg),
        };
    }
    format!("{doing}: {}", e.msg)
}

/// The wait in a refusal that says `wait 850 ms` but carries no `retry_after_ms`.
fn waited_ms(msg: &str) -> Option<u64> {
    let rest = &msg[msg.find("wait ")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    rest[digits.len()..]
        .starts_with(" ms")
        .then(|| digits.parse().ok())?
}

/// `ana mentioned you in #team: is the build green?`, short enough for a notification.
pub(crate) fn mentioned(message: &Message, rooms: &[RoomInfo]) -> String {
    let first_line = message.text.lines().next().unwrap_or_default();
    let text = format!(
        "{} mentioned you in {}: {first_line}",
        message.user,
        room_id_name(&message.room, rooms)
    );
    fit(&text, 100)
}

/// A message's first line, short, for "replying to" and questions.
pub(crate) fn snippet(message: &Message, width: usize) -> String {
    if message.deleted {
        return "message deleted".into();
    }
    fit(message.text.lines().next().unwrap_or_default(), width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_says_how_long_to_wait() {
        let said = ErrorBody::new(
            ErrorCode::RateLimited,
            "too many messages at once: wait 850 ms (retry_after_ms)",
        );
        assert_eq!(
            refusal("not sent", &said),
            "not sent: too many messages at once; wait 0.9 s, then Enter sends it"
        );
        let with_field = ErrorBody::new(ErrorCode::RateLimited, "slow down")
            .retry_after(std::time::Duration::from_millis(2000));
        assert!(refusal("not sent", &with_field).contains("wait 2.0 s"));
        let other = ErrorBody::new(ErrorCode::BadFrame, "the message is empty");
        assert_eq!(
            refusal("not sent", &other),
            "not sent: the message is empty"
        );
    }
}
