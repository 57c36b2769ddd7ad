//! The terminal's scrollback: output lines as programs wrote them (ANSI kept for the
//! view), the line still being written, scrolling and search.

use std::collections::VecDeque;

use aether_proto::api::vm::{Ending, Exit, OutputChunk};
use base64::Engine;

/// Lines kept; older ones are dropped.
pub const MAX_LINES: usize = 10_000;
/// Longest line kept; the rest of a longer one is cut (a 100,000-character line stays drawable).
const MAX_LINE_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A command line as typed.
    Echo,
    Stdout,
    Stderr,
    Note,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutLine {
    pub kind: LineKind,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Scrollback {
    lines: VecDeque<OutLine>,
    /// The line a program is still writing (no newline yet).
    partial: Option<OutLine>,
    /// Lines up from the bottom.
    scroll: usize,
    /// The line a scrollback search found (index into `lines`).
    found: Option<usize>,
    dropped: u64,
}

impl Scrollback {
    fn push(&mut self, kind: LineKind, text: &str) {
        let mut text = clean(text);
        if text.len() > MAX_LINE_BYTES {
            let cut = text.floor_char_boundary(MAX_LINE_BYTES);
            text.truncate(cut);
            text.push('…');
        }
        self.lines.push_back(OutLine { kind, text });
        if self.lines.len() > MAX_LINES {
            self.lines.pop_front();
            self.dropped += 1;
            self.found = self.found.and_then(|f| f.checked_sub(1));
        }
        if self.scroll > 0 {
            // Reading back: keep the same lines on screen while new ones arrive.
            self.scroll += 1;
        }
    }

    pub fn echo(&mut self, prompt: &str, line: &str) {
        self.end_partial();
        self.push(LineKind::Echo, &format!("{prompt}{line}"));
    }

    /// A line typed for a program: it finishes the prompt the program left unfinished
    /// (`todo> add milk`), as a terminal shows it.
    pub fn typed(&mut self, line: &str) {
        match self.partial.take() {
            Some(prompt) => {
                let text = format!("{}{line}", prompt.text);
                self.push(prompt.kind, &text);
            }
            None => self.push(LineKind::Echo, line),
        }
    }

    pub fn note(&mut self, text: &str) {
        self.end_partial();
        for line in text.lines() {
            self.push(LineKind::Note, line);
        }
    }

    pub fn error(&mut self, text: &str) {
        self.end_partial();
        for line in text.lines() {
            self.push(LineKind::Error, line);
        }
    }

    /// Plain output of a command (ls, cat).
    pub fn print(&mut self, text: &str) {
        self.end_partial();
        for line in text.lines() {
            self.push(LineKind::Stdout, line);
        }
    }

    /// A piece of a program's output: whole lines go in, the rest waits for its newline.
    pub fn chunk(&mut self, chunk: &OutputChunk) {
        let text = if chunk.encoding == "base64" {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(chunk.data.as_bytes())
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            chunk.data.clone()
        };
        let kind = if chunk.stream == "stderr" {
            LineKind::Stderr
        } else {
            LineKind::Stdout
        };
        if self.partial.as_ref().is_some_and(|p| p.kind != kind) {
            self.end_partial();
        }
        let mut pieces = text.split('\n').peekable();
        while let Some(piece) = pieces.next() {
            let mut line = self.partial.take().unwrap_or(OutLine {
                kind,
                text: String::new(),
            });
            if line.text.len() < MAX_LINE_BYTES {
                line.text.push_str(piece);
            }
            if pieces.peek().is_some() {
                self.push(kind, &line.text);
            } else if !line.text.is_empty() {
                self.partial = Some(line);
            }
        }
    }

    pub fn end_partial(&mut self) {
        if let Some(line) = self.partial.take() {
            self.push(line.kind, &line.text);
        }
    }

    pub fn exit(&mut self, exit: &Exit) {
        let took = format_micros(exit.micros);
        match (exit.ending, exit.code) {
            (Ending::Exited, Some(0)) => self.push(LineKind::Note, &format!("[done in {took}]")),
            (Ending::Exited, code) => self.push(
                LineKind::Error,
                &format!("[exited with code {} in {took}]", code.unwrap_or(-1)),
            ),
            (ending, _) => {
                let why = match ending {
                    Ending::Killed => "stopped",
                    Ending::Timeout => "stopped at its deadline",
                    Ending::MemoryLimit => "stopped: over its memory limit",
                    Ending::OutputLimit => "stopped: over its output limit",
                    Ending::Trap => "crashed",
                    Ending::Exited => "ended",
                };
                let detail = exit
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                self.push(LineKind::Error, &format!("[{why} after {took}{detail}]"));
            }
        }
    }

    pub fn clear(&mut self) {
        *self = Scrollback::default();
    }

    pub fn scroll_up(&mut self, rows: usize) {
        self.scroll = (self.scroll + rows).min(self.lines.len().saturating_sub(1));
    }

    pub fn scroll_down(&mut self, rows: usize) {
        self.scroll = self.scroll.saturating_sub(rows);
    }

    /// Back to the bottom, as new input does.
    pub fn follow(&mut self) {
        self.scroll = 0;
        self.found = None;
    }

    /// Find `query` upwards: from the bottom, or (with `next`) above the last match.
    pub fn find(&mut self, query: &str, next: bool) -> bool {
        if query.is_empty() {
            self.found = None;
            return false;
        }
        let below = match (next, self.found) {
            (true, Some(found)) => found,
            _ => self.lines.len(),
        };
        let hit = (0..below)
            .rev()
            .find(|&i| self.lines[i].text.contains(query));
        if let Some(hit) = hit {
            self.found = Some(hit);
            self.scroll = self.lines.len() - hit - 1;
        }
        hit.is_some()
    }

    /// The lines to draw for this height, oldest first, with the found line's index; with
    /// or without the line still being written (a program window shows that one as its
    /// input line's prompt).
    pub fn visible_with(&self, height: usize, partial: bool) -> (Vec<&OutLine>, Option<usize>) {
        let mut all: Vec<&OutLine> = self.lines.iter().collect();
        if let Some(partial) = self.partial.as_ref().filter(|_| partial) {
            all.push(partial);
        }
        let end = all.len().saturating_sub(self.scroll);
        let start = end.saturating_sub(height);
        let found = self
            .found
            .and_then(|f| (start..end).contains(&f).then(|| f - start));
        (all[start..end].to_vec(), found)
    }

    /// The line a program is still writing: its prompt, when it waits for input.
    pub fn partial(&self) -> Option<&OutLine> {
        self.partial.as_ref()
    }

    pub fn scrolled(&self) -> usize {
        self.scroll
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lines.len() + usize::from(self.partial.is_some())
    }
}

/// Carriage returns keep what came after the last one (progress bars); tabs become spaces;
/// control characters other than ESC (colours) are dropped.
fn clean(text: &str) -> String {
    let text = text.rsplit('\r').next().unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push_str("    "),
            '\x1b' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn format_micros(micros: u64) -> String {
    if micros < 1_000 {
        format!("{micros} µs")
    } else if micros < 1_000_000 {
        format!("{:.1} ms", micros as f64 / 1_000.0)
    } else {
        format!("{:.2} s", micros as f64 / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(stream: &str, data: &str) -> OutputChunk {
        OutputChunk {
            seq: 0,
            stream: stream.into(),
            encoding: "utf8".into(),
            data: data.into(),
        }
    }

    fn texts(out: &Scrollback) -> Vec<String> {
        out.visible_with(100, true)
            .0
            .iter()
            .map(|l| l.text.clone())
            .collect()
    }

    #[test]
    fn output_is_split_into_lines_as_it_arrives() {
        let mut out = Scrollback::default();
        out.chunk(&chunk("stdout", "hel"));
        out.chunk(&chunk("stdout", "lo\nwor"));
        assert_eq!(texts(&out), ["hello", "wor"]);
        out.chunk(&chunk("stdout", "ld\n"));
        assert_eq!(texts(&out), ["hello", "world"]);
    }

    #[test]
    fn typed_input_finishes_the_programs_prompt() {
        let mut out = Scrollback::default();
        out.chunk(&chunk("stdout", "todo> "));
        out.typed("add milk");
        out.typed("list");
        assert_eq!(texts(&out), ["todo> add milk", "list"]);
    }

    #[test]
    fn carriage_returns_and_controls() {
        let mut out = Scrollback::default();
        out.print("10%\r50%\r100%\x07\tdone");
        assert_eq!(texts(&out), ["100%    done"]);
    }

    #[test]
    fn old_lines_go_and_long_lines_are_cut() {
        let mut out = Scrollback::default();
        for i in 0..MAX_LINES + 5 {
            out.print(&i.to_string());
        }
        assert_eq!(out.len(), MAX_LINES);
        out.print(&"x".repeat(100_000));
        let (lines, _) = out.visible_with(1, true);
        assert!(lines[0].text.len() <= MAX_LINE_BYTES + 3);
    }

    #[test]
    fn search_walks_upwards() {
        let mut out = Scrollback::default();
        for line in ["apple 1", "pear", "apple 2", "plum"] {
            out.print(line);
        }
        assert!(out.find("apple", false));
        assert_eq!(out.visible_with(1, true).0[0].text, "apple 2");
        assert!(out.find("apple", true));
        assert_eq!(out.visible_with(1, true).0[0].text, "apple 1");
        assert!(!out.find("apple", true));
        assert!(!out.find("kiwi", false));
    }
}
