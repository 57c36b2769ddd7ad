//! Entry points for fuzzing what other people's text reaches in the apps: chat Markdown,
//! and a program's output through the terminal's scrollback and ANSI parser.

use aether_proto::api::vm::OutputChunk;
use base64::Engine;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use crate::terminal::output::Scrollback;
use app_kit::Theme;

/// A chat message's text as another user wrote it.
pub fn markdown(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines = crate::chat::markdown::render(&text, &Theme::dark(), Some("ana"));
    let mut buf = Buffer::empty(Rect::new(0, 0, 40, 20));
    for (row, line) in lines.into_iter().take(20).enumerate() {
        buf.set_line(0, row as u16, &line, 40);
    }
}

/// A program's output, split into chunks at the bytes' own NULs, as text and as base64,
/// then every line drawn as the terminal draws it (ANSI escapes parsed).
pub fn program_output(data: &[u8]) {
    let mut scrollback = Scrollback::default();
    for (seq, piece) in data.split(|b| *b == 0).enumerate() {
        let (encoding, text) = match std::str::from_utf8(piece) {
            Ok(text) => ("utf8", text.to_owned()),
            Err(_) => (
                "base64",
                base64::engine::general_purpose::STANDARD.encode(piece),
            ),
        };
        scrollback.chunk(&OutputChunk {
            seq: seq as u64,
            stream: if seq % 3 == 2 { "stderr" } else { "stdout" }.into(),
            encoding: encoding.into(),
            data: text,
        });
    }
    scrollback.scroll_up(3);
    let _ = scrollback.find("e", false);
    let (lines, _) = scrollback.visible_with(10, true);
    let mut buf = Buffer::empty(Rect::new(0, 0, 60, 10));
    for (row, line) in lines.into_iter().take(10).enumerate() {
        let drawn = crate::terminal::ansi_line(&line.text);
        buf.set_line(0, row as u16, &drawn, 60);
    }
}
