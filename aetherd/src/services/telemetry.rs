//! Telemetry rules: when an event matches (topic pattern, optional path glob),
//! send a bus request built from the event.
//!
//! A rule acts as the app that created it and passes the same permission check
//! as that app would, never more. A failed action is reported as
//! `telemetry.rules.failed`, recorded, and retried with backoff. Every message
//! a rule's request leads to carries the rule as its `origin`, and events with
//! an origin never trigger rules: a rule cannot loop on its own output.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use globset::{Glob, GlobMatcher};
use rusqlite::params;
use serde_json::{Value, json};

use aether_proto::api::telemetry::{RULES, TelemetryEvents};
use aether_proto::api::{Call as _, Event as _, telemetry};
use aether_proto::frame::to_data;
use aether_proto::{ErrorBody, ErrorCode, Pattern, Topic};

use super::{Handler, Incoming, OnBehalf, Publisher, Reply, Requester, Seat};
use crate::store::{Store, now_secs};

const MAX_RULES_PER_USER: usize = 100;
/// Retries after the first attempt.
const RETRIES: u32 = 3;
const ACTION_TIMEOUT: Duration = Duration::from_secs(30);

struct Rule {
    id: i64,
    app: String,
    name: String,
    on: Pattern,
    glob: Option<GlobMatcher>,
    topic: Topic,
    data: Value,
}

struct Engine {
    store: Store,
    rules: parking_lot::RwLock<HashMap<i64, Vec<Arc<Rule>>>>,
    requester: Requester,
    publisher: Publisher,
}

/// A stored rule as the store row holds it.
#[derive(Clone)]
struct Row {
    id: i64,
    user_id: i64,
    app: String,
    name: String,
    on: String,
    glob: Option<String>,
    topic: String,
    data: String,
}

fn compile(row: &Row) -> Result<Rule, ErrorBody> {
    let on = Pattern::parse(&row.on)
        .map_err(|e| ErrorBody::new(ErrorCode::BadTopic, format!("`on`: {e}")))?;
    if on.literal_root() != Some("telemetry") {
        return Err(ErrorBody::new(
            ErrorCode::BadTopic,
            "`on` must be a telemetry event pattern, such as telemetry.vfs.write",
        ));
    }
    let glob = match &row.glob {
        Some(glob) => Some(
            Glob::new(glob)
                .map_err(|e| ErrorBody::new(ErrorCode::BadFrame, format!("`glob`: {e}")))?
                .compile_matcher(),
        ),
        None => None,
    };
    let topic = Topic::parse(&row.topic)
        .map_err(|e| ErrorBody::new(ErrorCode::BadTopic, format!("`request.topic`: {e}")))?;
    let data = serde_json::from_str(&row.data)
        .map_err(|e| ErrorBody::new(ErrorCode::BadFrame, format!("`request.data`: {e}")))?;
    Ok(Rule {
        id: row.id,
        app: row.app.clone(),
        name: row.name.clone(),
        on,
        glob,
        topic,
        data,
    })
}

