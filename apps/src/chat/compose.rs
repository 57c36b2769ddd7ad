//! The line you write in: a new message, a reply to one, or an edit of one of yours; Tab
//! after `@` completes a member's name (again: the next one that fits).

use app_kit::widgets::LineInput;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Draft {
    #[default]
    New,
    Reply(u64),
    Edit(u64),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Composer {
    pub input: LineInput,
    pub draft: Draft,
    completion: Option<Completion>,
}

/// A name being completed: Tab again puts the next candidate in its place.
#[derive(Debug, Clone)]
struct Completion {
    /// Where its `@` is, in chars.
    at: usize,
    candidates: Vec<String>,
    next: usize,
}

impl Composer {
    /// Back to an empty new message.
    pub fn clear(&mut self) {
        self.input.take();
        self.draft = Draft::New;
        self.completion = None;
    }

    /// Any key but Tab ends a completion.
    pub fn end_completion(&mut self) {
        self.completion = None;
    }

    /// Tab: complete the `@name` before the cursor from `members` (not you); false when
    /// there is nothing to complete.
    pub fn complete(&mut self, members: &[String], me: Option<&str>) -> bool {
        if let Some(completion) = self.completion.as_mut() {
            let name = &completion.candidates[completion.next];
            completion.next = (completion.next + 1) % completion.candidates.len();
            // A space after the name, unless what follows already ends it.
            let follows = self.input.text().chars().nth(self.input.cursor());
            let space = match follows {
                Some(c) if c.is_whitespace() || c.is_ascii_punctuation() => "",
                _ => " ",
            };
            let replacement = format!("@{name}{space}");
            let at = completion.at;
            self.input.replace(at..self.input.cursor(), &replacement);
            return true;
        }
        let chars: Vec<char> = self.input.text().chars().collect();
        let cursor = self.input.cursor();
        let typed_len = chars[..cursor]
            .iter()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            .count();
        let Some(at) = cursor.checked_sub(typed_len + 1) else {
            return false;
        };
        let at_word_start = at == 0 || !chars[at - 1].is_alphanumeric();
        if chars[at] != '@' || !at_word_start {
            return false;
        }
        let typed: String = chars[at + 1..cursor]
            .iter()
            .collect::<String>()
            .to_lowercase();
        let candidates: Vec<String> = members
            .iter()
            .filter(|m| Some(m.as_str()) != me && m.to_lowercase().starts_with(&typed))
            .cloned()
            .collect();
        if candidates.is_empty() {
            return false;
        }
        self.completion = Some(Completion {
            at,
            candidates,
            next: 0,
        });
        self.complete(members, me)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app_kit::key::{Key, KeyCode};

    fn typed(text: &str) -> Composer {
        let mut composer = Composer::default();
        for c in text.chars() {
            composer.input.handle(Key::char(c));
        }
        composer
    }

    #[test]
    fn tab_completes_a_name_then_the_next_one() {
        let members: Vec<String> = ["ana", "andre", "bob"].map(String::from).to_vec();
        let mut composer = typed("hi @an");
        assert!(composer.complete(&members, Some("bob")));
        assert_eq!(composer.input.text(), "hi @ana ");
        assert!(composer.complete(&members, Some("bob")));
        assert_eq!(composer.input.text(), "hi @andre ");
        assert!(composer.complete(&members, Some("bob")));
        assert_eq!(composer.input.text(), "hi @ana ");
        composer.end_completion();
        // Yourself, a word without `@`, or an e-mail address: nothing to complete.
        assert!(!typed("@bo").complete(&members, Some("bob")));
        assert!(!typed("an").complete(&members, None));
        assert!(!typed("mail@an").complete(&members, None));
        // In the middle of the line, at the cursor.
        let mut middle = typed("@b, hello");
        for _ in 0..7 {
            middle.input.handle(Key::plain(KeyCode::Left));
        }
        assert!(middle.complete(&members, None));
        assert_eq!(middle.input.text(), "@bob, hello");
    }
}
