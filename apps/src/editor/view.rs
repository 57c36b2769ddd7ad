//! How the editor looks: tabs, the text (or why it is not shown), the find bar, a
//! status line with the place, the dirty marker and the last message.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::{DiffLine, DocState, Editor};
use app_kit::app::{Level, ViewCx};
use app_kit::widgets::fit;

pub(super) fn render(editor: &Editor, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    buf.set_style(area, theme.base());
    let find_height = match &editor.find {
        Some(find) if find.replace.is_some() => 2,
        Some(_) => 1,
        None => 0,
    };
    let [tabs, body, find, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(find_height),
        Constraint::Length(1),
    ])
    .areas(area);
    render_tabs(editor, tabs, buf, cx);
    let doc = editor.doc();
    if let Some(diff) = &editor.diff {
        let lines: Vec<Line> = diff
            .iter()
            .map(|line| match line {
                DiffLine::Same(text) => Line::styled(format!("  {text}"), theme.dim()),
                DiffLine::Theirs(text) => Line::styled(format!("- {text}"), theme.error()),
                DiffLine::Mine(text) => Line::styled(format!("+ {text}"), theme.info()),
            })
            .collect();
        Paragraph::new(lines).render(body, buf);
    } else {
        match &doc.state {
            DocState::Ready => {
                // The Architect's panel takes the right (or, when narrow, the lower) part.
                let body = match &editor.architect {
                    Some(architect) if architect.doc == editor.active => {
                        let [text, panel] = if body.width >= 70 {
                            Layout::horizontal([
                                Constraint::Percentage(50),
                                Constraint::Percentage(50),
                            ])
                            .areas(body)
                        } else {
                            Layout::vertical([
                                Constraint::Percentage(50),
                                Constraint::Percentage(50),
                            ])
                            .areas(body)
                        };
                        render_architect(architect, panel, buf, cx);
                        text
                    }
                    _ => body,
                };
                let digits = doc.area.lines().len().to_string().len();
                let gutter = (digits as u16 + 2).min(body.width);
                let [numbers, text] =
                    Layout::horizontal([Constraint::Length(gutter), Constraint::Min(0)])
                        .areas(body);
                (&doc.area).render(text, buf);
                paint_line_numbers(doc, numbers, digits, buf, cx);
                paint_colours(doc, text, buf, cx);
            }
            DocState::Loading => Line::styled("opening…", theme.dim()).render(body, buf),
            DocState::Refused(why) => Paragraph::new(Line::styled(why.clone(), theme.warn()))
                .wrap(Wrap { trim: false })
                .render(body, buf),
        }
    }
    if let Some(bar) = &editor.find {
        let rows = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).split(find);
        let find = bar;
        let label_width = 9u16;
        let mut field =
            |row: Rect, label: &str, input: &app_kit::widgets::LineInput, active: bool| {
                Line::styled(label.to_owned(), theme.accent()).render(row, buf);
                let input_area = Rect {
                    x: row.x + label_width,
                    width: row.width.saturating_sub(label_width),
                    ..row
                };
                input.render(
                    input_area,
                    buf,
                    theme.base(),
                    theme.cursor(),
                    active && cx.focused,
                );
            };
        field(rows[0], "find:", &find.query, !find.on_replace);
        if let Some(replace) = &find.replace {
            field(rows[1], "replace:", replace, find.on_replace);
        }
    }
    render_status(editor, status, buf, cx);
}

/// The gutter: line numbers that stay put however far the text scrolls right.
fn paint_line_numbers(doc: &super::Doc, area: Rect, digits: usize, buf: &mut Buffer, cx: &ViewCx) {
    let top_row = doc.area.scroll_offset().0 as usize;
    let lines = doc.area.lines().len();
    for screen_row in 0..area.height as usize {
        let row = top_row + screen_row;
        if row >= lines {
            break;
        }
        let y = area.y + screen_row as u16;
        Line::styled(format!(" {:>digits$} ", row + 1), cx.theme.dim())
            .render(Rect::new(area.x, y, area.width, 1), buf);
    }
}

