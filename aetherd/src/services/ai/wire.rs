//! What the providers' two wire formats share: what is asked ([`Prompt`], tools as
//! [`FunctionDecl`]s), what comes back ([`Piece`]s of a stream, a chat [`Turn`]), how it
//! fails ([`ProviderError`], sorted by what to do about it), and the [`Endpoint`] it is
//! sent to (base URL, key, HTTP client, idle timeout). `gemini` and `openai` build on this;
//! `provider` picks between them.

use std::collections::VecDeque;
use std::time::Duration;

use aether_proto::api::ai::{ProviderKind, TokenUsage};
use aether_proto::{ErrorBody, ErrorCode};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// What a provider is asked.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub system: Option<String>,
    pub prompt: String,
    pub model: String,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    /// Answer with JSON matching this schema.
    pub schema: Option<Value>,
}

/// A piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Usage(TokenUsage),
    /// The model is done, and why (a stream that ends without one was cut).
    Finish(String),
}

pub type Pieces = BoxStream<'static, Result<Piece, ProviderError>>;

/// A tool as a model sees it.
#[derive(Debug, Clone)]
pub struct FunctionDecl {
    /// The bus topic with its dots made underscores (`vfs.read` → `vfs_read`): not every
    /// provider takes dots in a name.
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// A tool's name as models see it.
pub fn function_name(topic: &str) -> String {
    topic.replace('.', "_")
}

/// One model turn of a chat: its words, the tools it calls, its message in the
/// provider's own form, and what it cost.
#[derive(Debug, Clone)]
pub struct Turn {
    pub text: String,
    pub calls: Vec<aether_proto::api::ai::ToolCall>,
    pub raw: Value,
    pub usage: TokenUsage,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ProviderError {
    #[error("rate limited: {msg}")]
    RateLimited {
        retry_after: Option<Duration>,
        msg: String,
    },
    #[error("the provider failed ({status}): {msg}")]
    Server { status: u16, msg: String },
    #[error("the provider refused the request ({status}): {msg}")]
    Refused { status: u16, msg: String },
    #[error("cannot reach the provider: {0}")]
    Network(String),
    #[error("no answer within {} s", .0.as_secs_f32())]
    Timeout(Duration),
    #[error("the answer is not in the provider's format: {0}")]
    Malformed(String),
    #[error("the stream ended before the answer did")]
    Truncated,
}

impl ProviderError {
    /// Worth another try: rate limits, server errors, lost connections, timeouts.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. }
                | ProviderError::Server { .. }
                | ProviderError::Network(_)
                | ProviderError::Timeout(_)
        )
    }

    /// The error a client gets, naming the provider.
    pub fn to_body(&self, provider: &str) -> ErrorBody {
        let msg = format!("AI provider {provider:?}: {self}");
        match self {
            ProviderError::RateLimited { retry_after, .. } => {
                let body = ErrorBody::new(ErrorCode::RateLimited, msg);
                match retry_after {
                    Some(wait) => body.retry_after(*wait),
                    None => body,
                }
            }
            ProviderError::Timeout(_) => ErrorBody::new(ErrorCode::Timeout, msg),
            ProviderError::Refused {
                status: 401 | 403, ..
            } => ErrorBody::new(
                ErrorCode::Unavailable,
                format!("{msg} (check the provider's key in the daemon's config)"),
            ),
            ProviderError::Refused { .. } => ErrorBody::new(ErrorCode::BadFrame, msg),
            ProviderError::Server { .. }
            | ProviderError::Network(_)
            | ProviderError::Malformed(_)
            | ProviderError::Truncated => ErrorBody::new(ErrorCode::Unavailable, msg),
        }
    }
}

/// Where a provider is reached and how: its wire format, base URL, key and client.
pub struct Endpoint {
    pub kind: ProviderKind,
    pub base_url: String,
    pub(super) key: Option<SecretString>,
    pub(super) http: reqwest::Client,
    /// The longest wait for an answer's first byte.
    pub idle_timeout: Duration,
}

impl Endpoint {
    pub(super) fn post(&self, url: String, body: &Value) -> reqwest::RequestBuilder {
        self.http.post(url).json(body)
    }

