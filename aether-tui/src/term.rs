//! The real terminal: raw mode, the alternate screen, mouse and bracketed paste on the
//! way in; all of it undone on the way out, on a panic too. Frames are drawn inside a
//! synchronized update so a terminal never shows half of one.

use std::io::{self, Stdout, Write};

use base64::Engine;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
    disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute, queue};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

pub type Tty = Terminal<CrosstermBackend<Stdout>>;

pub fn enter() -> io::Result<Tty> {
    install_panic_hook();
    enable_raw_mode()?;
    let mut stdout = io::stdout();
    execute!(
        stdout,
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste,
        cursor::Hide
    )?;
    Terminal::new(CrosstermBackend::new(stdout))
}

/// Give the terminal back as it was. Safe to call twice.
pub fn leave() {
    let mut stdout = io::stdout();
    let _ = execute!(
        stdout,
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = disable_raw_mode();
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        leave();
        previous(info);
    }));
}

pub fn draw(tty: &mut Tty, render: impl FnOnce(&mut ratatui::Frame)) -> io::Result<()> {
    queue!(tty.backend_mut(), BeginSynchronizedUpdate)?;
    tty.draw(render)?;
    execute!(tty.backend_mut(), EndSynchronizedUpdate)
}

/// Put text on the clipboard of the terminal the user sits at (OSC 52: it works over
/// SSH and, with `set-clipboard on`, inside tmux).
pub fn osc52(text: &str) -> io::Result<()> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let mut stdout = io::stdout();
    write!(stdout, "\x1b]52;c;{encoded}\x07")?;
    stdout.flush()
}

/// Put text on the clipboard by running the configured command with it on stdin.
pub fn copy_with(command: &[String], text: &str) -> io::Result<()> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| io::Error::other("copy_command is empty"))?;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes())?;
    }
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("{program} exited with {status}")))
    }
}
