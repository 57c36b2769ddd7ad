//! Typed events: for each family a service publishes, the pattern a client subscribes to,
//! the topic of one event built from its parts, and the parts read back from a topic. The
//! one place an event topic is spelled, as [`super::Call`] is for requests: services
//! publish and clients parse through these, never with `format!` or `strip_prefix`.

/// A family of event topics.
pub trait Event {
    /// Covers every event of the family: what a client subscribes to.
    const PATTERN: &'static str;
    /// What a topic of the family names (ids, kinds), borrowed from the topic.
    type Parts<'a>;
    /// The topic of the event `parts` names.
    fn topic(parts: &Self::Parts<'_>) -> String;
    /// What `topic` names, or None when it is not one of the family's.
    fn parse(topic: &str) -> Option<Self::Parts<'_>>;
}