    /// Attach the key the way this provider wants it.
    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (&self.key, self.kind) {
            (Some(key), ProviderKind::Gemini) => {
                request.header("x-goog-api-key", key.expose_secret())
            }
            (Some(key), ProviderKind::Openai) => request.bearer_auth(key.expose_secret()),
            (None, _) => request,
        }
    }

    /// Send, wait for the head of the answer (within the idle timeout), and turn an
    /// unsuccessful status into the error it means.
    pub(super) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        let request = self.authorize(request);
        let response = tokio::time::timeout(self.idle_timeout, request.send())
            .await
            .map_err(|_| ProviderError::Timeout(self.idle_timeout))?
            .map_err(|e| ProviderError::Network(describe(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = tokio::time::timeout(self.idle_timeout, response.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let (msg, hinted_wait) = error_message(&body);
        let status = status.as_u16();
        Err(match status {
            429 => ProviderError::RateLimited {
                retry_after: retry_after.or(hinted_wait),
                msg,
            },
            500..=599 => ProviderError::Server { status, msg },
            _ => ProviderError::Refused { status, msg },
        })
    }

    /// Send a JSON request and read a JSON answer.
    pub(super) async fn json(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, ProviderError> {
        let response = self.send(request).await?;
        let bytes = tokio::time::timeout(self.idle_timeout, response.bytes())
            .await
            .map_err(|_| ProviderError::Timeout(self.idle_timeout))?
            .map_err(|e| ProviderError::Network(describe(&e)))?;
        serde_json::from_slice(&bytes).map_err(|e| ProviderError::Malformed(e.to_string()))
    }
}

/// reqwest's error and its causes, on one line.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The message in an error body (`{"error":{"message":…}}` in both formats), and a wait
/// Gemini may name in it (`RetryInfo.retryDelay`, e.g. `"7s"`).
pub(super) fn error_message(body: &str) -> (String, Option<Duration>) {
    let Ok(json) = serde_json::from_str::<Value>(body) else {
        let text: String = body.chars().take(300).collect();
        return (
            if text.trim().is_empty() {
                "(no message)".into()
            } else {
                text.trim().to_owned()
            },
            None,
        );
    };
    let error = json.get("error").unwrap_or(&json);
    let msg = error
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| error.to_string().chars().take(300).collect());
    let wait = error
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("retryDelay").and_then(Value::as_str))
        .filter_map(|d| d.strip_suffix('s')?.parse::<f64>().ok())
        .filter_map(|secs| Duration::try_from_secs_f64(secs).ok())
        .next();
    (msg, wait)
}

/// A server-sent-events answer as pieces: `parse` reads each event's data. A `[DONE]`
/// One chunk of a stream as JSON, or the error the provider sent in its place (both
/// formats send `{"error": {"message", "code"?}}` mid-stream).
pub(super) fn stream_chunk(data: &str) -> Result<Value, ProviderError> {
    let chunk: Value =
        serde_json::from_str(data).map_err(|e| ProviderError::Malformed(e.to_string()))?;
    if let Some(error) = chunk.get("error") {
        let msg = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("an error in the stream");
        return Err(ProviderError::Server {
            status: error["code"].as_u64().unwrap_or(200) as u16,
            msg: msg.to_owned(),
        });
    }
    Ok(chunk)
}

/// event ends it (OpenAI); a stream that ends with no `Finish` piece was cut.
pub(super) fn sse_pieces(
    response: reqwest::Response,
    parse: fn(&str) -> Result<Vec<Piece>, ProviderError>,
) -> Pieces {
    struct State {
        events: BoxStream<'static, Result<eventsource_stream::Event, String>>,
        queue: VecDeque<Piece>,
        finished: bool,
        over: bool,
    }
    let events = response
        .bytes_stream()
        .eventsource()
        .map(|event| event.map_err(|e| e.to_string()))
        .boxed();
    let state = State {
        events,
        queue: VecDeque::new(),
        finished: false,
        over: false,
    };
    stream::unfold(state, move |mut state| async move {
        loop {
            if let Some(piece) = state.queue.pop_front() {
                return Some((Ok(piece), state));
            }
            if state.over {
                return None;
            }
            match state.events.next().await {
                Some(Ok(event)) if event.data.trim() == "[DONE]" => {
                    state.over = true;
                    if !state.finished {
                        state.finished = true;
                        state.queue.push_back(Piece::Finish("stop".into()));
                    }
                }
                Some(Ok(event)) if event.data.trim().is_empty() => {}
                Some(Ok(event)) => match parse(&event.data) {
                    Ok(pieces) => {
                        state.finished |= pieces.iter().any(|p| matches!(p, Piece::Finish(_)));
                        state.queue.extend(pieces);
                    }
                    Err(e) => {
                        state.over = true;
                        return Some((Err(e), state));
                    }
                },
                Some(Err(e)) => {
                    state.over = true;
                    return Some((Err(ProviderError::Network(e)), state));
                }
                None => {
                    state.over = true;
                    if !state.finished {
                        return Some((Err(ProviderError::Truncated), state));
                    }
                }
            }
        }
    })
    .boxed()
}
