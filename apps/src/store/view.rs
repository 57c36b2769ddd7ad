//! How the App Store looks: the tabs, the list on the left (each app's version and an
//! installed / update mark), the selected app's detail on the right (what it is, who
//! vouches for it, what it asks for and why), and a footer with the progress bar, the
//! last message, the search line or the keys.

use aether_proto::api::apps::{AppInfo, CatalogApp, Requested};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use unicode_width::UnicodeWidthStr;

use super::{Loaded, Stage, Store, Tab, newer, words};
use app_kit::app::{Level, ViewCx};
use app_kit::theme::Theme;
use app_kit::widgets::{fit, human_bytes, wrap_words};

/// Below this width only the list shows.
const TWO_COLUMNS: u16 = 56;
/// The labels' column in the detail pane.
const LABEL: usize = 11;

pub(super) fn render(store: &Store, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    buf.set_style(area, theme.base());
    // A message (the daemon's error, say) wraps rather than being cut; a change under way
    // keeps its line below it.
    let footer_rows = match (&store.search, &store.message) {
        (None, Some((_, text))) => wrap_words(text, area.width as usize).len().clamp(1, 4),
        _ => 0,
    } + usize::from(
        store.search.is_some() || store.change.is_some() || store.message.is_none(),
    );
    let [tabs, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(footer_rows as u16),
    ])
    .areas(area);
    render_tabs(store, tabs, buf, theme);
    if let Some(empty) = empty_state(store) {
        let (text, style) = empty;
        for (y, row) in (body.y + 1..body.bottom()).zip(wrap_words(&text, body.width as usize)) {
            Line::styled(row, style(theme)).render(Rect::new(body.x, y, body.width, 1), buf);
        }
    } else if body.width < TWO_COLUMNS {
        render_list(store, body, buf, cx);
    } else {
        let left_width = (body.width * 2 / 5).clamp(24, 44);
        let (left, right) = app_kit::widgets::beside(body, left_width, buf, theme);
        render_list(store, left, buf, cx);
        let detail = Rect::new(
            right.x + 1,
            right.y,
            right.width.saturating_sub(1),
            right.height,
        );
        let lines = match store.tab {
            Tab::Catalog => store
                .catalog_apps()
                .get(store.catalog_list.selected)
                .map(|app| catalog_detail(app, theme, detail.width as usize)),
            Tab::Installed => store
                .installed_apps()
                .get(store.installed_list.selected)
                .map(|app| installed_detail(store, app, theme, detail.width as usize)),
        };
        for (row, line) in lines
            .unwrap_or_default()
            .into_iter()
            .take(detail.height as usize)
            .enumerate()
        {
            line.render(
                Rect::new(detail.x, detail.y + row as u16, detail.width, 1),
                buf,
            );
        }
    }
    render_footer(store, footer, buf, cx);
}

