//! The compositor's layers above the windows: dialogs (confirm, choose, prompt), the
//! palette, the launcher, the help overlay and the first-start hint. Keys go to the top
//! layer first and stop there; layers draw over the windows, the top one last.

use app_kit::widgets::{LineEdit, LineInput, ListWindow, fit};
use app_kit::{AppKind, Key, KeyCode, Theme, Ticket};
use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config as MatchConfig, Matcher, Utf32Str};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Widget, Wrap};

use super::Owner;
use crate::commands::Command;
use crate::wm::{Split, WindowId};

/// Who asked a dialog, and so who gets the answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Asker {
    App(Owner, Ticket),
    RenameTab,
    Quit,
    CloseWindow(WindowId),
    CloseTab,
}

#[derive(Debug, Clone)]
pub enum DialogKind {
    Confirm,
    Choose {
        options: Vec<String>,
        selected: usize,
    },
    Prompt {
        input: LineInput,
        /// Shown as dots (passwords).
        secret: bool,
    },
    /// The question, then `detail` in full (wrapped, scrolled, never cut), then options.
    Review {
        detail: String,
        /// The first detail row shown; kept within the detail as it is drawn.
        scroll: std::cell::Cell<usize>,
        options: Vec<String>,
        selected: usize,
    },
}

#[derive(Debug, Clone)]
pub struct Dialog {
    pub asker: Asker,
    pub question: String,
    pub kind: DialogKind,
}

/// Where the launcher puts the app it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Split(Split),
    Floating,
    /// Beside the focused window, the long way.
    Auto,
    /// In a new workspace.
    NewTab,
}

/// One app the launcher and the palette offer: a built-in app, or an installed app's
/// program (which opens in a program window).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launchable {
    pub kind: AppKind,
    /// The installed app's id, for a program window.
    pub installed: Option<String>,
    /// As its manifest names it.
    pub name: String,
}

impl Launchable {
    pub fn built_in(kind: AppKind, name: impl Into<String>) -> Launchable {
        Launchable {
            kind,
            installed: None,
            name: name.into(),
        }
    }

    pub fn program(id: impl Into<String>, name: impl Into<String>) -> Launchable {
        Launchable {
            kind: apps::program::APP,
            installed: Some(id.into()),
            name: name.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Launcher {
    pub placement: Placement,
    pub list: ListWindow,
    /// What can be opened, named as the manifests name them: the built-in apps, then
    /// the programs installed for you.
    pub apps: Vec<Launchable>,
}

/// One thing the palette can do.
#[derive(Debug, Clone, PartialEq)]
pub enum PaletteItem {
    Command(Command, String, String),
    OpenApp(AppKind),
    /// An installed app's program: its id and name.
    RunInstalled(String, String),
    OpenFile(String),
}

impl PaletteItem {
    fn text(&self) -> String {
        match self {
            PaletteItem::Command(_, name, doc) => format!("{name}  {doc}"),
            PaletteItem::OpenApp(kind) => format!("open {}  ({})", kind.title(), kind.name()),
            PaletteItem::RunInstalled(id, name) => format!("open {name}  ({id}, installed)"),
            PaletteItem::OpenFile(path) => path.clone(),
        }
    }

    fn tag(&self) -> &'static str {
        match self {
            PaletteItem::Command(..) => "command",
            PaletteItem::OpenApp(_) | PaletteItem::RunInstalled(..) => "app",
            PaletteItem::OpenFile(_) => "file",
        }
    }
}

pub struct PaletteLayer {
    pub query: LineInput,
    pub items: Vec<PaletteItem>,
    /// Indexes into `items`, best match first.
    pub shown: Vec<usize>,
    pub list: ListWindow,
    matcher: Matcher,
}

impl PaletteLayer {
    pub fn new(items: Vec<PaletteItem>) -> PaletteLayer {
        let mut palette = PaletteLayer {
            query: LineInput::default(),
            shown: Vec::new(),
            items,
            list: ListWindow::default(),
            matcher: Matcher::new(MatchConfig::DEFAULT.match_paths()),
        };
        palette.filter();
        palette
    }

    /// Rank the items against the query (nucleo, Helix's matcher).
    fn filter(&mut self) {
        let query = self.query.text();
        if query.trim().is_empty() {
            self.shown = (0..self.items.len()).collect();
        } else {
            let pattern = Pattern::parse(query, CaseMatching::Smart, Normalization::Smart);
            let mut buf = Vec::new();
            let mut scored: Vec<(u32, usize)> = self
                .items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let text = item.text();
                    let score = pattern.score(Utf32Str::new(&text, &mut buf), &mut self.matcher)?;
                    Some((score, i))
                })
                .collect();
            scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            self.shown = scored.into_iter().map(|(_, i)| i).collect();
        }
        self.list = ListWindow::default();
    }

