//! JSON Schema of the wire frames, published as `docs/protocol.schema.json`: one standard
//! Draft 2020-12 document that any validator loads whole. It validates a frame in either
//! direction; every type is in `$defs`, with each call's request and answer as
//! `call:<topic>:request` / `call:<topic>:answer` and each event's payload as
//! `event:<topic>` (`*` standing for an id).

use serde_json::{Map, Value, json};

use crate::frame::{ClientFrame, ServerFrame};

/// The formats Draft 2020-12 defines; Rust's number formats (`uint64`, `int32`…) are not
/// among them, and a strict validator refuses what it does not know.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// One document holding the schema of both directions, every call and every event.
pub fn protocol_schema() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let client = generator.subschema_for::<ClientFrame>();
    let server = generator.subschema_for::<ServerFrame>();
    let mut named = Map::new();
    for call in crate::api::all_calls() {
        let request = (call.request)(&mut generator);
        let answer = (call.answer)(&mut generator);
        named.insert(format!("call:{}:request", call.topic), request.to_value());
        named.insert(format!("call:{}:answer", call.topic), answer.to_value());
    }
    for event in crate::api::EVENTS {
        let payload = (event.payload)(&mut generator);
        named.insert(format!("event:{}", event.topic), payload.to_value());
    }
    let mut defs: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    defs.extend(named);
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Aether wire protocol, version 1",
        "description": "One JSON object per WebSocket text message, tagged by `t`: a frame a \
            client sends (`$defs/ClientFrame`) or one the daemon sends (`$defs/ServerFrame`). \
            `$defs` also holds each call's request and answer (`call:<topic>:request`, \
            `call:<topic>:answer`) and each event's payload (`event:<topic>`, `*` standing \
            for an id). See docs/protocol.md.",
        "anyOf": [client.to_value(), server.to_value()],
        "$defs": defs,
    });
    standard_formats_only(&mut schema);
    schema
}

/// Drop `format`s a standard validator does not know (numbers keep their `minimum` and
/// `maximum`, which say the same).
fn standard_formats_only(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            if fields
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !STANDARD_FORMATS.contains(&f))
            {
                fields.remove("format");
            }
            fields.values_mut().for_each(standard_formats_only);
        }
        Value::Array(items) => items.iter_mut().for_each(standard_formats_only),
        _ => {}
    }
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

    /// The whole document in Python's `jsonschema` (Draft 2020-12), as a client in
    /// another language would load it, with frames, answers and events checked against it.
    #[test]
    fn a_standard_validator_loads_the_schema_and_accepts_real_frames() {
        let samples = serde_json::json!({
            "frame": [
                { "t": "hello", "v": 1, "auth": { "kind": "token", "token": "aet_x" }, "batch": true },
                { "t": "sub", "id": 7, "app": "files", "topic": "vfs.events.>" },
                { "t": "pub", "app": "chat", "topic": "app.chat.x", "data": { "n": 1 } },
                { "t": "req", "id": 9, "app": "files", "topic": "vfs.read", "data": { "path": "/a" }, "timeout_ms": 0 },
                { "t": "res", "id": 9, "data": { "data": "hi" } },
                { "t": "err", "id": 9, "code": "not_found", "msg": "no /a" },
                { "t": "err", "code": "bad_frame", "msg": "not JSON" },
                { "t": "msg", "sub": 7, "topic": "vfs.events.written",
                  "from": { "user": "ana", "app": "editor" }, "data": { "path": "/a" } },
                { "t": "bye", "reason": "too_large", "msg": "the limit is 4194304 bytes" },
            ],
            "call:vfs.write:request": [{ "path": "/a", "data": "x", "append": true }],
            "call:agent.approve:request": [{ "id": "g1", "node": "n", "result": { "stdout": "" } }],
            "call:chat.rooms:answer": [{ "rooms": [], "more_public": "a0199" }],
            "event:vfs.events.written": [{ "path": "/a", "kind": "file", "size": 3, "version": "v1" }],
            "event:vm.job.*.exit": [{ "job": "j1", "ending": "exited", "code": 0, "error": null, "micros": 12 }],
            "event:vm.job.*.stdout": [{ "seq": 0, "stream": "stdout", "encoding": "utf8", "data": "hi\n" }],
            "event:ai.stream.*.notice": [{ "kind": "waiting", "silent_ms": 10000 },
                { "kind": "retrying", "attempt": 1, "of": 4, "wait_ms": 200, "why": "overloaded" }],
            "event:agent.graph.*.state": [{ "state": "running", "parent": "g1" }],
            "event:chat.room.*.message": [{ "room": "team", "seq": 1, "user": "ana", "text": "hi", "at_ms": 1 }],
            "event:presence.changed": [{ "user": "ana", "state": "away" }],
            "event:apps.events.progress": [{ "id": "todo", "step": "compile", "done": 2, "of": 5 }],
            "event:telemetry.*.*": [{ "op": "write", "ok": true, "micros": 3, "path": "/a" }],
        });
        let dir = std::env::temp_dir().join(format!("aether-schema-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let samples_path = dir.join("samples.json");
        std::fs::write(&samples_path, samples.to_string()).unwrap();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let out = std::process::Command::new("python3")
            .arg(format!("{root}/scripts/check-schema.py"))
            .arg(format!("{root}/docs/protocol.schema.json"))
            .arg(&samples_path)
            .output()
            .expect("python3 runs (scripts/test-deps installs what the tests need)");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "{}{} (scripts/test-deps installs Python's jsonschema)",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn every_reference_resolves_and_every_format_is_standard() {
        let schema = super::protocol_schema();
        let text = schema.to_string();
        let defs = schema["$defs"].as_object().unwrap();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let target = reference.split('"').next().unwrap();
            let name = target
                .strip_prefix("#/$defs/")
                .unwrap_or_else(|| panic!("a reference outside the document: {target}"));
            assert!(defs.contains_key(name), "{target} resolves to nothing");
        }
        assert!(!text.contains("uint64") && !text.contains("\"int32\""));
        assert!(defs.contains_key("event:vm.job.*.exit"));
        assert!(defs.contains_key("call:vfs.read:request"));
    }
}
