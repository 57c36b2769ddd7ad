//! The room on screen: its messages as far back as loaded (oldest first, by sequence
//! number), whether older ones remain, its members (for completing `@names`), and how far
//! the view is scrolled up. Messages come from history pages, your own posts' answers and
//! live events, in any order and sometimes twice: each lands once, in its place.
//!
//! The scroll counts messages below the view, so pages arriving above and messages below
//! leave the view still. Messages differ in height, which only the view knows: it notes
//! which it drew (the one `Cell`, moved as it is drawn), and a page up or down moves by
//! what the last frame showed.

use std::cell::Cell;

use aether_proto::api::chat::Message;

/// Messages a history page asks for.
pub(crate) const PAGE: u32 = 50;
/// Messages a page moves by before anything was drawn.
const SCROLL: usize = 10;
/// Older messages load once fewer than this many are above the bottom of the view (a
/// tall window shows about this many).
const PREFETCH: usize = 40;

#[derive(Debug, Clone, Default)]
pub(crate) struct Shown {
    pub room: String,
    pub messages: Vec<Message>,
    /// The first page came.
    pub loaded: bool,
    /// Why the first page did not come.
    pub failed: Option<String>,
    /// Older messages remain in the daemon.
    pub more: bool,
    /// An older page is on its way.
    pub loading_older: bool,
    pub members: Vec<String>,
    /// Messages below the bottom of the view (0: the newest shows).
    pub scroll: usize,
    /// Messages that came while scrolled up.
    pub unseen: usize,
    /// The oldest and newest message the last frame showed whole.
    pub drawn: Cell<Option<(usize, usize)>>,
}

impl Shown {
    pub fn new(room: &str) -> Shown {
        Shown {
            room: room.to_owned(),
            ..Shown::default()
        }
    }

    /// Where the message `seq` is (or would go).
    fn position(&self, seq: u64) -> Result<usize, usize> {
        self.messages.binary_search_by_key(&seq, |m| m.seq)
    }

    pub fn index_of(&self, seq: u64) -> Option<usize> {
        self.position(seq).ok()
    }

    pub fn get(&self, seq: u64) -> Option<&Message> {
        self.index_of(seq).map(|i| &self.messages[i])
    }

    /// Put a message in its place, replacing an older copy (an edit, a delete); true if it is
    /// new. A new one under a scrolled-up view keeps the view still.
    pub fn upsert(&mut self, message: Message) -> bool {
        match self.position(message.seq) {
            Ok(i) => {
                self.messages[i] = message;
                false
            }
            Err(i) => {
                let newest = i == self.messages.len();
                self.messages.insert(i, message);
                if newest && self.scroll > 0 {
                    self.scroll += 1;
                    self.unseen += 1;
                }
                true
            }
        }
    }

    /// An older page: before what is here.
    pub fn prepend(&mut self, page: Vec<Message>, more: bool) {
        self.more = more;
        self.loading_older = false;
        let before = self.messages.len();
        for message in page {
            // Counted from the bottom, the scroll stays where it was.
            if let Err(i) = self.position(message.seq) {
                self.messages.insert(i, message);
            }
        }
        let added = self.messages.len() - before;
        let drawn = self.drawn.get();
        self.drawn
            .set(drawn.map(|(top, last)| (top + added, last + added)));
    }

    /// The first page, replacing whatever was here (a reconnect may have missed some).
    pub fn first_page(&mut self, page: Vec<Message>, more: bool) {
        let live: Vec<Message> = std::mem::take(&mut self.messages)
            .into_iter()
            .filter(|m| page.last().is_none_or(|last| m.seq > last.seq))
            .collect();
        self.messages = page;
        self.messages.extend(live);
        self.more = more;
        self.loaded = true;
        self.loading_older = false;
        self.scroll = 0;
        self.unseen = 0;
    }

    pub fn first_seq(&self) -> Option<u64> {
        self.messages.first().map(|m| m.seq)
    }

    /// The index of the message at the bottom of the view.
    pub fn bottom(&self) -> Option<usize> {
        self.messages.len().checked_sub(1 + self.scroll)
    }

    /// Put the message at `index` at the bottom of the view.
    fn bottom_at(&mut self, index: usize) {
        self.scroll = self.messages.len().saturating_sub(1 + index);
        if self.scroll == 0 {
            self.unseen = 0;
        }
    }

