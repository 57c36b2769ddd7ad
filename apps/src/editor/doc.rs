//! One open file: its text in a `ratatui-textarea`, where it lives, the version it was
//! read at (the VFS's check on save), and whether it has edits.

use ratatui::style::{Modifier, Style};
use ratatui_textarea::{CursorMove, Input, Key as TaKey, Scrolling, TextArea};

use app_kit::key::{Key, KeyCode};
use app_kit::path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DocState {
    Loading,
    Ready,
    /// Not opened, and why (binary, too large, not allowed…), shown in the window.
    Refused(String),
}

pub(crate) struct Doc {
    /// `None` for a scratch tab not saved yet.
    pub path: Option<String>,
    /// The version read or last saved; a save succeeds only if the file is still at it.
    pub version: Option<String>,
    pub dirty: bool,
    /// A hash of the text as last read or saved: undoing back to it is clean again.
    saved_fingerprint: u64,
    /// The last change was a replacement (a delete and an insert in the text area's
    /// history) that undo and redo take as one step.
    pub(super) paired: Paired,
    /// Another writer changed the file while this tab had edits.
    pub changed_elsewhere: bool,
    pub state: DocState,
    /// Where the cursor goes once the text arrives (a restored session).
    pub restore_cursor: Option<(usize, usize)>,
    pub(super) area: TextArea<'static>,
    trailing_newline: bool,
    /// Syntax colours, kept between frames (the view fills them in).
    pub(super) colours: std::cell::RefCell<app_kit::highlight::DocColours>,
    /// The first line edited since the colours were last worked out.
    pub(super) changed_from: std::cell::Cell<usize>,
}

impl Doc {
    pub fn loading(path: String) -> Doc {
        Doc {
            path: Some(path),
            state: DocState::Loading,
            ..Doc::scratch()
        }
    }

    pub fn scratch() -> Doc {
        Doc {
            path: None,
            version: None,
            dirty: false,
            saved_fingerprint: fingerprint(""),
            paired: Paired::No,
            changed_elsewhere: false,
            state: DocState::Ready,
            restore_cursor: None,
            area: styled(TextArea::default()),
            trailing_newline: true,
            colours: Default::default(),
            changed_from: std::cell::Cell::new(0),
        }
    }

    pub fn is_blank_scratch(&self) -> bool {
        self.path.is_none() && !self.dirty && self.area.is_empty()
    }

    pub fn editable(&self) -> bool {
        self.state == DocState::Ready
    }

    pub fn name(&self) -> String {
        match &self.path {
            Some(p) => path::file_name(p).to_owned(),
            None => "untitled".to_owned(),
        }
    }

    /// The text as saved: lines joined, with the final newline the file had.
    pub fn text(&self) -> String {
        let mut text = self.area.lines().join("\n");
        if self.trailing_newline && !text.is_empty() {
            text.push('\n');
        }
        text
    }

    pub fn set_text(&mut self, text: &str, version: Option<String>) {
        self.trailing_newline = text.ends_with('\n') || text.is_empty();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        self.area = styled(TextArea::new(lines));
        self.paired = Paired::No;
        self.changed_from.set(0);
        self.version = version;
        self.dirty = false;
        self.saved_fingerprint = fingerprint(&self.text());
        self.changed_elsewhere = false;
        self.state = DocState::Ready;
        if let Some((row, col)) = self.restore_cursor.take() {
            self.area.move_cursor(CursorMove::Jump(
                row.min(u16::MAX as usize) as u16,
                col.min(u16::MAX as usize) as u16,
            ));
        }
    }

    /// The save of `text` went through at `version`; edits made since stay dirty.
    pub fn saved(&mut self, text: &str, version: String) {
        self.version = Some(version);
        self.changed_elsewhere = false;
        self.saved_fingerprint = fingerprint(text);
        self.dirty = self.text() != text;
    }

    pub fn cursor(&self) -> (usize, usize) {
        let c = self.area.cursor();
        (c.0, c.1)
    }

    /// Put the cursor at the start of `line` (1-based, as search hits count).
    pub fn jump_to_line(&mut self, line: usize) {
        let row = line.saturating_sub(1).min(u16::MAX as usize) as u16;
        if self.editable() {
            self.area.move_cursor(CursorMove::Jump(row, 0));
        } else {
            self.restore_cursor = Some((row as usize, 0));
        }
    }

    /// Colours are stale from `row` on.
    fn touched(&self, row: usize) {
        self.changed_from.set(self.changed_from.get().min(row));
    }

