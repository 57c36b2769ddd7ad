//! `ai.*`: text and embeddings from the language-model providers the daemon is configured
//! with (Gemini, or any OpenAI-compatible server: OpenAI, Ollama, llama.cpp, vLLM).
//!
//! `ai.generate` streams by default: it answers at once with a stream id, and the text
//! arrives as `ai.stream.<id>.delta` events, then one `ai.stream.<id>.done` (the whole
//! answer and its token usage) or `ai.stream.<id>.error`. Subscribe to `ai.stream.>`
//! before asking, as with `vm.job.>`: the first delta may beat the answer. While nothing
//! comes, `ai.stream.<id>.notice` says why: the provider has been silent for a while, or
//! it failed and the call is tried again after a wait.
//!
//! With no provider configured every call answers `unavailable`, saying how to set one up.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::calls;

super::event::id_events! {
    /// A stream's events: `ai.stream.<id>.delta` ([`Delta`]), `.done` ([`Generated`]),
    /// `.error` (an error body) and `.notice` ([`Notice`]: a wait or a retry).
    StreamEvents, StreamEvent, StreamEventKind, "ai.stream",
    { Delta => "delta", Done => "done", Error => "error", Notice => "notice" }
}

/// Where every stream's events go.
pub const STREAMS: &str = <StreamEvents as super::Event>::PATTERN;

/// The largest prompt (system and user text together) a request may carry.
pub const MAX_PROMPT_BYTES: usize = 1 << 20;

fn yes() -> bool {
    true
}

/// What is configured, whether each provider answers, and this user's usage today.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Status {
    /// Ask each provider whether it is reachable (a short request to each).
    #[serde(default)]
    pub probe: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StatusAnswer {
    pub providers: Vec<ProviderInfo>,
    /// The provider a request that names none goes to.
    pub default: Option<String>,
    /// How to configure a provider, when none is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// This user's tokens today, by app.
    pub usage: Vec<Usage>,
    /// Tokens (in and out) a user may spend per day, if limited.
    pub daily_token_quota: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Gemini,
    /// Any server with OpenAI's chat-completions API.
    Openai,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProviderInfo {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub model: String,
    pub embed_model: Option<String>,
    /// Whether a key is set (the key itself never leaves the daemon).
    pub has_key: bool,
    /// With `probe`: whether it answered, how fast, or why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Tokens one app of the user spent today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    pub app: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Text from a prompt.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// A configured provider's name (default: the default provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// A model other than the provider's configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Answer with JSON that matches this JSON Schema (structured output); the answer's
    /// `json` holds it parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
    /// Stream the text as events (the default), or answer once with all of it.
    #[serde(default = "yes")]
    pub stream: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum GenerateAnswer {
    /// The text follows as events on `topic`.
    Streaming(StreamStarted),
    /// `stream: false`: all of it.
    Done(Generated),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StreamStarted {
    pub stream: String,
    /// `ai.stream.<stream>`.
    pub topic: String,
    pub provider: String,
    pub model: String,
}

/// A whole answer: `ai.generate` with `stream: false`, and the `done` event of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Generated {
    pub text: String,
    /// With a `schema`: the text parsed as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    pub provider: String,
    pub model: String,
    pub usage: TokenUsage,
    /// Why the model stopped, in the provider's words (`stop`, `length`, `MAX_TOKENS`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
}

/// `ai.stream.<id>.delta`: the next piece of text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Delta {
    pub seq: u64,
    pub text: String,
}

/// `ai.stream.<id>.notice`: why nothing comes yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// The provider has said nothing for this long (sent every 10 s of silence).
    Waiting { silent_ms: u64 },
    /// Try `attempt` failed (`why`); the next starts after `wait_ms`. `of`: the most tries.
    Retrying {
        attempt: u32,
        of: u32,
        wait_ms: u64,
        why: String,
    },
}

/// Stop a stream: no more events come but its `error` (`cancelled`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    pub stream: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CancelAnswer {
    /// False when it had already ended.
    pub cancelled: bool,
}

/// Vectors for texts, to compare them by meaning.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Embed {
    pub texts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Embedded {
    /// One per text, in order.
    pub vectors: Vec<Vec<f32>>,
    pub provider: String,
    pub model: String,
    pub usage: TokenUsage,
}

/// A conversation turn, with bus tools the model may call: each call is a bus request made
/// as the calling app and checked like any other; its result (or error) goes back to the
/// model, in a loop, until it answers in words or `max_steps` is reached.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Chat {
    /// The conversation so far, ending with the user's message. Send back the messages
    /// earlier answers gave (with their `raw`) to continue a conversation.
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Bus topics the model may call, from the agent tools (`vfs.read`, `vfs.list`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Model turns at most (default 8, at most 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    /// A tool's result, answering the call `call_id`.
    Tool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatMessage {
    pub role: Role,
    #[serde(default)]
    pub text: String,
    /// An assistant's tool calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<ToolCall>,
    /// A tool message: the call it answers and the tool's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The provider's own form of an assistant message (`kind` says whose), sent back
    /// verbatim on the next turn: Gemini's `thoughtSignature` must be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawTurn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RawTurn {
    pub kind: ProviderKind,
    pub content: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolCall {
    pub id: String,
    /// The bus topic.
    pub tool: String,
    pub args: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Chatted {
    /// The messages this turn added (the model's, and the tools' results), to append.
    pub messages: Vec<ChatMessage>,
    /// The model's last words.
    pub text: String,
    pub provider: String,
    pub model: String,
    pub usage: TokenUsage,
    /// Model turns taken.
    pub steps: u32,
}

/// An image from a prompt, saved into the user's files (as the calling app, so it needs
/// `vfs_write` too).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub prompt: String,
    /// Where to save it; the image's own extension is added when the path has none.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// An image model (e.g. `gemini-2.5-flash-image`, `gpt-image-1`); default: the
    /// provider's model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ImageSaved {
    pub path: String,
    pub mime: String,
    pub size: u64,
    pub provider: String,
    pub model: String,
}

/// The most texts one `ai.embed` takes.
pub const MAX_EMBED_TEXTS: usize = 256;

calls! {
    Status => StatusAnswer, "ai.status";
    Generate => GenerateAnswer, "ai.generate";
    Cancel => CancelAnswer, "ai.cancel";
    Embed => Embedded, "ai.embed";
    Chat => Chatted, "ai.chat";
    Image => ImageSaved, "ai.image";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_streams_unless_told_not_to() {
        let ask: Generate = serde_json::from_str(r#"{"prompt":"hi"}"#).unwrap();
        assert!(ask.stream);
        let ask: Generate = serde_json::from_str(r#"{"prompt":"hi","stream":false}"#).unwrap();
        assert!(!ask.stream);
        assert!(serde_json::from_str::<Generate>(r#"{"prompt":"hi","tone":"x"}"#).is_err());
    }

    #[test]
    fn the_two_answers_tell_apart() {
        let streaming = r#"{"stream":"s1","topic":"ai.stream.s1","provider":"p","model":"m"}"#;
        assert!(matches!(
            serde_json::from_str::<GenerateAnswer>(streaming).unwrap(),
            GenerateAnswer::Streaming(_)
        ));
        let done = r#"{"text":"hi","provider":"p","model":"m","usage":{"input":1,"output":2}}"#;
        assert!(matches!(
            serde_json::from_str::<GenerateAnswer>(done).unwrap(),
            GenerateAnswer::Done(_)
        ));
    }
}
