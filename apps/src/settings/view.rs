//! How Settings looks: section tabs, then the section.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::{Section, Settings};
use app_kit::app::ViewCx;
use app_kit::widgets::fit;

pub(super) fn render(settings: &Settings, area: Rect, buf: &mut Buffer, cx: &ViewCx) {
    let theme = cx.theme;
    buf.set_style(area, theme.base());
    let [tabs, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let mut spans = Vec::new();
    for (i, section) in Section::ALL.iter().enumerate() {
        let style = if *section == settings.section {
            theme.selection()
        } else {
            theme.dim()
        };
        spans.push(Span::styled(
            format!(" {} {} ", i + 1, section.name()),
            style,
        ));
        spans.push(Span::raw(" "));
    }
    Line::from(spans).render(tabs, buf);
    let lines = match settings.section {
        Section::Account => account(settings, &cx.theme.name),
        Section::Tokens => tokens(settings, body.height as usize),
        Section::Apps => apps(settings, body.height as usize),
        Section::Ai => ai(settings),
        Section::Daemon => daemon(settings),
    };
    let mut lines: Vec<Line> = lines
        .into_iter()
        .map(|(text, selected)| {
            // The AI section's lines wrap (its how-to is long); lists are cut to a line.
            let text = match settings.section {
                Section::Ai => text,
                _ => fit(&text, body.width as usize),
            };
            let line = Line::raw(text);
            if selected {
                line.style(theme.selection())
            } else {
                line
            }
        })
        .collect();
    if settings.section == Section::Ai
        && let Some(preview) = &settings.theme_preview
    {
        lines.extend(theme_swatches(preview, cx.theme));
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(body, buf);
    let (text, style) = match (&settings.error, &settings.message) {
        (Some(error), _) => (error.clone(), theme.error()),
        (None, Some(message)) => (message.clone(), theme.info()),
        (None, None) => ("Tab: next section · r: refresh".into(), theme.dim()),
    };
    Line::styled(fit(&text, footer.width as usize), style).render(footer, buf);
}

type Rows = Vec<(String, bool)>;

/// A proposed theme's colours, each role's name drawn in its colour (as this terminal
/// would show them).
fn theme_swatches(
    preview: &app_kit::theme::Theme,
    current: &app_kit::theme::Theme,
) -> Vec<Line<'static>> {
    let shown = preview.clone().shown_like(current);
    let role =
        |name: &'static str, colour| Span::styled(format!(" {name} "), shown.fg_style(colour));
    vec![
        Line::raw(""),
        Line::styled(
            format!("theme \"{}\" (Enter applies, Esc drops):", preview.name),
            current.accent(),
        ),
        Line::from(vec![
            role("text", preview.fg),
            role("dim", preview.dim),
            role("accent", preview.accent),
            role("folder", preview.dir),
            role("info", preview.info),
            role("warn", preview.warn),
            role("error", preview.error),
        ]),
        Line::from(vec![
            Span::styled(" selection ", shown.selection()),
            Span::raw(" "),
            Span::styled(" status bar ", shown.bar()),
            Span::raw(" "),
            role("border", preview.border),
            role("focused", preview.border_focused),
        ]),
    ]
}

fn plain(lines: &[String]) -> Rows {
    lines.iter().map(|l| (l.clone(), false)).collect()
}

fn account(settings: &Settings, theme: &str) -> Rows {
    let Some(me) = &settings.whoami else {
        return plain(&["loading…".into()]);
    };
    let role = match (me.user.admin, me.user.guest) {
        (true, _) => "admin",
        (_, true) => "guest",
        _ => "user",
    };
    plain(&[
        format!("user      {} (id {}, {role})", me.user.name, me.user.id),
        format!("signed in as the app `{}`", me.app),
        String::new(),
        "p: change your password (your other sign-ins are signed out)".into(),
        String::new(),
        format!(
            "theme: {} (the palette's theme_dark / theme_light switch it)",
            theme
        ),
        "keys: Ctrl-g ? lists every binding; change them in ~/.config/aether/desktop.toml".into(),
    ])
}

fn tokens(settings: &Settings, height: usize) -> Rows {
    if settings.tokens.is_empty() {
        return plain(&["no tokens (this session signed in without one)".into()]);
    }
    let mut rows = vec![(
        "id     app        label                 expires".to_owned(),
        false,
    )];
    let range = settings
        .token_list
        .visible(settings.tokens.len(), height.saturating_sub(1));
    for index in range {
        let t = &settings.tokens[index];
        let expires = t
            .expires_at
            .map(|e| format!("at {e}"))
            .unwrap_or_else(|| "never".into());
        rows.push((
            format!(
                "{:<6} {:<10} {:<21} {expires}{}",
                t.id,
                t.app.as_deref().unwrap_or("any"),
                fit(&t.label, 21),
                if t.current { "  (this session)" } else { "" }
            ),
            index == settings.token_list.selected,
        ));
    }
    rows
}

fn apps(settings: &Settings, height: usize) -> Rows {
    if settings.apps.is_empty() {
        return plain(&["loading…".into()]);
    }
    let detail = settings.grants.as_ref().map_or(0, |(_, g)| g.len() + 2);
    let range = settings.app_list.visible(
        settings.apps.len(),
        height.saturating_sub(detail + 1).max(1),
    );
    let mut rows: Rows = range
        .map(|index| {
            let app = &settings.apps[index];
            (
                format!(
                    "{:<10} {:<18} {}",
                    app.id,
                    fit(&app.name, 18),
                    app.capabilities.join(", ")
                ),
                index == settings.app_list.selected,
            )
        })
        .collect();
    match &settings.grants {
        Some((id, grants)) => {
            rows.push((String::new(), false));
            rows.push((format!("{id} may, because:"), false));
            for (capability, why) in grants {
                rows.push((format!("  {capability:<15} {why}"), false));
            }
        }
        None => rows.push((String::new(), false)),
    }
    if settings.grants.is_none() {
        rows.push(("Enter: what the selected app may do, and why".into(), false));
    }
    rows
}

fn ai(settings: &Settings) -> Rows {
    let status = match &settings.ai {
        None => return plain(&["asking the providers…".into()]),
        Some(Err(why)) => return plain(&[format!("the AI status cannot be shown: {why}")]),
        Some(Ok(status)) => status,
    };
    let mut lines = Vec::new();
    if let Some(hint) = &status.hint {
        lines.push(hint.clone());
    }
    for p in &status.providers {
        let active = if status.default.as_deref() == Some(p.name.as_str()) {
            "*"
        } else {
            " "
        };
        let reach = match (p.reachable, &p.error) {
            (Some(true), _) => format!("reachable, {} ms", p.latency_ms.unwrap_or(0)),
            (Some(false), Some(e)) => format!("UNREACHABLE: {e}"),
            _ => "not probed".into(),
        };
        lines.push(format!(
            "{active} {}  {}  {}  {}",
            p.name,
            p.model,
            p.base_url,
            if p.has_key { "" } else { "(no key)" }
        ));
        lines.push(format!("    {reach}"));
    }
    if !status.providers.is_empty() {
        lines.push("* the default; a request may name another".into());
        lines.push("t: a colour theme designed by the AI from your words".into());
    }
    let spent: u64 = status
        .usage
        .iter()
        .map(|u| u.input_tokens + u.output_tokens)
        .sum();
    lines.push(String::new());
    lines.push(match status.daily_token_quota {
        Some(quota) => format!("today: {spent} of your {quota} tokens"),
        None => format!("today: {spent} tokens (no daily limit)"),
    });
    for u in &status.usage {
        lines.push(format!(
            "  {}: {} requests, {} in, {} out",
            u.app, u.requests, u.input_tokens, u.output_tokens
        ));
    }
    plain(&lines)
}

fn daemon(settings: &Settings) -> Rows {
    let Some(stats) = &settings.stats else {
        return plain(&["loading…".into()]);
    };
    let mut lines = vec![
        format!("aetherd {}, up {} s", stats.version, stats.uptime_secs),
        format!(
            "connections {}  subscriptions {}  messages {}  requests {}",
            stats.hub.connections, stats.hub.subscriptions, stats.hub.published, stats.hub.requests
        ),
        format!(
            "listening on {}{}",
            stats.tcp.as_deref().unwrap_or("the Unix socket only"),
            if stats.tls { " (TLS)" } else { "" }
        ),
        format!("{} apps loaded", stats.apps),
    ];
    for error in &stats.manifest_errors {
        lines.push(format!("manifest error: {error}"));
    }
    plain(&lines)
}
