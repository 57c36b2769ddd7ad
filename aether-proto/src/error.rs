//! The closed set of error codes a daemon answers with.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Every error the protocol can carry. Bad input gets an `err` frame and the
/// connection lives on; only `too_large`, a failed hello and a slow consumer close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON, has an unknown `t`, or a field is missing or mistyped.
    BadFrame,
    /// The topic or pattern is malformed.
    BadTopic,
    /// No valid identity: missing, wrong or expired credentials, or a frame before hello.
    Unauthenticated,
    /// The identity may not do this (app binding, capability, namespace).
    Forbidden,
    NotFound,
    Conflict,
    /// The frame or payload is over a size limit.
    TooLarge,
    QuotaExceeded,
    Timeout,
    /// Nobody serves the requested topic.
    NoResponders,
    /// A per-connection limit was reached (subscriptions, pending requests).
    RateLimited,
    Cancelled,
    /// The service or responder went away or is not configured.
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::BadFrame,
        ErrorCode::BadTopic,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::TooLarge,
        ErrorCode::QuotaExceeded,
        ErrorCode::Timeout,
        ErrorCode::NoResponders,
        ErrorCode::RateLimited,
        ErrorCode::Cancelled,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::BadTopic => "bad_topic",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::Timeout => "timeout",
            ErrorCode::NoResponders => "no_responders",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as it travels: a code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{code}: {msg}")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub msg: String,
    /// With `rate_limited`: when trying again may succeed, in milliseconds from now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        ErrorBody {
            code,
            msg: msg.into(),
            retry_after_ms: None,
        }
    }

    /// Say when trying again may succeed.
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after_ms = Some(wait.as_millis().min(u64::MAX as u128) as u64);
        self
    }
}

/// A responder's error as it wrote it: a code in the closed set stays as it is; another
/// code, or an error that is not `{code, msg}`, becomes `internal` saying what it was, so
/// the one waiting for the answer gets one.
pub fn lenient<'de, D>(deserializer: D) -> Result<Option<ErrorBody>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    let Some(value) = value else {
        return Ok(None);
    };
    if let Ok(body) = serde_json::from_value::<ErrorBody>(value.clone()) {
        return Ok(Some(body));
    }
    let msg = value
        .get("msg")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let text = match value.get("code").and_then(serde_json::Value::as_str) {
        Some(code) => format!(
            "the responder answered with {code:?}, which is not an error code of the \
             protocol: {msg}"
        ),
        None => format!("the responder answered with an error that is not {{code, msg}}: {value}"),
    };
    let text: String = text.chars().take(1000).collect();
    Ok(Some(ErrorBody::new(ErrorCode::Internal, text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_with_a_code_outside_the_set_still_answers() {
        let reply: crate::frame::Reply =
            serde_json::from_str(r#"{"to":"1","error":{"code":"teapot","msg":"short and stout"}}"#)
                .unwrap();
        let error = reply.error.unwrap();
        assert_eq!(error.code, ErrorCode::Internal);
        assert!(error.msg.contains("\"teapot\"") && error.msg.contains("short and stout"));
        let reply: crate::frame::Reply =
            serde_json::from_str(r#"{"to":"1","error":{"code":"conflict","msg":"m"}}"#).unwrap();
        assert_eq!(reply.error.unwrap().code, ErrorCode::Conflict);
        let odd: crate::frame::Reply =
            serde_json::from_str(r#"{"to":"1","error":"oops"}"#).unwrap();
        assert_eq!(odd.error.unwrap().code, ErrorCode::Internal);
    }

    #[test]
    fn codes_serialize_as_their_names() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, code);
        }
    }
}
