//! Drawing the desktop, bottom to top: the tab bar, the windows (tiled, then floating),
//! the status bar, the layers, the notifications. A pure function of the state.

use app_kit::widgets::fit;
use app_kit::{Level, ViewCx};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Widget, Wrap};

use super::{Desktop, LinkState, inner};
use crate::commands::Command;
use crate::keymap::Mode;

pub fn tab_label(index: usize, name: &str) -> String {
    format!(" {} {} ", index + 1, name)
}

impl Desktop {
    pub fn render(&self, area: Rect, buf: &mut Buffer) {
        let theme = &self.theme;
        buf.set_style(area, theme.base());
        if area.height == 0 || area.width == 0 {
            return;
        }
        self.render_tabs(Rect::new(area.x, area.y, area.width, 1), buf);
        let body = self.body();
        if self.windows.is_empty() || self.workspaces.is_empty() {
            let keys = self.keymap.main_key(Command::Launcher);
            Paragraph::new(Line::styled(
                format!("No windows. {} {keys} opens an app.", self.keymap.prefix),
                theme.dim(),
            ))
            .wrap(Wrap { trim: true })
            .render(body, buf);
        }
        let focus = self.focused();
        let placed_windows = self.layout();
        let titles = self.titles(&placed_windows);
        for (placed, title) in placed_windows.iter().zip(titles) {
            let Some(app) = self.windows.get(&placed.id) else {
                continue;
            };
            let focused = focus == Some(placed.id);
            if placed.floating {
                Clear.render(placed.area, buf);
            }
            let title = fit(
                &format!(" {title} "),
                placed.area.width.saturating_sub(2) as usize,
            );
            let block = Block::default()
                .borders(Borders::ALL)
                .border_type(if theme.plain_glyphs {
                    BorderType::Plain
                } else if placed.floating {
                    BorderType::Double
                } else if focused {
                    BorderType::Thick
                } else {
                    BorderType::Plain
                })
                .border_style(theme.border(focused))
                .title(Span::styled(
                    title,
                    if focused { theme.accent() } else { theme.dim() },
                ));
            block.render(placed.area, buf);
            let content = inner(placed.area);
            if content.width > 0 && content.height > 0 {
                app.view(
                    content,
                    buf,
                    &ViewCx {
                        theme,
                        focused,
                        clock: self.clock,
                    },
                );
            }
        }
        if area.height >= 2 {
            self.render_status(Rect::new(area.x, area.bottom() - 1, area.width, 1), buf);
        }
        for layer in &self.layers {
            layer.render(body, buf, theme);
        }
        self.render_notices(body, buf);
    }

    /// The windows' titles, numbered where two would read the same (two terminals in `/`).
    fn titles(&self, placed: &[crate::wm::Placed]) -> Vec<String> {
        let titles: Vec<String> = placed
            .iter()
            .map(|p| {
                self.windows
                    .get(&p.id)
                    .map(|a| a.title())
                    .unwrap_or_default()
            })
            .collect();
        let mut order: Vec<usize> = (0..placed.len()).collect();
        order.sort_by_key(|&i| placed[i].id);
        let mut seen: std::collections::HashMap<&str, usize> = Default::default();
        let mut nth = vec![0; placed.len()];
        for i in order {
            let n = seen.entry(titles[i].as_str()).or_default();
            *n += 1;
            nth[i] = *n;
        }
        titles
            .iter()
            .zip(nth)
            .map(|(title, n)| match n {
                1 => title.clone(),
                n => format!("{title} ({n})"),
            })
            .collect()
    }

    fn render_tabs(&self, area: Rect, buf: &mut Buffer) {
        let theme = &self.theme;
        buf.set_style(area, theme.bar());
        let mut spans = Vec::new();
        for (i, ws) in self.workspaces.iter().enumerate() {
            let label = tab_label(i, &ws.name);
            let style = if i == self.active {
                theme.selection()
            } else {
                theme.bar()
            };
            spans.push(Span::styled(label, style));
            spans.push(Span::styled(" ", theme.bar()));
        }
        if self.workspaces.get(self.active).is_some_and(|ws| ws.zoomed) {
            spans.push(Span::styled(" [zoomed] ", theme.bar()));
        }
        Line::from(spans).render(area, buf);
    }

