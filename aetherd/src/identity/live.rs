//! The connections signed in right now, so that revoking credentials ends them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::{Caller, Credential};

struct Live {
    user_id: i64,
    token_id: Option<i64>,
    credential: Credential,
    close: CancellationToken,
}

/// Every signed-in connection, by connection id.
pub struct Connections {
    next: AtomicU64,
    live: Mutex<HashMap<u64, Live>>,
    /// The user whose connections just changed (presence follows these).
    changes: tokio::sync::broadcast::Sender<i64>,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            next: AtomicU64::default(),
            live: Mutex::default(),
            changes: tokio::sync::broadcast::channel(4096).0,
        }
    }
}

/// A connection's place in [`Connections`]; dropping it takes the connection out.
pub struct Registration {
    pub id: u64,
    /// Fires when the connection's credentials are revoked.
    pub revoked: CancellationToken,
    connections: Arc<Connections>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let gone = self.connections.live.lock().remove(&self.id);
        if let Some(gone) = gone {
            let _ = self.connections.changes.send(gone.user_id);
        }
    }
}

impl Connections {
    /// Register a new connection signed in as `caller`.
    pub fn register(self: &Arc<Self>, caller: &Caller) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let revoked = CancellationToken::new();
        self.live.lock().insert(
            id,
            Live {
                user_id: caller.user_id,
                token_id: caller.token_id,
                credential: caller.credential,
                close: revoked.clone(),
            },
        );
        let _ = self.changes.send(caller.user_id);
        Registration {
            id,
            revoked,
            connections: self.clone(),
        }
    }

    /// Users whose connections changed, as they change.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.changes.subscribe()
    }

    /// How many connections `user_id` has open.
    pub fn count(&self, user_id: i64) -> usize {
        self.live
            .lock()
            .values()
            .filter(|live| live.user_id == user_id)
            .count()
    }

    /// End the connections signed in with any of `tokens`; how many there were.
    pub fn close_tokens(&self, tokens: &[i64]) -> u64 {
        self.close_where(|_, live| live.token_id.is_some_and(|id| tokens.contains(&id)))
    }

    /// End a user's connections signed in by password, except connection `keep`.
    pub fn close_password_sessions(&self, user_id: i64, keep: u64) -> u64 {
        self.close_where(|id, live| {
            id != keep && live.user_id == user_id && live.credential == Credential::Password
        })
    }

    fn close_where(&self, doomed: impl Fn(u64, &Live) -> bool) -> u64 {
        let mut closed = 0;
        for (id, live) in self.live.lock().iter() {
            if doomed(*id, live) {
                live.close.cancel();
                closed += 1;
            }
        }
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoking_a_token_ends_only_its_connections() {
        let connections = Arc::new(Connections::default());
        let with = |token_id, credential| Caller {
            user_id: 1,
            token_id,
            credential,
            ..Caller::default()
        };
        let a = connections.register(&with(Some(7), Credential::Token));
        let b = connections.register(&with(Some(8), Credential::Token));
        let c = connections.register(&with(None, Credential::Password));
        let d = connections.register(&with(None, Credential::Password));
        assert_eq!(connections.close_tokens(&[7]), 1);
        assert!(a.revoked.is_cancelled() && !b.revoked.is_cancelled());
        assert_eq!(connections.close_password_sessions(1, d.id), 1);
        assert!(c.revoked.is_cancelled() && !d.revoked.is_cancelled());
        drop(b);
        assert_eq!(
            connections.close_tokens(&[8]),
            0,
            "a closed connection is gone"
        );
    }
}
