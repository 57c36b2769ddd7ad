//! How Chat looks: the rooms down the left (unread counts, `@` when you were mentioned,
//! then the public rooms to join, dimmed); on the right the room's name, its messages
//! bottom-up from the newest (time, author, Markdown, replies, edits, deletes, a line
//! between days), then what went wrong, what you are doing (replying, editing, searching)
//! and the line you write in. A narrow window shows the rooms or the messages.

use std::collections::VecDeque;

use aether_proto::api::chat::{Message, RoomInfo};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use unicode_width::UnicodeWidthStr;

use super::compose::Draft;
use super::room::Shown;
use super::{Chat, Focus, Loaded, markdown, words};
use app_kit::app::{Level, ViewCx};
use app_kit::clock::Clock;
use app_kit::theme::Theme;
use app_kit::widgets::{fit, wrap_styled_words, wrap_words};

/// Below this width one column shows: the rooms, or the room.
const TWO_COLUMNS: u16 = 60;
/// Below this width a message's author and time go on a line above it.
const SIDE_BY_SIDE: usize = 48;
/// The widest author column.
const AUTHOR: usize = 12;

pub(super) fn render(chat: &Chat, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    buf.set_style(area, theme.base());
    let text = match &chat.rooms {
        Loaded::Loading => Some(("loading your rooms…".to_owned(), theme.dim())),
        Loaded::Failed(why) => Some((
            format!("your rooms could not be listed: {why} (R tries again)"),
            theme.error(),
        )),
        Loaded::Ready(rooms) if rooms.is_empty() => Some((
            "no rooms yet — n makes one, j joins a public one".to_owned(),
            theme.dim(),
        )),
        Loaded::Ready(_) => None,
    };
    if let Some((text, style)) = text {
        let said = said_rows(chat, area.width, theme);
        let [body, footer] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(said.len() as u16)])
                .areas(area);
        say(&text, style, body, buf);
        for (y, line) in (footer.y..footer.bottom()).zip(said) {
            line.render(Rect::new(footer.x, y, footer.width, 1), buf);
        }
        return;
    }
    let (left, right) = if area.width < TWO_COLUMNS {
        match chat.focus {
            Focus::Rooms => (area, Rect::default()),
            _ => (Rect::default(), area),
        }
    } else {
        let left_width = (area.width / 4).clamp(16, 26);
        app_kit::widgets::beside(area, left_width, buf, theme)
    };
    if left.width > 0 {
        render_rooms(chat, left, buf, cx);
    }
    if right.width > 0 {
        let [header, body, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            footer_height(chat, right, theme),
        ])
        .areas(right);
        render_header(chat, header, buf, theme);
        render_body(chat, body, buf, cx);
        render_footer(chat, footer, buf, cx);
    }
}

/// Plain words, wrapped, from the top of `area`.
fn say(text: &str, style: Style, area: Rect, buf: &mut Buffer) {
    for (y, row) in (area.y..area.bottom()).zip(wrap_words(text, area.width as usize)) {
        Line::styled(row, style).render(Rect::new(area.x, y, area.width, 1), buf);
    }
}

fn render_rooms(chat: &Chat, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    let rooms = chat.room_infos();
    // The public rooms to join come under a heading of their own.
    let first_public = rooms.iter().position(|r| !r.joined);
    let height = (area.height as usize).saturating_sub(usize::from(first_public.is_some()));
    let mut y = area.y;
    for i in chat.room_list.visible(rooms.len(), height) {
        if Some(i) == first_public && y < area.bottom() {
            Line::styled(fit("public rooms", area.width as usize), theme.dim())
                .render(Rect::new(area.x, y, area.width, 1), buf);
            y += 1;
        }
        if y >= area.bottom() {
            break;
        }
        let row = Rect::new(area.x, y, area.width, 1);
        room_row(chat, &rooms[i], i == chat.room_list.selected, row, buf, cx);
        y += 1;
    }
}

