//! The desktop's settings file (`~/.config/aether/desktop.toml`, or `--config`): theme,
//! colours, the copy command and key bindings. A bad file is an error that names the
//! file and the field; a missing one means the defaults.

use std::path::{Path, PathBuf};

use app_kit::{Palette, Theme};
use serde::Deserialize;

use crate::keymap::{Keymap, KeysConfig};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    /// `dark`, `light`, or a path to a theme file (TOML with the theme's colours).
    pub theme: Option<String>,
    /// `auto`, `full`, `16` or `none`.
    pub colors: Option<String>,
    /// `auto` (plain on the Linux console), `rich` or `plain`: box and mark glyphs.
    pub glyphs: Option<String>,
    /// Copy by running this command with the text on its stdin, instead of OSC 52.
    pub copy_command: Option<Vec<String>>,
    pub keys: KeysConfig,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub theme: Theme,
    /// The settings file's folder: theme files are kept here.
    pub dir: PathBuf,
    pub keymap: Keymap,
    pub copy_command: Option<Vec<String>>,
}

pub fn default_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("aether/desktop.toml");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".config/aether/desktop.toml"),
        None => PathBuf::from("desktop.toml"),
    }
}

impl Config {
    pub fn load(path: &Path, theme_flag: Option<&str>) -> Result<Config, String> {
        let file = match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str::<ConfigFile>(&text)
                .map_err(|e| format!("{}: {}", path.display(), e.to_string().trim()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let keymap =
            Keymap::from_config(&file.keys).map_err(|e| format!("{}: {e}", path.display()))?;
        let theme_name = theme_flag.or(file.theme.as_deref()).unwrap_or("dark");
        let theme = load_theme(theme_name, path.parent())?;
        let palette = palette(file.colors.as_deref())
            .map_err(|e| format!("{}: colors: {e}", path.display()))?;
        if let Some(command) = &file.copy_command
            && command.is_empty()
        {
            return Err(format!("{}: copy_command is empty", path.display()));
        }
        let mut theme = theme.with_palette(palette);
        theme.plain_glyphs = match file.glyphs.as_deref().unwrap_or("auto") {
            "plain" => true,
            "rich" => false,
            "auto" => std::env::var("TERM").is_ok_and(|t| t == "linux"),
            other => {
                return Err(format!(
                    "{}: glyphs: {other:?} is not auto, rich or plain",
                    path.display()
                ));
            }
        };
        Ok(Config {
            theme,
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            keymap,
            copy_command: file.copy_command,
        })
    }
}

fn load_theme(name: &str, near: Option<&Path>) -> Result<Theme, String> {
    if let Some(theme) = Theme::named(name) {
        return Ok(theme);
    }
    let path = match (Path::new(name).is_absolute(), near) {
        (false, Some(dir)) => dir.join(name),
        _ => PathBuf::from(name),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "theme {name:?}: not `dark` or `light`, and {}: {e}",
            path.display()
        )
    })?;
    toml::from_str::<Theme>(&text)
        .map_err(|e| format!("{}: {}", path.display(), e.to_string().trim()))
}

/// Keep `theme` as `themes/NAME.toml` beside the settings file; the path to name in
/// `theme = "…"` to use it from the next start.
pub fn save_theme(dir: &Path, theme: &Theme) -> Result<String, String> {
    let slug: String = theme
        .name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let slug = if slug.is_empty() {
        "mine".to_owned()
    } else {
        slug
    };
    let relative = format!("themes/{slug}.toml");
    let path = dir.join(&relative);
    let text = toml::to_string(theme).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.join("themes"))
        .and_then(|_| std::fs::write(&path, text))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(relative)
}

/// How many colours to use: the file's `colors`, else `NO_COLOR`, else what the terminal says.
pub fn palette(setting: Option<&str>) -> Result<Palette, String> {
    match setting.unwrap_or("auto") {
        "full" | "truecolor" => Ok(Palette::Full),
        "16" | "ansi" => Ok(Palette::Ansi16),
        "none" => Ok(Palette::None),
        "auto" => Ok(detect_palette(
            std::env::var("NO_COLOR").ok().as_deref(),
            std::env::var("COLORTERM").ok().as_deref(),
            std::env::var("TERM").ok().as_deref(),
        )),
        other => Err(format!("{other:?} is not auto, full, 16 or none")),
    }
}

fn detect_palette(no_color: Option<&str>, colorterm: Option<&str>, term: Option<&str>) -> Palette {
    if no_color.is_some_and(|v| !v.is_empty()) {
        return Palette::None;
    }
    if matches!(colorterm, Some("truecolor" | "24bit")) {
        return Palette::Full;
    }
    match term {
        Some(t) if t.contains("256color") || t.contains("direct") => Palette::Full,
        Some("dumb") => Palette::None,
        _ => Palette::Ansi16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_follow_the_terminal() {
        assert_eq!(
            detect_palette(Some("1"), Some("truecolor"), None),
            Palette::None
        );
        assert_eq!(
            detect_palette(None, Some("truecolor"), Some("linux")),
            Palette::Full
        );
        assert_eq!(detect_palette(None, None, Some("linux")), Palette::Ansi16);
        assert_eq!(
            detect_palette(None, None, Some("tmux-256color")),
            Palette::Full
        );
        assert_eq!(
            detect_palette(Some(""), None, Some("screen")),
            Palette::Ansi16
        );
    }

    #[test]
    fn a_bad_file_names_itself_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("desktop.toml");
        std::fs::write(&path, "theme = \"dark\"\nfrobnicate = 1\n").unwrap();
        let err = Config::load(&path, None).unwrap_err();
        assert!(
            err.contains("desktop.toml") && err.contains("frobnicate"),
            "{err}"
        );
        std::fs::write(&path, "theme = \"mauve\"\n").unwrap();
        assert!(
            Config::load(&path, None)
                .unwrap_err()
                .contains("theme \"mauve\"")
        );
        std::fs::write(&path, "colors = \"lots\"\n").unwrap();
        assert!(Config::load(&path, None).unwrap_err().contains("colors"));
        std::fs::write(&path, "[keys.command]\nquit = [\"ctrl-q\"]\n").unwrap();
        let config = Config::load(&path, Some("light")).unwrap();
        assert_eq!(config.theme.name, "light");
    }

    #[test]
    fn no_file_means_the_defaults() {
        let config = Config::load(Path::new("/nonexistent/desktop.toml"), None).unwrap();
        assert_eq!(config.theme.name, "dark");
    }

    #[test]
    fn a_saved_theme_loads_as_the_settings_file_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut theme = Theme::light();
        theme.name = "Tide Pool!".into();
        let relative = save_theme(dir.path(), &theme).unwrap();
        assert_eq!(relative, "themes/tide-pool.toml");
        let path = dir.path().join("desktop.toml");
        std::fs::write(&path, format!("theme = \"{relative}\"\n")).unwrap();
        let config = Config::load(&path, None).unwrap();
        assert_eq!(config.theme.accent, theme.accent);
        assert_eq!(config.theme.name, "Tide Pool!");
    }
}
