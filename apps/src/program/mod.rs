//! A window for one installed app's program. It runs (`vm.run` with `installed`) as soon
//! as the window's output subscription is in place, its output streams in live (stderr in
//! the error style), typed lines go to its stdin, Ctrl-D closes that, Ctrl-C stops it;
//! when it ends, Enter runs it again. The window acts as the terminal, which may run
//! programs; the program itself acts only as its own app, with what you granted it.

mod view;

use aether_proto::ErrorCode;
use aether_proto::api::{Event as _, apps, vm};
use serde_json::Value;

use crate::terminal::{Console, Scrollback, console_event};
use app_kit::widgets::{LineEdit, LineInput};
use app_kit::{
    Answer, App, AppKind, Effect, Event, Hint, Key, KeyCode, Registration, Replies, Requests,
    Ticket, hint,
};

/// Events of jobs not known yet, kept until `vm.run` answers.
const EARLY_EVENTS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Run {
    /// Waiting for the output subscription, then for `vm.run`'s answer.
    Starting,
    Running {
        job: String,
        stdin_open: bool,
    },
    /// It ended: how, in words (`exited with 0`).
    Ended {
        how: String,
        ok: bool,
    },
    /// It could not run, or its output cannot be shown: the daemon's words.
    Failed(String),
}

/// What the app's asks come back as.
pub enum Msg {
    Listed(Answer<apps::List>),
    Ran(Answer<vm::Run>),
    Stdin(Answer<vm::Stdin>),
    Killed(Answer<vm::Kill>),
    /// After a reconnect: is the program still running?
    Rechecked(String, Answer<vm::Jobs>),
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Saved {
    id: String,
}

/// The registry's entry for this app.
pub const APP: AppKind = AppKind::of(&Registration {
    name: "program",
    title: "Program",
    manifest: "terminal",
    standalone: false,
    launcher_key: None,
    opens: &[],
    launch: |arg| Box::new(Program::new(arg.unwrap_or_default())),
    restore: |state| Box::new(Program::restore(state)),
});

pub struct Program {
    requests: Requests<Msg>,
    /// `vm.run` was asked and has not answered.
    asked_to_run: bool,
    /// The installed app's id.
    id: String,
    /// Its name, once `apps.list` said it.
    name: Option<String>,
    pub(crate) out: Scrollback,
    pub(crate) input: LineInput,
    events: Option<Ticket>,
    subscribed: bool,
    pub(crate) run: Run,
    /// (job, kind, data) of events that came before `vm.run` answered.
    early: Vec<(String, String, Value)>,
    /// Lines typed before the job was known.
    early_stdin: Vec<String>,
}

impl Program {
    pub fn new(id: &str) -> Program {
        Program {
            requests: Requests::new(),
            asked_to_run: false,
            id: id.trim().to_owned(),
            name: None,
            out: Scrollback::default(),
            input: LineInput::default(),
            events: None,
            subscribed: false,
            run: Run::Starting,
            early: Vec::new(),
            early_stdin: Vec::new(),
        }
    }

    pub fn restore(state: &Value) -> Program {
        let saved: Saved = serde_json::from_value(state.clone()).unwrap_or_default();
        Program::new(&saved.id)
    }

    pub(crate) fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    fn stdin(&mut self, job: String, data: String, close: bool) -> Vec<Effect> {
        let call = vm::Stdin { job, data, close };
        vec![self.requests.call(&call, Msg::Stdin)]
    }

    fn subscribe(&mut self) -> Vec<Effect> {
        let (ticket, listen) = self.requests.subscribe(vm::JobEvents::PATTERN);
        self.events = Some(ticket);
        self.subscribed = false;
        vec![listen]
    }

    fn run_it(&mut self) -> Vec<Effect> {
        self.run = Run::Starting;
        self.early.clear();
        if self.id.is_empty() {
            self.fail("no app was named to run".into());
            return Vec::new();
        }
        let call = vm::Run {
            installed: Some(self.id.clone()),
            keep_stdin_open: true,
            ..Default::default()
        };
        self.asked_to_run = true;
        vec![self.requests.call(&call, Msg::Ran)]
    }

    /// Run it again: at once when the subscription is there, else once it is.
    fn again(&mut self) -> Vec<Effect> {
        self.out.note(&format!("running {} again", self.name()));
        self.early_stdin.clear();
        if self.subscribed {
            self.run_it()
        } else {
            self.run = Run::Starting;
            self.subscribe()
        }
    }

