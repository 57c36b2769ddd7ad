//! Entry points for fuzzing the daemon's decoders of untrusted input (`fuzz/`, and the
//! corpus replay the tests run): the WebSocket layer with the gateway's limits, app bundles,
//! catalog indexes, TaskGraphs with their references, and VFS paths.

use std::io::{Cursor, Read, Write};

use aether_proto::api::agent::GraphSpec;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::services::agent::fuzzing as agent;
use crate::services::apps::{bundle, catalog};

/// A client's bytes after the handshake, as the gateway reads them: WebSocket frames (with
/// its frame limit, small here), then each text message through the frame parser.
pub fn websocket(data: &[u8]) {
    struct Peer {
        input: Cursor<Vec<u8>>,
    }
    impl Read for Peer {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }
    impl Write for Peer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(64 << 10))
        .max_frame_size(Some(64 << 10));
    let peer = Peer {
        input: Cursor::new(data.to_vec()),
    };
    let mut ws = WebSocket::from_raw_socket(peer, Role::Server, Some(config));
    for _ in 0..1024 {
        match ws.read() {
            Ok(Message::Text(text)) => aether_proto::fuzz::frames(text.as_bytes()),
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

/// An app bundle (`.tar.gz`) under small limits: refused with a reason, or whole and sound.
pub fn bundle(data: &[u8]) {
    let limits = bundle::Limits {
        packed_bytes: 1 << 20,
        unpacked_bytes: 4 << 20,
        files: 64,
    };
    if let Ok(opened) = bundle::open(data, limits) {
        assert!(opened.files.contains_key("manifest.json"));
        let entry = opened.manifest.entry.as_deref().expect("an entry");
        assert!(opened.files.contains_key(entry));
        let unpacked: usize = opened.files.values().map(Vec::len).sum();
        assert!(unpacked as u64 <= limits.unpacked_bytes);
    }
}

/// A catalog's `index.json`.
pub fn catalog_index(data: &[u8]) {
    if let Ok(index) = catalog::parse_index(data) {
        assert!(index.entries.iter().all(|e| e.parsed.is_some()));
    }
}

/// A TaskGraph as `agent.run` takes it: checked; then each node's references resolved
/// against made-up results of every shape.
pub fn graph(data: &[u8]) {
    let Ok(spec) = serde_json::from_slice::<GraphSpec>(data) else {
        return;
    };
    let Ok(nodes) = agent::check(&spec) else {
        return;
    };
    let result = json!({ "data": "text", "entries": [{ "name": "a", "size": 1 }],
                         "n": 3, "ok": true, "nested": { "deep": [[1], { "x": null }] } });
    for node in &nodes {
        let resolved = agent::resolve(&node.spec.args, &|_| Some(result.clone()));
        if let Ok(mut args) = resolved {
            agent::text_where_text_is_taken(&node.spec.tool, &mut args);
            let _ = agent::words(&node.spec.tool, &args);
        }
    }
}

/// A path a client names.
pub fn vfs_path(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(path) = crate::services::vfs::path::VfsPath::parse(&text) {
        let shown = path.to_string();
        assert!(shown.starts_with('/'), "{shown:?}");
        assert!(!shown.split('/').any(|s| s == ".."), "{shown:?}");
        let again = crate::services::vfs::path::VfsPath::parse(&shown).expect("its own form");
        assert_eq!(again.to_string(), shown);
        assert!(!path.relative().is_absolute());
    }
}