/// Lay the syntax colours over the text the text area drew: its scroll offset and line
/// say which cell shows which character.
fn paint_colours(doc: &super::Doc, body: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let Some(path) = &doc.path else { return };
    if cx.theme.palette == app_kit::theme::Palette::None {
        return;
    }
    let (top_row, top_col) = doc.area.scroll_offset();
    let (top_row, top_col) = (top_row as usize, top_col as usize);
    let tab = doc.area.tab_length().max(1) as usize;
    let lines = doc.area.lines();
    let changed = doc.changed_from.replace(usize::MAX);
    let mut colours = doc.colours.borrow_mut();
    let runs = colours.runs(
        path,
        lines,
        top_row + body.height as usize,
        changed,
        cx.theme,
    );
    let width = body.width as usize;
    for screen_row in 0..body.height as usize {
        let row = top_row + screen_row;
        let (Some(line_runs), Some(line)) = (runs.get(row), lines.get(row)) else {
            break;
        };
        let y = body.y + screen_row as u16;
        let mut column = 0usize;
        let mut run = 0usize;
        for (at, ch) in line.char_indices() {
            let cells = if ch == '\t' {
                tab - column % tab
            } else {
                unicode_width::UnicodeWidthChar::width(ch).unwrap_or(0)
            };
            while run < line_runs.len() && line_runs[run].0.end <= at {
                run += 1;
            }
            if let Some((range, style)) = line_runs.get(run)
                && range.contains(&at)
            {
                for k in 0..cells {
                    let Some(x) = (column + k).checked_sub(top_col) else {
                        continue;
                    };
                    if x >= width {
                        break;
                    }
                    let cell = &mut buf[(body.x + x as u16, y)];
                    if let Some(fg) = style.fg {
                        cell.set_fg(fg);
                    }
                    cell.modifier.insert(style.add_modifier);
                }
            }
            column += cells;
            if column >= top_col + width {
                break;
            }
        }
    }
}

fn render_architect(
    architect: &super::architect::Architect,
    area: Rect,
    buf: &mut Buffer,
    cx: &ViewCx,
) {
    use super::architect::Phase;
    let theme = cx.theme;
    let block = ratatui::widgets::Block::default()
        .borders(ratatui::widgets::Borders::LEFT | ratatui::widgets::Borders::TOP)
        .border_style(theme.border(false))
        .title(Span::styled(
            format!(" Architect: {} ", architect.target_name()),
            theme.accent(),
        ));
    let inner = block.inner(area);
    block.render(area, buf);
    let [ask, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(inner);
    Line::styled(fit(&architect.instruction, ask.width as usize), theme.dim()).render(ask, buf);
    let lines: Vec<Line> = match &architect.phase {
        Phase::Failed(why) => vec![Line::styled(why.clone(), theme.error())],
        Phase::Asking if architect.proposal.is_empty() => {
            vec![Line::styled("asking the AI…", theme.dim())]
        }
        _ => architect
            .diff()
            .into_iter()
            .skip(architect.scroll)
            .map(|line| match line {
                DiffLine::Same(text) => Line::styled(format!("  {text}"), theme.dim()),
                DiffLine::Theirs(text) => Line::styled(format!("- {text}"), theme.error()),
                DiffLine::Mine(text) => Line::styled(format!("+ {text}"), theme.info()),
            })
            .collect(),
    };
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(body, buf);
    let (text, style) = match &architect.phase {
        Phase::Asking | Phase::Streaming(_) => ("writing… Esc stops", theme.warn()),
        Phase::Ready => ("y applies · n drops · ↑↓ scroll", theme.info()),
        Phase::Failed(_) => ("Esc closes", theme.dim()),
    };
    Line::styled(text, style).render(foot, buf);
}

fn render_tabs(editor: &Editor, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    let mut spans = Vec::new();
    for (i, doc) in editor.docs.iter().enumerate() {
        let label = format!(" {}{} ", doc.name(), if doc.dirty { " ●" } else { "" });
        let style = if i == editor.active {
            theme.selection()
        } else {
            theme.dim()
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    Line::from(spans).render(area, buf);
}

fn render_status(editor: &Editor, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    let doc = editor.doc();
    let (row, col) = doc.cursor();
    let place = format!(
        "{}  Ln {}, Col {}{}{}",
        doc.path.as_deref().unwrap_or("untitled"),
        row + 1,
        col + 1,
        if doc.dirty { "  ● modified" } else { "" },
        if doc.changed_elsewhere {
            "  ⚠ changed elsewhere"
        } else {
            ""
        },
    );
    let line = match &editor.message {
        Some((level, text)) => {
            let style = match level {
                Level::Info => theme.info(),
                Level::Warn => theme.warn(),
                Level::Error => theme.error(),
            };
            Line::from(vec![
                Span::styled(text.clone(), style),
                Span::raw("  "),
                Span::styled(place, theme.dim()),
            ])
        }
        None => Line::styled(place, theme.dim()),
    };
    let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    if unicode_width::UnicodeWidthStr::width(text.as_str()) > area.width as usize {
        Line::styled(fit(&text, area.width as usize), theme.dim()).render(area, buf);
    } else {
        line.render(area, buf);
    }
}
