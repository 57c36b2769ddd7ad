//! Topics and subscription patterns.
//!
//! A topic is dot-separated tokens of `[a-z0-9_-]`. A pattern may also use
//! `*` (exactly one token) and `>` (one or more trailing tokens, last only):
//! the semantics of NATS subjects, so a topic maps 1:1 onto a NATS subject.

use std::fmt;

/// Longest topic or pattern accepted, in bytes.
pub const MAX_TOPIC_BYTES: usize = 256;
/// Most tokens in a topic or pattern.
pub const MAX_TOPIC_TOKENS: usize = 16;

/// Why a topic or pattern was refused. The message names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic is empty")]
    Empty,
    #[error("topic is {0} bytes; the limit is {MAX_TOPIC_BYTES}")]
    TooLong(usize),
    #[error("topic has more than {MAX_TOPIC_TOKENS} tokens")]
    TooManyTokens,
    #[error("topic has an empty token at position {0} (leading, trailing or doubled '.')")]
    EmptyToken(usize),
    #[error("token {0:?} has a character outside [a-z0-9_-]")]
    BadChar(String),
    #[error("wildcard '{0}' is not allowed in a topic you publish or request to")]
    WildcardInTopic(char),
    #[error("'>' may only be the last token")]
    FullWildcardNotLast,
}

/// One token of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Token<'a> {
    Literal(&'a str),
    /// `*`: exactly one token.
    One,
    /// `>`: one or more trailing tokens.
    Rest,
}

fn classify(token: &str) -> Token<'_> {
    match token {
        "*" => Token::One,
        ">" => Token::Rest,
        lit => Token::Literal(lit),
    }
}