pub fn start(mut seat: Seat, store: Store) -> anyhow::Result<()> {
    seat.listen(TelemetryEvents::PATTERN)?;
    let rows = store.call_sync(|c| {
        let mut stmt = c.prepare(
            "SELECT id, user_id, app, name, on_topic, glob, action_topic, action_data FROM rules",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Row {
                    id: r.get(0)?,
                    user_id: r.get(1)?,
                    app: r.get(2)?,
                    name: r.get(3)?,
                    on: r.get(4)?,
                    glob: r.get(5)?,
                    topic: r.get(6)?,
                    data: r.get(7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    })?;
    let mut rules: HashMap<i64, Vec<Arc<Rule>>> = HashMap::new();
    for row in rows {
        match compile(&row) {
            Ok(rule) => rules.entry(row.user_id).or_default().push(Arc::new(rule)),
            Err(e) => tracing::warn!(rule = row.id, "stored rule skipped: {}", e.msg),
        }
    }
    let engine = Arc::new(Engine {
        requester: seat.requester(),
        publisher: seat.publisher(),
        rules: parking_lot::RwLock::new(rules),
        store,
    });
    seat.run(engine);
    Ok(())
}

impl Handler for Engine {
    async fn handle(self: &Arc<Self>, request: &Incoming) -> Reply {
        match request.topic.as_str() {
            telemetry::RulesAdd::TOPIC => request.call(|ask| self.add(request, ask)).await,
            telemetry::RulesList::TOPIC => {
                request
                    .call(|_: telemetry::RulesList| self.list(request))
                    .await
            }
            telemetry::RulesRm::TOPIC => request.call(|ask| self.remove(request, ask)).await,
            _ => Err(request.unknown()),
        }
    }

    fn on_event(self: &Arc<Self>, event: Incoming) {
        self.trigger(event);
    }
}

/// Fill `{{path}}`, `{{dir}}`, `{{name}}`, `{{stem}}`, `{{topic}}`, `{{user}}`, `{{app}}`
/// in every string of a request template.
fn fill(template: &Value, vars: &[(&str, String)]) -> Value {
    match template {
        Value::String(text) => {
            let mut out = text.clone();
            for (name, value) in vars {
                out = out.replace(&format!("{{{{{name}}}}}"), value);
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn variables(event: &Incoming, path: Option<&str>) -> Vec<(&'static str, String)> {
    let path = path.unwrap_or_default();
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (dir.to_owned(), name.to_owned()),
        None => (String::new(), path.to_owned()),
    };
    let stem = name
        .rsplit_once('.')
        .map_or(name.clone(), |(stem, _)| stem.to_owned());
    vec![
        ("path", path.to_owned()),
        ("dir", dir),
        ("name", name),
        ("stem", stem),
        ("topic", event.topic.to_string()),
        ("user", event.caller.user.clone()),
        ("app", event.app.clone()),
    ]
}

/// Errors retrying cannot fix.
fn permanent(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Forbidden
            | ErrorCode::BadFrame
            | ErrorCode::BadTopic
            | ErrorCode::Unauthenticated
    )
}

impl Engine {
    fn trigger(self: &Arc<Self>, event: Incoming) {
        // Caused by a rule (or a rule's own report): never a trigger.
        let report =
            TelemetryEvents::parse(event.topic.as_str()).is_some_and(|t| t.service == RULES);
        if event.origin.is_some() || report {
            return;
        }
        let rules = match self.rules.read().get(&event.caller.user_id) {
            Some(rules) => rules.clone(),
            None => return,
        };
        let data: Value = serde_json::from_str(event.data.get()).unwrap_or(Value::Null);
        let path = data["path"].as_str().map(str::to_owned);
        let event = Arc::new(event);
        for rule in rules {
            if !rule.on.matches(&event.topic) {
                continue;
            }
            if let Some(glob) = &rule.glob
                && !path.as_deref().is_some_and(|p| glob.is_match(p))
            {
                continue;
            }
            let (engine, event, path) = (self.clone(), event.clone(), path.clone());
            tokio::spawn(async move { engine.run(&rule, &event, path.as_deref()).await });
        }
    }

    async fn run(&self, rule: &Rule, event: &Incoming, path: Option<&str>) {
        // The rule's own app, and nothing more: as if that app sent the request itself.
        let on = OnBehalf {
            caller: event.caller.clone(),
            app: rule.app.clone(),
            origin: Some(rule.id as u64),
        };
        let data = to_data(&fill(&rule.data, &variables(event, path)));
        for attempt in 0..=RETRIES {
            let result = self
                .requester
                .request_as_raw(&on, &rule.topic, data.clone(), ACTION_TIMEOUT)
                .await;
            match result {
                Ok(_) => {
                    self.record(rule.id, None).await;
                    let report = json!({ "rule": rule.id, "name": rule.name, "topic": rule.topic.as_str(), "attempt": attempt });
                    self.publisher
                        .publish(&on, &TelemetryEvents::topic_of(RULES, "ran"), &report);
                    return;
                }
                Err(error) => {
                    let retry = attempt < RETRIES && !permanent(error.code);
                    self.failed(rule, &on, &error, attempt, retry).await;
                    if !retry {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500 * 4u64.pow(attempt))).await;
                }
            }
        }
    }

    async fn failed(
        &self,
        rule: &Rule,
        on: &OnBehalf,
        error: &ErrorBody,
        attempt: u32,
        retry: bool,
    ) {
        tracing::info!(rule = rule.id, attempt, "rule action failed: {error}");
        self.record(rule.id, Some(error.to_string())).await;
        let report = json!({
            "rule": rule.id,
            "name": rule.name,
            "topic": rule.topic.as_str(),
            "code": error.code,
            "error": error.msg,
            "attempt": attempt,
            "will_retry": retry,
        });
        self.publisher
            .publish(on, &TelemetryEvents::topic_of(RULES, "failed"), &report);
    }

    async fn record(&self, rule: i64, error: Option<String>) {
        let result = self
            .store
            .call(move |c| {
                match &error {
                    None => c.execute(
                        "UPDATE rules SET runs = runs + 1 WHERE id = ?1",
                        params![rule],
                    )?,
                    Some(e) => c.execute(
                        "UPDATE rules SET failures = failures + 1, last_error = ?2 WHERE id = ?1",
                        params![rule, e],
                    )?,
                };
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::error!("cannot record a rule run: {e:#}");
        }
    }

    async fn add(
        &self,
        request: &Incoming,
        ask: telemetry::RulesAdd,
    ) -> Result<telemetry::RuleAdded, ErrorBody> {
        let user_id = request.caller.user_id;
        let name: String = ask
            .name
            .unwrap_or_else(|| ask.on.clone())
            .chars()
            .take(100)
            .collect();
        let mut row = Row {
            id: 0,
            user_id,
            app: request.app.clone(),
            name,
            on: ask.on,
            glob: ask.glob,
            topic: ask.request.topic,
            data: ask.request.data.to_string(),
        };
        let rule = compile(&row)?;
        // Refuse now what would always be refused when the rule fires.
        self.requester
            .check_as(&request.on_behalf(), &rule.topic)
            .map_err(|d| ErrorBody::new(d.code, format!("the rule could never run: {}", d.msg)))?;
        if self.rules.read().get(&user_id).map_or(0, Vec::len) >= MAX_RULES_PER_USER {
            return Err(ErrorBody::new(
                ErrorCode::QuotaExceeded,
                format!("you have {MAX_RULES_PER_USER} rules, the limit; remove one first"),
            ));
        }
        let insert = row.clone();
        let id = self
            .store
            .call(move |c| {
                c.execute(
                    "INSERT INTO rules(user_id, app, name, on_topic, glob, action_topic, action_data, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        insert.user_id,
                        insert.app,
                        insert.name,
                        insert.on,
                        insert.glob,
                        insert.topic,
                        insert.data,
                        now_secs()
                    ],
                )?;
                Ok(c.last_insert_rowid())
            })
            .await
            .map_err(|e| store_error(&e))?;
        row.id = id;
        let rule = Rule { id, ..rule };
        self.rules
            .write()
            .entry(user_id)
            .or_default()
            .push(Arc::new(rule));
        Ok(telemetry::RuleAdded {
            id,
            name: row.name,
            app: row.app,
            on: row.on,
            glob: row.glob,
            topic: row.topic,
        })
    }

    async fn list(&self, request: &Incoming) -> Result<telemetry::RulesListAnswer, ErrorBody> {
        let user_id = request.caller.user_id;
        let rules = self
            .store
            .call(move |c| {
                let mut stmt = c.prepare(
                    "SELECT id, app, name, on_topic, glob, action_topic, action_data, runs, failures, last_error
                     FROM rules WHERE user_id = ?1 ORDER BY id",
                )?;
                let rows = stmt
                    .query_map(params![user_id], |r| {
                        let data: String = r.get(6)?;
                        Ok(telemetry::RuleInfo {
                            id: r.get(0)?,
                            app: r.get(1)?,
                            name: r.get(2)?,
                            on: r.get(3)?,
                            glob: r.get(4)?,
                            request: telemetry::Action {
                                topic: r.get(5)?,
                                data: serde_json::from_str(&data).unwrap_or(Value::Null),
                            },
                            runs: r.get(7)?,
                            failures: r.get(8)?,
                            last_error: r.get(9)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
            .map_err(|e| store_error(&e))?;
        Ok(telemetry::RulesListAnswer { rules })
    }

    async fn remove(
        &self,
        request: &Incoming,
        ask: telemetry::RulesRm,
    ) -> Result<telemetry::RuleRemoved, ErrorBody> {
        let user_id = request.caller.user_id;
        // An app-bound token may only remove its own app's rules.
        let only_app = request.caller.bound_app.clone();
        let removed = self
            .store
            .call(move |c| {
                Ok(c.execute(
                    "DELETE FROM rules WHERE id = ?1 AND user_id = ?2 AND (?3 IS NULL OR app = ?3)",
                    params![ask.id, user_id, only_app],
                )?)
            })
            .await
            .map_err(|e| store_error(&e))?;
        if removed == 0 {
            return Err(ErrorBody::new(
                ErrorCode::NotFound,
                format!("you have no rule {}", ask.id),
            ));
        }
        if let Some(rules) = self.rules.write().get_mut(&user_id) {
            rules.retain(|rule| rule.id != ask.id);
        }
        Ok(telemetry::RuleRemoved { removed: ask.id })
    }
}

fn store_error(e: &anyhow::Error) -> ErrorBody {
    tracing::error!("rules store: {e:#}");
    ErrorBody::new(
        ErrorCode::Internal,
        "the rules store failed; see the daemon log",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_every_string() {
        let template = json!({ "from": "{{path}}", "to": "{{dir}}/.bak/{{stem}}.md", "n": 1, "list": ["{{name}}"] });
        let vars = vec![
            ("path", "/notes/a.md".to_owned()),
            ("dir", "/notes".to_owned()),
            ("name", "a.md".to_owned()),
            ("stem", "a".to_owned()),
        ];
        let filled = fill(&template, &vars);
        assert_eq!(
            filled,
            json!({ "from": "/notes/a.md", "to": "/notes/.bak/a.md", "n": 1, "list": ["a.md"] })
        );
    }
}
