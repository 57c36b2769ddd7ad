//! One interface over the providers' wire formats: a prompt in, a stream of pieces out
//! (text, token usage, why it finished), and errors sorted by what to do about them
//! (wait and retry, give up, tell the user to fix the config).

use std::collections::VecDeque;
use std::time::Duration;

use aether_proto::api::ai::{ProviderInfo, ProviderKind, TokenUsage};
use aether_proto::{ErrorBody, ErrorCode};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::{gemini, openai};
use crate::config::{AiConfig, AiProvider};

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

/// A configured provider, ready to ask.
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub model: String,
    pub embed_model: Option<String>,
    key: Option<SecretString>,
    http: reqwest::Client,
    /// The longest wait for an answer's first byte.
    pub idle_timeout: Duration,
}

impl Provider {
    pub fn new(config: &AiProvider, ai: &AiConfig) -> anyhow::Result<Provider> {
        let key = config.api_key.clone().or_else(|| {
            let var = config
                .api_key_env
                .clone()
                .unwrap_or_else(|| default_key_variable(config.kind).into());
            std::env::var(var).ok().map(SecretString::from)
        });
        let base_url = config
            .base_url
            .clone()
            .unwrap_or_else(|| default_base_url(config.kind).into())
            .trim_end_matches('/')
            .to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(ai.connect_timeout_ms))
            // A redirect could carry the key's header to another host: none are followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("aetherd/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Provider {
            name: config.name.clone(),
            kind: config.kind,
            base_url,
            model: config.model.clone(),
            embed_model: config.embed_model.clone(),
            key,
            http,
            idle_timeout: Duration::from_millis(ai.idle_timeout_ms),
        })
    }

    /// The error a client gets, naming the provider, with the key and anything shaped
    /// like a credential taken out: a provider (or a proxy before it) may echo them.
    pub fn error_body(&self, error: &ProviderError) -> ErrorBody {
        let mut body = error.to_body(&self.name);
        body.msg = redact(&body.msg, self.key.as_ref().map(|k| k.expose_secret()));
        body
    }

    pub fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: self.name.clone(),
            kind: self.kind,
            base_url: self.base_url.clone(),
            model: self.model.clone(),
            embed_model: self.embed_model.clone(),
            has_key: self.key.is_some(),
            reachable: None,
            latency_ms: None,
            error: None,
        }
    }

    /// Ask, and stream the answer's pieces. Errors before the first piece come here;
    /// later ones come in the stream.
    pub async fn stream(&self, prompt: &Prompt) -> Result<Pieces, ProviderError> {
        match self.kind {
            ProviderKind::Gemini => gemini::stream(self, prompt).await,
            ProviderKind::Openai => openai::stream(self, prompt).await,
        }
    }

    pub async fn chat_turn(
        &self,
        model: &str,
        system: Option<&str>,
        messages: &[aether_proto::api::ai::ChatMessage],
        tools: &[FunctionDecl],
        max_tokens: Option<u32>,
    ) -> Result<Turn, ProviderError> {
        match self.kind {
            ProviderKind::Gemini => {
                gemini::chat_turn(self, model, system, messages, tools, max_tokens).await
            }
            ProviderKind::Openai => {
                openai::chat_turn(self, model, system, messages, tools, max_tokens).await
            }
        }
    }

    /// An image for `prompt`, as (mime, base64 bytes).
    pub async fn image(
        &self,
        prompt: &str,
        model: &str,
    ) -> Result<(String, String), ProviderError> {
        match self.kind {
            ProviderKind::Gemini => gemini::image(self, prompt, model).await,
            ProviderKind::Openai => openai::image(self, prompt, model).await,
        }
    }

    pub async fn embed(
        &self,
        texts: &[String],
        model: &str,
    ) -> Result<(Vec<Vec<f32>>, TokenUsage), ProviderError> {
        match self.kind {
            ProviderKind::Gemini => gemini::embed(self, texts, model).await,
            ProviderKind::Openai => openai::embed(self, texts, model).await,
        }
    }

    /// A cheap request that proves the provider answers and takes the key.
    pub async fn probe(&self) -> Result<(), ProviderError> {
        let url = match self.kind {
            ProviderKind::Gemini => format!("{}/models?pageSize=1", self.base_url),
            ProviderKind::Openai => format!("{}/models", self.base_url),
        };
        self.send(self.http.get(url)).await.map(|_| ())
    }

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