fn room_row(
    chat: &Chat,
    room: &RoomInfo,
    selected: bool,
    row: Rect,
    buf: &mut Buffer,
    cx: &ViewCx,
) {
    let theme = cx.theme;
    let style = match (selected, chat.focus == Focus::Rooms && cx.focused) {
        (true, true) => theme.selection(),
        (true, false) => theme.selection_unfocused(),
        _ if !room.joined => theme.dim(),
        _ if room.unread > 0 => theme.base().add_modifier(Modifier::BOLD),
        _ => theme.base(),
    };
    let (mark, mark_style) = match (room.unread, room.mentions) {
        _ if !room.joined => (String::new(), style),
        (0, 0) => (String::new(), style),
        (unread, 0) => (format!("{unread}"), theme.accent()),
        (unread, _) => (format!("{unread} @"), theme.warn()),
    };
    let width = row.width as usize;
    let name = fit(
        &words::room_name(room),
        width.saturating_sub(mark.width() + 1).max(1),
    );
    let pad = width.saturating_sub(name.width() + mark.width());
    buf.set_style(row, style);
    Line::from(vec![
        Span::styled(format!("{name}{}", " ".repeat(pad)), style),
        Span::styled(mark, if selected { style } else { mark_style }),
    ])
    .render(row, buf);
}

/// `#team · private · 3 members · the topic`, or what a search found.
fn render_header(chat: &Chat, area: Rect, buf: &mut Buffer, theme: &Theme) {
    let width = area.width as usize;
    if let (Some(found), Some(info)) = (&chat.found, chat.shown_info()) {
        let count = match &found.messages {
            None => "searching…".to_owned(),
            Some(m) if m.len() == 1 => "1 found".into(),
            Some(m) => format!("{} found", m.len()),
        };
        let text = format!(
            "\"{}\" in {}: {count} · Esc: back to the room",
            found.query,
            words::room_name(info)
        );
        Line::styled(fit(&text, width), theme.accent()).render(area, buf);
        return;
    }
    let Some(info) = chat.shown_info().or(chat.selected_room()) else {
        return;
    };
    let name = words::room_name(info);
    let mut about = Vec::new();
    if info.with.is_some() {
        about.push("direct message".to_owned());
    } else {
        about.push(if info.private { "private" } else { "public" }.to_owned());
        about.push(match info.members {
            1 => "1 member".to_owned(),
            n => format!("{n} members"),
        });
    }
    if let Some(topic) = &info.topic {
        about.push(topic.clone());
    }
    let rest = fit(
        &format!(" · {}", about.join(" · ")),
        width.saturating_sub(name.width()),
    );
    Line::from(vec![
        Span::styled(name, theme.accent()),
        Span::styled(rest, theme.dim()),
    ])
    .render(area, buf);
}

fn render_body(chat: &Chat, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    if chat.found.is_none() {
        let empty = match (&chat.shown, chat.selected_room()) {
            (None, Some(info)) if !info.joined => Some((
                format!(
                    "{} is public, with {}. Enter (or j) joins it.",
                    words::room_name(info),
                    match info.members {
                        1 => "1 member".to_owned(),
                        n => format!("{n} members"),
                    }
                ),
                theme.dim(),
            )),
            (None, _) => Some(("pick a room on the left".to_owned(), theme.dim())),
            (Some(shown), _) if shown.failed.is_some() => Some((
                format!(
                    "the messages could not be read: {}",
                    shown.failed.as_deref().unwrap_or_default()
                ),
                theme.error(),
            )),
            (Some(shown), _) if !shown.loaded => Some(("loading…".to_owned(), theme.dim())),
            (Some(shown), _) if shown.messages.is_empty() => {
                Some(("nothing said here yet: say hello".to_owned(), theme.dim()))
            }
            _ => None,
        };
        if let Some((text, style)) = empty {
            say(&text, style, area, buf);
            return;
        }
    } else if chat.listed().is_empty() {
        say("nothing found", theme.dim(), area, buf);
        return;
    }
    render_messages(chat, area, buf, cx);
}