    pub fn input(&mut self, key: Key) {
        if !self.editable() {
            return;
        }
        let before = self.area.cursor().0;
        let history = matches!(key.code, KeyCode::Char('z' | 'y')) && key.mods.ctrl;
        let modified = match (key.code, key.mods.ctrl) {
            (KeyCode::Char('z'), true) if self.paired == Paired::Undo => {
                self.paired = Paired::Redo;
                self.area.undo() | self.area.undo()
            }
            (KeyCode::Char('y'), true) if self.paired == Paired::Redo => {
                self.paired = Paired::Undo;
                self.area.redo() | self.area.redo()
            }
            (KeyCode::Char('z'), true) => self.area.undo(),
            (KeyCode::Char('y'), true) => self.area.redo(),
            (KeyCode::Char('c'), true) => {
                self.area.copy();
                false
            }
            (KeyCode::Char('x'), true) => self.area.cut(),
            (KeyCode::Char('v'), true) => self.area.paste(),
            _ => match to_input(key) {
                Some(input) => self.area.input(input),
                None => false,
            },
        };
        if modified {
            self.touched(before.min(self.area.cursor().0));
        }
        if modified && !history {
            self.paired = Paired::No;
        }
        if modified && history {
            // Undo and redo may land back on the saved text.
            self.dirty = fingerprint(&self.text()) != self.saved_fingerprint;
        } else {
            self.dirty |= modified;
        }
    }

    pub fn paste(&mut self, text: &str) {
        let before = self.area.cursor().0;
        if self.editable() && self.area.insert_str(text.replace("\r\n", "\n")) {
            self.touched(before);
            self.dirty = true;
            self.paired = Paired::No;
        }
    }

    pub fn scroll(&mut self, rows: i16) {
        self.area.scroll(Scrolling::Delta { rows, cols: 0 });
    }

    /// Move to the next match of `query` (from the cursor when `next` is false).
    pub fn search(&mut self, query: &str, next: bool) -> bool {
        if self.area.set_search_pattern(escape(query)).is_err() || query.is_empty() {
            return false;
        }
        self.area.search_forward(!next)
    }

    pub fn search_back(&mut self, query: &str) -> bool {
        if query.is_empty() || self.area.set_search_pattern(escape(query)).is_err() {
            return false;
        }
        self.area.search_back(false)
    }

    pub fn clear_search(&mut self) {
        let _ = self.area.set_search_pattern("");
    }

    /// Replace the match at or after the cursor, and move to the one after it.
    pub fn replace_next(&mut self, query: &str, with: &str) -> bool {
        if !self.search(query, false) {
            return false;
        }
        let (row, col) = self.cursor();
        let at_match = self.area.lines()[row]
            .chars()
            .skip(col)
            .collect::<String>()
            .starts_with(query);
        if at_match {
            self.touched(row);
            self.area.delete_str(query.chars().count());
            self.area.insert_str(with);
            self.dirty = true;
            self.paired = Paired::No;
        }
        self.search(query, false);
        at_match
    }

    /// Replace every match; undo takes it back (in two steps: the old text out, the new in).
    pub fn replace_all(&mut self, query: &str, with: &str) -> usize {
        if query.is_empty() || !self.editable() {
            return 0;
        }
        let text = self.area.lines().join("\n");
        let count = text.matches(query).count();
        if count == 0 {
            return 0;
        }
        let replaced = text.replace(query, with);
        let yank = self.area.yank_text();
        let cursor = self.area.cursor();
        self.touched(0);
        self.area.select_all();
        self.area.cut();
        self.area.insert_str(replaced);
        self.area.set_yank_text(yank);
        self.area
            .move_cursor(CursorMove::Jump(cursor.0 as u16, cursor.1 as u16));
        self.dirty = true;
        self.paired = Paired::No;
        count
    }
}

/// Whether the next undo (or redo) takes two of the text area's steps as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Paired {
    No,
    Undo,
    Redo,
}

fn fingerprint(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

fn styled(mut area: TextArea<'static>) -> TextArea<'static> {
    // Line numbers are the view's: the text area's own slide away on scrolling right.
    area.set_cursor_line_style(Style::default());
    area.set_cursor_style(Style::default().add_modifier(Modifier::REVERSED));
    area.set_selection_style(Style::default().add_modifier(Modifier::REVERSED | Modifier::DIM));
    area.set_search_style(Style::default().add_modifier(Modifier::UNDERLINED | Modifier::BOLD));
    area.set_tab_length(4);
    area.set_max_histories(1000);
    area
}

/// The query as a literal regular expression (the textarea searches by regex).
fn escape(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    for c in query.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn to_input(key: Key) -> Option<Input> {
    let code = match key.code {
        KeyCode::Char(c) => TaKey::Char(c),
        KeyCode::F(n) => TaKey::F(n),
        KeyCode::Enter => TaKey::Enter,
        KeyCode::Esc => TaKey::Esc,
        KeyCode::Backspace => TaKey::Backspace,
        KeyCode::Delete => TaKey::Delete,
        KeyCode::Tab => TaKey::Tab,
        KeyCode::Left => TaKey::Left,
        KeyCode::Right => TaKey::Right,
        KeyCode::Up => TaKey::Up,
        KeyCode::Down => TaKey::Down,
        KeyCode::Home => TaKey::Home,
        KeyCode::End => TaKey::End,
        KeyCode::PageUp => TaKey::PageUp,
        KeyCode::PageDown => TaKey::PageDown,
        KeyCode::BackTab | KeyCode::Insert => return None,
    };
    Some(Input {
        key: code,
        ctrl: key.mods.ctrl,
        alt: key.mods.alt,
        shift: key.mods.shift,
    })
}
