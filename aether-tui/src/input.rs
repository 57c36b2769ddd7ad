//! crossterm's events in the apps' terms.

use app_kit::{Key, KeyCode, Mods};
use crossterm::event::{
    Event, KeyCode as CtKey, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent,
    MouseEventKind,
};

use crate::desktop::{Input, MouseInput, MouseKind};

pub fn convert(event: Event) -> Option<Input> {
    match event {
        Event::Key(key) => key_of(key).map(Input::Key),
        Event::Mouse(mouse) => mouse_of(mouse).map(Input::Mouse),
        Event::Paste(text) => Some(Input::Paste(unix_lines(text))),
        Event::Resize(width, height) => Some(Input::Resize(width, height)),
        Event::FocusGained | Event::FocusLost => None,
    }
}

pub fn key_of(event: KeyEvent) -> Option<Key> {
    if event.kind == KeyEventKind::Release {
        return None;
    }
    let m = event.modifiers;
    let mut mods = Mods {
        ctrl: m.contains(KeyModifiers::CONTROL),
        alt: m.contains(KeyModifiers::ALT),
        shift: m.contains(KeyModifiers::SHIFT),
    };
    let code = match event.code {
        CtKey::Char(c) => {
            // The character already says whether Shift was down; chords match lower case.
            mods.shift = false;
            if mods.ctrl || mods.alt {
                KeyCode::Char(c.to_ascii_lowercase())
            } else {
                KeyCode::Char(c)
            }
        }
        CtKey::F(n) => KeyCode::F(n),
        CtKey::Enter => KeyCode::Enter,
        CtKey::Esc => KeyCode::Esc,
        CtKey::Backspace => KeyCode::Backspace,
        CtKey::Delete => KeyCode::Delete,
        CtKey::Tab => KeyCode::Tab,
        CtKey::BackTab => {
            mods.shift = false;
            KeyCode::BackTab
        }
        CtKey::Left => KeyCode::Left,
        CtKey::Right => KeyCode::Right,
        CtKey::Up => KeyCode::Up,
        CtKey::Down => KeyCode::Down,
        CtKey::Home => KeyCode::Home,
        CtKey::End => KeyCode::End,
        CtKey::PageUp => KeyCode::PageUp,
        CtKey::PageDown => KeyCode::PageDown,
        CtKey::Insert => KeyCode::Insert,
        _ => return None,
    };
    Some(Key { code, mods })
}

fn mouse_of(event: MouseEvent) -> Option<MouseInput> {
    let kind = match event.kind {
        MouseEventKind::Down(MouseButton::Left) => MouseKind::Down,
        MouseEventKind::Drag(MouseButton::Left) => MouseKind::Drag,
        MouseEventKind::Up(MouseButton::Left) => MouseKind::Up,
        MouseEventKind::ScrollUp => MouseKind::ScrollUp,
        MouseEventKind::ScrollDown => MouseKind::ScrollDown,
        _ => return None,
    };
    Some(MouseInput {
        kind,
        column: event.column,
        row: event.row,
    })
}

/// A paste's lines end in `\n`: terminals (and tmux) send a pasted newline as `\r` or
/// `\r\n`, and the apps split a paste into lines.
fn unix_lines(text: String) -> String {
    if !text.contains('\r') {
        return text;
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_newline_is_a_newline_whatever_the_terminal_sent() {
        let paste = |text: &str| convert(Event::Paste(text.to_owned()));
        for sent in ["pwd\nls", "pwd\rls", "pwd\r\nls"] {
            assert_eq!(
                paste(sent),
                Some(Input::Paste("pwd\nls".into())),
                "{sent:?}"
            );
        }
    }

    #[test]
    fn keys_arrive_as_typed() {
        let press = |code, mods| key_of(KeyEvent::new(code, mods));
        assert_eq!(
            press(CtKey::Char('g'), KeyModifiers::CONTROL),
            Some(Key::ctrl('g'))
        );
        assert_eq!(
            press(CtKey::Char('H'), KeyModifiers::SHIFT),
            Some(Key::char('H'))
        );
        assert_eq!(
            press(CtKey::Left, KeyModifiers::ALT),
            Some(Key::new(KeyCode::Left, Mods::ALT))
        );
        let mut release = KeyEvent::new(CtKey::Char('x'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(key_of(release), None);
    }
}