/// The messages, bottom-anchored at the view's bottom message, or top-anchored at the
/// selected one when it is above what fits.
fn render_messages(chat: &Chat, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let listed = chat.listed();
    let height = area.height as usize;
    if listed.is_empty() || height == 0 {
        return;
    }
    let shown = chat.shown.as_ref().filter(|_| chat.found.is_none());
    let selected = chat
        .selected
        .filter(|_| chat.focus == Focus::Messages)
        .and_then(|seq| listed.iter().position(|m| m.seq == seq));
    let mut bottom = shown.and_then(|s| s.bottom()).unwrap_or(listed.len() - 1);
    if let Some(s) = selected {
        bottom = bottom.max(s);
    }
    let look = Look::new(chat, listed, area.width as usize, cx);
    let block = |i: usize| look.block(listed, i, selected == Some(i));
    // Up from the bottom message until the view is full.
    let mut blocks: VecDeque<Vec<Line<'static>>> = VecDeque::new();
    let mut rows = 0;
    let mut top = bottom;
    loop {
        let lines = block(top);
        rows += lines.len();
        blocks.push_front(lines);
        if rows >= height || top == 0 {
            break;
        }
        top -= 1;
    }
    let mut last = bottom;
    let lines: Vec<Line<'static>> = match selected {
        // The selection is above what fits: it goes at the top.
        Some(s) if s < top || (s == top && rows > height) => {
            top = s;
            last = s;
            let mut lines = block(s);
            while last + 1 < listed.len() && lines.len() < height {
                last += 1;
                lines.extend(block(last));
            }
            if lines.len() > height {
                lines.truncate(height);
                // The last block is cut: it does not count as shown.
                last = last.saturating_sub(1).max(s);
            }
            lines
        }
        _ => {
            if top == 0 && rows < height {
                // The oldest loaded shows: say whether there is more, and fill the rest
                // with what is below the bottom message.
                let start = match shown {
                    Some(s) if s.loading_older => "loading older messages…".to_owned(),
                    Some(s) if s.more => "PgUp loads older messages".to_owned(),
                    Some(s) => format!(
                        "the start of {}",
                        words::room_id_name(&s.room, chat.room_infos())
                    ),
                    None => String::new(),
                };
                if !start.is_empty() {
                    blocks.push_front(vec![Line::styled(start, cx.theme.dim())]);
                    rows += 1;
                }
                while rows < height && last + 1 < listed.len() {
                    last += 1;
                    let lines = block(last);
                    rows += lines.len();
                    blocks.push_back(lines);
                }
            }
            if rows > height && top < last {
                // The top block is cut: it does not count as shown.
                top += 1;
            }
            let mut lines: Vec<Line<'static>> = blocks.into_iter().flatten().collect();
            lines.drain(..lines.len().saturating_sub(height));
            lines
        }
    };
    if let Some(shown) = shown {
        shown.drawn.set(Some((top, last.max(top))));
    }
    let y = area.bottom().saturating_sub(lines.len() as u16).max(area.y);
    for (i, line) in lines.into_iter().enumerate() {
        line.render(Rect::new(area.x, y + i as u16, area.width, 1), buf);
    }
    if let Some(shown) = shown.filter(|_| last + 1 < listed.len()) {
        render_more_below(shown, area, buf, cx);
    }
}

/// A tag at the bottom right: messages below the last one shown (how many are new).
fn render_more_below(shown: &Shown, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let tag = match shown.unseen {
        0 => format!(" {} more below ", cx.theme.glyph("↓", "v")),
        n => format!(" {} {n} new below ", cx.theme.glyph("↓", "v")),
    };
    let width = tag.width() as u16;
    if width < area.width {
        Line::styled(tag, cx.theme.bar()).render(
            Rect::new(area.right() - width, area.bottom() - 1, width, 1),
            buf,
        );
    }
}

/// What every message block needs to know, worked out once per frame.
struct Look<'a> {
    theme: &'a Theme,
    clock: Clock,
    me: Option<&'a str>,
    width: usize,
    /// The author column's width (0: authors go on a line above).
    author: usize,
    /// The selection's style, when a message is selected.
    selection: Style,
}

