//! The AI from a shell: ai status | ask | embed.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::Subcommand;
use futures_util::StreamExt;
use serde_json::{Value, json};

use aether_proto::ErrorBody;
use aether_proto::api::ai::{self, GenerateAnswer};
use aether_proto::client::AppHandle;

use crate::output::{print_answer, print_json};
use crate::{Failure, call};

#[derive(Subcommand)]
pub enum AiCommand {
    /// The providers configured, whether each answers (--probe), and your usage today.
    Status {
        /// Ask each provider whether it answers.
        #[arg(long)]
        probe: bool,
    },
    /// Ask for text; it is printed as it arrives. The prompt is the arguments, or stdin
    /// (`-` or none); both: stdin follows the arguments.
    Ask {
        /// The prompt (words are joined by spaces).
        prompt: Vec<String>,
        #[arg(long)]
        system: Option<String>,
        /// A configured provider (default: the daemon's default).
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        max_tokens: Option<u32>,
        #[arg(long)]
        temperature: Option<f32>,
        /// A JSON Schema file: the answer is JSON matching it (printed as JSON).
        #[arg(long, value_name = "FILE")]
        schema: Option<PathBuf>,
    },
    /// Embedding vectors for texts (one per argument), as JSON.
    Embed {
        #[arg(required = true)]
        texts: Vec<String>,
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        model: Option<String>,
    },
}

pub async fn run(command: &AiCommand, app: &AppHandle, json: bool) -> Result<(), Failure> {
    match command {
        AiCommand::Status { probe } => status(app, *probe, json).await,
        AiCommand::Ask {
            prompt,
            system,
            provider,
            model,
            max_tokens,
            temperature,
            schema,
        } => {
            let schema = match schema {
                Some(path) => Some(read_schema(path)?),
                None => None,
            };
            let ask = ai::Generate {
                prompt: prompt_text(prompt)?,
                system: system.clone(),
                provider: provider.clone(),
                model: model.clone(),
                max_tokens: *max_tokens,
                temperature: *temperature,
                schema,
                stream: true,
            };
            ask_streaming(app, ask, json).await
        }
        AiCommand::Embed {
            texts,
            provider,
            model,
        } => {
            let answer = call(
                app,
                &ai::Embed {
                    texts: texts.clone(),
                    provider: provider.clone(),
                    model: model.clone(),
                },
            )
            .await?;
            print_json(&answer);
            Ok(())
        }
    }
}

async fn status(app: &AppHandle, probe: bool, json: bool) -> Result<(), Failure> {
    let answer = call(app, &ai::Status { probe }).await?;
    print_answer(json, &answer, |s| {
        let mut out = Vec::new();
        if let Some(hint) = &s.hint {
            out.push(hint.clone());
        }
        for p in &s.providers {
            let mark = if s.default.as_deref() == Some(p.name.as_str()) {
                "*"
            } else {
                " "
            };
            let reach = match (p.reachable, &p.error) {
                (Some(true), _) => format!("  reachable ({} ms)", p.latency_ms.unwrap_or(0)),
                (Some(false), Some(e)) => format!("  UNREACHABLE: {e}"),
                _ => String::new(),
            };
            out.push(format!(
                "{mark} {:<12} {:<7} {:<24} {}{}{}",
                p.name,
                serde_json::to_value(p.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                p.model,
                p.base_url,
                if p.has_key { "" } else { "  (no key)" },
                reach
            ));
        }
        let spent: u64 = s
            .usage
            .iter()
            .map(|u| u.input_tokens + u.output_tokens)
            .sum();
        match s.daily_token_quota {
            Some(quota) => out.push(format!("today: {spent} of {quota} tokens")),
            None => out.push(format!("today: {spent} tokens")),
        }
        for u in &s.usage {
            out.push(format!(
                "  {:<12} {} requests, {} in, {} out",
                u.app, u.requests, u.input_tokens, u.output_tokens
            ));
        }
        out.join("\n")
    });
    Ok(())
}

fn prompt_text(words: &[String]) -> Result<String, Failure> {
    let from_args = words.join(" ");
    let wants_stdin = words.is_empty() || words == ["-"];
    let piped = !std::io::stdin().is_terminal();
    let mut prompt = if words == ["-"] {
        String::new()
    } else {
        from_args
    };
    if wants_stdin || piped {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .map_err(|e| Failure::Usage(format!("stdin: {e}")))?;
        if !prompt.is_empty() && !input.is_empty() {
            prompt.push_str("\n\n");
        }
        prompt.push_str(&input);
    }
    if prompt.trim().is_empty() {
        return Err(Failure::Usage(
            "no prompt: give it as arguments or on stdin".into(),
        ));
    }
    Ok(prompt)
}

fn read_schema(path: &PathBuf) -> Result<Value, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Failure::Usage(format!("{} is not JSON: {e}", path.display())))
}