    pub fn selected(&self) -> Option<&PaletteItem> {
        self.shown.get(self.list.selected).map(|i| &self.items[*i])
    }
}

pub struct Help {
    pub title: String,
    pub lines: Vec<(String, String)>,
    pub scroll: usize,
}

pub enum Layer {
    Dialog(Dialog),
    Palette(Box<PaletteLayer>),
    Launcher(Launcher),
    Help(Help),
    /// The first-start hint: the few keys a newcomer needs.
    Hint(Vec<(String, String)>),
}

/// What a key did to the top layer.
pub enum Outcome {
    /// Handled; the layer stays.
    Stay,
    /// The layer is done, with nothing to report.
    Close,
    Answered(Answer),
}

pub enum Answer {
    Confirmed(Asker, bool),
    Chose(Asker, Option<usize>),
    Prompted(Asker, Option<String>),
    Palette(PaletteItem),
    Launch(Launchable, Placement),
}

impl Layer {
    pub fn on_key(&mut self, key: Key) -> Outcome {
        match self {
            Layer::Dialog(dialog) => dialog_key(dialog, key),
            Layer::Palette(palette) => palette_key(palette, key),
            Layer::Launcher(launcher) => launcher_key(launcher, key),
            Layer::Help(help) => match key.code {
                KeyCode::Down | KeyCode::Char('j') => {
                    help.scroll = (help.scroll + 1).min(help.lines.len().saturating_sub(1));
                    Outcome::Stay
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    help.scroll = help.scroll.saturating_sub(1);
                    Outcome::Stay
                }
                KeyCode::PageDown => {
                    help.scroll = (help.scroll + 10).min(help.lines.len().saturating_sub(1));
                    Outcome::Stay
                }
                KeyCode::PageUp => {
                    help.scroll = help.scroll.saturating_sub(10);
                    Outcome::Stay
                }
                _ => Outcome::Close,
            },
            Layer::Hint(_) => Outcome::Close,
        }
    }

    /// A paste goes into the prompt or the palette's query.
    pub fn on_paste(&mut self, text: &str) {
        match self {
            Layer::Dialog(Dialog {
                kind: DialogKind::Prompt { input, .. },
                ..
            }) => input.insert_str(text),
            Layer::Palette(palette) => {
                palette.query.insert_str(text);
                palette.filter();
            }
            _ => {}
        }
    }

    pub fn render(&self, screen: Rect, buf: &mut Buffer, theme: &Theme) {
        match self {
            Layer::Dialog(dialog) => render_dialog(dialog, screen, buf, theme),
            Layer::Palette(palette) => render_palette(palette, screen, buf, theme),
            Layer::Launcher(launcher) => render_launcher(launcher, screen, buf, theme),
            Layer::Help(help) => render_help(help, screen, buf, theme),
            Layer::Hint(lines) => render_hint(lines, screen, buf, theme),
        }
    }
}