impl<'a> Look<'a> {
    fn new(chat: &'a Chat, listed: &[Message], width: usize, cx: &'a ViewCx) -> Look<'a> {
        let author = if width >= SIDE_BY_SIDE {
            listed
                .iter()
                .map(|m| m.user.width())
                .max()
                .unwrap_or(0)
                .min(AUTHOR)
        } else {
            0
        };
        Look {
            theme: cx.theme,
            clock: cx.clock,
            me: chat.me.as_deref(),
            width,
            author,
            selection: if cx.focused {
                cx.theme.selection()
            } else {
                cx.theme.selection_unfocused()
            },
        }
    }

    /// One message's rows: a line for a new day if it starts one, its author and time,
    /// its text wrapped beside (or under) them.
    fn block(&self, listed: &[Message], i: usize, selected: bool) -> Vec<Line<'static>> {
        let theme = self.theme;
        let message = &listed[i];
        let mut rows = Vec::new();
        let day = self.clock.day(message.at_ms);
        let new_day = match i.checked_sub(1) {
            Some(prev) => self.clock.day(listed[prev].at_ms) != day,
            None => day != self.clock.day(self.clock.now_ms),
        };
        if new_day {
            let label = format!(" {} ", self.clock.day_name(message.at_ms));
            let rule = self.width.saturating_sub(label.width()) / 2;
            let dash = theme.glyph("─", "-");
            rows.push(Line::styled(
                format!("{}{label}{}", dash.repeat(rule), dash.repeat(rule)),
                theme.dim(),
            ));
        }
        let time = self.clock.time_of_day(message.at_ms);
        let author_style = if self.me == Some(message.user.as_str()) {
            theme.accent()
        } else {
            theme.base().add_modifier(Modifier::BOLD)
        };
        let body = self.body(message);
        let mut own: Vec<Line<'static>> = Vec::new();
        if self.author > 0 {
            let prefix = 5 + 1 + self.author + 1;
            let width = self.width.saturating_sub(prefix).max(8);
            let author = fit(&message.user, self.author);
            for (n, row) in body
                .iter()
                .flat_map(|line| wrap_styled_words(line, width))
                .enumerate()
            {
                let mut spans = if n == 0 {
                    vec![
                        Span::styled(format!("{time} "), theme.dim()),
                        Span::styled(format!("{author:<w$} ", w = self.author), author_style),
                    ]
                } else {
                    vec![Span::raw(" ".repeat(prefix))]
                };
                spans.extend(row.spans);
                own.push(Line::from(spans));
            }
        } else {
            own.push(Line::from(vec![
                Span::styled(message.user.clone(), author_style),
                Span::styled(format!(" {time}"), theme.dim()),
            ]));
            let width = self.width.saturating_sub(2).max(8);
            for row in body.iter().flat_map(|line| wrap_styled_words(line, width)) {
                let mut spans = vec![Span::raw("  ")];
                spans.extend(row.spans);
                own.push(Line::from(spans));
            }
        }
        if selected {
            // The whole width, so the selection reads as one block.
            for line in &mut own {
                let pad = self.width.saturating_sub(line.width());
                line.spans.push(Span::raw(" ".repeat(pad)));
                *line = std::mem::take(line).patch_style(self.selection);
            }
        }
        rows.extend(own);
        rows
    }

    /// The text as lines: Markdown, a reply's `↳ #seq`, `(edited)`, or that it is gone.
    fn body(&self, message: &Message) -> Vec<Line<'static>> {
        let theme = self.theme;
        if message.deleted {
            return vec![Line::styled(
                "message deleted",
                theme.dim().add_modifier(Modifier::ITALIC),
            )];
        }
        let mut lines = markdown::render(&message.text, theme, self.me);
        if let Some(parent) = message.reply_to {
            let mark = Span::styled(format!("{} #{parent} ", theme.glyph("↳", "^")), theme.dim());
            lines[0].spans.insert(0, mark);
        }
        if message.edited_ms.is_some()
            && let Some(last) = lines.last_mut()
        {
            last.spans.push(Span::styled(" (edited)", theme.dim()));
        }
        lines
    }
}

/// The last message (an error, say), wrapped to at most three rows.
fn said_rows(chat: &Chat, width: u16, theme: &Theme) -> Vec<Line<'static>> {
    let Some((level, text)) = &chat.message else {
        return Vec::new();
    };
    let style = match level {
        Level::Info => theme.info(),
        Level::Warn => theme.warn(),
        Level::Error => theme.error(),
    };
    wrap_words(text, width as usize)
        .into_iter()
        .take(3)
        .map(|row| Line::styled(row, style))
        .collect()
}

