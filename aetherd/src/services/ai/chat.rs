//! `ai.chat`: a conversation turn in which the model may call bus tools. Each call is
//! made as the calling app, through the agents' tool runner (so the permission check the
//! app's own request would pass is the one that applies, and `vm.run` waits for the
//! program); its result or error goes back to the model, until the model answers in words
//! or the step limit is reached. A call of a tool not offered, or with arguments that are
//! not the tool's request, is answered with an error the model can read and correct.

use std::future::Future;
use std::time::Duration;

use aether_proto::api::agent;
use aether_proto::api::ai::{self, ChatMessage, RawTurn, Role, TokenUsage};
use aether_proto::{ErrorBody, ErrorCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::AiService;
use super::provider::Provider;
use super::wire::{FunctionDecl, Turn, function_name};
use crate::services::OnBehalf;

const DEFAULT_STEPS: u32 = 8;
const MAX_STEPS: u32 = 32;
/// A tool's result is cut to this much before it goes to the model.
const MAX_RESULT_BYTES: usize = 64 * 1024;
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

impl AiService {
    pub(super) async fn chat(
        &self,
        on: OnBehalf,
        ask: ai::Chat,
        gone: impl Future<Output = ()> + Send + 'static,
    ) -> Result<ai::Chatted, ErrorBody> {
        check_conversation(&ask)?;
        let decls = declarations(&ask.tools)?;
        let provider = self.pick(ask.provider.as_deref())?;
        if let Some(model) = &ask.model {
            super::provider::check_model(model)?;
        }
        let model = ask.model.clone().unwrap_or_else(|| provider.model.clone());
        let max_steps = ask.max_steps.unwrap_or(DEFAULT_STEPS).clamp(1, MAX_STEPS);
        // Nobody waits for the answer any more: no more turns, no more tools.
        let (cancel, _done) = self.until_gone(gone);
        let mut conversation = ask.messages;
        let mut added = Vec::new();
        // What the answer reports.
        let mut usage = TokenUsage::default();
        let mut steps = 0;
        loop {
            steps += 1;
            // Each turn holds what it may spend before it is sent: a long loop cannot
            // pass the day's quota.
            let asked = Asked {
                provider,
                model: &model,
                system: ask.system.as_deref(),
                tools: &decls,
            };
            let (turn, spent) = self.turn(&on, &asked, &conversation, &cancel).await?;
            usage.input += spent.input;
            usage.output += spent.output;
            let calls = as_topics(turn.calls, &ask.tools);
            let message = ChatMessage {
                role: Role::Assistant,
                text: turn.text.clone(),
                calls: calls.clone(),
                call_id: None,
                tool: None,
                raw: Some(RawTurn {
                    kind: provider.endpoint.kind,
                    content: turn.raw,
                }),
            };
            conversation.push(message.clone());
            added.push(message);
            if calls.is_empty() {
                return Ok(ai::Chatted {
                    messages: added,
                    text: turn.text,
                    provider: provider.name.clone(),
                    model,
                    usage,
                    steps,
                });
            }
            for call in calls {
                if cancel.is_cancelled() {
                    return Err(ErrorBody::new(
                        ErrorCode::Cancelled,
                        "stopped: nobody waits for the answer any more",
                    ));
                }
                let result = self.call_tool(&on, &ask.tools, &call, &cancel).await;
                let message = ChatMessage {
                    role: Role::Tool,
                    text: result,
                    calls: Vec::new(),
                    call_id: Some(call.id.clone()),
                    tool: Some(call.tool.clone()),
                    raw: None,
                };
                conversation.push(message.clone());
                added.push(message);
            }
            if steps >= max_steps {
                return Ok(ai::Chatted {
                    messages: added,
                    text: format!(
                        "(stopped after {steps} model turns, with the tools' last results not \
                         yet read: send the conversation back to go on)"
                    ),
                    provider: provider.name.clone(),
                    model,
                    usage,
                    steps,
                });
            }
        }
    }

    /// One model turn: what it may spend held before it is sent (a long loop cannot pass the
    /// day's quota), settled with what it spent (estimated when the provider does not say).
    async fn turn(
        &self,
        on: &OnBehalf,
        asked: &Asked<'_>,
        conversation: &[ChatMessage],
        cancel: &CancellationToken,
    ) -> Result<(Turn, TokenUsage), ErrorBody> {
        let sent = conversation_bytes(conversation, asked.system);
        let reservation = self
            .quota
            .reserve(
                on.caller.user_id,
                &on.app,
                super::estimate(sent, 0).input,
                None,
            )
            .await?;
        let provider = asked.provider;
        let turn = self
            .with_retries(provider, cancel, &mut |_| {}, || {
                provider.chat_turn(
                    asked.model,
                    asked.system,
                    conversation,
                    asked.tools,
                    reservation.max_output,
                )
            })
            .await;
        let turn = match turn {
            Ok(turn) => turn,
            Err(e) => {
                reservation.settle(TokenUsage::default()).await;
                return Err(e);
            }
        };
        let spent = if turn.usage == TokenUsage::default() {
            super::estimate(sent, turn.text.len() + turn.raw.to_string().len())
        } else {
            turn.usage
        };
        reservation.settle(spent).await;
        Ok((turn, spent))
    }

    /// Run one call the model made; its result, or an error it can read, as JSON text.
    async fn call_tool(
        &self,
        on: &OnBehalf,
        offered: &[String],
        call: &ai::ToolCall,
        cancel: &CancellationToken,
    ) -> String {
        let error = |code: ErrorCode, msg: String| {
            json!({ "error": { "code": code.as_str(), "msg": msg } }).to_string()
        };
        if !offered.contains(&call.tool) {
            return error(
                ErrorCode::NotFound,
                format!(
                    "no tool {:?} here; the tools: {}",
                    call.tool,
                    offered
                        .iter()
                        .map(|t| function_name(t))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if !call.args.is_object() {
            return error(
                ErrorCode::BadFrame,
                format!("the arguments must be a JSON object, not {}", call.args),
            );
        }
        // A model's calls never start a graph that runs writes without asking.
        let context = crate::services::tools::Context::default();
        match crate::services::tools::call(
            &self.requester,
            on,
            &context,
            &call.tool,
            call.args.clone(),
            TOOL_TIMEOUT,
            cancel,
        )
        .await
        {
            Ok(value) => cut(value),
            Err(e) => error(e.code, e.msg),
        }
    }
}

/// A result as text for the model, cut to a size it can take.
fn cut(value: Value) -> String {
    let text = value.to_string();
    if text.len() <= MAX_RESULT_BYTES {
        return text;
    }
    let end = text.floor_char_boundary(MAX_RESULT_BYTES);
    json!({ "cut_to_bytes": MAX_RESULT_BYTES, "start": &text[..end] }).to_string()
}

/// Tools are named by topic here: the model's names for them come back to topics.
fn as_topics(calls: Vec<ai::ToolCall>, tools: &[String]) -> Vec<ai::ToolCall> {
    calls
        .into_iter()
        .map(|mut call| {
            if let Some(topic) = tools.iter().find(|t| function_name(t) == call.tool) {
                call.tool = topic.clone();
            }
            call
        })
        .collect()
}

/// What every turn of one `ai.chat` sends besides the conversation.
struct Asked<'a> {
    provider: &'a Provider,
    model: &'a str,
    system: Option<&'a str>,
    tools: &'a [FunctionDecl],
}

/// What a conversation weighs as sent: its texts, the providers' raw turns, the system text.
fn conversation_bytes(messages: &[ChatMessage], system: Option<&str>) -> usize {
    messages
        .iter()
        .map(|m| m.text.len() + m.raw.as_ref().map_or(0, |r| r.content.to_string().len()))
        .sum::<usize>()
        + system.map_or(0, str::len)
}

/// A conversation `ai.chat` takes: at most 1 MiB, ending with the user's message (or the
/// tools' results).
fn check_conversation(ask: &ai::Chat) -> Result<(), ErrorBody> {
    let size = conversation_bytes(&ask.messages, ask.system.as_deref());
    if size > ai::MAX_PROMPT_BYTES {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!("the conversation is {size} bytes; at most 1 MiB per request"),
        ));
    }
    if ask
        .messages
        .last()
        .is_none_or(|m| m.role == Role::Assistant)
    {
        return Err(ErrorBody::new(
            ErrorCode::BadFrame,
            "`messages` must end with the user's message (or tools' results)",
        ));
    }
    Ok(())
}

/// The tools offered to the model, each a bus request by topic with its argument schema.
fn declarations(tools: &[String]) -> Result<Vec<FunctionDecl>, ErrorBody> {
    tools
        .iter()
        .map(|tool| {
            let schema = agent::tool_schema(tool).ok_or_else(|| {
                ErrorBody::new(
                    ErrorCode::BadFrame,
                    format!(
                        "no tool {tool:?} for a chat; the tools: {}",
                        agent::TOOLS
                            .iter()
                            .filter(|t| t.name != agent::APPROVE)
                            .map(|t| t.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            Ok(FunctionDecl {
                name: function_name(tool),
                description: format!("The Aether bus request {tool}, made as the user's app."),
                parameters: schema,
            })
        })
        .collect()
}