fn valid_literal(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn validate(s: &str, allow_wildcards: bool) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_BYTES {
        return Err(TopicError::TooLong(s.len()));
    }
    let mut count = 0;
    let mut tokens = s.split('.').peekable();
    while let Some(token) = tokens.next() {
        count += 1;
        if count > MAX_TOPIC_TOKENS {
            return Err(TopicError::TooManyTokens);
        }
        if token.is_empty() {
            return Err(TopicError::EmptyToken(count - 1));
        }
        match classify(token) {
            Token::Literal(lit) if !valid_literal(lit) => {
                return Err(TopicError::BadChar(truncate(lit)));
            }
            Token::Literal(_) => {}
            Token::One if !allow_wildcards => return Err(TopicError::WildcardInTopic('*')),
            Token::Rest if !allow_wildcards => return Err(TopicError::WildcardInTopic('>')),
            Token::One => {}
            Token::Rest if tokens.peek().is_some() => return Err(TopicError::FullWildcardNotLast),
            Token::Rest => {}
        }
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

/// A concrete topic: what is published or requested. No wildcards.
/// A topic: cheap to clone (shared), since every message carries one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(std::sync::Arc<str>);

impl Topic {
    pub fn parse(s: &str) -> Result<Self, TopicError> {
        validate(s, false)?;
        Ok(Topic(s.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// The first token: the service or area the topic belongs to.
    pub fn root(&self) -> &str {
        self.tokens().next().unwrap_or_default()
    }

    pub fn as_pattern(&self) -> Pattern {
        Pattern(self.0.to_string())
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A subscription pattern: a topic that may use `*` and `>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern(String);

impl Pattern {
    pub fn parse(s: &str) -> Result<Self, TopicError> {
        validate(s, true)?;
        Ok(Pattern(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn tokens(&self) -> impl Iterator<Item = Token<'_>> {
        self.0.split('.').map(classify)
    }

    pub fn is_literal(&self) -> bool {
        self.tokens().all(|t| matches!(t, Token::Literal(_)))
    }

    /// The first token if it is a literal.
    pub fn literal_root(&self) -> Option<&str> {
        match self.tokens().next() {
            Some(Token::Literal(root)) => Some(root),
            _ => None,
        }
    }

    /// Does this pattern match the topic?
    pub fn matches(&self, topic: &Topic) -> bool {
        let mut pattern = self.tokens();
        let mut topic = topic.tokens();
        loop {
            match (pattern.next(), topic.next()) {
                (None, None) => return true,
                (Some(Token::Rest), Some(_)) => return true,
                (Some(Token::One), Some(_)) => {}
                (Some(Token::Literal(p)), Some(t)) if p == t => {}
                _ => return false,
            }
        }
    }

    /// Is every topic `other` matches also matched by `self`?
    /// Used to decide whether a grant covers a whole subscription.
    pub fn covers(&self, other: &Pattern) -> bool {
        let mut mine = self.tokens();
        let mut theirs = other.tokens();
        loop {
            match (mine.next(), theirs.next()) {
                (None, None) => return true,
                (Some(Token::Rest), Some(_)) => return true,
                (Some(Token::One), Some(Token::One | Token::Literal(_))) => {}
                (Some(Token::Literal(a)), Some(Token::Literal(b))) if a == b => {}
                _ => return false,
            }
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }
    fn t(s: &str) -> Topic {
        Topic::parse(s).unwrap()
    }

    #[test]
    fn valid_topics_parse() {
        for s in ["a", "vfs.read", "chat.room.general-1.post", "a_b.c-d.0"] {
            assert!(Topic::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn invalid_topics_are_refused_with_a_reason() {
        assert_eq!(Topic::parse(""), Err(TopicError::Empty));
        assert_eq!(Topic::parse("a..b"), Err(TopicError::EmptyToken(1)));
        assert_eq!(Topic::parse(".a"), Err(TopicError::EmptyToken(0)));
        assert_eq!(Topic::parse("a."), Err(TopicError::EmptyToken(1)));
        assert!(matches!(Topic::parse("a b"), Err(TopicError::BadChar(_))));
        assert!(matches!(
            Topic::parse("Vfs.read"),
            Err(TopicError::BadChar(_))
        ));
        assert!(matches!(
            Topic::parse("vfs.réad"),
            Err(TopicError::BadChar(_))
        ));
        assert!(matches!(Topic::parse("a\0b"), Err(TopicError::BadChar(_))));
        assert_eq!(Topic::parse("a.*"), Err(TopicError::WildcardInTopic('*')));
        assert_eq!(Topic::parse("a.>"), Err(TopicError::WildcardInTopic('>')));
        assert_eq!(
            Pattern::parse("a.>.b"),
            Err(TopicError::FullWildcardNotLast)
        );
        assert!(matches!(Pattern::parse("a*"), Err(TopicError::BadChar(_))));
        let ten_k = vec!["a"; 10_000].join(".");
        assert!(matches!(Topic::parse(&ten_k), Err(TopicError::TooLong(_))));
        let many = vec!["a"; MAX_TOPIC_TOKENS + 1].join(".");
        assert_eq!(Topic::parse(&many), Err(TopicError::TooManyTokens));
    }

    #[test]
    fn matching_follows_nats() {
        assert!(p("a.b").matches(&t("a.b")));
        assert!(!p("a.b").matches(&t("a.b.c")));
        assert!(p("a.*").matches(&t("a.b")));
        assert!(!p("a.*").matches(&t("a")));
        assert!(!p("a.*").matches(&t("a.b.c")));
        assert!(p("a.>").matches(&t("a.b")));
        assert!(p("a.>").matches(&t("a.b.c")));
        assert!(!p("a.>").matches(&t("a")));
        assert!(p(">").matches(&t("x.y")));
        assert!(p("*.b.>").matches(&t("a.b.c.d")));
        assert!(!p("*.b.>").matches(&t("a.c.c.d")));
    }

    #[test]
    fn coverage_is_containment() {
        assert!(p("vfs.events.>").covers(&p("vfs.events.written")));
        assert!(p("vfs.events.>").covers(&p("vfs.events.*")));
        assert!(p("vfs.events.>").covers(&p("vfs.events.>")));
        assert!(!p("vfs.events.>").covers(&p("vfs.>")));
        assert!(!p("vfs.events.*").covers(&p("vfs.events.>")));
        assert!(p("chat.*").covers(&p("chat.*")));
        assert!(!p("chat.post").covers(&p("chat.*")));
        assert!(!p("a.b").covers(&p(">")));
    }
}
