//! A one-line text input: the terminal's prompt, dialogs, the palette's query.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use unicode_width::UnicodeWidthChar;

use crate::key::{Key, KeyCode};

/// What a key did to the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEdit {
    Changed,
    Moved,
    Submit,
    Cancel,
    /// Not a key for the line (arrows up and down, Tab…): the owner decides.
    Ignored,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineInput {
    text: String,
    /// In chars, 0..=len.
    cursor: usize,
}

impl LineInput {
    pub fn new(text: impl Into<String>) -> LineInput {
        let text = text.into();
        let cursor = text.chars().count();
        LineInput { text, cursor }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn set(&mut self, text: impl Into<String>) {
        *self = LineInput::new(text);
    }

    /// Where the cursor is, in chars.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Put `with` in place of the chars `range` (a completed word); the cursor goes after it.
    pub fn replace(&mut self, range: std::ops::Range<usize>, with: &str) {
        let (from, to) = (self.byte_at(range.start), self.byte_at(range.end));
        self.text.replace_range(from..to, with);
        self.cursor = range.start + with.chars().count();
    }

    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map(|(i, _)| i)
            .unwrap_or(self.text.len())
    }

    pub fn insert_str(&mut self, s: &str) {
        // One line: pasted newlines and control characters become spaces.
        let clean: String = s
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let at = self.byte_at(self.cursor);
        self.text.insert_str(at, &clean);
        self.cursor += clean.chars().count();
    }

    pub fn handle(&mut self, key: Key) -> LineEdit {
        let len = self.text.chars().count();
        if key.mods.ctrl {
            return match key.code {
                KeyCode::Char('a') => self.move_to(0),
                KeyCode::Char('e') => self.move_to(len),
                KeyCode::Char('u') => {
                    let at = self.byte_at(self.cursor);
                    self.text.replace_range(..at, "");
                    self.cursor = 0;
                    LineEdit::Changed
                }
                KeyCode::Char('k') => {
                    let at = self.byte_at(self.cursor);
                    self.text.truncate(at);
                    LineEdit::Changed
                }
                KeyCode::Char('w') => self.delete_word(),
                KeyCode::Char('c') => LineEdit::Cancel,
                _ => LineEdit::Ignored,
            };
        }
        match key.code {
            KeyCode::Char(c) if !key.mods.alt => {
                let at = self.byte_at(self.cursor);
                self.text.insert(at, c);
                self.cursor += 1;
                LineEdit::Changed
            }
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
                LineEdit::Changed
            }
            KeyCode::Delete if self.cursor < len => {
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
                LineEdit::Changed
            }
            KeyCode::Backspace | KeyCode::Delete => LineEdit::Moved,
            KeyCode::Left => self.move_to(self.cursor.saturating_sub(1)),
            KeyCode::Right => self.move_to((self.cursor + 1).min(len)),
            KeyCode::Home => self.move_to(0),
            KeyCode::End => self.move_to(len),
            KeyCode::Enter => LineEdit::Submit,
            KeyCode::Esc => LineEdit::Cancel,
            _ => LineEdit::Ignored,
        }
    }

    fn move_to(&mut self, cursor: usize) -> LineEdit {
        self.cursor = cursor;
        LineEdit::Moved
    }

    fn delete_word(&mut self) -> LineEdit {
        let chars: Vec<char> = self.text.chars().collect();
        let mut start = self.cursor;
        while start > 0 && chars[start - 1] == ' ' {
            start -= 1;
        }
        while start > 0 && chars[start - 1] != ' ' {
            start -= 1;
        }
        let (from, to) = (self.byte_at(start), self.byte_at(self.cursor));
        self.text.replace_range(from..to, "");
        self.cursor = start;
        LineEdit::Changed
    }

    /// Draw the line, scrolled so the cursor shows; the cursor is a reversed cell when
    /// `show_cursor`.
    pub fn render(
        &self,
        area: Rect,
        buf: &mut Buffer,
        style: Style,
        cursor_style: Style,
        show_cursor: bool,
    ) {
        if area.width == 0 || area.height == 0 {
            return;
        }
        let width = area.width as usize;
        let chars: Vec<char> = self.text.chars().collect();
        // Scroll: the columns before the cursor that fit, leaving one for the cursor.
        let mut start = self.cursor;
        let mut used = 1;
        while start > 0 {
            let w = chars[start - 1].width().unwrap_or(0);
            if used + w > width {
                break;
            }
            used += w;
            start -= 1;
        }
        let mut x = area.x;
        let right = area.x + area.width;
        for (i, c) in chars.iter().enumerate().skip(start) {
            let w = c.width().unwrap_or(0) as u16;
            if x + w > right {
                break;
            }
            let cell_style = if show_cursor && i == self.cursor {
                cursor_style
            } else {
                style
            };
            buf[(x, area.y)].set_char(*c).set_style(cell_style);
            x += w.max(if w == 0 { 0 } else { 1 });
        }
        if show_cursor && self.cursor == chars.len() && x < right {
            buf[(x, area.y)].set_char(' ').set_style(cursor_style);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> LineInput {
        let mut line = LineInput::default();
        for c in text.chars() {
            line.handle(Key::char(c));
        }
        line
    }

    #[test]
    fn typing_editing_and_words() {
        let mut line = typed("cat notes.txt");
        assert_eq!(line.text(), "cat notes.txt");
        line.handle(Key::ctrl('w'));
        assert_eq!(line.text(), "cat ");
        line.handle(Key::plain(KeyCode::Home));
        line.handle(Key::plain(KeyCode::Delete));
        assert_eq!(line.text(), "at ");
        line.handle(Key::ctrl('e'));
        line.handle(Key::plain(KeyCode::Backspace));
        assert_eq!(line.text(), "at");
    }

    #[test]
    fn wide_characters_and_pasted_newlines() {
        let mut line = typed("日本");
        line.insert_str("a\nb");
        assert_eq!(line.text(), "日本a b");
        line.handle(Key::plain(KeyCode::Left));
        line.handle(Key::plain(KeyCode::Backspace));
        assert_eq!(line.text(), "日本ab");
    }

    #[test]
    fn a_word_is_replaced_where_the_cursor_is() {
        let mut line = typed("hi @an and");
        for _ in 0..4 {
            line.handle(Key::plain(KeyCode::Left));
        }
        assert_eq!(line.cursor(), 6);
        line.replace(3..6, "@ana ");
        assert_eq!((line.text(), line.cursor()), ("hi @ana  and", 8));
    }

    #[test]
    fn a_long_line_scrolls_to_the_cursor() {
        let line = typed(&"x".repeat(50));
        let area = Rect::new(0, 0, 10, 1);
        let mut buf = Buffer::empty(area);
        line.render(area, &mut buf, Style::default(), Style::default(), true);
        let row: String = (0..10).map(|x| buf[(x, 0)].symbol().to_owned()).collect();
        assert_eq!(row, "xxxxxxxxx ");
    }
}