fn dialog_key(dialog: &mut Dialog, key: Key) -> Outcome {
    let asker = dialog.asker.clone();
    match &mut dialog.kind {
        DialogKind::Confirm => match key.code {
            KeyCode::Char('y' | 'Y') | KeyCode::Enter => {
                Outcome::Answered(Answer::Confirmed(asker, true))
            }
            KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                Outcome::Answered(Answer::Confirmed(asker, false))
            }
            KeyCode::Char('c') if key.mods.ctrl => {
                Outcome::Answered(Answer::Confirmed(asker, false))
            }
            _ => Outcome::Stay,
        },
        DialogKind::Choose { options, selected } => match key.code {
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => {
                *selected = (*selected + 1) % options.len().max(1);
                Outcome::Stay
            }
            KeyCode::Up | KeyCode::Char('k') | KeyCode::BackTab => {
                *selected = (*selected + options.len().max(1) - 1) % options.len().max(1);
                Outcome::Stay
            }
            KeyCode::Char(c @ '1'..='9') if ((c as usize) - ('1' as usize)) < options.len() => {
                Outcome::Answered(Answer::Chose(asker, Some(c as usize - '1' as usize)))
            }
            KeyCode::Enter => Outcome::Answered(Answer::Chose(asker, Some(*selected))),
            KeyCode::Esc => Outcome::Answered(Answer::Chose(asker, None)),
            _ => Outcome::Stay,
        },
        DialogKind::Review {
            scroll,
            options,
            selected,
            ..
        } => {
            let count = options.len().max(1);
            let by = |rows: isize| {
                scroll.set(scroll.get().saturating_add_signed(rows));
                Outcome::Stay
            };
            match key.code {
                KeyCode::Down | KeyCode::Char('j') => by(1),
                KeyCode::Up | KeyCode::Char('k') => by(-1),
                KeyCode::PageDown | KeyCode::Char(' ') => by(REVIEW_PAGE),
                KeyCode::PageUp => by(-REVIEW_PAGE),
                KeyCode::Home => {
                    scroll.set(0);
                    Outcome::Stay
                }
                KeyCode::End => by(isize::MAX),
                KeyCode::Tab | KeyCode::Right => {
                    *selected = (*selected + 1) % count;
                    Outcome::Stay
                }
                KeyCode::BackTab | KeyCode::Left => {
                    *selected = (*selected + count - 1) % count;
                    Outcome::Stay
                }
                KeyCode::Char(c @ '1'..='9') if ((c as usize) - ('1' as usize)) < options.len() => {
                    Outcome::Answered(Answer::Chose(asker, Some(c as usize - '1' as usize)))
                }
                KeyCode::Char('y' | 'Y') => Outcome::Answered(Answer::Chose(asker, Some(0))),
                KeyCode::Enter => Outcome::Answered(Answer::Chose(asker, Some(*selected))),
                KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                    Outcome::Answered(Answer::Chose(asker, None))
                }
                KeyCode::Char('c') if key.mods.ctrl => {
                    Outcome::Answered(Answer::Chose(asker, None))
                }
                _ => Outcome::Stay,
            }
        }
        DialogKind::Prompt { input, .. } => match input.handle(key) {
            LineEdit::Submit => {
                Outcome::Answered(Answer::Prompted(asker, Some(input.text().to_owned())))
            }
            LineEdit::Cancel => Outcome::Answered(Answer::Prompted(asker, None)),
            _ => Outcome::Stay,
        },
    }
}

fn palette_key(palette: &mut PaletteLayer, key: Key) -> Outcome {
    let len = palette.shown.len();
    match key.code {
        KeyCode::Down | KeyCode::Tab => palette.list.move_by(1, len),
        KeyCode::Up | KeyCode::BackTab => palette.list.move_by(-1, len),
        KeyCode::Char('n') if key.mods.ctrl => palette.list.move_by(1, len),
        KeyCode::Char('p') if key.mods.ctrl => palette.list.move_by(-1, len),
        KeyCode::PageDown => palette.list.move_by(palette.list.page(), len),
        KeyCode::PageUp => palette.list.move_by(-palette.list.page(), len),
        _ => match palette.query.handle(key) {
            LineEdit::Submit => {
                return match palette.selected() {
                    Some(item) => Outcome::Answered(Answer::Palette(item.clone())),
                    None => Outcome::Stay,
                };
            }
            LineEdit::Cancel => return Outcome::Close,
            LineEdit::Changed => palette.filter(),
            _ => {}
        },
    }
    Outcome::Stay
}

fn launcher_key(launcher: &mut Launcher, key: Key) -> Outcome {
    let len = launcher.apps.len();
    let placement = launcher.placement;
    let launch = |index: usize| match launcher.apps.get(index) {
        Some(app) => Outcome::Answered(Answer::Launch(app.clone(), placement)),
        None => Outcome::Stay,
    };
    let built_in = |kind: AppKind| {
        let app = launcher
            .apps
            .iter()
            .find(|a| a.kind == kind)
            .cloned()
            .unwrap_or_else(|| Launchable::built_in(kind, kind.title()));
        Outcome::Answered(Answer::Launch(app, placement))
    };
    match key.code {
        KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => launcher.list.move_by(1, len),
        KeyCode::Up | KeyCode::Char('k') | KeyCode::BackTab => launcher.list.move_by(-1, len),
        KeyCode::PageDown => launcher.list.move_by(launcher.list.page(), len),
        KeyCode::PageUp => launcher.list.move_by(-launcher.list.page(), len),
        KeyCode::Enter => return launch(launcher.list.selected),
        KeyCode::Char(c @ '1'..='9') => return launch(c as usize - '1' as usize),
        KeyCode::Char(c) if let Some(kind) = apps::launched_by(c) => return built_in(kind),
        KeyCode::Esc | KeyCode::Char('q') => return Outcome::Close,
        _ => {}
    }
    Outcome::Stay
}

