//! The Architect panel: Alt-a asks the AI to rewrite the selection (or the whole file) as
//! the user says; the answer streams in and shows as a diff beside the text; `y` applies
//! it (one undo step), `n` drops it. The text cannot change while the panel is open, so
//! what is replaced is exactly what was sent.

use aether_proto::ErrorCode;
use aether_proto::api::{Event as _, ai};
use serde_json::Value;

use super::{DiffLine, Doc, Editor, Msg, diff_lines};
use app_kit::key::{Key, KeyCode};
use app_kit::{Answer, Effect, Level};

const SYSTEM: &str = "You are the Architect, a careful programming assistant inside a code \
editor. Rewrite the text you are given as the instruction asks, keeping its style. Answer \
with the new text only: no explanations, no Markdown code fences.";

/// The most text sent (a file larger than this is refused with a clear message).
const MAX_SENT_BYTES: usize = 512 * 1024;

/// What is rewritten: the selection as it was when asked, or the whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Selection { start: Place, end: Place },
    File,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// `ai.generate` asked; no answer yet.
    Asking,
    Streaming(String),
    Ready,
    Failed(String),
}

pub(crate) struct Architect {
    pub doc: usize,
    pub instruction: String,
    pub target: Target,
    pub original: String,
    pub proposal: String,
    pub phase: Phase,
    /// Lines of the diff scrolled past.
    pub scroll: usize,
    /// Events that came before `ai.generate` answered with the stream's id.
    early: Vec<(String, Value)>,
}

impl Architect {
    pub fn diff(&self) -> Vec<DiffLine> {
        diff_lines(&self.original, &self.proposal)
    }

    pub fn target_name(&self) -> &'static str {
        match self.target {
            Target::Selection { .. } => "the selection",
            Target::File => "the file",
        }
    }
}

/// A place in the text: (row, column in characters).
type Place = (usize, usize);

/// The selected text, as `(start, end, text)`, if any.
fn selection(doc: &Doc) -> Option<(Place, Place, String)> {
    let (start, end) = doc.area.selection_range()?;
    if start == end {
        return None;
    }
    let lines = doc.area.lines();
    let slice = |line: &str, from: usize, to: Option<usize>| -> String {
        let chars = line.chars().skip(from);
        match to {
            Some(to) => chars.take(to.saturating_sub(from)).collect(),
            None => chars.collect(),
        }
    };
    let text = if start.0 == end.0 {
        slice(lines.get(start.0)?, start.1, Some(end.1))
    } else {
        let mut parts = vec![slice(lines.get(start.0)?, start.1, None)];
        for row in start.0 + 1..end.0 {
            parts.push(lines.get(row).cloned().unwrap_or_default());
        }
        parts.push(slice(lines.get(end.0)?, 0, Some(end.1)));
        parts.join("\n")
    };
    Some((start, end, text))
}

/// Alt-a: ask what should change.
pub(super) fn ask(editor: &mut Editor) -> Vec<Effect> {
    if !editor.doc().editable() {
        editor.say(
            Level::Warn,
            "the Architect works on a file that is open for editing",
        );
        return Vec::new();
    }
    let what = if selection(editor.doc()).is_some() {
        "the selection"
    } else {
        "the whole file"
    };
    let question = format!("Architect: how should {what} change?");
    vec![editor.requests.prompt(question, "", false, Msg::Instruct)]
}

/// The instruction came: send it with the text.
pub(super) fn start(editor: &mut Editor, instruction: String) -> Vec<Effect> {
    let doc = editor.doc();
    let (target, original) = match selection(doc) {
        Some((start, end, text)) => (Target::Selection { start, end }, text),
        // The lines as shown: the file's final newline is the document's to keep.
        None => (Target::File, doc.area.lines().join("\n")),
    };
    if original.len() > MAX_SENT_BYTES {
        editor.say(
            Level::Warn,
            "the Architect takes at most 512 KiB: select the part to change",
        );
        return Vec::new();
    }
    let name = doc.path.clone().unwrap_or_else(|| "untitled".into());
    let part = match target {
        Target::Selection { .. } => "The part of the file to rewrite",
        Target::File => "The whole file",
    };
    let prompt = format!("File: {name}\nInstruction: {instruction}\n\n{part}:\n{original}");
    editor.architect = Some(Architect {
        doc: editor.active,
        instruction,
        target,
        original,
        proposal: String::new(),
        phase: Phase::Asking,
        scroll: 0,
        early: Vec::new(),
    });
    let mut effects = Vec::new();
    if editor.ai_events.is_none() {
        let (ticket, listen) = editor.requests.subscribe(ai::STREAMS);
        editor.ai_events = Some(ticket);
        effects.push(listen);
    }
    let call = ai::Generate {
        prompt,
        system: Some(SYSTEM.into()),
        stream: true,
        ..Default::default()
    };
    effects.push(editor.requests.call(&call, Msg::Generated));
    effects
}