/// `text` with `key` and whatever looks like a credential replaced by `[redacted]`:
/// bearer and basic credentials, OpenAI and Google key shapes, JWTs, `key=…`-like pairs,
/// and long runs of letters mixed with digits.
pub fn redact(text: &str, key: Option<&str>) -> String {
    use std::sync::LazyLock;
    static SHAPES: LazyLock<Vec<(regex::Regex, &'static str)>> = LazyLock::new(|| {
        [
            (r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=*-]+", "$1$2[redacted]"),
            (r"\bsk-[A-Za-z0-9_*.-]{4,}", "[redacted]"),
            (r"\bAIza[0-9A-Za-z_*-]{8,}", "[redacted]"),
            (r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*", "[redacted]"),
            (
                r#"(?i)\b(api[_-]?key|x-goog-api-key|key|access[_-]?token|token|secret|password|authorization)(["']?\s*[:=]\s*["']?)[^\s"'&,;)]+"#,
                "$1$2[redacted]",
            ),
            (r"[A-Za-z0-9_-]{32,}", "$0"),
        ]
        .into_iter()
        .filter_map(|(shape, with)| regex::Regex::new(shape).ok().map(|r| (r, with)))
        .collect()
    });
    let mut out = text.to_owned();
    if let Some(key) = key.map(str::trim).filter(|k| k.len() >= 4) {
        out = out.replace(key, "[redacted]");
    }
    for (shape, with) in SHAPES.iter() {
        if *with == "$0" {
            // Long mixed runs (32 characters or more) are keys more often than words.
            out = shape
                .replace_all(&out, |m: &regex::Captures| {
                    let run = &m[0];
                    let mixed = run.bytes().any(|b| b.is_ascii_digit())
                        && run.bytes().any(|b| b.is_ascii_alphabetic());
                    if mixed {
                        "[redacted]".to_owned()
                    } else {
                        run.to_owned()
                    }
                })
                .into_owned();
        } else {
            out = shape.replace_all(&out, *with).into_owned();
        }
    }
    out
}

/// A model name that is safe in a URL path: letters, digits, `.`, `_`, `-`, `:`.
pub fn check_model(model: &str) -> Result<(), ErrorBody> {
    let ok = !model.is_empty()
        && model.len() <= 128
        && model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
        && !model.contains("..");
    if ok {
        Ok(())
    } else {
        Err(ErrorBody::new(
            ErrorCode::BadFrame,
            format!("model {model:?}: use letters, digits, `.`, `_`, `-` and `:` only"),
        ))
    }
}

fn default_key_variable(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Gemini => "GEMINI_API_KEY",
        ProviderKind::Openai => "OPENAI_API_KEY",
    }
}

fn default_base_url(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Gemini => "https://generativelanguage.googleapis.com/v1beta",
        ProviderKind::Openai => "https://api.openai.com/v1",
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
fn error_message(body: &str) -> (String, Option<Duration>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_both_formats_read_well() {
        let (msg, wait) = error_message(
            r#"{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED",
            "details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"7s"}]}}"#,
        );
        assert_eq!(msg, "Resource exhausted");
        assert_eq!(wait, Some(Duration::from_secs(7)));
        let (msg, _) = error_message(r#"{"error":{"message":"bad key","type":"auth"}}"#);
        assert_eq!(msg, "bad key");
        let (msg, _) = error_message("<html>gateway</html>");
        assert_eq!(msg, "<html>gateway</html>");
        assert_eq!(error_message("").0, "(no message)");
    }

    #[test]
    fn odd_waits_and_model_names_are_refused_not_panicked_on() {
        for delay in ["-1s", "NaNs", "1e30s", "infs"] {
            let body =
                format!(r#"{{"error":{{"message":"m","details":[{{"retryDelay":"{delay}"}}]}}}}"#);
            assert_eq!(error_message(&body).1, None, "{delay}");
        }
        assert!(check_model("gemini-2.5-flash").is_ok());
        assert!(check_model("llama3.2:8b").is_ok());
        for bad in ["../../x#", "a/b", "m?key=1", "", "a b"] {
            assert!(check_model(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_and_credential_shapes_never_pass_through() {
        let key = "sk-live-0123456789abcdefghijklmnop";
        for echoed in [
            format!("Incorrect API key provided: Bearer {key}"),
            format!("Incorrect API key provided: {key}. You can find your API key at …"),
            "Incorrect API key provided: sk-abc12***************************wxyz".to_owned(),
            "API key not valid. Please pass a valid API key. key=AIzaSyA-1234567890abcdefghijklmnopqrstu".to_owned(),
            r#"{"x-goog-api-key": "AIzaSyA-1234567890abcdefghijklmno"}"#.to_owned(),
            "Authorization: Basic dXNlcjpwYXNzd29yZA==".to_owned(),
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl rejected".to_owned(),
            "proxy says: secret=hunter2&user=me".to_owned(),
            "unknown credential 9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddcc".to_owned(),
        ] {
            let clean = redact(&echoed, Some(key));
            assert!(clean.contains("[redacted]"), "{echoed} -> {clean}");
            for secret in [
                key, "sk-abc12", "AIzaSy", "dXNlcjpw", "eyJhbGci", "hunter2", "9f8e7d6c",
            ] {
                assert!(!clean.contains(secret), "{echoed} -> {clean}");
            }
        }
        // Ordinary words, numbers and model names stay readable.
        let plain = "model gpt-4o-mini not found (404); try again in 30 s";
        assert_eq!(redact(plain, Some(key)), plain);
    }

    #[test]
    fn errors_map_to_codes_a_client_can_act_on() {
        let limited = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
            msg: "slow down".into(),
        };
        let body = limited.to_body("p");
        assert_eq!(body.code, ErrorCode::RateLimited);
        assert_eq!(body.retry_after_ms, Some(2000));
        let key = ProviderError::Refused {
            status: 401,
            msg: "no".into(),
        };
        assert!(key.to_body("p").msg.contains("key"));
        assert!(!key.retryable());
        assert!(
            ProviderError::Truncated
                .to_body("p")
                .msg
                .contains("ended before")
        );
    }
}
