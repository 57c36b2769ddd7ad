//! The event loop: one `select!` over terminal input, the bus, the connection's state,
//! signals and one timer (the desktop's next deadline, a frame held back). It hands the
//! desktop input, the bus's answers and the time, runs the bus work the desktop asks
//! for (all of it, windows' and headless apps' alike, through one path: `Output::Bus`),
//! and draws only when something changed, at most once per 10 ms; it sleeps otherwise.

use std::time::{Duration, Instant};

use aether_local as local;
use aether_proto::api::session;
use aether_proto::client::{AetherClient, Endpoint, Link};
use app_kit::Level;
use crossterm::event::EventStream;
use futures_util::StreamExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::bus::{Bus, Incoming, error_body};
use crate::config::Config;
use crate::desktop::{Desktop, Headless, LinkState, Output, SESSION_NAME};
use crate::term;

/// The shortest time between two frames.
const FRAME: Duration = Duration::from_millis(10);
/// How long the last save may take on the way out.
const LAST_SAVE: Duration = Duration::from_secs(2);

pub struct Options {
    /// Start from the default layout, not the saved one.
    pub fresh: bool,
    /// The local daemon's endpoint, to start it again when it goes away.
    pub revive: Option<Endpoint>,
    /// When the process started, for `AETHER_TUI_STARTUP_FILE`.
    pub started: Instant,
    /// Local time minus UTC in seconds, read before any thread started (the only time the
    /// `time` crate may read it soundly), for the times the apps show.
    pub utc_offset_s: i32,
}

/// The shortest time between two attempts to start the local daemon again.
const REVIVE_EVERY: Duration = Duration::from_secs(30);

/// Start the local daemon again, off the event loop (it waits until the socket opens).
/// Nothing is sent when something listens again by the time we look: the client's own
/// reconnect takes it from there.
fn revive(endpoint: Endpoint, outcome: mpsc::UnboundedSender<Result<String, String>>) {
    tokio::task::spawn_blocking(move || {
        if !local::nobody_listens(&endpoint) {
            return;
        }
        tracing::warn!("the daemon is gone; starting it again");
        let result = local::restart_daemon(&endpoint).map(|log| log.display().to_string());
        let _ = outcome.send(result);
    });
}

/// With `AETHER_TUI_STARTUP_FILE` set, write how long the start took (to the first frame
/// of the restored workspace) in microseconds: `benches/desktop.rs` reads it.
fn report_startup(started: Instant) {
    if let Some(path) = std::env::var_os("AETHER_TUI_STARTUP_FILE") {
        let _ = std::fs::write(path, started.elapsed().as_micros().to_string());
    }
}

/// Load the saved session (the one request made before the desktop runs: there is
/// nothing to show until it answers), or lay out the default; say which.
pub async fn prepare(client: &AetherClient, config: &Config, options: &Options) -> Desktop {
    let user = client.welcome().user.name.clone();
    let now = Instant::now();
    let mut desktop = Desktop::new(config.keymap.clone(), config.theme.clone(), user, now);
    let session = client.app("desktop");
    let loaded = if options.fresh {
        None
    } else {
        Some(
            session
                .request(&session::Load {
                    name: SESSION_NAME.into(),
                })
                .await,
        )
    };
    match loaded {
        Some(Ok(session::Loaded {
            state: Some(state), ..
        })) if desktop.restore(&state) => desktop.saved(state),
        Some(Ok(session::Loaded { state: Some(_), .. })) => {
            desktop.default_layout();
            desktop.notify(
                Level::Warn,
                "the saved layout could not be read; this is the default one",
            );
        }
        Some(Ok(_)) => {
            desktop.default_layout();
            desktop.show_welcome();
        }
        Some(Err(e)) => {
            desktop.default_layout();
            desktop.notify(
                Level::Warn,
                format!("no saved layout: {}", error_body(e).msg),
            );
        }
        None => desktop.default_layout(),
    }
    desktop.start();
    desktop
}

