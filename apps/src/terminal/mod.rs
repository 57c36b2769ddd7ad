//! The VM Terminal: a shell over the VFS and compute services. `ls`, `cd`, `cat`,
//! `mkdir`, `rm`, `mv`, `cp`, `run` and the rest are bus requests; a program's output
//! streams in live (ANSI colours rendered), typed lines go to its stdin, Ctrl-C kills it.

mod commands;
mod goal;
pub(crate) mod output;
mod view;
mod words;

use std::collections::HashMap;

use aether_proto::ErrorBody;
use aether_proto::api::{Call, Event as _, vfs, vm};
use serde_json::Value;

use app_kit::path;
use app_kit::widgets::{LineEdit, LineInput};
use app_kit::{
    Answer, App, AppKind, Effect, Event, Hint, Key, KeyCode, Mouse, Registration, Replies,
    Requests, Ticket, hint,
};
pub use goal::GoalMsg;
pub(crate) use output::Scrollback;
pub(crate) use view::{ansi_line, draw_scrollback};

/// What the terminal and a program window share: a line typed into, output above it.
pub(crate) trait Console {
    fn line(&mut self) -> &mut LineInput;
    fn output(&mut self) -> &mut Scrollback;
    fn key(&mut self, key: Key) -> Vec<Effect>;
}

/// A paste (every line but the last is entered, as a shell does) or the wheel over the
/// output; `None` for any other event.
pub(crate) fn console_event(console: &mut impl Console, event: &Event) -> Option<Vec<Effect>> {
    match event {
        Event::Paste(text) => {
            let mut lines = text.lines().peekable();
            let mut effects = Vec::new();
            while let Some(line) = lines.next() {
                console.line().insert_str(line);
                if lines.peek().is_some() {
                    effects.extend(console.key(Key::plain(KeyCode::Enter)));
                }
            }
            Some(effects)
        }
        Event::Mouse(Mouse::ScrollUp { .. }) => {
            console.output().scroll_up(3);
            Some(Vec::new())
        }
        Event::Mouse(Mouse::ScrollDown { .. }) => {
            console.output().scroll_down(3);
            Some(Vec::new())
        }
        _ => None,
    }
}

/// History lines kept (and saved with the session).
const HISTORY: usize = 200;
/// Jobs whose events arrived before `vm.run` answered, kept until it does.
const EARLY_JOBS: usize = 16;

/// The registry's entry for this app.
pub const APP: AppKind = AppKind::of(&Registration {
    name: "terminal",
    title: "VM Terminal",
    manifest: "terminal",
    standalone: true,
    launcher_key: Some('t'),
    opens: &["wasm"],
    launch: |arg| Box::new(Terminal::new(arg.unwrap_or("/"))),
    restore: |state| Box::new(Terminal::restore(state)),
});

pub struct Terminal {
    requests: Requests<Msg>,
    cwd: String,
    input: LineInput,
    history: Vec<String>,
    /// Where Up/Down is in the history; `None` when editing a new line.
    history_at: Option<usize>,
    out: Scrollback,
    /// The program in the foreground: typed lines go to its stdin.
    job: Option<ForegroundJob>,
    /// Events of jobs not known yet (the answer to `vm.run` may come after them).
    early: HashMap<String, Vec<(String, Value)>>,
    events: Option<Ticket>,
    /// Searching the scrollback.
    search: Option<LineInput>,
    /// A command's answer is awaited: lines typed meanwhile wait their turn, as in a shell.
    waiting: bool,
    typed_ahead: std::collections::VecDeque<String>,
    /// Input typed for a program before it started.
    early_stdin: Vec<String>,
    /// A goal being planned or run; typed lines wait for it, as for a program.
    plan: Option<goal::PlanRun>,
    /// The subscription to graphs' events, made with the first goal.
    agent_events: Option<Ticket>,
}

/// What the session keeps of a terminal.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Saved {
    cwd: String,
    history: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ForegroundJob {
    id: Option<String>,
    /// What was run, for the prompt while it runs.
    what: String,
    stdin_open: bool,
}