/// A box centred on the screen, at most `width` x `height`.
fn centred(screen: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(screen.width);
    let height = height.min(screen.height);
    Rect::new(
        screen.x + (screen.width - width) / 2,
        screen.y + (screen.height - height) / 2,
        width,
        height,
    )
}

fn frame<'a>(title: &'a str, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(if theme.plain_glyphs {
            BorderType::Plain
        } else {
            BorderType::Rounded
        })
        .border_style(theme.border(true))
        .title(Span::styled(format!(" {title} "), theme.accent()))
        .style(theme.base())
}

/// Rows PgUp/PgDn scroll a review's detail by.
const REVIEW_PAGE: isize = 10;

/// A review: the question, a rule, the detail's visible rows, where they are, the options.
fn render_review(dialog: &Dialog, screen: Rect, buf: &mut Buffer, theme: &Theme) {
    let DialogKind::Review {
        detail,
        scroll,
        options,
        selected,
    } = &dialog.kind
    else {
        return;
    };
    let width = 100.min(screen.width.saturating_sub(2)).max(20);
    let inner_width = width.saturating_sub(4) as usize;
    let question = textwrap_lines(&dialog.question, inner_width.max(1));
    let detail = wrap_exact(detail, inner_width.max(1));
    // The frame (2), a rule, a blank and the options' line (3), the position line (1).
    let fixed = question.len() + 6;
    let room = (screen.height as usize).saturating_sub(2 + fixed).max(1);
    let shown = detail.len().min(room);
    let top = scroll.get().min(detail.len().saturating_sub(shown));
    scroll.set(top);
    let height = (fixed + shown) as u16;
    let area = centred(screen, width, height);
    Clear.render(area, buf);
    let block = frame("Review", theme);
    let inner = block.inner(area).inner(ratatui::layout::Margin::new(1, 0));
    block.render(area, buf);
    let mut lines: Vec<Line> = question.into_iter().map(Line::raw).collect();
    lines.push(Line::styled("─".repeat(inner_width), theme.dim()));
    lines.extend(
        detail[top..top + shown]
            .iter()
            .map(|l| Line::styled(l.clone(), theme.base())),
    );
    let position = if detail.len() > shown {
        format!(
            "lines {}-{} of {}   ↑↓ PgUp PgDn scroll",
            top + 1,
            top + shown,
            detail.len()
        )
    } else {
        String::new()
    };
    lines.push(Line::styled(position, theme.dim()));
    lines.push(Line::raw(""));
    let mut choices = Vec::new();
    for (i, option) in options.iter().enumerate() {
        let text = format!(" {} {option} ", i + 1);
        choices.push(if i == *selected {
            Span::styled(text, theme.selection())
        } else {
            Span::raw(text)
        });
        choices.push(Span::raw(" "));
    }
    choices.push(Span::styled("Esc: none", theme.dim()));
    lines.push(Line::from(choices));
    Paragraph::new(lines).render(inner, buf);
}

/// Text to rows of at most `width` columns, keeping every character: long lines wrap at
/// the column, not at words, so nothing (a path, a value) is ever cut.
fn wrap_exact(text: &str, width: usize) -> Vec<String> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut row = String::new();
        let mut used = 0;
        for c in line.chars() {
            let c = if c.is_control() { ' ' } else { c };
            let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            if used + w > width && !row.is_empty() {
                rows.push(std::mem::take(&mut row));
                used = 0;
            }
            row.push(c);
            used += w;
        }
        rows.push(row);
    }
    rows
}