    fn render_status(&self, area: Rect, buf: &mut Buffer) {
        let theme = &self.theme;
        buf.set_style(area, theme.bar());
        let (mode, mode_style) = match self.mode {
            Mode::Normal => (" AETHER ", theme.selection()),
            Mode::Command => (" COMMAND ", theme.warn().patch(theme.selection())),
            Mode::Locked => (" LOCKED ", theme.error().patch(theme.selection())),
        };
        let link = match &self.link {
            LinkState::Up => Span::styled(
                format!(" {} connected ", theme.glyph("●", "*")),
                theme.info().patch(theme.bar()),
            ),
            LinkState::Reconnecting(n) => Span::styled(
                match n {
                    0 => format!(" {} connection lost; reconnecting ", theme.glyph("◌", "~")),
                    n => format!(
                        " {} daemon unreachable (try {}); your work is kept ",
                        theme.glyph("◌", "~"),
                        n + 1
                    ),
                },
                theme.warn().patch(theme.bar()),
            ),
            LinkState::Down(why) => Span::styled(
                format!(" {} offline: {why} ", theme.glyph("✕", "x")),
                theme.error().patch(theme.bar()),
            ),
        };
        let busy = self.busy();
        let jobs = match busy.len() {
            0 => String::new(),
            1 => format!(" running {} ", busy[0]),
            n => format!(" {n} programs running "),
        };
        let counts = self.headless.unread.counts();
        let unread = match counts.unread {
            0 => String::new(),
            n => format!(" {n} unread "),
        };
        let mentions = match counts.mentions {
            0 => String::new(),
            n => format!(" @{n} "),
        };
        let left = vec![
            Span::styled(mode, mode_style),
            Span::styled(format!(" {} ", self.user), theme.bar()),
            link,
            Span::styled(jobs, theme.bar()),
            Span::styled(unread, theme.info().patch(theme.bar())),
            Span::styled(mentions, theme.warn().patch(theme.bar())),
        ];
        let prefix = self.keymap.prefix;
        let key = |c: Command| self.keymap.main_key(c);
        let hints = match self.mode {
            Mode::Command => format!(
                "h/j/k/l focus · {}/{} split · {} close · {} zoom · {} palette · {} help · {} quit · Esc ",
                key(Command::SplitRight),
                key(Command::SplitDown),
                key(Command::Close),
                key(Command::Zoom),
                key(Command::Palette),
                key(Command::Help),
                key(Command::Quit),
            ),
            Mode::Locked => format!("every key goes to the window · {prefix} unlocks "),
            Mode::Normal => format!(
                "{prefix} {} palette · {prefix} {} help · {prefix} {} quit ",
                key(Command::Palette),
                key(Command::Help),
                key(Command::Quit),
            ),
        };
        let left_width: usize = left.iter().map(|s| s.width()).sum();
        Line::from(left).render(area, buf);
        let room = (area.width as usize).saturating_sub(left_width + 1);
        let hints = fit(&hints, room);
        let width = unicode_width::UnicodeWidthStr::width(hints.as_str()) as u16;
        if width > 0 {
            Line::styled(hints, theme.bar())
                .render(Rect::new(area.right() - width, area.y, width, 1), buf);
        }
    }

    fn render_notices(&self, body: Rect, buf: &mut Buffer) {
        let theme = &self.theme;
        let room = 50.min(body.width).saturating_sub(2) as usize;
        let mut y = body.bottom();
        for notice in self.notifications.shown().rev() {
            let style = match notice.level {
                Level::Info => theme.info(),
                Level::Warn => theme.warn(),
                Level::Error => theme.error(),
            }
            .patch(theme.bar());
            // A long notice wraps (up to three rows) rather than losing its end.
            let mut rows = app_kit::widgets::wrap_words(&notice.text, room);
            if rows.len() > 3 {
                rows.truncate(3);
                let last = fit(&rows[2], room.saturating_sub(1));
                rows[2] = format!("{}…", last.trim_end_matches('…'));
            }
            for row in rows.iter().rev() {
                if y <= body.y {
                    return;
                }
                y -= 1;
                let text = format!(" {row} ");
                let w = unicode_width::UnicodeWidthStr::width(text.as_str()) as u16;
                let area = Rect::new(body.right().saturating_sub(w), y, w, 1);
                Clear.render(area, buf);
                Line::styled(text, style).render(area, buf);
            }
        }
    }
}
