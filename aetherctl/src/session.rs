//! Saved desktop sessions: session list|load|save|delete.

use std::path::Path;

use clap::Subcommand;
use serde_json::Value;

use aether_proto::api::session::{self, MAX_STATE_BYTES};
use aether_proto::client::AppHandle;
use aether_proto::{ErrorBody, ErrorCode};

use crate::output::{format_ms, print_answer, print_json, print_rows};
use crate::{Failure, call};

#[derive(Subcommand)]
pub enum SessionCommand {
    /// Your saved sessions: name, revision, size, when saved.
    List,
    /// Print a session's saved state as JSON (with --json: the whole answer, on one line).
    Load { name: String },
    /// Save a JSON object from a file (`-` for stdin) as a session, replacing what was saved.
    Save {
        name: String,
        /// A file holding a JSON object, or `-` to read it from stdin.
        file: String,
    },
    /// Forget a saved session.
    Delete { name: String },
}

pub async fn run(command: &SessionCommand, app: &AppHandle, json: bool) -> Result<(), Failure> {
    match command {
        SessionCommand::List => {
            let answer = call(app, &session::ListSessions {}).await?;
            print_rows(json, &answer, |answer| {
                answer
                    .sessions
                    .iter()
                    .map(|info| {
                        format!(
                            "{:<24} rev {:<5} {:>9} bytes  {}",
                            info.name,
                            info.revision,
                            info.bytes,
                            format_ms(info.saved_at_ms as i64)
                        )
                    })
                    .collect()
            });
        }
        SessionCommand::Load { name } => {
            let answer = call(app, &session::Load { name: name.clone() }).await?;
            let Some(state) = &answer.state else {
                return Err(Failure::Daemon(ErrorBody::new(
                    ErrorCode::NotFound,
                    format!("no session is saved as {name:?}"),
                )));
            };
            if json {
                print_json(&answer);
            } else {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(state).unwrap_or_default()
                );
            }
        }
        SessionCommand::Save { name, file } => {
            let state = read_state(file)?;
            let saved = call(
                app,
                &session::Save {
                    name: name.clone(),
                    state,
                },
            )
            .await?;
            print_answer(json, &saved, |saved| {
                format!("saved {} (revision {})", saved.name, saved.revision)
            });
        }
        SessionCommand::Delete { name } => {
            let deleted = call(app, &session::Delete { name: name.clone() }).await?;
            print_answer(json, &deleted, |deleted| {
                if deleted.existed {
                    format!("deleted {}", deleted.name)
                } else {
                    format!("no session was saved as {}", deleted.name)
                }
            });
        }
    }
    Ok(())
}

/// The state to save: JSON from a file or stdin. The daemon says whether it is acceptable,
/// except when it is too large to send at all.
fn read_state(file: &str) -> Result<Value, Failure> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| Failure::Usage(format!("stdin: {e}")))?
    } else {
        let path = Path::new(file);
        std::fs::read_to_string(path).map_err(|e| Failure::io(path, e))?
    };
    let state: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::Usage(format!("{file}: the state must be JSON ({e})")))?;
    let bytes = serde_json::to_string(&state).map_or(0, |s| s.len());
    if bytes > MAX_STATE_BYTES {
        return Err(Failure::Usage(format!(
            "{file}: the state is {bytes} bytes as compact JSON; a session holds at most \
             {MAX_STATE_BYTES} bytes (1 MiB)"
        )));
    }
    Ok(state)
}
