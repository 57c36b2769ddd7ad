//! How the explorer looks: the folder's path, its entries (only the visible rows are
//! built), a preview beside them when there is room, and a footer with usage and errors.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};

use super::{Files, Preview};
use aether_proto::api::vfs::Kind;
use app_kit::app::ViewCx;
use app_kit::widgets::{fit, human_bytes};

/// From this width the preview goes beside the list.
const PREVIEW_MIN_WIDTH: u16 = 60;
/// A narrower window this tall shows the preview under the list; a smaller one has none.
const PREVIEW_BELOW_MIN_HEIGHT: u16 = 16;

pub(super) fn render(files: &Files, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    buf.set_style(area, theme.base());
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let title = match &files.search {
        Some(search) => format!("search: {}", search.query),
        None => files.cwd.clone(),
    };
    Line::styled(fit(&title, header.width as usize), theme.accent()).render(header, buf);

    // The folder tree takes a quarter on the left when shown.
    let body = match &files.tree {
        Some(tree) if body.width >= 30 => {
            let [left, rest] =
                Layout::horizontal([Constraint::Percentage(25), Constraint::Percentage(75)])
                    .areas(body);
            let tree_area = Rect {
                width: left.width.saturating_sub(1),
                ..left
            };
            tree.render(tree_area, buf, cx, files.in_tree);
            for y in left.y..left.bottom() {
                buf[(left.right() - 1, y)]
                    .set_symbol("│")
                    .set_style(theme.border(false));
            }
            rest
        }
        _ => body,
    };
    // The preview sits beside the list in a wide window, under it in a narrow, tall one.
    let (list_area, preview_area, beside) = if body.width >= PREVIEW_MIN_WIDTH {
        let [list, preview] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                .areas(body);
        (list, Some(preview), true)
    } else if body.height >= PREVIEW_BELOW_MIN_HEIGHT && body.width >= 20 {
        let [list, preview] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
        (list, Some(preview), false)
    } else {
        (body, None, false)
    };
    match &files.search {
        Some(_) => render_hits(files, list_area, buf, cx),
        None => render_entries(files, list_area, buf, cx),
    }
    if let Some(preview_area) = preview_area {
        render_preview(&files.preview, preview_area, beside, buf, cx);
    }
    render_footer(files, footer, buf, cx);
}

fn render_entries(files: &Files, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    if files.entries.is_empty() {
        let text = match (&files.error, files.listing.waiting()) {
            (Some(_), _) => "",
            (None, true) => "loading…",
            (None, false) => "(empty folder: n for a new file, N for a folder)",
        };
        Line::styled(text, theme.dim()).render(area, buf);
        return;
    }
    let width = area.width as usize;
    let rows = files
        .list
        .visible(files.entries.len(), area.height as usize);
    for (row, index) in rows.enumerate() {
        let entry = &files.entries[index];
        let y = area.y + row as u16;
        let line_area = Rect::new(area.x, y, area.width, 1);
        let (icon, name_style) = match entry.kind {
            Kind::Dir => (theme.glyph("▸ ", "> "), theme.dir()),
            Kind::Symlink => (theme.glyph("↪ ", "@ "), theme.base()),
            _ => ("  ", theme.base()),
        };
        let size = match entry.kind {
            Kind::Dir => String::new(),
            _ => human_bytes(entry.size),
        };
        let name_width = width.saturating_sub(2 + size.len() + 1);
        let name = fit(&entry.name, name_width);
        let pad = name_width.saturating_sub(unicode_width::UnicodeWidthStr::width(name.as_str()));
        let line = Line::from(vec![
            Span::raw(icon),
            Span::styled(name, name_style),
            Span::raw(" ".repeat(pad + 1)),
            Span::styled(size, theme.dim()),
        ]);
        line.render(line_area, buf);
        if index == files.list.selected {
            let style = if cx.focused && !files.in_tree {
                theme.selection()
            } else {
                theme.selection_unfocused()
            };
            // Over the whole row, after the spans: their own colours must not cut it up.
            buf.set_style(line_area, style);
        }
    }
}

fn render_hits(files: &Files, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    let Some(search) = &files.search else { return };
    if search.hits.is_empty() {
        let text = if search.searching {
            "searching…"
        } else {
            "no matches"
        };
        Line::styled(text, theme.dim()).render(area, buf);
        return;
    }
    let rows = search.list.visible(search.hits.len(), area.height as usize);
    for (row, index) in rows.enumerate() {
        let hit = &search.hits[index];
        let line_area = Rect::new(area.x, area.y + row as u16, area.width, 1);
        let place = match hit.line {
            Some(line) => format!("{}:{line}", hit.path),
            None => hit.path.clone(),
        };
        let mut line = Line::from(vec![
            Span::styled(place, theme.dir()),
            Span::raw("  "),
            Span::styled(hit.snippet.replace('\n', " "), theme.dim()),
        ]);
        if index == search.list.selected {
            line = line.patch_style(theme.selection());
            buf.set_style(line_area, theme.selection());
        }
        line.render(line_area, buf);
    }
}