/// The line above the input, when there is something to say there.
fn doing_line(chat: &Chat) -> Option<String> {
    if chat.search.is_some() {
        return Some("Enter searches · Esc cancels".into());
    }
    chat.shown.as_ref()?;
    Some(doing_text(chat)).filter(|text| !text.is_empty())
}

fn footer_height(chat: &Chat, area: Rect, theme: &Theme) -> Constraint {
    let rows = said_rows(chat, area.width, theme).len() + usize::from(doing_line(chat).is_some());
    Constraint::Length(rows as u16 + 1)
}

/// What went wrong (or right), what you are doing, and the line you write in.
fn render_footer(chat: &Chat, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    let width = area.width as usize;
    let mut lines = said_rows(chat, area.width, theme);
    if let Some(doing) = doing_line(chat) {
        lines.push(Line::styled(fit(&doing, width), theme.dim()));
    }
    // Above the last row, which is the line you write in.
    for (y, line) in (area.y..area.bottom().saturating_sub(1)).zip(lines) {
        line.render(Rect::new(area.x, y, area.width, 1), buf);
    }
    let line = Rect::new(area.x, area.bottom().saturating_sub(1), area.width, 1);
    if let Some(search) = &chat.search {
        let label = "search: ";
        Line::styled(label, theme.accent()).render(line, buf);
        let rest = Rect::new(
            line.x + label.len() as u16,
            line.y,
            line.width.saturating_sub(label.len() as u16),
            1,
        );
        search.render(rest, buf, theme.base(), theme.cursor(), cx.focused);
        return;
    }
    let Some(shown) = &chat.shown else {
        let keys = match chat.selected_room() {
            Some(info) if !info.joined => {
                format!(
                    "Enter or j joins {} · n makes a room",
                    words::room_name(info)
                )
            }
            _ => "n makes a room · j joins one".to_owned(),
        };
        Line::styled(fit(&keys, width), theme.dim()).render(line, buf);
        return;
    };
    let prompt = format!("{} ", theme.glyph("›", ">"));
    let typing = chat.focus == Focus::Input;
    Line::styled(
        prompt.clone(),
        if typing { theme.accent() } else { theme.dim() },
    )
    .render(line, buf);
    let rest = Rect::new(
        line.x + prompt.width() as u16,
        line.y,
        line.width.saturating_sub(prompt.width() as u16),
        1,
    );
    chat.compose.input.render(
        rest,
        buf,
        theme.base(),
        theme.cursor(),
        typing && cx.focused,
    );
    if chat.compose.input.text().is_empty() && rest.width > 2 {
        let hint = format!(
            "write to {} (Markdown; @ then Tab names someone)",
            words::room_id_name(&shown.room, chat.room_infos())
        );
        let at = Rect::new(rest.x + 1, rest.y, rest.width - 1, 1);
        Line::styled(fit(&hint, at.width as usize), theme.dim()).render(at, buf);
    }
}

/// The line above the input: what you are doing, or the keys of what has the keyboard.
fn doing_text(chat: &Chat) -> String {
    let find = |seq: u64| chat.shown.as_ref().and_then(|s| s.get(seq));
    match chat.compose.draft {
        Draft::Reply(seq) => {
            let about = find(seq)
                .map(|m| format!(" {}: {}", m.user, words::snippet(m, 50)))
                .unwrap_or_default();
            return format!("↳ replying to #{seq}{about} · Esc cancels");
        }
        Draft::Edit(seq) => {
            return format!("editing your message #{seq} · Enter saves · Esc cancels");
        }
        Draft::New => {}
    }
    match chat.focus {
        Focus::Input => String::new(),
        Focus::Messages => {
            let about = chat
                .selected
                .and_then(|seq| chat.listed().iter().find(|m| m.seq == seq))
                .map(|m| format!("#{} by {} · ", m.seq, m.user))
                .unwrap_or_default();
            format!("{about}r reply · e edit · d delete · y copy · Enter writes · ← rooms")
        }
        Focus::Rooms => "↑↓ rooms · Enter opens · n new · j join · i invite · l leave".to_owned(),
    }
}
