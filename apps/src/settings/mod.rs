//! Settings: the account (who you are, your sign-in tokens, revoking them), what each
//! app may do and why, the daemon's status, and the theme and keys in use.

mod view;

use aether_proto::ErrorBody;
use aether_proto::api::{ai, sys};
use serde_json::{Value, json};

use app_kit::widgets::ListWindow;
use app_kit::{
    Answer, App, AppKind, Effect, Event, Hint, Key, KeyCode, Registration, Replies, Requests, hint,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Section {
    #[default]
    Account,
    Tokens,
    Apps,
    Ai,
    Daemon,
}

impl Section {
    const ALL: [Section; 5] = [
        Section::Account,
        Section::Tokens,
        Section::Apps,
        Section::Ai,
        Section::Daemon,
    ];

    fn name(self) -> &'static str {
        match self {
            Section::Account => "Account",
            Section::Tokens => "Tokens",
            Section::Apps => "Apps",
            Section::Ai => "AI",
            Section::Daemon => "Daemon",
        }
    }
}

/// The registry's entry for this app.
pub const APP: AppKind = AppKind::of(&Registration {
    name: "settings",
    title: "Settings",
    manifest: "desktop",
    standalone: true,
    launcher_key: Some('s'),
    opens: &[],
    launch: |_| Box::new(Settings::new()),
    restore: |_| Box::new(Settings::new()),
});

#[derive(Default)]
pub struct Settings {
    requests: Requests<Msg>,
    section: Section,
    whoami: Option<sys::WhoamiAnswer>,
    tokens: Vec<sys::TokenInfo>,
    token_list: ListWindow,
    apps: Vec<sys::AppSummary>,
    app_list: ListWindow,
    stats: Option<sys::StatsAnswer>,
    /// The AI providers, probed, and today's usage; or why they cannot be shown.
    ai: Option<Result<ai::StatusAnswer, String>>,
    /// A theme the AI made, shown before it is applied.
    pub(crate) theme_preview: Option<app_kit::theme::Theme>,
    /// The AI is making a theme.
    designing: bool,
    /// The selected app's capabilities with the reasons its manifest gives.
    grants: Option<(String, Vec<(String, String)>)>,
    error: Option<String>,
    message: Option<String>,
}

/// What the app's asks come back as.
pub enum Msg {
    Whoami(Answer<sys::Whoami>),
    Tokens(Answer<sys::TokenList>),
    Apps(Answer<sys::PermsShow>),
    Stats(Answer<sys::Stats>),
    Ai(Answer<ai::Status>),
    /// The description of a theme to design.
    DescribeTheme(Option<String>),
    Theme(Answer<ai::Generate>),
    /// Revoke this token?
    Revoke(i64, bool),
    Revoked(Answer<sys::TokenRevoke>),
    Grants(String, Answer<sys::PermsShow>),
    Password(Option<String>),
    /// The new password typed again, and the first.
    PasswordAgain(String, Option<String>),
    Passwd(Answer<sys::Passwd>),
}

impl Settings {
    pub fn new() -> Settings {
        Settings::default()
    }

    fn refresh(&mut self) -> Vec<Effect> {
        let requests = &mut self.requests;
        vec![
            requests.call(&sys::Whoami {}, Msg::Whoami),
            requests.call(&sys::TokenList {}, Msg::Tokens),
            requests.call(&sys::PermsShow::default(), Msg::Apps),
            requests.call(&sys::Stats {}, Msg::Stats),
            requests.call(&ai::Status { probe: true }, Msg::Ai),
        ]
    }

