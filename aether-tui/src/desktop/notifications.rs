//! The notification layer: short notices drawn over the bottom-right of the windows, each
//! for a few seconds, at most a few at once; and the history of every notice, newest
//! last, which outlives what is shown (for the notification centre to come).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use app_kit::Level;

/// How long a notice stays on screen.
pub const NOTICE_FOR: Duration = Duration::from_secs(5);
/// Notices on screen at once; an older one gives way to a newer.
const MAX_SHOWN: usize = 4;
/// Notices the history keeps.
pub const HISTORY: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub level: Level,
    pub text: String,
    /// When it was said.
    pub at: Instant,
    /// When it leaves the screen.
    pub until: Instant,
}

#[derive(Debug, Default)]
pub struct Notifications {
    shown: VecDeque<Notice>,
    history: VecDeque<Notice>,
}

impl Notifications {
    pub fn push(&mut self, level: Level, text: String, now: Instant) {
        let notice = Notice {
            level,
            text,
            at: now,
            until: now + NOTICE_FOR,
        };
        self.history.push_back(notice.clone());
        if self.history.len() > HISTORY {
            self.history.pop_front();
        }
        self.shown.push_back(notice);
        while self.shown.len() > MAX_SHOWN {
            self.shown.pop_front();
        }
    }

    /// Take down what has been shown long enough; true if any went (a redraw is due).
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.shown.len();
        self.shown.retain(|n| n.until > now);
        self.shown.len() != before
    }

    /// When the next notice leaves the screen, for the event loop's timer.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.shown.iter().map(|n| n.until).min()
    }

    /// What is on screen, oldest first.
    pub fn shown(&self) -> impl DoubleEndedIterator<Item = &Notice> {
        self.shown.iter()
    }

    /// Everything said, oldest first.
    pub fn history(&self) -> impl DoubleEndedIterator<Item = &Notice> {
        self.history.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_leaves_the_screen_but_stays_in_the_history() {
        let start = Instant::now();
        let mut notes = Notifications::default();
        for n in 0..6 {
            notes.push(Level::Info, format!("note {n}"), start);
        }
        let shown: Vec<&str> = notes.shown().map(|n| n.text.as_str()).collect();
        assert_eq!(shown, ["note 2", "note 3", "note 4", "note 5"]);
        assert_eq!(notes.next_expiry(), Some(start + NOTICE_FOR));
        assert!(!notes.expire(start + NOTICE_FOR - Duration::from_millis(1)));
        assert!(notes.expire(start + NOTICE_FOR));
        assert_eq!(notes.shown().count(), 0);
        assert_eq!(notes.next_expiry(), None);
        let said: Vec<&str> = notes.history().map(|n| n.text.as_str()).collect();
        assert_eq!(said.len(), 6);
        assert_eq!(said[0], "note 0");
    }

    #[test]
    fn the_history_is_bounded_and_keeps_the_newest() {
        let start = Instant::now();
        let mut notes = Notifications::default();
        for n in 0..HISTORY + 10 {
            notes.push(Level::Warn, format!("{n}"), start);
        }
        assert_eq!(notes.history().count(), HISTORY);
        assert_eq!(notes.history().next().map(|n| n.text.as_str()), Some("10"));
        let last = (HISTORY + 9).to_string();
        assert_eq!(
            notes.history().next_back().map(|n| n.text.as_str()),
            Some(last.as_str())
        );
    }
}
