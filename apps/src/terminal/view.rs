//! How the terminal looks: the scrollback (ANSI colours rendered), then the prompt line,
//! or the search line while searching.

use ansi_to_tui::IntoText;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Widget;

use super::Terminal;
use super::output::{LineKind, Scrollback};
use app_kit::app::ViewCx;
use app_kit::theme::Theme;

pub(super) fn render(term: &Terminal, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    buf.set_style(area, theme.base());
    let [body, prompt] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
    draw_scrollback(&term.out, body, buf, theme, theme.warn(), true);
    match &term.search {
        Some(search) => {
            let label = "search: ";
            Line::styled(label, theme.accent()).render(prompt, buf);
            let x = prompt.x + label.len() as u16;
            let rest = Rect::new(
                x,
                prompt.y,
                prompt.width.saturating_sub(label.len() as u16),
                1,
            );
            search.render(rest, buf, theme.base(), theme.cursor(), cx.focused);
        }
        None => {
            let label = term.prompt();
            let label_width = unicode_width::UnicodeWidthStr::width(label.as_str()) as u16;
            // A long prompt (a deep folder) leaves at least half the line for typing.
            let label_width = label_width.min(prompt.width / 2);
            Line::styled(
                app_kit::widgets::fit(&label, label_width as usize),
                theme.accent(),
            )
            .render(prompt, buf);
            let rest = Rect::new(
                prompt.x + label_width,
                prompt.y,
                prompt.width.saturating_sub(label_width),
                1,
            );
            term.input
                .render(rest, buf, theme.base(), theme.cursor(), cx.focused);
        }
    }
}

/// The scrollback, bottom-anchored like a terminal: ANSI colours rendered, long lines
/// wrapped (nothing is cut at the window's edge), the found line reversed, and how many
/// lines are below when scrolled back. `stderr` styles what programs wrote to stderr;
/// `partial`: draw the line still being written too.
pub(crate) fn draw_scrollback(
    out: &Scrollback,
    body: Rect,
    buf: &mut Buffer,
    theme: &Theme,
    stderr: Style,
    partial: bool,
) {
    let (lines, found) = out.visible_with(body.height as usize, partial);
    // Long lines wrap (nothing is cut at the window's edge); the newest rows win the space.
    let mut rows: Vec<Line> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut styled: Line = match line.kind {
            LineKind::Stdout | LineKind::Stderr => ansi_line(&line.text),
            _ => Line::raw(line.text.clone()),
        };
        styled = match line.kind {
            LineKind::Echo => styled.style(theme.accent()),
            LineKind::Stderr => styled.patch_style(stderr),
            LineKind::Note => styled.style(theme.dim()),
            LineKind::Error => styled.style(theme.error()),
            LineKind::Stdout => styled,
        };
        if found == Some(i) {
            styled = styled
                .patch_style(ratatui::style::Style::default().add_modifier(Modifier::REVERSED));
        }
        rows.extend(app_kit::widgets::wrap(styled, body.width as usize));
    }
    let skip = rows.len().saturating_sub(body.height as usize);
    // Bottom-anchored, like a terminal.
    let top = body.y + body.height.saturating_sub((rows.len() - skip) as u16);
    for (i, row) in rows.into_iter().skip(skip).enumerate() {
        row.render(Rect::new(body.x, top + i as u16, body.width, 1), buf);
    }
    if out.scrolled() > 0 {
        let tag = format!(" {} {} more below ", theme.glyph("↓", "v"), out.scrolled());
        let width = tag.chars().count() as u16;
        if width < body.width && body.height > 0 {
            Line::styled(tag, theme.bar()).render(
                Rect::new(body.x + body.width - width, body.y, width, 1),
                buf,
            );
        }
    }
}

/// A line of program output with its ANSI colours as styles.
pub(crate) fn ansi_line(text: &str) -> Line<'static> {
    text.as_bytes()
        .into_text()
        .ok()
        .and_then(|t| t.lines.into_iter().next())
        .unwrap_or_default()
}