/// What the terminal's asks come back as.
pub enum Msg {
    Cd(String, Answer<vfs::Stat>),
    Ls(Answer<vfs::List>),
    Cat(String, Answer<vfs::Read>),
    /// mkdir, rm, mv, cp: print nothing on success.
    Quiet(String, Result<(), ErrorBody>),
    Ran(Answer<vm::Run>),
    Stdin(Answer<vm::Stdin>),
    Jobs(Answer<vm::Jobs>),
    Killed(Answer<vm::Kill>),
    /// After a reconnect: is the running program still there?
    Rechecked(String, Answer<vm::Jobs>),
    /// A goal's requests and dialogs.
    Goal(goal::GoalMsg),
    /// Tab completion of the line as it was.
    Completed {
        line: String,
        dir: String,
        stem: String,
        answer: Answer<vfs::List>,
    },
}

impl Terminal {
    pub fn new(cwd: &str) -> Terminal {
        let mut terminal = Terminal {
            requests: Requests::new(),
            cwd: path::normalize(cwd),
            input: LineInput::default(),
            history: Vec::new(),
            history_at: None,
            out: Scrollback::default(),
            job: None,
            early: HashMap::new(),
            events: None,
            search: None,
            waiting: false,
            typed_ahead: std::collections::VecDeque::new(),
            early_stdin: Vec::new(),
            plan: None,
            agent_events: None,
        };
        terminal.out.note("VM Terminal: `help` lists the commands.");
        terminal
    }

    pub fn restore(state: &Value) -> Terminal {
        let saved: Saved = serde_json::from_value(state.clone()).unwrap_or_default();
        let mut terminal = Terminal::new(&saved.cwd);
        terminal.history = saved.history;
        terminal.history.truncate(HISTORY);
        terminal
    }

    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    fn prompt(&self) -> String {
        match &self.job {
            Some(job) if job.stdin_open => format!("{}> ", job.what),
            Some(job) => format!("[{} running; Ctrl-C stops it] ", job.what),
            None => match &self.plan {
                Some(plan) => plan.prompt().to_owned(),
                None => format!("{} $ ", self.cwd),
            },
        }
    }

    fn call<C: Call>(
        &mut self,
        call: &C,
        route: impl FnOnce(Answer<C>) -> Msg + 'static,
    ) -> Vec<Effect> {
        vec![self.requests.call(call, route)]
    }

    /// A request whose success prints nothing; a failure prints `what` and why.
    fn quiet<C: Call>(&mut self, what: String, call: &C) -> Vec<Effect> {
        self.call(call, move |answer| Msg::Quiet(what, answer.map(|_| ())))
    }

    fn stdin(&mut self, job: String, data: String, close: bool) -> Vec<Effect> {
        self.call(&vm::Stdin { job, data, close }, Msg::Stdin)
    }