fn render_tabs(store: &Store, area: Rect, buf: &mut Buffer, theme: &Theme) {
    let count = |loaded: usize, ready: bool| {
        if ready {
            format!(" {loaded}")
        } else {
            String::new()
        }
    };
    let tabs = [
        (
            Tab::Catalog,
            format!(
                " Catalog{} ",
                count(
                    store.catalog_apps().len(),
                    matches!(store.catalog, Loaded::Ready(_))
                )
            ),
        ),
        (
            Tab::Installed,
            format!(
                " Installed{} ",
                count(
                    store.installed_apps().len(),
                    matches!(store.installed, Loaded::Ready(_))
                )
            ),
        ),
    ];
    let mut spans = Vec::new();
    for (tab, label) in tabs {
        let style = if tab == store.tab {
            theme.selection()
        } else {
            theme.dim()
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    if let Some(query) = &store.query {
        spans.push(Span::styled(
            format!(" search: \"{query}\" (Esc clears)"),
            theme.accent(),
        ));
    }
    Line::from(spans).render(area, buf);
}

/// What the body says instead of a list: loading, an error, or nothing there yet.
type StyleOf = fn(&Theme) -> Style;

fn empty_state(store: &Store) -> Option<(String, StyleOf)> {
    match store.tab {
        Tab::Catalog => match &store.catalog {
            Loaded::Loading => Some(("asking the catalogs…".into(), Theme::dim)),
            Loaded::Failed(why) => Some((
                format!("the catalogs could not be read: {why}"),
                Theme::error,
            )),
            Loaded::Ready(answer) if answer.apps.is_empty() => {
                let errors: Vec<String> = answer
                    .catalogs
                    .iter()
                    .filter_map(|c| c.error.as_ref().map(|e| format!("{}: {e}", c.location)))
                    .collect();
                Some(if !errors.is_empty() {
                    (
                        format!("no catalog answered: {}", errors.join("; ")),
                        Theme::error,
                    )
                } else if let Some(query) = &store.query {
                    (
                        format!(
                            "nothing in the catalogs matches \"{query}\" (Esc clears the search)"
                        ),
                        Theme::dim,
                    )
                } else {
                    ("the catalogs offer nothing yet".into(), Theme::dim)
                })
            }
            Loaded::Ready(_) => None,
        },
        Tab::Installed => match &store.installed {
            Loaded::Loading => Some(("loading…".into(), Theme::dim)),
            Loaded::Failed(why) => Some((
                format!("your apps could not be listed: {why}"),
                Theme::error,
            )),
            Loaded::Ready(apps) if apps.is_empty() => Some((
                "nothing installed yet — Tab for the catalog".into(),
                Theme::dim,
            )),
            Loaded::Ready(_) => None,
        },
    }
}

fn render_list(store: &Store, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    // Catalogs that did not answer, under the apps of those that did.
    let unread: Vec<&str> = match &store.catalog {
        Loaded::Ready(answer) if store.tab == Tab::Catalog => answer
            .catalogs
            .iter()
            .filter(|c| c.error.is_some())
            .map(|c| c.location.as_str())
            .collect(),
        _ => Vec::new(),
    };
    let mut list_area = area;
    if !unread.is_empty() && area.height > 2 {
        list_area.height -= 1;
        let text = format!("not read: {}", unread.join(", "));
        Line::styled(fit(&text, area.width as usize), theme.warn())
            .render(Rect::new(area.x, area.bottom() - 1, area.width, 1), buf);
    }
    let rows: Vec<(String, String, Style)> = match store.tab {
        Tab::Catalog => store
            .catalog_apps()
            .iter()
            .map(|app| catalog_row(app, theme))
            .collect(),
        Tab::Installed => store
            .installed_apps()
            .iter()
            .map(|app| installed_row(store, app, theme))
            .collect(),
    };
    let list = match store.tab {
        Tab::Catalog => &store.catalog_list,
        Tab::Installed => &store.installed_list,
    };
    let width = list_area.width as usize;
    for (row, i) in list
        .visible(rows.len(), list_area.height as usize)
        .enumerate()
    {
        let (name, mark, mark_style) = &rows[i];
        let selected = i == list.selected;
        let style = match (selected, cx.focused) {
            (true, true) => theme.selection(),
            (true, false) => theme.selection_unfocused(),
            _ => theme.base(),
        };
        let mark_width = mark.width();
        let name = fit(name, width.saturating_sub(mark_width + 1));
        let pad = width.saturating_sub(name.width() + mark_width);
        let line = Line::from(vec![
            Span::styled(format!("{name}{}", " ".repeat(pad)), style),
            Span::styled(mark.clone(), if selected { style } else { *mark_style }),
        ]);
        let line_area = Rect::new(list_area.x, list_area.y + row as u16, list_area.width, 1);
        buf.set_style(line_area, style);
        line.render(line_area, buf);
    }
}

/// A catalog row: the name, then the version with its mark.
fn catalog_row(app: &CatalogApp, theme: &Theme) -> (String, String, Style) {
    match &app.installed {
        Some(have) if newer(&app.version, have) => (
            app.name.clone(),
            format!("{} update", app.version),
            theme.warn(),
        ),
        Some(_) => (
            app.name.clone(),
            format!("{} installed", app.version),
            theme.info(),
        ),
        None => (app.name.clone(), app.version.clone(), theme.dim()),
    }
}

fn installed_row(store: &Store, app: &AppInfo, theme: &Theme) -> (String, String, Style) {
    let offered = store.catalog_apps().iter().find(|c| c.id == app.id);
    match offered {
        Some(c) if newer(&c.version, &app.version) => (
            app.name.clone(),
            format!("{} update", app.version),
            theme.warn(),
        ),
        _ => (app.name.clone(), app.version.clone(), theme.dim()),
    }
}

fn catalog_detail(app: &CatalogApp, theme: &Theme, width: usize) -> Vec<Line<'static>> {
    let mut lines = heading(
        &app.name,
        &app.version,
        app.description.as_deref(),
        theme,
        width,
    );
    let (signed, worrying) = words::signature(&app.signature);
    field(
        &mut lines,
        "Publisher",
        &signed,
        if worrying { theme.warn() } else { theme.info() },
        width,
    );
    let size = format!(
        "{} · SHA-256 {}",
        human_bytes(app.size),
        app.sha256.get(..12).unwrap_or(&app.sha256)
    );
    field(&mut lines, "Size", &size, theme.base(), width);
    field(&mut lines, "Catalog", &app.catalog, theme.base(), width);
    field(
        &mut lines,
        "Versions",
        &app.versions.join(", "),
        theme.base(),
        width,
    );
    let (state, style) = match &app.installed {
        Some(have) if newer(&app.version, have) => (
            format!("{have}; {} is newer: u updates it", app.version),
            theme.warn(),
        ),
        Some(have) => (format!("{have}: l launches it"), theme.info()),
        None => ("no: Enter installs it".into(), theme.dim()),
    };
    field(&mut lines, "Installed", &state, style, width);
    capabilities(
        &mut lines,
        "It asks for",
        app.capabilities
            .iter()
            .map(|r| (r.capability.as_str(), r.described())),
        theme,
        width,
    );
    lines
}

fn installed_detail(
    store: &Store,
    app: &AppInfo,
    theme: &Theme,
    width: usize,
) -> Vec<Line<'static>> {
    let mut lines = heading(
        &app.name,
        &app.version,
        app.description.as_deref(),
        theme,
        width,
    );
    let (signed, worrying) = match &app.signature {
        Some(signature) => words::signature(signature),
        None => ("unknown".into(), true),
    };
    field(
        &mut lines,
        "Publisher",
        &signed,
        if worrying { theme.warn() } else { theme.info() },
        width,
    );
    let program = if app.runnable {
        "yes: l (or Enter) launches it"
    } else {
        "none: it only acts through other apps"
    };
    field(&mut lines, "Program", program, theme.base(), width);
    let offered = store.catalog_apps().iter().find(|c| c.id == app.id);
    if let Some(offered) = offered.filter(|c| newer(&c.version, &app.version)) {
        let text = format!("{} in the catalog: u updates it", offered.version);
        field(&mut lines, "Update", &text, theme.warn(), width);
    }
    // The reasons are the catalog's; an app installed from a file has none to show here.
    let reasons: &[Requested] = offered.map_or(&[], |c| &c.capabilities);
    capabilities(
        &mut lines,
        "You let it",
        app.capabilities
            .iter()
            .map(|c| (c.as_str(), words::reason(reasons, c.as_str()))),
        theme,
        width,
    );
    lines
}

