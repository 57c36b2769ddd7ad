//! Telemetry rules: rules list|add|rm.

use clap::Subcommand;

use aether_proto::api::telemetry;
use aether_proto::client::AppHandle;

use crate::output::{parse_data, print_answer, print_rows, print_value};
use crate::{Failure, call};

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Your rules, with how often each ran and failed.
    List,
    /// Add a rule. Template variables in --data: {{path}} {{dir}} {{name}} {{stem}} {{topic}} {{user}} {{app}}.
    ///
    /// Example: back up every Markdown file when it is written:
    ///   aetherctl rules add --on telemetry.vfs.write --glob '*.md' --request vfs.copy \
    ///     --data '{"from":"{{path}}","to":"{{dir}}/{{stem}}.bak","overwrite":true}'
    ///
    /// Or a built-in rule: `--preset summarize --glob '*.txt'` writes NAME.summary.md beside
    /// each matching file when it is written (needs an AI provider).
    Add {
        /// A built-in rule instead of --on/--request/--data: summarize.
        #[arg(long, conflicts_with_all = ["on", "request", "data"])]
        preset: Option<String>,
        /// The telemetry events to react to (a pattern, e.g. telemetry.vfs.write).
        #[arg(long, required_unless_present = "preset")]
        on: Option<String>,
        /// Only events whose path matches this glob (e.g. '*.md').
        #[arg(long)]
        glob: Option<String>,
        /// The request to send (a topic the acting app may request).
        #[arg(long, required_unless_present = "preset")]
        request: Option<String>,
        /// The request's data, JSON with template variables.
        #[arg(long)]
        data: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a rule.
    Rm { id: i64 },
}

pub async fn run(command: &RulesCommand, app: &AppHandle, json: bool) -> Result<(), Failure> {
    match command {
        RulesCommand::List => {
            let answer = call(app, &telemetry::RulesList {}).await?;
            print_rows(json, &answer, |answer| {
                answer.rules.iter().map(rule_line).collect()
            });
        }
        RulesCommand::Add {
            preset: Some(preset),
            glob,
            ..
        } => {
            let glob = glob.as_deref().unwrap_or("*.txt");
            let ask = telemetry::preset(preset, glob).ok_or_else(|| {
                Failure::Usage(format!(
                    "no preset {preset:?}; the presets: {}",
                    telemetry::PRESETS.join(", ")
                ))
            })?;
            let added = call(app, &ask).await?;
            print_answer(json, &added, |added| {
                format!(
                    "added rule #{} ({preset} on {glob}; acts as app {})",
                    added.id, added.app
                )
            });
        }
        RulesCommand::Add {
            on,
            glob,
            request: topic,
            data,
            name,
            ..
        } => {
            let (Some(on), Some(topic)) = (on, topic) else {
                return Err(Failure::Usage("--on and --request are needed".into()));
            };
            let ask = telemetry::RulesAdd {
                name: name.clone(),
                on: on.clone(),
                glob: glob.clone(),
                request: telemetry::Action {
                    topic: topic.clone(),
                    data: parse_data(data.as_deref())?,
                },
            };
            let added = call(app, &ask).await?;
            print_answer(json, &added, |added| {
                format!("added rule #{} (acts as app {})", added.id, added.app)
            });
        }
        RulesCommand::Rm { id } => {
            let removed = call(app, &telemetry::RulesRm { id: *id }).await?;
            // The answer as JSON either way: pretty on a terminal, one line with --json.
            print_value(json, &serde_json::to_value(&removed).unwrap_or_default());
        }
    }
    Ok(())
}

/// `#1 backup [cli] on telemetry.vfs.write *.md -> vfs.copy (ran 2, failed 0)`
fn rule_line(rule: &telemetry::RuleInfo) -> String {
    let glob = rule
        .glob
        .as_deref()
        .map(|g| format!(" {g}"))
        .unwrap_or_default();
    let last_error = rule
        .last_error
        .as_deref()
        .map(|e| format!("; last error: {e}"))
        .unwrap_or_default();
    format!(
        "#{} {} [{}] on {}{glob} -> {} (ran {}, failed {}){last_error}",
        rule.id, rule.name, rule.app, rule.on, rule.request.topic, rule.runs, rule.failures
    )
}