/// Print the text as it streams in; with `--json`, one JSON line per event.
async fn ask_streaming(app: &AppHandle, ask: ai::Generate, json: bool) -> Result<(), Failure> {
    let structured = ask.schema.is_some();
    // Subscribe first: the first piece may beat the answer.
    let mut events = app
        .subscribe(ai::STREAMS)
        .await
        .map_err(Failure::from_client)?;
    let started = match call(app, &ask).await? {
        GenerateAnswer::Streaming(started) => started,
        GenerateAnswer::Done(done) => {
            print_json(&done);
            return Ok(());
        }
    };
    let prefix = format!("{}.", started.topic);
    let mut ended_with_newline = true;
    while let Some(msg) = events.next().await {
        let Some(kind) = msg.topic.strip_prefix(&prefix) else {
            continue;
        };
        let data: Value = serde_json::from_str(msg.data.get()).unwrap_or(Value::Null);
        if json {
            outln!("{}", json!({ "event": kind, "data": data }));
        }
        match kind {
            "delta" if !json && !structured => {
                let text = data["text"].as_str().unwrap_or_default();
                let mut out = std::io::stdout().lock();
                if out
                    .write_all(text.as_bytes())
                    .and_then(|_| out.flush())
                    .is_err()
                {
                    // A closed pipe (`| head`): stop the stream, quietly.
                    let _ = app
                        .request(&ai::Cancel {
                            stream: started.stream.clone(),
                        })
                        .await;
                    return Ok(());
                }
                if !text.is_empty() {
                    ended_with_newline = text.ends_with('\n');
                }
            }
            "done" => {
                if !json {
                    if structured {
                        let done: ai::Generated = serde_json::from_value(data)
                            .map_err(|e| Failure::Usage(format!("a bad done event: {e}")))?;
                        outln!("{}", done.json.unwrap_or(Value::Null));
                    } else if !ended_with_newline {
                        outln!("");
                    }
                }
                return Ok(());
            }
            // Why nothing comes: said on stderr, so the answer on stdout stays clean.
            "notice" if !json => {
                if let Ok(notice) = serde_json::from_value::<ai::Notice>(data) {
                    if !ended_with_newline {
                        eprintln!();
                        ended_with_newline = true;
                    }
                    eprintln!("aetherctl: {}", notice_words(&notice));
                }
            }
            "error" => {
                if !ended_with_newline && !json {
                    outln!("");
                }
                let body: ErrorBody = serde_json::from_value(data)
                    .map_err(|e| Failure::Usage(format!("a bad error event: {e}")))?;
                return Err(Failure::Daemon(body));
            }
            _ => {}
        }
    }
    Err(Failure::Connect("the daemon closed the connection".into()))
}

/// A stream's notice as a line for a person.
fn notice_words(notice: &ai::Notice) -> String {
    match notice {
        ai::Notice::Waiting { silent_ms } => format!(
            "the provider has not answered for {} s; still waiting (Ctrl-C stops)",
            silent_ms / 1000
        ),
        ai::Notice::Retrying {
            attempt,
            of,
            wait_ms,
            why,
        } => format!(
            "try {attempt} of {of} failed ({why}); trying again in {:.1} s",
            *wait_ms as f64 / 1000.0
        ),
    }
}
