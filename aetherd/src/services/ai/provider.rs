//! One interface over the providers' wire formats: a configured provider, asked for a
//! stream, a chat turn, an image or embeddings in its own format (`gemini`, `openai`, both
//! on `wire`), and what comes back cleaned of its key.

use std::time::Duration;

use aether_proto::api::ai::{ProviderInfo, ProviderKind, TokenUsage};
use aether_proto::{ErrorBody, ErrorCode};
use secrecy::{ExposeSecret, SecretString};

use super::wire::{Endpoint, FunctionDecl, Pieces, Prompt, ProviderError, Turn};
use super::{gemini, openai};
use crate::config::{AiConfig, AiProvider};

/// A configured provider, ready to ask.
pub struct Provider {
    pub name: String,
    pub model: String,
    pub embed_model: Option<String>,
    pub endpoint: Endpoint,
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
            model: config.model.clone(),
            embed_model: config.embed_model.clone(),
            endpoint: Endpoint {
                kind: config.kind,
                base_url,
                key,
                http,
                idle_timeout: Duration::from_millis(ai.idle_timeout_ms),
            },
        })
    }

    /// The error a client gets, naming the provider, with the key and anything shaped
    /// like a credential taken out: a provider (or a proxy before it) may echo them.
    pub fn error_body(&self, error: &ProviderError) -> ErrorBody {
        let mut body = error.to_body(&self.name);
        body.msg = redact(
            &body.msg,
            self.endpoint.key.as_ref().map(|k| k.expose_secret()),
        );
        body
    }

    pub fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: self.name.clone(),
            kind: self.endpoint.kind,
            base_url: self.endpoint.base_url.clone(),
            model: self.model.clone(),
            embed_model: self.embed_model.clone(),
            has_key: self.endpoint.key.is_some(),
            reachable: None,
            latency_ms: None,
            error: None,
        }
    }

    /// Ask, and stream the answer's pieces. Errors before the first piece come here;
    /// later ones come in the stream.
    pub async fn stream(&self, prompt: &Prompt) -> Result<Pieces, ProviderError> {
        match self.endpoint.kind {
            ProviderKind::Gemini => gemini::stream(&self.endpoint, prompt).await,
            ProviderKind::Openai => openai::stream(&self.endpoint, prompt).await,
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
        match self.endpoint.kind {
            ProviderKind::Gemini => {
                gemini::chat_turn(&self.endpoint, model, system, messages, tools, max_tokens).await
            }
            ProviderKind::Openai => {
                openai::chat_turn(&self.endpoint, model, system, messages, tools, max_tokens).await
            }
        }
    }

    /// An image for `prompt`, as (mime, base64 bytes).
    pub async fn image(
        &self,
        prompt: &str,
        model: &str,
    ) -> Result<(String, String), ProviderError> {
        match self.endpoint.kind {
            ProviderKind::Gemini => gemini::image(&self.endpoint, prompt, model).await,
            ProviderKind::Openai => openai::image(&self.endpoint, prompt, model).await,
        }
    }

    pub async fn embed(
        &self,
        texts: &[String],
        model: &str,
    ) -> Result<(Vec<Vec<f32>>, TokenUsage), ProviderError> {
        match self.endpoint.kind {
            ProviderKind::Gemini => gemini::embed(&self.endpoint, texts, model).await,
            ProviderKind::Openai => openai::embed(&self.endpoint, texts, model).await,
        }
    }

    /// A cheap request that proves the provider answers and takes the key.
    pub async fn probe(&self) -> Result<(), ProviderError> {
        let url = match self.endpoint.kind {
            ProviderKind::Gemini => format!("{}/models?pageSize=1", self.endpoint.base_url),
            ProviderKind::Openai => format!("{}/models", self.endpoint.base_url),
        };
        let endpoint = &self.endpoint;
        endpoint.send(endpoint.http.get(url)).await.map(|_| ())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::ai::wire::error_message;

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
