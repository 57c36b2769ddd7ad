//! Small widgets the apps and the desktop share.

mod line_input;
mod list;

pub use line_input::{LineEdit, LineInput};
pub use list::ListWindow;

use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr;

/// Two panes side by side, `left_width` columns on the left, a vertical rule between them
/// (drawn here); the two areas to draw in.
pub fn beside(
    area: ratatui::layout::Rect,
    left_width: u16,
    buf: &mut ratatui::buffer::Buffer,
    theme: &crate::theme::Theme,
) -> (ratatui::layout::Rect, ratatui::layout::Rect) {
    use ratatui::layout::{Constraint, Layout};
    let [left, gap, right] = Layout::horizontal([
        Constraint::Length(left_width),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    for y in gap.y..gap.bottom() {
        buf[(gap.x, y)]
            .set_symbol(theme.glyph("│", "|"))
            .set_style(theme.border(false));
    }
    (left, right)
}

/// Cut `text` to at most `width` columns, ending in `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Break a styled line into rows of at most `width` columns, keeping each span's style.
/// Zero-width characters (combining marks) stay with the character before them; a wide
/// character that would straddle the edge starts the next row. Always at least one row.
pub fn wrap(line: Line<'static>, width: usize) -> Vec<Line<'static>> {
    if width == 0 || line.width() <= width {
        return vec![line];
    }
    let mut rows = Vec::new();
    let mut row: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for span in line.spans {
        let style = line.style.patch(span.style);
        let mut piece = String::new();
        for c in span.content.chars() {
            let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            if used + w > width && used > 0 {
                if !piece.is_empty() {
                    row.push(Span::styled(std::mem::take(&mut piece), style));
                }
                rows.push(Line::from(std::mem::take(&mut row)));
                used = 0;
            }
            piece.push(c);
            used += w;
        }
        if !piece.is_empty() {
            row.push(Span::styled(piece, style));
        }
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(Line::from(row));
    }
    rows
}

/// Break a styled line into rows of at most `width` columns at spaces, keeping each
/// character's style (a word may change style midway: `**bold**,`); a word longer than a
/// row is broken inside. Always at least one row.
pub fn wrap_styled_words(line: &Line<'static>, width: usize) -> Vec<Line<'static>> {
    use unicode_width::UnicodeWidthChar;
    let width = width.max(1);
    let chars: Vec<(char, ratatui::style::Style)> = line
        .spans
        .iter()
        .flat_map(|span| {
            let style = line.style.patch(span.style);
            span.content.chars().map(move |c| (c, style))
        })
        .collect();
    let mut rows: Vec<Vec<(char, ratatui::style::Style)>> = vec![Vec::new()];
    let mut used = 0;
    let mut rest = chars.as_slice();
    while !rest.is_empty() {
        let space = rest.iter().take_while(|(c, _)| *c == ' ').count();
        let word_len = rest[space..].iter().take_while(|(c, _)| *c != ' ').count();
        let (gap, word) = (&rest[..space], &rest[space..space + word_len]);
        rest = &rest[space + word_len..];
        let word_width: usize = word.iter().map(|(c, _)| c.width().unwrap_or(0)).sum();
        if used > 0 && used + space + word_width > width {
            rows.push(Vec::new());
            used = 0;
        } else if used > 0 || rows.len() == 1 {
            // Spaces between words stay, and so does a line's indentation; those that would
            // lead a wrapped row go.
            if let Some(row) = rows.last_mut() {
                row.extend_from_slice(gap);
                used += space;
            }
        }
        for &(c, style) in word {
            let w = c.width().unwrap_or(0);
            if used + w > width && used > 0 {
                rows.push(Vec::new());
                used = 0;
            }
            if let Some(row) = rows.last_mut() {
                row.push((c, style));
            }
            used += w;
        }
    }
    rows.into_iter()
        .map(|row| {
            let mut spans: Vec<Span<'static>> = Vec::new();
            for (c, style) in row {
                match spans.last_mut() {
                    Some(span) if span.style == style => span.content.to_mut().push(c),
                    _ => spans.push(Span::styled(c.to_string(), style)),
                }
            }
            Line::from(spans)
        })
        .collect()
}

/// Break plain text into rows of at most `width` columns at spaces; a word longer than a
/// row is broken inside. Always at least one row.
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    let mut row = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let gap = usize::from(!row.is_empty());
        if row.width() + gap + word.width() <= width {
            if gap == 1 {
                row.push(' ');
            }
            row.push_str(word);
            continue;
        }
        if !row.is_empty() {
            rows.push(std::mem::take(&mut row));
        }
        for piece in wrap(Line::raw(word.to_owned()), width) {
            if !row.is_empty() {
                rows.push(std::mem::take(&mut row));
            }
            row = piece.to_string();
        }
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(row);
    }
    rows
}

/// Bytes as people read them: `512 B`, `1.5 KiB`, `20.0 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_counts_columns_not_bytes() {
        assert_eq!(fit("hello", 5), "hello");
        assert_eq!(fit("hello", 4), "hel…");
        assert_eq!(fit("日本語です", 5), "日本…");
        assert_eq!(fit("x", 0), "");
    }

    #[test]
    fn wrap_keeps_styles_and_wide_characters_whole() {
        use ratatui::style::{Color, Style};
        let red = Style::default().fg(Color::Red);
        let line = Line::from(vec![Span::raw("abc"), Span::styled("de日f", red)]);
        let rows = wrap(line, 4);
        let text: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
        assert_eq!(text, ["abcd", "e日f"]);
        assert_eq!(rows[0].spans[1].style, red);
        assert_eq!(wrap(Line::raw("x".repeat(10)), 3).len(), 4);
        assert_eq!(wrap(Line::raw(""), 3).len(), 1);
    }

    #[test]
    fn styled_lines_wrap_at_spaces_and_keep_their_styles() {
        use ratatui::style::{Modifier, Style};
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let line = Line::from(vec![
            Span::raw("say "),
            Span::styled("hello", bold),
            Span::raw(", world and more"),
        ]);
        let rows = wrap_styled_words(&line, 10);
        let text: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
        assert_eq!(text, ["say hello,", "world and", "more"]);
        assert_eq!(rows[0].spans[1].style, bold);
        let long = wrap_styled_words(&Line::raw("abcdefghij"), 4);
        assert_eq!(long.len(), 3);
        assert_eq!(wrap_styled_words(&Line::raw(""), 4).len(), 1);
        // Leading indentation of a line stays.
        assert_eq!(
            wrap_styled_words(&Line::raw("  x"), 4)[0].to_string(),
            "  x"
        );
    }

    #[test]
    fn wrap_words_breaks_at_spaces() {
        assert_eq!(
            wrap_words("open a file in the editor", 10),
            ["open a", "file in", "the editor"]
        );
        assert_eq!(wrap_words("abcdefghij kl", 4), ["abcd", "efgh", "ij", "kl"]);
        assert_eq!(wrap_words("", 4), [""]);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(50 << 20), "50.0 MiB");
    }
}
