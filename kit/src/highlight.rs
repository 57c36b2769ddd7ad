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

/// Lines between saved parser states: an edit re-colours from the last one before it.
const CHECKPOINT_EVERY: usize = 64;

type ParserState = (
    syntect::parsing::ParseState,
    syntect::highlighting::HighlightState,
);

/// A document's colours, kept between frames: runs for the lines coloured so far and the
/// parser's state before every 64th line, so an edit re-colours from just before it, and
/// only as far as the screen shows.
#[derive(Default)]
pub struct DocColours {
    key: Option<(String, String)>,
    syntax: Option<&'static SyntaxReference>,
    /// Runs of lines `0..runs.len()`.
    runs: Vec<Runs>,
    /// `checkpoints[k]`: the state before line `k * CHECKPOINT_EVERY`.
    checkpoints: Vec<ParserState>,
    /// The state before line `runs.len()`.
    tail: Option<ParserState>,
}

impl DocColours {
    /// The runs of `lines[..upto]` (fewer if the file has no known syntax: then none),
    /// after the text changed from line `changed_from` on.
    pub fn runs(
        &mut self,
        path: &str,
        lines: &[String],
        upto: usize,
        changed_from: usize,
        theme: &Theme,
    ) -> &[Runs] {
        let key = (path.to_owned(), theme.name.clone());
        if self.key.as_ref() != Some(&key) {
            *self = DocColours {
                syntax: syntax_for(path, lines.first().map_or("", |l| l.as_str())),
                key: Some(key),
                ..DocColours::default()
            };
        }
        let Some(syntax) = self.syntax else {
            return &[];
        };
        if changed_from < self.runs.len() {
            let k = changed_from / CHECKPOINT_EVERY;
            self.checkpoints.truncate(k + 1);
            self.runs.truncate(k * CHECKPOINT_EVERY);
            self.tail = self.checkpoints.get(k).cloned();
        }
        let upto = upto.min(lines.len());
        if self.runs.len() >= upto {
            return &self.runs[..upto];
        }
        let highlighter = syntect::highlighting::Highlighter::new(syntax_theme(theme));
        let (mut parse, mut state) = self.tail.take().unwrap_or_else(|| {
            (
                syntect::parsing::ParseState::new(syntax),
                syntect::highlighting::HighlightState::new(
                    &highlighter,
                    syntect::parsing::ScopeStack::new(),
                ),
            )
        });
        let colour = Highlighter {
            lines: HighlightLines::new(syntax, syntax_theme(theme)),
            theme: theme.clone(),
        };
        let from = self.runs.len();
        for (index, line) in lines.iter().enumerate().take(upto).skip(from) {
            if index % CHECKPOINT_EVERY == 0 && self.checkpoints.len() == index / CHECKPOINT_EVERY {
                self.checkpoints.push((parse.clone(), state.clone()));
            }
            let with_newline = format!("{line}\n");
            let mut runs = Vec::new();
            if let Ok(ops) = parse.parse_line(&with_newline, syntaxes()) {
                let mut at = 0;
                for (style, text) in syntect::highlighting::HighlightIterator::new(
                    &mut state,
                    &ops,
                    &with_newline,
                    &highlighter,
                ) {
                    let end = (at + text.len()).min(line.len());
                    if at < end {
                        runs.push((at..end, colour.style(style)));
                    }
                    at += text.len();
                }
            }
            self.runs.push(runs);
        }
        self.tail = Some((parse, state));
        &self.runs[..upto]
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    #[test]
    fn an_edit_recolours_from_its_checkpoint_to_the_same_result() {
        let lines: Vec<String> = (0..300)
            .map(|i| format!("let x{i} = \"s{i}\"; // c"))
            .collect();
        let mut cached = DocColours::default();
        let theme = Theme::dark();
        let first = cached
            .runs("/a.rs", &lines, 300, usize::MAX, &theme)
            .to_vec();
        assert_eq!(first.len(), 300);
        let mut edited = lines.clone();
        edited[150] = "/* open comment".into();
        let after = cached.runs("/a.rs", &edited, 300, 150, &theme).to_vec();
        let fresh = DocColours::default()
            .runs("/a.rs", &edited, 300, usize::MAX, &theme)
            .to_vec();
        assert_eq!(after, fresh);
        assert_ne!(
            after[200], first[200],
            "the open comment colours what follows"
        );
        assert!(
            DocColours::default()
                .runs("/a.txt", &lines, 10, 0, &theme)
                .is_empty()
        );
    }
}
