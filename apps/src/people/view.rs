//! How People looks: one row per person, a dot coloured by state, the name, the state
//! (offline ones with when they were last seen) and their status text; a footer with the
//! last message or the keys.

use aether_proto::api::presence::{Person, State};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use unicode_width::UnicodeWidthStr;

use super::People;
use app_kit::app::{Level, ViewCx};
use app_kit::clock::Clock;
use app_kit::theme::Theme;
use app_kit::widgets::{fit, wrap_words};

/// The widest name column.
const NAME: usize = 20;

pub(super) fn render(people: &People, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    buf.set_style(area, theme.base());
    let [body, footer] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
    render_footer(people, footer, buf, theme);
    let Some(all) = &people.people else {
        Line::styled("loading…", theme.dim()).render(body, buf);
        return;
    };
    let me = people.me.as_deref();
    let name_width = all
        .iter()
        .map(|p| name(p, me).width())
        .max()
        .unwrap_or(0)
        .min(NAME);
    let rows = people.list.visible(all.len(), body.height as usize);
    let mut y = body.y;
    for i in rows {
        let row = Rect::new(body.x, y, body.width, 1);
        let selected = i == people.list.selected;
        person_row(&all[i], me, name_width, selected, row, buf, cx);
        y += 1;
    }
    if all.iter().all(|p| Some(p.user.as_str()) == me) && y + 1 < body.bottom() {
        let text = "Nobody shares a room with you yet: make one in Chat (n) and invite \
                    people (i), or join a public one (j).";
        let rest = Rect::new(body.x, y + 1, body.width, body.bottom() - y - 1);
        for (row, line) in (rest.y..rest.bottom()).zip(wrap_words(text, body.width as usize)) {
            Line::styled(line, theme.dim()).render(Rect::new(body.x, row, body.width, 1), buf);
        }
    }
}

fn name(person: &Person, me: Option<&str>) -> String {
    if Some(person.user.as_str()) == me {
        format!("{} (you)", person.user)
    } else {
        person.user.clone()
    }
}

fn person_row(
    person: &Person,
    me: Option<&str>,
    name_width: usize,
    selected: bool,
    row: Rect,
    buf: &mut Buffer,
    cx: &ViewCx,
) {
    let theme = cx.theme;
    let base = match (selected, cx.focused) {
        (true, true) => theme.selection(),
        (true, false) => theme.selection_unfocused(),
        _ => theme.base(),
    };
    let (dot, dot_style) = dot(person.state, theme);
    let state = match person.state {
        State::Online => "online",
        State::Away => "away",
        State::Offline => "offline",
    };
    let detail = detail(person, cx.clock);
    buf.set_style(row, base);
    let name = fit(&name(person, me), name_width);
    let mut spans = vec![
        Span::styled(format!("{dot} "), if selected { base } else { dot_style }),
        Span::styled(
            format!("{name:<name_width$}  "),
            base.add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!("{state:<9}"),
            if selected { base } else { dot_style },
        ),
    ];
    let used: usize = spans.iter().map(|s| s.width()).sum();
    spans.push(Span::styled(
        fit(&detail, (row.width as usize).saturating_sub(used)),
        if selected { base } else { theme.dim() },
    ));
    Line::from(spans).render(row, buf);
}

/// The dot and the state's colour: online green, away yellow, offline grey.
fn dot(state: State, theme: &Theme) -> (&'static str, Style) {
    match state {
        State::Online => (theme.glyph("●", "*"), theme.info()),
        State::Away => (theme.glyph("◐", "~"), theme.warn()),
        State::Offline => (theme.glyph("○", "o"), theme.dim()),
    }
}

/// Their status text, and for someone offline when they were last seen.
fn detail(person: &Person, clock: Clock) -> String {
    let seen = match (person.state, person.last_seen_ms) {
        (State::Offline, Some(at)) => Some(format!("last seen {}", clock.ago(at))),
        _ => None,
    };
    match (&person.text, seen) {
        (Some(text), Some(seen)) => format!("{text} · {seen}"),
        (Some(text), None) => text.clone(),
        (None, Some(seen)) => seen,
        (None, None) => String::new(),
    }
}

fn render_footer(people: &People, area: Rect, buf: &mut Buffer, theme: &Theme) {
    let (text, style) = match &people.message {
        Some((level, text)) => (
            text.clone(),
            match level {
                Level::Info => theme.info(),
                Level::Warn => theme.warn(),
                Level::Error => theme.error(),
            },
        ),
        None => (
            "Enter writes to them · a away/back · s your status".to_owned(),
            theme.dim(),
        ),
    };
    Line::styled(fit(&text, area.width as usize), style).render(area, buf);
}
