//! Syntax colours from syntect with bat's syntaxes and themes (two-face): pure Rust, the
//! definitions embedded, nothing read from disk. The syntax is chosen by the file's
//! extension, else its first line (`#!/bin/sh`).

use std::sync::OnceLock;

use ratatui::style::{Color, Modifier, Style};
use syntect::easy::HighlightLines;
use syntect::highlighting::{FontStyle, Theme as SyntaxTheme};
use syntect::parsing::{SyntaxReference, SyntaxSet};
use two_face::theme::{EmbeddedLazyThemeSet, EmbeddedThemeName};

use crate::theme::{Palette, Theme};

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(two_face::syntax::extra_newlines)
}

fn themes() -> &'static EmbeddedLazyThemeSet {
    static SET: OnceLock<EmbeddedLazyThemeSet> = OnceLock::new();
    SET.get_or_init(two_face::theme::extra)
}

/// The syntax for a file, if one is known (plain text is not highlighted).
pub fn syntax_for(path: &str, first_line: &str) -> Option<&'static SyntaxReference> {
    let set = syntaxes();
    let name = path.rsplit('/').next().unwrap_or(path);
    let by_extension = name
        .rsplit_once('.')
        .and_then(|(_, ext)| set.find_syntax_by_extension(ext))
        .or_else(|| set.find_syntax_by_extension(name));
    by_extension
        .or_else(|| set.find_syntax_by_first_line(first_line))
        .filter(|s| s.name != "Plain Text")
}

/// The syntax theme that goes with an Aether theme.
fn syntax_theme(theme: &Theme) -> &'static SyntaxTheme {
    let name = if theme.name == "light" {
        EmbeddedThemeName::OneHalfLight
    } else {
        EmbeddedThemeName::Nord
    };
    themes().get(name)
}

/// Colour runs of one line: (byte range, style).
pub type Runs = Vec<(std::ops::Range<usize>, Style)>;

/// Highlights lines in order, carrying the parser's state from one to the next.
pub struct Highlighter {
    lines: HighlightLines<'static>,
    theme: Theme,
}

impl Highlighter {
    pub fn new(syntax: &'static SyntaxReference, theme: &Theme) -> Highlighter {
        Highlighter {
            lines: HighlightLines::new(syntax, syntax_theme(theme)),
            theme: theme.clone(),
        }
    }

    /// The runs of the next line (without its newline). A line the grammar chokes on
    /// gets no colour rather than an error.
    pub fn line(&mut self, line: &str) -> Runs {
        let with_newline = format!("{line}\n");
        let Ok(ranges) = self.lines.highlight_line(&with_newline, syntaxes()) else {
            return Vec::new();
        };
        let mut runs = Vec::with_capacity(ranges.len());
        let mut at = 0;
        for (style, text) in ranges {
            let end = (at + text.len()).min(line.len());
            if at < end {
                runs.push((at..end, self.style(style)));
            }
            at += text.len();
        }
        runs
    }

    fn style(&self, style: syntect::highlighting::Style) -> Style {
        let fg = style.foreground;
        let mut out = match self.theme.palette {
            Palette::None => Style::default(),
            _ => self.theme.fg_style(Color::Rgb(fg.r, fg.g, fg.b)),
        };
        if style.font_style.contains(FontStyle::BOLD) {
            out = out.add_modifier(Modifier::BOLD);
        }
        if style.font_style.contains(FontStyle::ITALIC) {
            out = out.add_modifier(Modifier::ITALIC);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_is_coloured_and_plain_text_is_not() {
        let syntax = syntax_for("/src/main.rs", "fn main() {}").expect("Rust is known");
        let mut highlighter = Highlighter::new(syntax, &Theme::dark());
        let runs = highlighter.line("fn main() {}");
        assert!(runs.len() > 2, "{runs:?}");
        assert!(runs.iter().all(|(r, _)| r.end <= "fn main() {}".len()));
        assert!(syntax_for("/notes.txt", "hello").is_none());
        assert!(
            syntax_for("/run", "#!/bin/sh").is_some(),
            "by the first line"
        );
    }
}