/// `ai.generate` answered: the stream's id (or why not).
pub(super) fn answered(editor: &mut Editor, answer: Answer<ai::Generate>) {
    let Some(architect) = editor.architect.as_mut() else {
        return;
    };
    match answer {
        Ok(ai::GenerateAnswer::Streaming(started)) => {
            architect.phase = Phase::Streaming(started.stream);
            let early = std::mem::take(&mut architect.early);
            for (topic, data) in early {
                on_event(editor, &topic, data);
            }
        }
        Ok(ai::GenerateAnswer::Done(done)) => {
            architect.proposal = clean(&done.text);
            architect.phase = Phase::Ready;
        }
        Err(e) => {
            let why = match e.code {
                ErrorCode::Forbidden => format!("{} (the editor may not use the AI)", e.msg),
                _ => e.msg,
            };
            architect.phase = Phase::Failed(why);
        }
    }
}

/// A piece of the answer, its end, or its failure.
pub(super) fn on_event(editor: &mut Editor, topic: &str, data: Value) {
    let Some(architect) = editor.architect.as_mut() else {
        return;
    };
    let Some(ai::StreamEvent { id: stream, kind }) = ai::StreamEvents::parse(topic) else {
        return;
    };
    let kind = kind.as_str();
    match &architect.phase {
        Phase::Streaming(ours) if ours == stream => {}
        Phase::Asking => {
            if architect.early.len() < 10_000 {
                architect.early.push((topic.to_owned(), data));
            }
            return;
        }
        _ => return,
    }
    match kind {
        "delta" => {
            if let Some(text) = data.get("text").and_then(Value::as_str) {
                architect.proposal.push_str(text);
            }
        }
        "done" => {
            architect.proposal = clean(&architect.proposal);
            architect.phase = Phase::Ready;
        }
        "error" => {
            let msg = data
                .get("msg")
                .and_then(Value::as_str)
                .unwrap_or("the AI failed")
                .to_owned();
            architect.phase = Phase::Failed(msg);
        }
        _ => {}
    }
}

/// Models fence code though told not to: drop a fence around the whole answer.
fn clean(text: &str) -> String {
    let trimmed = text.trim();
    if let Some(rest) = trimmed.strip_prefix("```")
        && let Some(body) = rest.strip_suffix("```")
    {
        // The first line is the fence's language tag.
        return body
            .split_once('\n')
            .map_or("", |(_, b)| b)
            .trim_end()
            .to_owned();
    }
    text.trim_end_matches('\n').to_owned()
}

/// Keys while the panel is open: the text stays as it is until the answer is applied.
pub(super) fn on_key(editor: &mut Editor, key: Key) -> Vec<Effect> {
    let Some(architect) = editor.architect.as_mut() else {
        return Vec::new();
    };
    match key.code {
        KeyCode::Char('y') | KeyCode::Enter if architect.phase == Phase::Ready => apply(editor),
        KeyCode::Char('n') | KeyCode::Esc => {
            let streaming = match &architect.phase {
                Phase::Streaming(stream) => Some(stream.clone()),
                _ => None,
            };
            let effects = streaming
                .map(|stream| vec![cancel(editor, stream)])
                .unwrap_or_default();
            editor.architect = None;
            editor.say(Level::Info, "the Architect's answer was dropped");
            effects
        }
        KeyCode::Down | KeyCode::Char('j') => {
            architect.scroll += 1;
            Vec::new()
        }
        KeyCode::Up | KeyCode::Char('k') => {
            architect.scroll = architect.scroll.saturating_sub(1);
            Vec::new()
        }
        KeyCode::PageDown => {
            architect.scroll += 10;
            Vec::new()
        }
        KeyCode::PageUp => {
            architect.scroll = architect.scroll.saturating_sub(10);
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn cancel(editor: &mut Editor, stream: String) -> Effect {
    editor.requests.call(&ai::Cancel { stream }, |_| Msg::Quiet)
}

/// Put the answer in place of what was sent, as one undoable edit.
fn apply(editor: &mut Editor) -> Vec<Effect> {
    let Some(architect) = editor.architect.take() else {
        return Vec::new();
    };
    let Some(doc) = editor.docs.get_mut(architect.doc) else {
        return Vec::new();
    };
    use ratatui_textarea::CursorMove;
    let jump = |(row, col): Place| {
        CursorMove::Jump(
            row.min(u16::MAX as usize) as u16,
            col.min(u16::MAX as usize) as u16,
        )
    };
    match architect.target {
        Target::Selection { start, end } => {
            doc.area.cancel_selection();
            doc.area.move_cursor(jump(start));
            doc.area.start_selection();
            doc.area.move_cursor(jump(end));
        }
        Target::File => doc.area.select_all(),
    }
    // A selection of whole lines ends in a line break: so does its replacement.
    let mut proposal = architect.proposal;
    if architect.original.ends_with('\n') && !proposal.ends_with('\n') {
        proposal.push('\n');
    }
    let replaced = doc.area.insert_str(&proposal);
    // A delete and an insert in the text area's history: undo takes them as one.
    doc.paired = if replaced {
        super::doc::Paired::Undo
    } else {
        super::doc::Paired::No
    };
    doc.dirty = true;
    doc.changed_from.set(0);
    editor.say(
        Level::Info,
        "applied the Architect's change (Ctrl-z undoes it)",
    );
    Vec::new()
}
