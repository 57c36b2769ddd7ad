//! Saying you are away, or back: an app with no window that the desktop runs in the
//! background, through the same effects as every window. The desktop decides when (five
//! idle minutes, then the next key); this app only tells presence. It acts as the chat
//! app, whose manifest grants presence; a daemon without chat refuses, and nothing
//! waits for the answer.

use aether_proto::api::presence;

use app_kit::{App, AppKind, Effect, Event, Registration, Requests};

/// The registry's entry for it (a background app: the launcher never offers it).
pub const AWAY: AppKind = AppKind::of(&Registration {
    name: "away",
    title: "Presence",
    manifest: "chat",
    standalone: false,
    launcher_key: None,
    opens: &[],
    launch: |_| Box::new(Away::default()),
    restore: |_| Box::new(Away::default()),
});

#[derive(Default)]
pub struct Away {
    /// Answers change nothing: a refusal means presence is not for this user.
    requests: Requests<()>,
}

impl Away {
    /// Tell presence you are away (or back).
    pub fn set(&mut self, away: bool) -> Vec<Effect> {
        let set = presence::Set {
            away: Some(away),
            text: None,
        };
        vec![self.requests.call(&set, |_| ())]
    }
}

impl App for Away {
    app_kit::headless_plumbing!(AWAY);

    fn start(&mut self) -> Vec<Effect> {
        Vec::new()
    }

    fn update(&mut self, event: Event) -> Vec<Effect> {
        let _ = self.requests.reply(event);
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_says_away_and_back_as_presence_set() {
        let mut away = Away::default();
        for (said, expected) in [(true, true), (false, false)] {
            let effects = away.set(said);
            let [Effect::Request { topic, data, .. }] = &effects[..] else {
                panic!("one request: {effects:?}");
            };
            assert_eq!(*topic, "presence.set");
            assert_eq!(data["away"], expected);
        }
    }
}