    fn on_key(&mut self, key: Key) -> Vec<Effect> {
        let index = Section::ALL
            .iter()
            .position(|s| *s == self.section)
            .unwrap_or(0);
        match key.code {
            KeyCode::Tab | KeyCode::Right | KeyCode::Char('l') => {
                self.section = Section::ALL[(index + 1) % Section::ALL.len()];
            }
            KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => {
                self.section = Section::ALL[(index + Section::ALL.len() - 1) % Section::ALL.len()];
            }
            KeyCode::Char(c @ '1'..='5') => {
                self.section = Section::ALL[c as usize - '1' as usize];
            }
            KeyCode::Down | KeyCode::Char('j') => {
                let (list, len) = self.list_mut();
                list.move_by(1, len);
            }
            KeyCode::Up | KeyCode::Char('k') => {
                let (list, len) = self.list_mut();
                list.move_by(-1, len);
            }
            KeyCode::Char('r') | KeyCode::F(5) => return self.refresh(),
            KeyCode::Char('d') | KeyCode::Delete if self.section == Section::Tokens => {
                return self.confirm_revoke();
            }
            KeyCode::Enter if self.section == Section::Ai && self.theme_preview.is_some() => {
                if let Some(theme) = self.theme_preview.take() {
                    self.message = Some(format!("theme \"{}\" applied", theme.name));
                    return vec![Effect::SetTheme(Box::new(theme))];
                }
            }
            KeyCode::Esc if self.section == Section::Ai && self.theme_preview.is_some() => {
                self.theme_preview = None;
                self.message = Some("the theme was dropped".into());
            }
            KeyCode::Char('t') if self.section == Section::Ai && !self.designing => {
                let question = "Describe a colour theme (e.g. a calm dark theme with teal accents)";
                let ask = self
                    .requests
                    .prompt(question, "", false, Msg::DescribeTheme);
                return vec![ask];
            }
            KeyCode::Char('p') if self.section == Section::Account => {
                return vec![
                    self.requests
                        .prompt("New password", "", true, Msg::Password),
                ];
            }
            KeyCode::Enter if self.section == Section::Apps => {
                if let Some(app) = self.apps.get(self.app_list.selected) {
                    let id = app.id.clone();
                    let call = sys::PermsShow {
                        app: Some(id.clone()),
                    };
                    return vec![self.requests.call(&call, |answer| Msg::Grants(id, answer))];
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn list_mut(&mut self) -> (&mut ListWindow, usize) {
        match self.section {
            Section::Apps => (&mut self.app_list, self.apps.len()),
            _ => (&mut self.token_list, self.tokens.len()),
        }
    }

    fn confirm_revoke(&mut self) -> Vec<Effect> {
        let Some(token) = self.tokens.get(self.token_list.selected) else {
            return Vec::new();
        };
        if token.current {
            self.message = Some("that is this session's own token; sign out instead".into());
            return Vec::new();
        }
        let id = token.id;
        let question = format!("Revoke token {id}? Its connections close at once.");
        vec![
            self.requests
                .confirm(question, move |yes| Msg::Revoke(id, yes)),
        ]
    }

    /// What the selected app may do and why, as its manifest says.
    fn show_grants(&mut self, id: String, answer: Answer<sys::PermsShow>) {
        match answer {
            Ok(sys::PermsAnswer::App { app, .. }) => {
                let reasons = app
                    .permissions
                    .iter()
                    .map(|(cap, why)| {
                        let shown = match why.paths() {
                            [] => why.reason().to_owned(),
                            paths => format!("{} (only {})", why.reason(), paths.join(", ")),
                        };
                        (cap.to_string(), shown)
                    })
                    .collect();
                self.grants = Some((id, reasons));
            }
            Ok(_) => {}
            Err(e) => self.error = Some(e.msg),
        }
    }

    fn on_theme(&mut self, answer: Answer<ai::Generate>) {
        match answer {
            Ok(ai::GenerateAnswer::Done(done)) => match theme_from(done.json) {
                Ok(theme) => {
                    self.message = Some(format!(
                        "theme \"{}\": Enter applies it, Esc drops it",
                        theme.name
                    ));
                    self.theme_preview = Some(theme);
                }
                Err(why) => self.message = Some(format!("the AI's theme is unusable: {why}")),
            },
            Ok(_) => self.message = Some("the AI streamed when asked not to".into()),
            Err(e) => self.message = Some(format!("no theme: {}", e.msg)),
        }
    }
}

/// The roles a theme colours, each asked of the AI as `#rrggbb`.
const THEME_ROLES: [&str; 13] = [
    "fg",
    "dim",
    "accent",
    "border",
    "border_focused",
    "selection_fg",
    "selection_bg",
    "dir",
    "info",
    "warn",
    "error",
    "bar_fg",
    "bar_bg",
];

/// Ask for a theme as structured output: a name and a colour per role.
fn theme_request(description: &str) -> ai::Generate {
    let mut properties = serde_json::Map::new();
    properties.insert("name".into(), json!({ "type": "string" }));
    for role in THEME_ROLES {
        properties.insert(
            role.into(),
            json!({ "type": "string", "pattern": "^#[0-9a-fA-F]{6}$" }),
        );
    }
    let mut required = vec!["name"];
    required.extend(THEME_ROLES);
    ai::Generate {
        prompt: format!(
            "Design a terminal colour theme: {description}. fg is the text, dim quieter text, \
             accent titles and highlights, border and border_focused window frames, selection_fg \
             on selection_bg the selected line, dir folder names, info/warn/error messages, \
             bar_fg on bar_bg the status bar. The terminal keeps its own background, so choose \
             text colours that read on a background of the kind described. Give a short name."
        ),
        system: Some("You are a careful designer of readable terminal colour themes.".into()),
        schema: Some(json!({ "type": "object", "properties": properties, "required": required })),
        stream: false,
        ..Default::default()
    }
}

/// The AI's answer as a theme, every role a colour.
fn theme_from(json: Option<Value>) -> Result<app_kit::theme::Theme, String> {
    let json = json.ok_or("no JSON in the answer")?;
    for role in THEME_ROLES {
        let colour = json.get(role).and_then(Value::as_str).unwrap_or_default();
        let hex = colour.strip_prefix('#').unwrap_or_default();
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("{role} is {colour:?}, not #rrggbb"));
        }
    }
    let mut fields = serde_json::Map::new();
    for role in THEME_ROLES {
        fields.insert(role.into(), json[role].clone());
    }
    let name = json
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or("ai theme");
    fields.insert(
        "name".into(),
        Value::String(name.chars().take(40).collect()),
    );
    serde_json::from_value(Value::Object(fields)).map_err(|e| e.to_string())
}

impl Replies for Settings {
    app_kit::replies_through!(requests: Msg);

    fn on(&mut self, msg: Msg) -> Vec<Effect> {
        let mut failed = |e: ErrorBody| self.error = Some(e.msg);
        match msg {
            Msg::Whoami(answer) => match answer {
                Ok(me) => self.whoami = Some(me),
                Err(e) => failed(e),
            },
            Msg::Tokens(answer) => match answer {
                Ok(list) => self.tokens = list.tokens,
                Err(e) => failed(e),
            },
            Msg::Apps(answer) => match answer {
                Ok(sys::PermsAnswer::All { apps, .. }) => self.apps = apps,
                Ok(_) => {}
                Err(e) => failed(e),
            },
            Msg::Stats(answer) => match answer {
                Ok(stats) => self.stats = Some(stats),
                Err(e) => failed(e),
            },
            // Shown in its own section: a desktop without `ai_access` still works.
            Msg::Ai(answer) => self.ai = Some(answer.map_err(|e| e.msg)),
            Msg::DescribeTheme(Some(text)) if !text.trim().is_empty() => {
                self.designing = true;
                self.message = Some("the AI is designing the theme…".into());
                let call = theme_request(text.trim());
                return vec![self.requests.call(&call, Msg::Theme)];
            }
            Msg::DescribeTheme(_) => {}
            Msg::Theme(answer) => {
                self.designing = false;
                self.on_theme(answer);
            }
            Msg::Revoke(id, true) => {
                let call = sys::TokenRevoke {
                    id: Some(id),
                    ..Default::default()
                };
                return vec![self.requests.call(&call, Msg::Revoked)];
            }
            Msg::Revoke(_, false) => {}
            Msg::Revoked(answer) => match answer {
                Ok(done) => {
                    self.message = Some(format!("revoked {} token(s)", done.revoked));
                    return vec![self.requests.call(&sys::TokenList {}, Msg::Tokens)];
                }
                Err(e) => failed(e),
            },
            Msg::Grants(id, answer) => self.show_grants(id, answer),
            Msg::Password(Some(text)) if text.is_empty() => {
                self.message = Some("a password cannot be empty".into());
            }
            Msg::Password(Some(first)) => {
                let again = self
                    .requests
                    .prompt("The new password again", "", true, move |text| {
                        Msg::PasswordAgain(first, text)
                    });
                return vec![again];
            }
            Msg::PasswordAgain(first, Some(text)) if first != text => {
                self.message = Some("the two passwords differ; nothing changed".into());
            }
            Msg::PasswordAgain(password, Some(_)) => {
                let call = sys::Passwd {
                    name: None,
                    password,
                    keep_tokens: false,
                };
                return vec![self.requests.call(&call, Msg::Passwd)];
            }
            Msg::Password(None) | Msg::PasswordAgain(_, None) => {}
            Msg::Passwd(answer) => match answer {
                Ok(done) => {
                    self.message = Some(format!(
                        "password changed; {} other sign-in(s) signed out",
                        done.revoked
                    ));
                    return vec![self.requests.call(&sys::TokenList {}, Msg::Tokens)];
                }
                Err(e) => failed(e),
            },
        }
        Vec::new()
    }

    fn on_event(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Reconnected => self.refresh(),
            _ => Vec::new(),
        }
    }
}

impl App for Settings {
    app_kit::app_plumbing!(APP);

    fn title(&self) -> String {
        format!("Settings: {}", self.section.name())
    }

    fn start(&mut self) -> Vec<Effect> {
        self.refresh()
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            hint("Tab ← → 1-5", "sections"),
            hint("↑ ↓", "move"),
            hint("d Del", "revoke the token (Tokens)"),
            hint("p", "change your password (Account)"),
            hint("Enter", "what the app may do and why (Apps)"),
            hint(
                "t",
                "a colour theme designed by the AI from your words (AI)",
            ),
            hint("r F5", "refresh"),
        ]
    }

    fn save(&self) -> Value {
        json!({})
    }
}

#[cfg(test)]
mod tests;