    fn fail(&mut self, why: String) {
        self.out.end_partial();
        self.out.error(&why);
        self.run = Run::Failed(why);
    }

    fn on_key(&mut self, key: Key) -> Vec<Effect> {
        if key.mods.ctrl {
            match key.code {
                KeyCode::Char('c') => return self.interrupt(),
                KeyCode::Char('d') => return self.close_stdin(),
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
            _ => {}
        }
        match self.input.handle(key) {
            LineEdit::Submit => {
                let line = self.input.take();
                self.out.follow();
                self.submit(line)
            }
            LineEdit::Cancel => {
                self.input.take();
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn submit(&mut self, line: String) -> Vec<Effect> {
        match self.run.clone() {
            Run::Running {
                job,
                stdin_open: true,
            } => {
                self.out.typed(&line);
                self.stdin(job, format!("{line}\n"), false)
            }
            Run::Running { .. } => {
                self.out.error("its input is closed (Ctrl-C stops it)");
                Vec::new()
            }
            Run::Starting => {
                self.out.typed(&line);
                self.early_stdin.push(line);
                Vec::new()
            }
            Run::Ended { .. } | Run::Failed(_) => self.again(),
        }
    }

    fn interrupt(&mut self) -> Vec<Effect> {
        match self.run.clone() {
            Run::Running { job, .. } => {
                self.out.note(&format!("^C: stopping {}", self.name()));
                vec![self.requests.call(&vm::Kill { job }, Msg::Killed)]
            }
            _ => {
                self.input.take();
                Vec::new()
            }
        }
    }

    fn close_stdin(&mut self) -> Vec<Effect> {
        let Run::Running {
            job,
            stdin_open: true,
        } = self.run.clone()
        else {
            return Vec::new();
        };
        self.run = Run::Running {
            job: job.clone(),
            stdin_open: false,
        };
        self.stdin(job, String::new(), true)
    }

    /// `vm.run` answered: the job is ours; show what came before the answer, send what
    /// was typed meanwhile.
    fn started(&mut self, job: String) -> Vec<Effect> {
        self.run = Run::Running {
            job: job.clone(),
            stdin_open: true,
        };
        for (_, kind, data) in std::mem::take(&mut self.early)
            .into_iter()
            .filter(|(j, _, _)| *j == job)
        {
            self.show(&kind, data);
        }
        if self.early_stdin.is_empty() || !matches!(self.run, Run::Running { .. }) {
            self.early_stdin.clear();
            return Vec::new();
        }
        let data: String = self.early_stdin.drain(..).map(|l| l + "\n").collect();
        self.stdin(job, data, false)
    }

    fn rechecked(&mut self, job: String, answer: Answer<vm::Jobs>) {
        match answer {
            Ok(vm::JobsAnswer::One(detail)) => match detail.summary.status.exit(job) {
                Some(exit) => self.ended(&exit),
                None => self
                    .out
                    .note("it still runs; output written while offline may be missing"),
            },
            Ok(vm::JobsAnswer::All { .. }) => {}
            Err(e) if e.code == ErrorCode::NotFound => {
                self.fail("the daemon restarted and the program is gone".into())
            }
            Err(e) => self.out.error(&format!("is it still running? {}", e.msg)),
        }
    }

    fn on_job_event(&mut self, topic: &str, data: Value) {
        let Some(vm::JobEvent { id: job, kind }) = vm::JobEvents::parse(topic) else {
            return;
        };
        let kind = kind.as_str();
        match &self.run {
            Run::Running { job: ours, .. } if ours == job => self.show(kind, data),
            // Perhaps ours, before `vm.run` answered: keep it until it does.
            Run::Starting if self.early.len() < EARLY_EVENTS => {
                self.early.push((job.to_owned(), kind.to_owned(), data));
            }
            _ => {}
        }
    }

    fn show(&mut self, kind: &str, data: Value) {
        match kind {
            "stdout" | "stderr" => {
                if let Ok(chunk) = serde_json::from_value::<vm::OutputChunk>(data) {
                    self.out.chunk(&chunk);
                }
            }
            "exit" => {
                if let Ok(exit) = serde_json::from_value::<vm::Exit>(data) {
                    self.ended(&exit);
                }
            }
            _ => {}
        }
    }

    fn ended(&mut self, exit: &vm::Exit) {
        self.out.end_partial();
        self.out.exit(exit);
        let (how, ok) = match (exit.ending, exit.code) {
            (vm::Ending::Exited, code) => {
                let code = code.unwrap_or(-1);
                (format!("exited with {code}"), code == 0)
            }
            (vm::Ending::Killed, _) => ("stopped".into(), false),
            (vm::Ending::Timeout, _) => ("stopped at its deadline".into(), false),
            (vm::Ending::MemoryLimit, _) => ("stopped: over its memory limit".into(), false),
            (vm::Ending::OutputLimit, _) => ("stopped: over its output limit".into(), false),
            (vm::Ending::Trap, _) => ("crashed".into(), false),
        };
        self.run = Run::Ended { how, ok };
        self.early_stdin.clear();
    }
}

impl Console for Program {
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

impl Replies for Program {
    app_kit::replies_through!(requests: Msg);

    fn on(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Listed(answer) => {
                if let Ok(list) = answer
                    && let Some(app) = list.apps.into_iter().find(|a| a.id == self.id)
                {
                    self.name = Some(app.name);
                }
            }
            Msg::Ran(answer) => match answer {
                Ok(started) => {
                    self.asked_to_run = false;
                    return self.started(started.job);
                }
                Err(e) => {
                    self.asked_to_run = false;
                    self.early.clear();
                    self.fail(format!("{} could not start: {}", self.name(), e.msg));
                }
            },
            Msg::Stdin(answer) => {
                // Conflict: it ended (or closed its input) meanwhile; its exit says so.
                if let Err(e) = answer
                    && e.code != ErrorCode::Conflict
                {
                    self.out.error(&format!("input: {}", e.msg));
                }
            }
            Msg::Killed(answer) => {
                if let Err(e) = answer {
                    self.out.error(&format!("stop: {}", e.msg));
                }
            }
            Msg::Rechecked(job, answer) => self.rechecked(job, answer),
        }
        Vec::new()
    }

    fn on_event(&mut self, event: Event) -> Vec<Effect> {
        if let Some(effects) = console_event(self, &event) {
            return effects;
        }
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Subscribed { ticket } if Some(ticket) == self.events => {
                let first = !self.subscribed;
                self.subscribed = true;
                // The output has somewhere to go now; a resubscription runs nothing again.
                let waiting = self.run == Run::Starting && !self.asked_to_run;
                if first && waiting {
                    self.run_it()
                } else {
                    Vec::new()
                }
            }
            Event::Delivery {
                ticket,
                topic,
                data,
            } if Some(ticket) == self.events => {
                self.on_job_event(&topic, data);
                Vec::new()
            }
            Event::SubscribeFailed { ticket, error } if Some(ticket) == self.events => {
                self.subscribed = false;
                if matches!(self.run, Run::Running { .. }) {
                    self.out
                        .error(&format!("its output stopped coming: {}", error.msg));
                } else {
                    self.fail(format!(
                        "{}'s output cannot be shown: {}",
                        self.name(),
                        error.msg
                    ));
                }
                Vec::new()
            }
            Event::Reconnected => match self.run.clone() {
                // Its exit may have come while we were away, or the daemon restarted.
                Run::Running { job, .. } => {
                    self.out.note("reconnected to the daemon");
                    let call = vm::Jobs {
                        job: Some(job.clone()),
                    };
                    vec![
                        self.requests
                            .call(&call, |answer| Msg::Rechecked(job, answer)),
                    ]
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }
}

impl App for Program {
    app_kit::app_plumbing!(APP);

    fn title(&self) -> String {
        self.name().to_owned()
    }

    fn start(&mut self) -> Vec<Effect> {
        let mut effects = self.subscribe();
        effects.push(self.requests.call(&apps::List {}, Msg::Listed));
        effects
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            hint(
                "Enter",
                "send the line to the program (once it ended: run it again)",
            ),
            hint("Ctrl-D", "close its input (the end of what you type)"),
            hint("Ctrl-C", "stop it"),
            hint("PgUp PgDn", "scroll back"),
        ]
    }

    fn busy(&self) -> Option<String> {
        matches!(self.run, Run::Running { .. }).then(|| self.name().to_owned())
    }

    fn save(&self) -> Value {
        serde_json::to_value(Saved {
            id: self.id.clone(),
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
