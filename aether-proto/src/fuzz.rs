//! Entry points for fuzzing (`fuzz/`, and the corpus replay the tests run): each takes
//! arbitrary bytes the way untrusted input reaches the decoder, and checks what must hold
//! beyond not panicking.

use crate::frame::{ClientFrame, for_each_frame};
use crate::manifest::Manifest;
use crate::topic::{Pattern, Topic};

/// A client's WebSocket message: every frame in it, the fast and the precise parser.
pub fn frames(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for_each_frame(text, |_| {});
    if let Ok(frame) = ClientFrame::parse(text) {
        // What parses once parses again from its own JSON.
        let again = serde_json::to_string(&frame).expect("a parsed frame serializes");
        ClientFrame::parse(&again).expect("a frame's own JSON parses");
    }
}

/// A topic and a pattern (the first line and the rest): parsing, matching, and a topic
/// always matching itself as a pattern.
pub fn topics(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (topic, pattern) = text.split_once('\n').unwrap_or((&text, ""));
    let topic = Topic::parse(topic);
    let pattern = Pattern::parse(pattern);
    if let (Ok(topic), Ok(pattern)) = (&topic, &pattern) {
        let _ = pattern.matches(topic);
    }
    if let Ok(topic) = topic {
        assert!(
            topic.as_pattern().matches(&topic),
            "{topic:?} must match itself"
        );
    }
}

/// A `manifest.json`: refused with a reason, or accepted and stable through its own JSON.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(manifest) = Manifest::from_json("fuzz.json", text) {
        let again = serde_json::to_string(&manifest).expect("a manifest serializes");
        let back = Manifest::from_json("fuzz.json", &again).expect("its own JSON is valid");
        assert_eq!(back, manifest);
    }
}