    /// Scroll up (positive) or down by `delta` messages from what shows; true if older
    /// ones should load (the view is near the oldest loaded and more remain).
    pub fn scroll_by(&mut self, delta: isize) -> bool {
        let Some(bottom) = self.bottom() else {
            return false;
        };
        let (top, last) = self.drawn.get().unwrap_or((0, bottom));
        if delta > 0 && top == 0 && self.drawn.get().is_some() {
            // The oldest loaded shows already: nothing to scroll to, maybe some to load.
            return self.more && !self.loading_older;
        }
        let index = last
            .saturating_add_signed(-delta)
            .min(self.messages.len() - 1);
        self.bottom_at(index);
        self.near_top()
    }

    /// A page up (the oldest message shown goes to the bottom) or down (by as many).
    pub fn page(&mut self, up: bool) -> bool {
        let Some((top, last)) = self.drawn.get() else {
            return self.scroll_by(if up {
                SCROLL as isize
            } else {
                -(SCROLL as isize)
            });
        };
        let shown = last.saturating_sub(top).max(1) as isize;
        self.scroll_by(if up { shown } else { -shown })
    }

    /// Back to the newest.
    pub fn follow(&mut self) {
        self.bottom_at(self.messages.len().saturating_sub(1));
    }

    /// Show the message at `index`: scroll down to it if it is below the view (above it,
    /// the view finds it as it draws).
    pub fn reveal(&mut self, index: usize) {
        if self.bottom().is_some_and(|bottom| index > bottom) {
            self.bottom_at(index);
        }
    }

    pub fn near_top(&self) -> bool {
        self.more && !self.loading_older && self.bottom().is_none_or(|bottom| bottom < PREFETCH)
    }

    /// Your newest message that is not deleted.
    pub fn last_of(&self, user: &str) -> Option<&Message> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.user == user && !m.deleted)
    }

    pub fn member_joined(&mut self, user: &str, joined: bool) {
        self.members.retain(|m| m != user);
        if joined {
            self.members.push(user.to_owned());
            self.members.sort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64, text: &str) -> Message {
        Message {
            room: "team".into(),
            seq,
            user: "ana".into(),
            text: text.into(),
            at_ms: seq * 1000,
            edited_ms: None,
            deleted: false,
            reply_to: None,
            mentions: vec![],
        }
    }

    #[test]
    fn messages_land_once_in_order_whatever_order_they_come_in() {
        let mut shown = Shown::new("team");
        shown.first_page(vec![message(3, "c"), message(4, "d")], true);
        assert!(shown.upsert(message(6, "f")));
        assert!(shown.upsert(message(5, "e")));
        assert!(!shown.upsert(message(6, "f edited")));
        shown.prepend(
            vec![message(1, "a"), message(2, "b"), message(3, "c")],
            false,
        );
        let seqs: Vec<u64> = shown.messages.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
        assert_eq!(shown.get(6).unwrap().text, "f edited");
        assert!(!shown.more);
    }

    #[test]
    fn a_scrolled_view_stays_still_as_messages_come() {
        let mut shown = Shown::new("team");
        shown.first_page((1..=100).map(|s| message(s, "x")).collect(), true);
        assert!(!shown.scroll_by(5), "far from the top: nothing to load yet");
        assert_eq!(shown.bottom(), Some(94));
        shown.upsert(message(101, "new"));
        assert_eq!((shown.bottom(), shown.unseen), (Some(94), 1));
        assert!(shown.scroll_by(60), "near the top: load older");
        shown.follow();
        assert_eq!((shown.scroll, shown.unseen), (0, 0));
    }

    #[test]
    fn a_page_moves_by_what_the_view_showed() {
        let mut shown = Shown::new("team");
        shown.first_page((1..=100).map(|s| message(s, "x")).collect(), true);
        // The view showed messages 80 to 99 (the newest).
        shown.drawn.set(Some((80, 99)));
        shown.page(true);
        assert_eq!(shown.bottom(), Some(80));
        shown.drawn.set(Some((61, 80)));
        shown.page(false);
        assert_eq!(shown.bottom(), Some(99));
        // All of it shows: up scrolls nowhere, but older messages load.
        shown.drawn.set(Some((0, 99)));
        assert!(shown.page(true));
        assert_eq!(shown.scroll, 0);
        // A page arriving above moves what was drawn along.
        shown.prepend(vec![message(0, "older")], false);
        assert_eq!(shown.drawn.get(), Some((1, 100)));
    }
}