    fn on_key(&mut self, key: Key) -> Vec<Effect> {
        if self.search.is_some() {
            return self.on_search_key(key);
        }
        if key.mods.ctrl {
            match key.code {
                KeyCode::Char('c') => return self.interrupt(),
                KeyCode::Char('d') => return self.close_stdin(),
                KeyCode::Char('l') => {
                    self.out.clear();
                    return Vec::new();
                }
                KeyCode::Char('f') => {
                    self.search = Some(LineInput::default());
                    return Vec::new();
                }
                _ => {}
            }
        }
        match key.code {
            KeyCode::PageUp => {
                self.out.scroll_up(10);
                return Vec::new();
            }
            KeyCode::PageDown => {
                self.out.scroll_down(10);
                return Vec::new();
            }
            KeyCode::Up if self.job.is_none() => {
                self.history_step(-1);
                return Vec::new();
            }
            KeyCode::Down if self.job.is_none() => {
                self.history_step(1);
                return Vec::new();
            }
            KeyCode::Tab if self.job.is_none() => return self.complete(),
            _ => {}
        }
        match self.input.handle(key) {
            LineEdit::Submit => {
                let line = self.input.take();
                self.history_at = None;
                self.out.follow();
                match self.job.clone() {
                    Some(job) => self.send_stdin(job, line),
                    None if self.waiting || self.plan.is_some() => {
                        self.typed_ahead.push_back(line);
                        Vec::new()
                    }
                    None => self.enter(line),
                }
            }
            LineEdit::Cancel => {
                self.input.take();
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Run a command line now.
    fn enter(&mut self, line: String) -> Vec<Effect> {
        self.out.echo(&self.prompt(), &line);
        self.remember(&line);
        let effects = commands::execute(self, &line);
        // A command that asked the daemon holds the lines typed after it.
        self.waiting = !effects.is_empty();
        effects
    }

    /// The command's answer came: run what was typed meanwhile, up to the next wait.
    fn resume(&mut self) -> Vec<Effect> {
        self.waiting = false;
        let mut effects = Vec::new();
        while !self.waiting && self.job.is_none() && self.plan.is_none() {
            let Some(line) = self.typed_ahead.pop_front() else {
                break;
            };
            effects.extend(self.enter(line));
        }
        effects
    }

    fn remember(&mut self, line: &str) {
        if line.trim().is_empty() || self.history.last().is_some_and(|l| l == line) {
            return;
        }
        self.history.push(line.to_owned());
        if self.history.len() > HISTORY {
            self.history.remove(0);
        }
    }

    fn history_step(&mut self, delta: isize) {
        if self.history.is_empty() {
            return;
        }
        let last = self.history.len() as isize;
        let at = self.history_at.map_or(last, |i| i as isize) + delta;
        if at >= last {
            self.history_at = None;
            self.input.set("");
        } else {
            let at = at.max(0) as usize;
            self.history_at = Some(at);
            self.input.set(self.history[at].clone());
        }
    }

    fn interrupt(&mut self) -> Vec<Effect> {
        if self.job.is_none()
            && let Some(effects) = goal::interrupt(self)
        {
            return effects;
        }
        match &self.job {
            Some(ForegroundJob { id: Some(id), .. }) => {
                let id = id.clone();
                self.out.note(&format!("^C: stopping {id}"));
                self.call(&vm::Kill { job: id }, Msg::Killed)
            }
            _ => {
                self.out
                    .echo(&self.prompt(), &format!("{}^C", self.input.take()));
                Vec::new()
            }
        }
    }

    fn close_stdin(&mut self) -> Vec<Effect> {
        let Some(job) = self.job.as_mut() else {
            return Vec::new();
        };
        let Some(id) = job.id.clone() else {
            return Vec::new();
        };
        if !job.stdin_open {
            return Vec::new();
        }
        job.stdin_open = false;
        self.stdin(id, String::new(), true)
    }

    fn send_stdin(&mut self, job: ForegroundJob, line: String) -> Vec<Effect> {
        self.out.echo("", &line);
        let Some(id) = job.id else {
            self.early_stdin.push(line);
            return Vec::new();
        };
        if !job.stdin_open {
            self.out.error("the program's input is closed");
            return Vec::new();
        }
        self.stdin(id, format!("{line}\n"), false)
    }

    fn on_search_key(&mut self, key: Key) -> Vec<Effect> {
        let Some(search) = self.search.as_mut() else {
            return Vec::new();
        };
        match search.handle(key) {
            LineEdit::Cancel => {
                self.search = None;
                self.out.follow();
            }
            LineEdit::Changed => {
                let query = search.text().to_owned();
                self.out.find(&query, false);
            }
            LineEdit::Submit => {
                let query = search.text().to_owned();
                self.out.find(&query, true);
            }
            _ => {}
        }
        Vec::new()
    }

    /// A command's answer: what it prints, then the next line typed ahead, if any.
    fn answered(&mut self, msg: Msg) -> Vec<Effect> {
        let ends_command = !matches!(msg, Msg::Stdin(_) | Msg::Completed { .. });
        let mut effects = commands::answered(self, msg);
        if ends_command && self.job.as_ref().is_none_or(|j| j.id.is_some()) {
            // Typed input for a program that just started goes in now.
            if let Some(ForegroundJob { id: Some(id), .. }) = &self.job
                && !self.early_stdin.is_empty()
            {
                let data: String = self.early_stdin.drain(..).map(|l| l + "\n").collect();
                let id = id.clone();
                effects.extend(self.stdin(id, data, false));
            }
            if self.job.is_none() && self.plan.is_none() {
                effects.extend(self.resume());
            } else {
                self.waiting = false;
            }
        }
        effects
    }

    fn on_job_event(&mut self, topic: &str, data: Value) {
        let Some(vm::JobEvent { id: job, kind }) = vm::JobEvents::parse(topic) else {
            return;
        };
        let kind = kind.as_str();
        let ours = self
            .job
            .as_ref()
            .is_some_and(|j| j.id.as_deref() == Some(job));
        if ours {
            self.show_job_event(kind, data);
        } else if self.job.as_ref().is_some_and(|j| j.id.is_none()) {
            // Maybe ours, before `vm.run` answered: keep it until it does.
            if self.early.len() < EARLY_JOBS || self.early.contains_key(job) {
                self.early
                    .entry(job.to_owned())
                    .or_default()
                    .push((kind.to_owned(), data));
            }
        }
    }

    fn show_job_event(&mut self, kind: &str, data: Value) {
        match kind {
            "stdout" | "stderr" => {
                if let Ok(chunk) = serde_json::from_value::<vm::OutputChunk>(data) {
                    self.out.chunk(&chunk);
                }
            }
            "exit" => {
                if let Ok(exit) = serde_json::from_value::<vm::Exit>(data) {
                    self.out.end_partial();
                    self.out.exit(&exit);
                }
                self.job = None;
                self.early_stdin.clear();
            }
            _ => {}
        }
    }

    /// `vm.run` answered: the job is ours; show what came before the answer.
    fn job_started(&mut self, id: String) {
        if let Some(job) = self.job.as_mut() {
            job.id = Some(id.clone());
        }
        let early = self.early.remove(&id).unwrap_or_default();
        self.early.clear();
        for (kind, data) in early {
            self.show_job_event(&kind, data);
        }
    }

    fn complete(&mut self) -> Vec<Effect> {
        let line = self.input.text().to_owned();
        let words = words::split(&line).unwrap_or_default();
        let ends_in_space = line.ends_with(' ');
        if words.len() <= 1 && !ends_in_space {
            let stem = words.first().cloned().unwrap_or_default();
            let found: Vec<&str> = commands::NAMES
                .iter()
                .copied()
                .filter(|c| c.starts_with(&stem))
                .collect();
            match found.as_slice() {
                [one] => self.input.set(format!("{one} ")),
                [] => {}
                many => self.out.note(&many.join("  ")),
            }
            return Vec::new();
        }
        let partial = if ends_in_space {
            String::new()
        } else {
            words.last().cloned().unwrap_or_default()
        };
        let (dir_part, stem) = match partial.rfind('/') {
            Some(i) => (partial[..=i].to_owned(), partial[i + 1..].to_owned()),
            None => (String::new(), partial.clone()),
        };
        let dir = path::resolve(&self.cwd, if dir_part.is_empty() { "." } else { &dir_part });
        self.call(&vfs::List { path: dir }, move |answer| Msg::Completed {
            line,
            dir: dir_part,
            stem,
            answer,
        })
    }
}

impl Console for Terminal {
    fn line(&mut self) -> &mut LineInput {
        &mut self.input
    }

    fn output(&mut self) -> &mut Scrollback {
        &mut self.out
    }

    fn key(&mut self, key: Key) -> Vec<Effect> {
        self.on_key(key)
    }
}

impl Replies for Terminal {
    app_kit::replies_through!(requests: Msg);

    fn on(&mut self, msg: Msg) -> Vec<Effect> {
        if let Msg::Goal(goal) = msg {
            if !goal.is_dialog() {
                return self.answered(Msg::Goal(goal));
            }
            // The user answered one of the goal's dialogs.
            let mut effects = goal::decided(self, goal);
            if self.plan.is_none() {
                effects.extend(self.resume());
            }
            return effects;
        }
        self.answered(msg)
    }

    fn on_event(&mut self, event: Event) -> Vec<Effect> {
        if let Some(effects) = console_event(self, &event) {
            return effects;
        }
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Mouse(_) | Event::Paste(_) => Vec::new(),
            Event::Delivery {
                ticket,
                topic,
                data,
            } if Some(ticket) == self.events => {
                let running = self.job.is_some();
                self.on_job_event(&topic, data);
                if running && self.job.is_none() {
                    self.resume()
                } else {
                    Vec::new()
                }
            }
            Event::Delivery {
                ticket,
                topic,
                data,
            } if Some(ticket) == self.agent_events => {
                let mut effects = goal::on_event(self, &topic, data);
                if self.plan.is_none() {
                    effects.extend(self.resume());
                }
                effects
            }
            Event::Delivery { .. } => Vec::new(),
            Event::SubscribeFailed { error, .. } => {
                self.out
                    .error(&format!("program output will not show: {}", error.msg));
                Vec::new()
            }
            Event::OpenPath { path, .. } if crate::opener_for(&path) == APP => {
                // A program opened from the explorer or the palette runs as if typed.
                let line = format!("run {}", words::quote(&path));
                if self.job.is_some() || self.waiting {
                    self.out
                        .note(&format!("{path} runs when the current program ends"));
                    self.typed_ahead.push_back(line);
                    Vec::new()
                } else {
                    self.enter(line)
                }
            }
            Event::OpenPath { path, .. } => {
                self.cwd = path::normalize(&path);
                Vec::new()
            }
            Event::Reconnected => {
                self.out.note("reconnected to the daemon");
                // Its exit may have come while we were away, or the daemon restarted.
                match self.job.as_ref().and_then(|j| j.id.clone()) {
                    Some(job) => {
                        let call = vm::Jobs {
                            job: Some(job.clone()),
                        };
                        self.call(&call, |answer| Msg::Rechecked(job, answer))
                    }
                    None => Vec::new(),
                }
            }
            // Replies come through `requests`; what is left of them was not awaited.
            Event::Answer { .. }
            | Event::Confirmed { .. }
            | Event::Chose { .. }
            | Event::Prompted { .. }
            | Event::Subscribed { .. } => Vec::new(),
        }
    }
}

impl App for Terminal {
    app_kit::app_plumbing!(APP);

    fn title(&self) -> String {
        match &self.job {
            Some(job) => format!("Terminal {} ({})", self.cwd, job.what),
            None => format!("Terminal {}", self.cwd),
        }
    }

    fn start(&mut self) -> Vec<Effect> {
        let (ticket, listen) = self.requests.subscribe(vm::JobEvents::PATTERN);
        self.events = Some(ticket);
        vec![listen]
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            hint("help", "the commands"),
            hint("Enter", "run the line (or send it to the running program)"),
            hint("↑ ↓", "history"),
            hint("Tab", "complete a command or a path"),
            hint("Ctrl-C", "stop the running program"),
            hint("Ctrl-D", "close the program's input"),
            hint("PgUp PgDn", "scroll back"),
            hint("Ctrl-f", "search the scrollback"),
            hint("Ctrl-l", "clear"),
        ]
    }

    fn busy(&self) -> Option<String> {
        match (&self.job, &self.plan) {
            (Some(job), _) => Some(job.what.clone()),
            (None, Some(_)) => Some("a plan".into()),
            (None, None) => None,
        }
    }

    fn save(&self) -> Value {
        let start = self.history.len().saturating_sub(HISTORY);
        serde_json::to_value(Saved {
            cwd: self.cwd.clone(),
            history: self.history[start..].to_vec(),
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
