//! Colours. A theme names roles (border, selection, error…), never places, so a view
//! asks for `theme.selection()` and the dark, light, 16-colour and `NO_COLOR` modes
//! all follow.

use ratatui::style::{Color, Modifier, Style};
use serde::{Deserialize, Serialize};

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Palette {
    /// 24-bit colour.
    #[default]
    Full,
    /// The 16 ANSI colours (the Linux console, old terminals).
    Ansi16,
    /// No colour at all (`NO_COLOR`): bold, reverse and underline only.
    None,
}

/// A theme's colours by role; `#rrggbb` or a colour name in the theme file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Theme {
    pub name: String,
    pub fg: Color,
    pub bg: Color,
    pub dim: Color,
    pub accent: Color,
    pub border: Color,
    pub border_focused: Color,
    pub selection_fg: Color,
    pub selection_bg: Color,
    pub dir: Color,
    pub info: Color,
    pub warn: Color,
    pub error: Color,
    pub bar_fg: Color,
    pub bar_bg: Color,
    #[serde(skip)]
    pub palette: Palette,
    /// Only the glyphs every console font has (the Linux console): plain borders, ASCII marks.
    #[serde(skip)]
    pub plain_glyphs: bool,
}

impl Default for Theme {
    fn default() -> Self {
        Theme::dark()
    }
}

impl Theme {
    pub fn dark() -> Theme {
        Theme {
            name: "dark".into(),
            fg: Color::Rgb(0xd8, 0xde, 0xe9),
            bg: Color::Reset,
            dim: Color::Rgb(0x7b, 0x88, 0xa1),
            accent: Color::Rgb(0x88, 0xc0, 0xd0),
            border: Color::Rgb(0x4c, 0x56, 0x6a),
            border_focused: Color::Rgb(0x88, 0xc0, 0xd0),
            selection_fg: Color::Rgb(0x2e, 0x34, 0x40),
            selection_bg: Color::Rgb(0x88, 0xc0, 0xd0),
            dir: Color::Rgb(0x81, 0xa1, 0xc1),
            info: Color::Rgb(0xa3, 0xbe, 0x8c),
            warn: Color::Rgb(0xeb, 0xcb, 0x8b),
            error: Color::Rgb(0xbf, 0x61, 0x6a),
            bar_fg: Color::Rgb(0xe5, 0xe9, 0xf0),
            bar_bg: Color::Rgb(0x3b, 0x42, 0x52),
            palette: Palette::Full,
            plain_glyphs: false,
        }
    }

    pub fn light() -> Theme {
        Theme {
            name: "light".into(),
            fg: Color::Rgb(0x24, 0x29, 0x2e),
            bg: Color::Reset,
            dim: Color::Rgb(0x6a, 0x73, 0x7d),
            accent: Color::Rgb(0x03, 0x66, 0xd6),
            border: Color::Rgb(0xa0, 0xa8, 0xb0),
            border_focused: Color::Rgb(0x03, 0x66, 0xd6),
            selection_fg: Color::Rgb(0xff, 0xff, 0xff),
            selection_bg: Color::Rgb(0x03, 0x66, 0xd6),
            dir: Color::Rgb(0x00, 0x5c, 0xc5),
            info: Color::Rgb(0x22, 0x86, 0x3a),
            warn: Color::Rgb(0xb0, 0x88, 0x00),
            error: Color::Rgb(0xcb, 0x24, 0x31),
            bar_fg: Color::Rgb(0x24, 0x29, 0x2e),
            bar_bg: Color::Rgb(0xe1, 0xe4, 0xe8),
            palette: Palette::Full,
            plain_glyphs: false,
        }
    }

    pub fn named(name: &str) -> Option<Theme> {
        match name {
            "dark" => Some(Theme::dark()),
            "light" => Some(Theme::light()),
            _ => None,
        }
    }

    /// This theme's colours, shown the way `like` shows its own (palette and glyphs).
    pub fn shown_like(mut self, like: &Theme) -> Theme {
        self.palette = like.palette;
        self.plain_glyphs = like.plain_glyphs;
        self
    }

    /// This theme shown with fewer colours.
    pub fn with_palette(mut self, palette: Palette) -> Theme {
        self.palette = palette;
        self
    }

