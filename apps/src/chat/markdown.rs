//! The Markdown chat messages use, as styled lines: `**bold**`, `*italic*` (and `_italic_`),
//! `` `code` ``, lines starting `- ` or `* ` as bullets, `> ` quotes, `#` headings and
//! fenced code blocks; `@name` mentions stand out, yours the most. Anything unclosed stays
//! as typed. Small on purpose: a message is a few lines, not a document.

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use app_kit::theme::Theme;

/// The styles the renderer uses, from the theme.
struct Styles {
    base: Style,
    code: Style,
    mention: Style,
    me: Style,
    dim: Style,
}

/// A message's text as lines, one per line of the source (long ones wrap when drawn).
pub(crate) fn render(text: &str, theme: &Theme, me: Option<&str>) -> Vec<Line<'static>> {
    let styles = Styles {
        base: theme.base(),
        code: theme.fg_style(theme.dir),
        mention: theme.fg_style(theme.accent),
        me: theme.warn(),
        dim: theme.dim(),
    };
    let mut lines = Vec::new();
    let mut fenced = false;
    for source in text.split('\n') {
        let trimmed = source.trim_start();
        if trimmed.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            lines.push(Line::from(Span::styled(
                source.replace('\t', "    "),
                styles.code,
            )));
            continue;
        }
        let indent = &source[..source.len() - trimmed.len()];
        let line = if let Some(item) = trimmed
            .strip_prefix("- ")
            .or_else(|| trimmed.strip_prefix("* "))
        {
            let mut spans = vec![Span::styled(
                format!("{indent}{} ", theme.glyph("•", "*")),
                styles.base,
            )];
            spans.extend(inline(item, styles.base, &styles, me));
            Line::from(spans)
        } else if let Some(quote) = trimmed
            .strip_prefix("> ")
            .or_else(|| (trimmed == ">").then_some(""))
        {
            let mut spans = vec![Span::styled(
                format!("{indent}{} ", theme.glyph("│", "|")),
                styles.dim,
            )];
            let style = styles.dim.add_modifier(Modifier::ITALIC);
            spans.extend(inline(quote, style, &styles, me));
            Line::from(spans)
        } else if let Some(heading) = heading(trimmed) {
            Line::from(inline(
                heading,
                styles.base.add_modifier(Modifier::BOLD),
                &styles,
                me,
            ))
        } else {
            Line::from(inline(source, styles.base, &styles, me))
        };
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push(Line::default());
    }
    lines
}

/// `# Title` to `Title` (one to three `#`, then a space).
fn heading(line: &str) -> Option<&str> {
    let hashes = line.bytes().take_while(|b| *b == b'#').count();
    (1..=3)
        .contains(&hashes)
        .then(|| line[hashes..].strip_prefix(' '))?
}

/// Inline marks within one line, each span styled `style` patched by its marks.
fn inline(text: &str, style: Style, styles: &Styles, me: Option<&str>) -> Vec<Span<'static>> {
    let chars: Vec<char> = text.chars().collect();
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut plain = String::new();
    let flush = |plain: &mut String, spans: &mut Vec<Span<'static>>| {
        if !plain.is_empty() {
            spans.push(Span::styled(std::mem::take(plain), style));
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let before = i.checked_sub(1).map(|j| chars[j]);
        match c {
            '\\' if i + 1 < chars.len() && chars[i + 1].is_ascii_punctuation() => {
                plain.push(chars[i + 1]);
                i += 2;
                continue;
            }
            '`' => {
                if let Some(end) = find(&chars, i + 1, &['`']) {
                    flush(&mut plain, &mut spans);
                    let code: String = chars[i + 1..end].iter().collect();
                    spans.push(Span::styled(code, style.patch(styles.code)));
                    i = end + 1;
                    continue;
                }
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                if let Some(end) = closing(&chars, i + 2, &['*', '*']) {
                    flush(&mut plain, &mut spans);
                    let inner: String = chars[i + 2..end].iter().collect();
                    let bold = style.add_modifier(Modifier::BOLD);
                    spans.extend(inline(&inner, bold, styles, me));
                    i = end + 2;
                    continue;
                }
            }
            // `_` only at a word's start, so snake_case_names stay as they are.
            '*' | '_' if c == '*' || !before.is_some_and(char::is_alphanumeric) => {
                if let Some(end) = closing(&chars, i + 1, &[c])
                    && (c == '*'
                        || !chars
                            .get(end + 1)
                            .is_some_and(|next| next.is_alphanumeric()))
                {
                    flush(&mut plain, &mut spans);
                    let inner: String = chars[i + 1..end].iter().collect();
                    let italic = style.add_modifier(Modifier::ITALIC);
                    spans.extend(inline(&inner, italic, styles, me));
                    i = end + 1;
                    continue;
                }
            }
            '@' if !before.is_some_and(|b| b.is_alphanumeric()) => {
                let name_len = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                    .count();
                // A trailing dot ends the sentence, not the name (as the daemon reads it).
                let name: String = chars[i + 1..i + 1 + name_len].iter().collect();
                let name = name.trim_end_matches('.');
                if !name.is_empty() {
                    flush(&mut plain, &mut spans);
                    let mark = if Some(name) == me {
                        styles.me
                    } else {
                        styles.mention
                    };
                    spans.push(Span::styled(format!("@{name}"), style.patch(mark)));
                    i += 1 + name.chars().count();
                    continue;
                }
            }
            _ => {}
        }
        plain.push(c);
        i += 1;
    }
    flush(&mut plain, &mut spans);
    spans
}

