//! JSON Schema of the wire frames, published as `docs/protocol.schema.json`.

use crate::frame::{ClientFrame, ServerFrame};

/// One document holding the schema of both directions, and of every call's request and answer.
pub fn protocol_schema() -> serde_json::Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let calls: serde_json::Map<String, serde_json::Value> = crate::api::all_calls()
        .map(|call| {
            let schema = serde_json::json!({
                "request": (call.request)(&mut generator),
                "answer": (call.answer)(&mut generator),
            });
            (call.topic.to_owned(), schema)
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Aether wire protocol",
        "description": "One JSON object per WebSocket text message, tagged by `t`. See docs/protocol.md.",
        "version": crate::frame::PROTOCOL_VERSION,
        "client_to_daemon": schemars::schema_for!(ClientFrame),
        "daemon_to_client": schemars::schema_for!(ServerFrame),
        "calls": calls,
        "$defs": generator.take_definitions(true),
    })
}

/// The schema as committed: pretty JSON with a trailing newline.
pub fn protocol_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&protocol_schema()).expect("schema serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.schema.json");
        let generated = super::protocol_schema_text();
        if std::env::var_os("AETHER_UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/protocol.schema.json is stale: run AETHER_UPDATE_SCHEMA=1 cargo test -p aether-proto"
        );
    }
}