fn render_preview(preview: &Preview, area: Rect, beside: bool, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    let block = Block::default()
        .borders(if beside { Borders::LEFT } else { Borders::TOP })
        .border_style(theme.border(false));
    let inner = block.inner(area);
    block.render(area, buf);
    let lines: Vec<Line> = match preview {
        Preview::None => vec![],
        Preview::Loading(_) => vec![Line::styled("…", theme.dim())],
        Preview::Folder(path) => vec![Line::styled(
            format!("folder {path}: Enter opens it"),
            theme.dim(),
        )],
        Preview::Failed { error, .. } => vec![Line::styled(error.clone(), theme.error())],
        Preview::Text {
            path,
            lines,
            cut,
            colours,
        } => {
            let shown = &lines[..lines.len().min(inner.height as usize)];
            let runs = coloured(path, shown, colours, cx);
            let mut out: Vec<Line> = shown
                .iter()
                .enumerate()
                .map(|(i, l)| styled_line(l, runs.as_ref().and_then(|r| r.get(i))))
                .collect();
            if *cut && out.len() < inner.height as usize {
                out.push(Line::styled(
                    "… (preview cut; open to see it all)",
                    theme.dim(),
                ));
            }
            out
        }
        Preview::Image { size, image, .. } => {
            let caption = Line::styled(
                format!(
                    "image {}x{}, {}",
                    image.width,
                    image.height,
                    human_bytes(*size)
                ),
                theme.dim(),
            );
            caption.render(inner, buf);
            let picture = Rect {
                y: inner.y + 1,
                height: inner.height.saturating_sub(1),
                ..inner
            };
            image.render(picture, buf);
            return;
        }
        Preview::Binary { path, bytes, size } => {
            let caption = if crate::opener_for(path) == crate::terminal::APP {
                format!("a program, {}: Enter runs it", human_bytes(*size))
            } else {
                format!("binary, {}", human_bytes(*size))
            };
            let mut out = vec![Line::styled(caption, theme.dim())];
            out.extend(
                hex_lines(bytes, inner.width as usize)
                    .into_iter()
                    .take(inner.height.saturating_sub(1) as usize)
                    .map(Line::raw),
            );
            out
        }
    };
    Paragraph::new(lines).style(theme.base()).render(inner, buf);
}

/// The syntax colours of the lines shown, computed once per theme.
fn coloured(
    path: &str,
    lines: &[String],
    cache: &std::cell::RefCell<Option<(String, Vec<app_kit::highlight::Runs>)>>,
    cx: &ViewCx,
) -> Option<Vec<app_kit::highlight::Runs>> {
    if let Some((theme, runs)) = cache.borrow().as_ref()
        && *theme == cx.theme.name
        && runs.len() >= lines.len()
    {
        return Some(runs.clone());
    }
    let syntax = app_kit::highlight::syntax_for(path, lines.first().map_or("", |l| l.as_str()))?;
    let mut highlighter = app_kit::highlight::Highlighter::new(syntax, cx.theme);
    let runs: Vec<_> = lines.iter().map(|l| highlighter.line(l)).collect();
    *cache.borrow_mut() = Some((cx.theme.name.clone(), runs.clone()));
    Some(runs)
}

/// A line in its colour runs, tabs as four spaces.
fn styled_line(line: &str, runs: Option<&app_kit::highlight::Runs>) -> Line<'static> {
    let Some(runs) = runs.filter(|r| !r.is_empty()) else {
        return Line::raw(line.replace('\t', "    "));
    };
    let spans: Vec<Span<'static>> = runs
        .iter()
        .filter_map(|(range, style)| {
            let text = line.get(range.clone())?;
            Some(Span::styled(text.replace('\t', "    "), *style))
        })
        .collect();
    Line::from(spans)
}

/// `offset  hex bytes  ascii`, as many bytes per line as the width holds (4 to 16).
pub(crate) fn hex_lines(bytes: &[u8], width: usize) -> Vec<String> {
    // 8 for the offset and gaps, 4 columns per byte (hex and its text).
    let per_line = (width.saturating_sub(10) / 4).clamp(4, 16);
    bytes
        .chunks(per_line)
        .enumerate()
        .map(|(i, chunk)| {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            let text: String = chunk
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() || b == b' ' {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            format!(
                "{:06x}  {:<width$} {text}",
                i * per_line,
                hex.join(" "),
                width = per_line * 3 - 1
            )
        })
        .collect()
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn render_footer(files: &Files, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    let (text, style): (String, Style) = if let Some(error) = &files.error {
        (error.clone(), theme.error())
    } else if let Some(status) = &files.status {
        (status.clone(), theme.dim())
    } else {
        let count = match &files.search {
            Some(search) => count(search.hits.len(), "hit", "hits"),
            None if files.listing.waiting() => "loading…".to_owned(),
            None => count(files.entries.len(), "entry", "entries"),
        };
        let usage = files
            .usage
            .as_ref()
            .map(|u| {
                format!(
                    "  ·  {} of {} used",
                    human_bytes(u.bytes),
                    human_bytes(u.quota_bytes)
                )
            })
            .unwrap_or_default();
        (format!("{count}{usage}"), theme.dim())
    };
    Line::styled(fit(&text, area.width as usize), style).render(area, buf);
}
