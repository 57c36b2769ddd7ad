//! `telemetry.rules.*`: rules that send a request when a telemetry event matches.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::calls;

/// Add a rule. It acts as the app that adds it, through that app's permission check.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesAdd {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The events to react to: a pattern under `telemetry.`.
    pub on: String,
    /// Only events whose `path` matches this glob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    pub request: Action,
}

/// The request a rule sends. Strings in `data` may use `{{path}}`, `{{dir}}`, `{{name}}`,
/// `{{stem}}`, `{{topic}}`, `{{user}}`, `{{app}}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub topic: String,
    #[serde(default)]
    pub data: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RuleAdded {
    pub id: i64,
    pub name: String,
    /// The app the rule acts as.
    pub app: String,
    pub on: String,
    pub glob: Option<String>,
    pub topic: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesList {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RulesListAnswer {
    pub rules: Vec<RuleInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RuleInfo {
    pub id: i64,
    pub app: String,
    pub name: String,
    pub on: String,
    pub glob: Option<String>,
    pub request: Action,
    pub runs: i64,
    pub failures: i64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesRm {
    pub id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RuleRemoved {
    pub removed: i64,
}

/// The built-in rules a user can enable by name (`aetherctl rules add --preset NAME`).
pub const PRESETS: &[&str] = &["summarize"];

/// `telemetry.<service>.<op>`: what a service did, as rules and monitoring see it. Every
/// event has `op`; most say `ok` and `micros`, and each service adds its own fields (a
/// file's `path`, a job's `ending`, a rule's `rule`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TelemetryEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micros: Option<u64>,
    /// The service's own fields.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// `telemetry.<service>.<op>` ([`TelemetryEvent`]): what a service did.
pub struct TelemetryEvents;

/// One telemetry event, as its topic names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelemetryTopic<'a> {
    pub service: &'a str,
    pub op: &'a str,
}

/// The rules engine's own reports (`telemetry.rules.ran|failed`): never a rule's trigger.
pub const RULES: &str = "rules";

/// Each service's own telemetry (`telemetry.<service>.*`), for the tables of who may
/// publish what.
pub mod of {
    pub const SYS: &str = "telemetry.sys.*";
    pub const VFS: &str = "telemetry.vfs.*";
    pub const RULES: &str = "telemetry.rules.*";
    pub const VM: &str = "telemetry.vm.*";
    pub const SESSION: &str = "telemetry.session.*";
    pub const AI: &str = "telemetry.ai.*";
}

impl TelemetryEvents {
    pub fn topic_of(service: &str, op: &str) -> String {
        <Self as super::Event>::topic(&TelemetryTopic { service, op })
    }

    /// What a request on `topic` is called in its service's telemetry: the topic after the
    /// service's name (`vfs.write` → `write`).
    pub fn request_op(topic: &str) -> &str {
        topic.split_once('.').map_or(topic, |(_, op)| op)
    }
}

impl super::Event for TelemetryEvents {
    const PATTERN: &'static str = "telemetry.>";
    type Parts<'a> = TelemetryTopic<'a>;

    fn topic(event: &TelemetryTopic<'_>) -> String {
        format!("telemetry.{}.{}", event.service, event.op)
    }

    fn parse(topic: &str) -> Option<TelemetryTopic<'_>> {
        let (service, op) = topic.strip_prefix("telemetry.")?.split_once('.')?;
        (!service.is_empty() && !op.is_empty()).then_some(TelemetryTopic { service, op })
    }
}

/// A built-in rule: `summarize` writes `NAME.summary.md` beside each file matching `glob`
/// when it is written, through an agent graph (read, ask the AI, write). Its own writes
/// carry the rule as their origin, so they never trigger it again.
pub fn preset(name: &str, glob: &str) -> Option<RulesAdd> {
    match name {
        "summarize" => Some(RulesAdd {
            name: Some("summarize".into()),
            on: "telemetry.vfs.write".into(),
            glob: Some(glob.into()),
            request: Action {
                topic: "agent.run".into(),
                data: serde_json::json!({ "graph": {
                    "name": "summarize {{name}}",
                    "auto_approve": true,
                    "nodes": [
                        { "id": "read", "tool": "vfs.read", "args": { "path": "{{path}}" } },
                        { "id": "sum", "tool": "ai.generate", "args": {
                            "system": "You write short, plain summaries of files: a title line, then at most five bullet points.",
                            "prompt": "Summarize the file {{name}}:\n\n${read.data}" } },
                        { "id": "save", "tool": "vfs.write", "args": {
                            "path": "{{dir}}/{{stem}}.summary.md", "data": "${sum.text}\n" } },
                    ],
                }}),
            },
        }),
        _ => None,
    }
}

calls! {
    RulesAdd => RuleAdded, "telemetry.rules.add";
    RulesList => RulesListAnswer, "telemetry.rules.list";
    RulesRm => RuleRemoved, "telemetry.rules.rm";
}