/// Where `mark` next starts at or after `from`.
fn find(chars: &[char], from: usize, mark: &[char]) -> Option<usize> {
    (from..chars.len().saturating_sub(mark.len() - 1)).find(|&j| chars[j..].starts_with(mark))
}

/// The closing `mark` of an emphasis opened just before `from`: the text between starts
/// and ends with a non-space (`2 * 3 * 4` stays plain).
fn closing(chars: &[char], from: usize, mark: &[char]) -> Option<usize> {
    if chars.get(from).is_none_or(|c| c.is_whitespace()) {
        return None;
    }
    let mut at = from;
    while let Some(end) = find(chars, at, mark) {
        if end > from && !chars[end - 1].is_whitespace() {
            return Some(end);
        }
        at = end + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn theme() -> Theme {
        Theme::dark()
    }

    /// The text of each span with its marks: `*b*` bold, `/i/` italic, `` `c` `` code.
    fn marked(line: &Line) -> String {
        let t = theme();
        line.spans
            .iter()
            .map(|s| {
                let text = s.content.to_string();
                if s.style.add_modifier.contains(Modifier::BOLD) && s.style.fg == t.base().fg {
                    format!("*{text}*")
                } else if s.style.add_modifier.contains(Modifier::ITALIC) {
                    format!("/{text}/")
                } else if s.style.fg == t.fg_style(t.dir).fg {
                    format!("`{text}`")
                } else if s.style.fg == t.fg_style(t.accent).fg {
                    format!("<{text}>")
                } else if s.style.fg == t.warn().fg {
                    format!("<<{text}>>")
                } else {
                    text
                }
            })
            .collect()
    }

    fn one(text: &str) -> String {
        marked(&render(text, &theme(), Some("bob"))[0])
    }

    #[test]
    fn inline_marks() {
        assert_eq!(one("a **bold** move"), "a *bold* move");
        assert_eq!(one("an *italic* and _also_"), "an /italic/ and /also/");
        assert_eq!(one("run `cargo test` now"), "run `cargo test` now");
        assert_eq!(one("`**not bold**`"), "`**not bold**`");
        assert_eq!(one("hi @ana and @bob."), "hi <@ana> and <<@bob>>.");
    }

    #[test]
    fn what_is_not_markdown_stays_as_typed() {
        assert_eq!(one("2 * 3 * 4"), "2 * 3 * 4");
        assert_eq!(one("snake_case_name"), "snake_case_name");
        assert_eq!(one("**unclosed"), "**unclosed");
        assert_eq!(one("a ` alone"), "a ` alone");
        assert_eq!(one("mail a@b.c"), "mail a@b.c");
        assert_eq!(one(r"\*literal\*"), "*literal*");
    }

    #[test]
    fn block_marks() {
        let lines = render(
            "# Plan\n- one **1**\n  * two\n> said\n```\nlet x = 1;\n```",
            &theme(),
            None,
        );
        let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(text, ["Plan", "• one 1", "  • two", "│ said", "let x = 1;"]);
        assert_eq!(marked(&lines[1]), "• one *1*");
        assert_eq!(marked(&lines[4]), "`let x = 1;`");
    }
}