fn render_dialog(dialog: &Dialog, screen: Rect, buf: &mut Buffer, theme: &Theme) {
    if matches!(dialog.kind, DialogKind::Review { .. }) {
        return render_review(dialog, screen, buf, theme);
    }
    let width = 64.min(screen.width.saturating_sub(2)).max(20);
    let inner_width = width.saturating_sub(4) as usize;
    let question_lines = textwrap_lines(&dialog.question, inner_width.max(1));
    let extra = match &dialog.kind {
        DialogKind::Confirm | DialogKind::Prompt { .. } | DialogKind::Review { .. } => 2,
        DialogKind::Choose { options, .. } => options.len() as u16 + 1,
    };
    let height = question_lines.len() as u16 + extra + 2;
    let area = centred(screen, width, height);
    Clear.render(area, buf);
    let title = match dialog.kind {
        DialogKind::Confirm => "Confirm",
        DialogKind::Choose { .. } => "Choose",
        DialogKind::Prompt { .. } => "Input",
        DialogKind::Review { .. } => "Review",
    };
    let block = frame(title, theme);
    let inner = block.inner(area).inner(ratatui::layout::Margin::new(1, 0));
    block.render(area, buf);
    let mut lines: Vec<Line> = question_lines.into_iter().map(Line::raw).collect();
    lines.push(Line::raw(""));
    match &dialog.kind {
        DialogKind::Confirm => {
            lines.push(Line::styled("y / Enter: yes    n / Esc: no", theme.dim()))
        }
        DialogKind::Choose { options, selected } => {
            for (i, option) in options.iter().enumerate() {
                let text = format!("{}  {option}", i + 1);
                lines.push(if i == *selected {
                    Line::styled(text, theme.selection())
                } else {
                    Line::raw(text)
                });
            }
        }
        DialogKind::Prompt { .. } | DialogKind::Review { .. } => {}
    }
    Paragraph::new(lines).render(inner, buf);
    if let DialogKind::Prompt { input, secret } = &dialog.kind {
        let row = Rect::new(inner.x, inner.bottom().saturating_sub(1), inner.width, 1);
        if *secret {
            // Never the text itself: one dot per character typed.
            let dots = LineInput::new("•".repeat(input.text().chars().count()));
            dots.render(row, buf, theme.base(), theme.cursor(), true);
        } else {
            input.render(row, buf, theme.base(), theme.cursor(), true);
        }
    }
}

/// Words to lines of at most `width` columns (long words are cut).
fn textwrap_lines(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let word = fit(word, width);
            let needed = unicode_width::UnicodeWidthStr::width(line.as_str())
                + unicode_width::UnicodeWidthStr::width(word.as_str())
                + usize::from(!line.is_empty());
            if needed > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        lines.push(line);
    }
    lines
}

fn render_palette(palette: &PaletteLayer, screen: Rect, buf: &mut Buffer, theme: &Theme) {
    let area = centred(
        screen,
        80.min(screen.width.saturating_sub(4)).max(20),
        screen.height.saturating_sub(4).clamp(5, 22),
    );
    let area = Rect {
        y: screen.y + 1.min(screen.height),
        ..area
    };
    Clear.render(area, buf);
    let block = frame("Palette: apps, files, commands", theme);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 {
        return;
    }
    Line::styled("> ", theme.accent()).render(inner, buf);
    let query_area = Rect::new(inner.x + 2, inner.y, inner.width.saturating_sub(2), 1);
    palette
        .query
        .render(query_area, buf, theme.base(), theme.cursor(), true);
    let list_area = Rect::new(
        inner.x,
        inner.y + 1,
        inner.width,
        inner.height.saturating_sub(1),
    );
    if palette.shown.is_empty() {
        Line::styled("nothing matches", theme.dim()).render(list_area, buf);
        return;
    }
    let rows = palette
        .list
        .visible(palette.shown.len(), list_area.height as usize);
    for (row, index) in rows.enumerate() {
        let item = &palette.items[palette.shown[index]];
        let row_area = Rect::new(list_area.x, list_area.y + row as u16, list_area.width, 1);
        let tag = format!("{:>8} ", item.tag());
        let text = fit(
            &item.text(),
            (row_area.width as usize).saturating_sub(tag.len()),
        );
        let mut line = Line::from(vec![Span::styled(tag, theme.dim()), Span::raw(text)]);
        if index == palette.list.selected {
            line = line.patch_style(theme.selection());
            buf.set_style(row_area, theme.selection());
        }
        line.render(row_area, buf);
    }
}