fn heading(
    name: &str,
    version: &str,
    description: Option<&str>,
    theme: &Theme,
    width: usize,
) -> Vec<Line<'static>> {
    let mut lines = vec![Line::styled(
        fit(&format!("{name} {version}"), width),
        theme.accent().add_modifier(Modifier::BOLD),
    )];
    if let Some(description) = description {
        for row in wrap_words(description, width) {
            lines.push(Line::raw(row));
        }
    }
    lines.push(Line::raw(""));
    lines
}

/// `Label      value`, the value wrapped under itself.
fn field(lines: &mut Vec<Line<'static>>, label: &str, value: &str, style: Style, width: usize) {
    let value_width = width.saturating_sub(LABEL).max(1);
    for (i, row) in wrap_words(value, value_width).into_iter().enumerate() {
        let label = if i == 0 { label } else { "" };
        lines.push(Line::from(vec![
            Span::styled(format!("{label:<LABEL$}"), Style::default()),
            Span::styled(row, style),
        ]));
    }
}

fn capabilities<'a>(
    lines: &mut Vec<Line<'static>>,
    title: &str,
    requested: impl Iterator<Item = (&'a str, String)>,
    theme: &Theme,
    width: usize,
) {
    let requested: Vec<(&str, String)> = requested.collect();
    lines.push(Line::raw(""));
    if requested.is_empty() {
        lines.push(Line::styled(
            fit("It asks for no capabilities.", width),
            theme.dim(),
        ));
        return;
    }
    lines.push(Line::styled(fit(title, width), theme.accent()));
    let name_width = requested.iter().map(|(c, _)| c.width()).max().unwrap_or(0) + 2;
    let reason_width = width.saturating_sub(name_width + 2).max(1);
    for (capability, reason) in requested {
        for (i, row) in wrap_words(&reason, reason_width).into_iter().enumerate() {
            let name = if i == 0 { capability } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("  {name:<name_width$}"), theme.warn()),
                Span::styled(row, theme.dim()),
            ]));
        }
    }
}