pub async fn run(
    client: AetherClient,
    config: Config,
    options: Options,
    mut desktop: Desktop,
) -> anyhow::Result<()> {
    let (tx, mut incoming) = mpsc::unbounded_channel::<Incoming>();
    let (notices_tx, mut notices) = mpsc::unbounded_channel::<(Level, String)>();
    let mut bus = Bus::new(client.clone(), tx);
    let mut link = client.link();
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;

    let mut tty = term::enter()?;
    let size = tty.size()?;
    desktop.resize(size.width, size.height);
    let mut events = EventStream::new();
    let mut frames = Frames::new(Instant::now());
    let (revived_tx, mut revived) = mpsc::unbounded_channel::<Result<String, String>>();
    let mut watch = LinkWatch {
        revive: options.revive.clone(),
        revived: revived_tx,
        was_down: false,
        last_revival: None,
    };
    let result = loop {
        handle_outputs(&mut desktop, &mut bus, &config, &notices_tx);
        if desktop.quitting() {
            break Ok(());
        }
        let deadline = [frames.at, desktop.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        let mut changed = true;
        tokio::select! {
            biased;
            _ = hangup.recv() => {
                tracing::info!("hangup: saving and leaving");
                break Ok(());
            }
            _ = terminate.recv() => {
                tracing::info!("terminated: saving and leaving");
                break Ok(());
            }
            event = events.next() => match event {
                Some(Ok(event)) => match crate::input::convert(event) {
                    Some(input) => {
                        tracing::debug!("input {input:?}");
                        desktop.set_now(Instant::now());
                        desktop.on_input(input);
                    }
                    None => changed = false,
                },
                Some(Err(e)) => break Err(e.into()),
                None => break Ok(()),
            },
            Some(first) = incoming.recv() => deliver_burst(&mut desktop, first, &mut incoming),
            Some((level, text)) = notices.recv() => desktop.notify(level, text),
            Ok(()) = link.changed() => {
                let state = link.borrow_and_update().clone();
                watch.changed(&mut desktop, state);
            }
            Some(outcome) = revived.recv() => revived_said(&mut desktop, outcome),
            _ = sleep_until(deadline), if deadline.is_some() => {
                changed = desktop.tick(Instant::now());
            }
        }
        let now = Instant::now();
        desktop.set_now(now);
        if changed {
            desktop.changed();
            frames.changed();
        }
        if frames.due(now) {
            desktop.clock = wall_clock(options.utc_offset_s);
            term::draw(&mut tty, |frame| {
                let area = frame.area();
                desktop.resize(area.width, area.height);
                desktop.render(area, frame.buffer_mut());
            })?;
            if frames.first() {
                report_startup(options.started);
            }
        }
    };
    term::leave();
    // The last word: save now, briefly, so the next start finds this layout.
    desktop.save_now();
    handle_outputs(&mut desktop, &mut bus, &config, &notices_tx);
    bus.settle(Headless::Session.into(), LAST_SAVE).await;
    while let Ok(answer) = incoming.try_recv() {
        desktop.deliver(answer.owner, answer.event);
    }
    if let Some(why) = desktop.save_failed() {
        eprintln!("aether: the layout was not saved: {why}");
    }
    result
}

/// Hand the desktop what the bus brought, and what else is queued now (up to 256 more):
/// one frame for a burst of output.
fn deliver_burst(
    desktop: &mut Desktop,
    first: Incoming,
    incoming: &mut mpsc::UnboundedReceiver<Incoming>,
) {
    desktop.deliver(first.owner, first.event);
    let mut more = 0;
    while more < 256
        && let Ok(next) = incoming.try_recv()
    {
        desktop.deliver(next.owner, next.event);
        more += 1;
    }
}

/// When to draw: only after something changed, at most once per `FRAME`.
struct Frames {
    last: Instant,
    /// The next frame, if one is due.
    at: Option<Instant>,
    drawn: u64,
}

impl Frames {
    /// The first frame is due at once.
    fn new(now: Instant) -> Frames {
        Frames {
            last: now - FRAME,
            at: Some(now),
            drawn: 0,
        }
    }

    /// Something changed: a frame is due, no sooner than `FRAME` after the last.
    fn changed(&mut self) {
        let next = self.last + FRAME;
        self.at = Some(self.at.map_or(next, |at| at.min(next)));
    }

    /// Whether to draw now (and it counts as drawn).
    fn due(&mut self, now: Instant) -> bool {
        if self.at.is_none_or(|at| at > now) {
            return false;
        }
        self.at = None;
        self.last = now;
        self.drawn += 1;
        true
    }

    /// The frame just drawn is the first.
    fn first(&self) -> bool {
        self.drawn == 1
    }
}

/// The connection as the status bar shows it, and what follows when it changes: the apps
/// told it is back, the local daemon started again (at most every `REVIVE_EVERY`) while
/// it cannot be reached.
struct LinkWatch {
    revive: Option<Endpoint>,
    revived: mpsc::UnboundedSender<Result<String, String>>,
    was_down: bool,
    last_revival: Option<Instant>,
}

impl LinkWatch {
    fn changed(&mut self, desktop: &mut Desktop, state: Link) {
        desktop.link = match state {
            Link::Up => LinkState::Up,
            Link::Reconnecting { attempts } => LinkState::Reconnecting(attempts),
            Link::Closed { why } => LinkState::Down(why.unwrap_or_else(|| "closed".into())),
        };
        match desktop.link {
            LinkState::Up if self.was_down => {
                self.was_down = false;
                desktop.notify(Level::Info, "reconnected to the daemon");
                desktop.reconnected();
            }
            LinkState::Up => {}
            LinkState::Reconnecting(attempts) if attempts >= 1 => {
                self.was_down = true;
                if let Some(endpoint) = &self.revive
                    && self
                        .last_revival
                        .is_none_or(|at| at.elapsed() >= REVIVE_EVERY)
                {
                    self.last_revival = Some(Instant::now());
                    revive(endpoint.clone(), self.revived.clone());
                }
            }
            _ => self.was_down = true,
        }
    }
}

/// What starting the local daemon again came to.
fn revived_said(desktop: &mut Desktop, outcome: Result<String, String>) {
    match outcome {
        Ok(log) => desktop.notify(
            Level::Warn,
            format!("the daemon had stopped; started it again (its log: {log})"),
        ),
        Err(why) => desktop.notify(
            Level::Error,
            format!("the daemon is gone and could not be started again: {why}"),
        ),
    }
}

/// The wall clock now, for the windows' times ("5 min ago", 14:05).
fn wall_clock(utc_offset_s: i32) -> app_kit::Clock {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    app_kit::Clock {
        now_ms,
        utc_offset_s,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Carry out the desktop's outputs: bus work for windows and headless apps alike, the
/// clipboard, theme files; what goes wrong comes back as a notice.
fn handle_outputs(
    desktop: &mut Desktop,
    bus: &mut Bus,
    config: &Config,
    notices: &mpsc::UnboundedSender<(Level, String)>,
) {
    for output in desktop.take_outputs() {
        match output {
            Output::Bus(owner, kind, effect) => bus.run(owner, kind, effect),
            Output::Closed(window) => bus.closed(window.into()),
            Output::Copy(text) => {
                let copied = match &config.copy_command {
                    Some(command) => term::copy_with(command, &text),
                    None => term::osc52(&text),
                };
                if let Err(e) = copied {
                    let _ = notices.send((Level::Error, format!("could not copy: {e}")));
                }
            }
            Output::SaveTheme(theme) => {
                let said = match crate::config::save_theme(&config.dir, &theme) {
                    Ok(relative) => (
                        Level::Info,
                        format!(
                            "theme \"{}\" applied and saved; `theme = \"{relative}\"` in desktop.toml keeps it",
                            theme.name
                        ),
                    ),
                    Err(e) => (
                        Level::Warn,
                        format!("theme applied for now, but not saved: {e}"),
                    ),
                };
                let _ = notices.send(said);
            }
            Output::Quit => {}
        }
    }
}