fn render_launcher(launcher: &Launcher, screen: Rect, buf: &mut Buffer, theme: &Theme) {
    let area = centred(screen, 44, launcher.apps.len() as u16 + 4);
    Clear.render(area, buf);
    let title = match launcher.placement {
        Placement::Floating => "Open (floating)",
        Placement::NewTab => "Open (new workspace)",
        _ => "Open",
    };
    let block = frame(title, theme);
    let inner = block.inner(area);
    block.render(area, buf);
    let mut lines = Vec::new();
    // Many installed apps scroll; the first nine have their number.
    let rows = launcher
        .list
        .visible(launcher.apps.len(), inner.height.saturating_sub(2) as usize);
    for i in rows {
        let app = &launcher.apps[i];
        let number = if i < 9 {
            (i + 1).to_string()
        } else {
            " ".into()
        };
        let mut spans = vec![Span::raw(format!("{number}  {}", app.name))];
        if app.installed.is_some() {
            spans.push(Span::styled("  installed", theme.dim()));
        }
        let mut line = Line::from(spans);
        if i == launcher.list.selected {
            line = line.patch_style(theme.selection());
        }
        lines.push(line);
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Enter opens · Esc cancels", theme.dim()));
    Paragraph::new(lines).render(inner, buf);
}

fn render_help(help: &Help, screen: Rect, buf: &mut Buffer, theme: &Theme) {
    let area = centred(
        screen,
        90.min(screen.width.saturating_sub(2)),
        screen.height.saturating_sub(2),
    );
    Clear.render(area, buf);
    let block = frame(&help.title, theme);
    let inner = block.inner(area);
    block.render(area, buf);
    let key_width = help
        .lines
        .iter()
        .map(|(k, _)| unicode_width::UnicodeWidthStr::width(k.as_str()))
        .max()
        .unwrap_or(0)
        .min(inner.width as usize / 2);
    // Descriptions wrap under themselves, so nothing is cut on a narrow screen.
    let what_width = (inner.width as usize).saturating_sub(key_width + 4).max(1);
    let mut lines: Vec<Line> = Vec::new();
    for (keys, what) in help.lines.iter().skip(help.scroll) {
        if what.is_empty() {
            lines.push(Line::styled(keys.clone(), theme.accent()));
            continue;
        }
        for (i, row) in app_kit::widgets::wrap_words(what, what_width)
            .into_iter()
            .enumerate()
        {
            let keys = if i == 0 {
                fit(keys, key_width)
            } else {
                String::new()
            };
            lines.push(Line::from(vec![
                Span::styled(format!("  {keys:<key_width$}  "), theme.warn()),
                Span::raw(row),
            ]));
        }
        if lines.len() >= inner.height as usize {
            break;
        }
    }
    Paragraph::new(lines).render(inner, buf);
}

fn render_hint(lines: &[(String, String)], screen: Rect, buf: &mut Buffer, theme: &Theme) {
    let height = lines.len() as u16 + 4;
    let area = centred(screen, 76, height);
    Clear.render(area, buf);
    let block = frame("Welcome to Aether", theme);
    let inner = block.inner(area).inner(ratatui::layout::Margin::new(1, 0));
    block.render(area, buf);
    let mut text: Vec<Line> = lines
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!("{keys:<14}"), theme.warn()),
                Span::raw(what.clone()),
            ])
        })
        .collect();
    text.push(Line::raw(""));
    text.push(Line::styled("any key closes this", theme.dim()));
    Paragraph::new(text)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_palette_ranks_fuzzy_matches() {
        let mut palette = PaletteLayer::new(vec![
            PaletteItem::OpenFile("/docs/readme.md".into()),
            PaletteItem::OpenApp(apps::terminal::APP),
            PaletteItem::Command(Command::SplitRight, "split_right".into(), "split".into()),
        ]);
        for c in "term".chars() {
            palette_key(&mut palette, Key::char(c));
        }
        assert_eq!(
            palette.selected(),
            Some(&PaletteItem::OpenApp(apps::terminal::APP))
        );
        for _ in 0..4 {
            palette_key(&mut palette, Key::plain(KeyCode::Backspace));
        }
        for c in "rdme".chars() {
            palette_key(&mut palette, Key::char(c));
        }
        assert_eq!(
            palette.selected(),
            Some(&PaletteItem::OpenFile("/docs/readme.md".into()))
        );
        for c in "zzzz".chars() {
            palette_key(&mut palette, Key::char(c));
        }
        assert_eq!(palette.selected(), None);
    }

    #[test]
    fn long_questions_wrap() {
        assert_eq!(
            textwrap_lines("a bb ccc dddd", 6),
            vec!["a bb", "ccc", "dddd"]
        );
        assert_eq!(textwrap_lines("x", 0).len(), 1);
    }
}