/// The change under way: a bar while the daemon works, else what it waits for.
fn progress_line(store: &Store, theme: &Theme, width: usize) -> Line<'static> {
    let Some(change) = &store.change else {
        return Line::raw("");
    };
    match &change.stage {
        Stage::Inspecting => Line::styled(
            fit(&format!("asking the daemon about {}…", change.name), width),
            theme.dim(),
        ),
        Stage::Asking => Line::styled(
            fit(&format!("{}: waiting for your answer", change.name), width),
            theme.dim(),
        ),
        Stage::Working { step, done, of } => {
            let label = format!("{} {} ", change.action.doing(), change.name);
            let tail = format!(" {step} {done}/{of}");
            let bar_width = width
                .saturating_sub(label.width() + tail.width())
                .clamp(0, 30);
            let filled = if *of == 0 {
                0
            } else {
                bar_width * (*done).min(*of) as usize / *of as usize
            };
            Line::from(vec![
                Span::styled(label, theme.accent()),
                Span::styled(theme.glyph("█", "#").repeat(filled), theme.info()),
                Span::styled(
                    theme.glyph("░", "-").repeat(bar_width - filled),
                    theme.dim(),
                ),
                Span::styled(tail, theme.dim()),
            ])
        }
    }
}

fn render_footer(store: &Store, footer: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    if let Some(search) = &store.search {
        let label = "search: ";
        Line::styled(label, theme.accent()).render(footer, buf);
        let rest = Rect::new(
            footer.x + label.len() as u16,
            footer.y,
            footer.width.saturating_sub(label.len() as u16),
            1,
        );
        search.render(rest, buf, theme.base(), theme.cursor(), cx.focused);
        return;
    }
    let width = footer.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    if let Some((level, text)) = &store.message {
        let style = match level {
            Level::Info => theme.info(),
            Level::Warn => theme.warn(),
            Level::Error => theme.error(),
        };
        lines.extend(
            wrap_words(text, width)
                .into_iter()
                .map(|row| Line::styled(row, style)),
        );
    }
    if store.change.is_some() {
        lines.push(progress_line(store, theme, width));
    } else if lines.is_empty() {
        lines.push(Line::styled(
            fit(
                "Enter install/launch · u update · x uninstall · / search · Tab switches lists",
                width,
            ),
            theme.dim(),
        ));
    }
    // The newest rows win when there is no room for all.
    let skip = lines.len().saturating_sub(footer.height as usize);
    for (y, line) in (footer.y..footer.bottom()).zip(lines.into_iter().skip(skip)) {
        line.render(Rect::new(footer.x, y, footer.width, 1), buf);
    }
}