    /// `rich`, or `plain` where only basic glyphs show.
    pub fn glyph(&self, rich: &'static str, plain: &'static str) -> &'static str {
        if self.plain_glyphs { plain } else { rich }
    }

    fn color(&self, color: Color) -> Color {
        match self.palette {
            Palette::Full => color,
            Palette::Ansi16 => to_ansi16(color),
            Palette::None => Color::Reset,
        }
    }

    fn style(&self, fg: Color, bg: Color) -> Style {
        match self.palette {
            Palette::None => Style::default(),
            _ => Style::default().fg(self.color(fg)).bg(self.color(bg)),
        }
    }

    /// A foreground colour as this theme's palette shows it.
    pub fn fg_style(&self, color: Color) -> Style {
        match self.palette {
            Palette::None => Style::default(),
            _ => Style::default().fg(self.color(color)),
        }
    }

    pub fn base(&self) -> Style {
        self.style(self.fg, self.bg)
    }

    pub fn dim(&self) -> Style {
        match self.palette {
            Palette::None => Style::default().add_modifier(Modifier::DIM),
            _ => Style::default().fg(self.color(self.dim)),
        }
    }

    pub fn accent(&self) -> Style {
        Style::default()
            .fg(self.color(self.accent))
            .add_modifier(Modifier::BOLD)
    }

    pub fn border(&self, focused: bool) -> Style {
        match (self.palette, focused) {
            (Palette::None, true) => Style::default().add_modifier(Modifier::BOLD),
            (Palette::None, false) => Style::default(),
            (_, true) => Style::default()
                .fg(self.color(self.border_focused))
                .add_modifier(Modifier::BOLD),
            (_, false) => Style::default().fg(self.color(self.border)),
        }
    }

    pub fn selection(&self) -> Style {
        match self.palette {
            Palette::None => Style::default().add_modifier(Modifier::REVERSED),
            _ => Style::default()
                .fg(self.color(self.selection_fg))
                .bg(self.color(self.selection_bg)),
        }
    }

    /// A selection in a window that does not have the keyboard.
    pub fn selection_unfocused(&self) -> Style {
        match self.palette {
            Palette::None => Style::default().add_modifier(Modifier::UNDERLINED),
            _ => Style::default().bg(self.color(self.border)),
        }
    }

    pub fn dir(&self) -> Style {
        Style::default()
            .fg(self.color(self.dir))
            .add_modifier(Modifier::BOLD)
    }

    pub fn info(&self) -> Style {
        Style::default().fg(self.color(self.info))
    }

    pub fn warn(&self) -> Style {
        Style::default()
            .fg(self.color(self.warn))
            .add_modifier(Modifier::BOLD)
    }

    pub fn error(&self) -> Style {
        Style::default()
            .fg(self.color(self.error))
            .add_modifier(Modifier::BOLD)
    }

    pub fn bar(&self) -> Style {
        match self.palette {
            Palette::None => Style::default().add_modifier(Modifier::REVERSED),
            _ => self.style(self.bar_fg, self.bar_bg),
        }
    }

    /// The cursor drawn as a cell (apps do not move the terminal's cursor).
    pub fn cursor(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

/// The nearest of the 16 ANSI colours, by brightness and the dominant channels.
fn to_ansi16(color: Color) -> Color {
    let Color::Rgb(r, g, b) = color else {
        return color;
    };
    let (r, g, b) = (r as u16, g as u16, b as u16);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let bright = max > 0xb0;
    if max - min < 0x30 {
        return match max {
            0..=0x40 => Color::Black,
            0x41..=0x90 => Color::DarkGray,
            0x91..=0xd0 => Color::Gray,
            _ => Color::White,
        };
    }
    let on = |c: u16| c + 0x30 >= max;
    match (on(r), on(g), on(b), bright) {
        (true, false, false, false) => Color::Red,
        (true, false, false, true) => Color::LightRed,
        (false, true, false, false) => Color::Green,
        (false, true, false, true) => Color::LightGreen,
        (false, false, true, false) => Color::Blue,
        (false, false, true, true) => Color::LightBlue,
        (true, true, false, false) => Color::Yellow,
        (true, true, false, true) => Color::LightYellow,
        (true, false, true, false) => Color::Magenta,
        (true, false, true, true) => Color::LightMagenta,
        (false, true, true, false) => Color::Cyan,
        (false, true, true, true) => Color::LightCyan,
        _ => Color::Gray,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_colours_keep_the_hue() {
        assert_eq!(to_ansi16(Color::Rgb(0xbf, 0x61, 0x6a)), Color::LightRed);
        assert_eq!(to_ansi16(Color::Rgb(0x88, 0xc0, 0xd0)), Color::LightCyan);
        assert_eq!(to_ansi16(Color::Rgb(0x3b, 0x42, 0x52)), Color::DarkGray);
        assert_eq!(to_ansi16(Color::Rgb(0x2e, 0x34, 0x40)), Color::Black);
        assert_eq!(to_ansi16(Color::Reset), Color::Reset);
    }

    #[test]
    fn no_color_uses_no_colour() {
        let theme = Theme::dark().with_palette(Palette::None);
        for style in [
            theme.base(),
            theme.selection(),
            theme.border(true),
            theme.bar(),
        ] {
            assert_eq!(style.fg, None);
            assert_eq!(style.bg, None);
        }
    }

    #[test]
    fn a_theme_file_round_trips() {
        let text = serde_json::to_string(&Theme::light()).unwrap();
        let back: Theme = serde_json::from_str(&text).unwrap();
        assert_eq!(back, Theme::light());
    }
}
