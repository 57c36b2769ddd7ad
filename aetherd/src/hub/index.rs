//! The subscription index: a trie of topic tokens per namespace (NATS's sublist).
//!
//! A lookup walks only the branches a topic can match (literal, `*`, `>`), so its
//! cost depends on the topic's length and the matching subscriptions, not on how
//! many subscriptions exist.

use std::sync::Arc;

use aether_proto::topic::Token;
use aether_proto::{Pattern, Topic};

use super::FastMap;
use super::outbox::{ConnId, Outbox};

/// Where a subscription lives. Private topics are kept per user, so no pattern
/// can reach another user's traffic; services see every namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    User(i64),
    Shared,
    Service,
}

/// Topic roots shared between users (membership there is the owning service's job);
/// every other topic lives in the acting user's private namespace.
pub const SHARED_ROOTS: &[&str] = &[];

impl Namespace {
    /// Where a topic (or a pattern with this literal first token) lives for `user_id`.
    pub fn of(root: &str, user_id: i64) -> Namespace {
        if SHARED_ROOTS.contains(&root) {
            Namespace::Shared
        } else {
            Namespace::User(user_id)
        }
    }
}

/// One subscription: who gets the delivery and under which `sub` id.
#[derive(Clone)]
pub struct Target {
    pub outbox: Arc<Outbox>,
    pub sub: u64,
}

impl Target {
    fn is(&self, conn: ConnId, sub: u64) -> bool {
        self.outbox.id == conn && self.sub == sub
    }
}

/// The subscriptions that match one topic.
#[derive(Default, Clone)]
pub struct Matches {
    pub listeners: Vec<Target>,
    pub responders: Vec<Target>,
}

#[derive(Default)]
struct Slots {
    listeners: Vec<Target>,
    responders: Vec<Target>,
}

impl Slots {
    fn list(&mut self, serve: bool) -> &mut Vec<Target> {
        if serve {
            &mut self.responders
        } else {
            &mut self.listeners
        }
    }

    fn is_empty(&self) -> bool {
        self.listeners.is_empty() && self.responders.is_empty()
    }

    fn add_to(&self, out: &mut Matches) {
        out.listeners.extend_from_slice(&self.listeners);
        out.responders.extend_from_slice(&self.responders);
    }
}

#[derive(Default)]
struct Node {
    literal: FastMap<Box<str>, Node>,
    one: Option<Box<Node>>,
    /// Patterns that end here with `>`.
    rest: Slots,
    /// Patterns that end exactly here.
    exact: Slots,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.literal.is_empty()
            && self.one.is_none()
            && self.rest.is_empty()
            && self.exact.is_empty()
    }

    fn insert(&mut self, tokens: &[Token<'_>], target: Target, serve: bool) {
        match tokens.split_first() {
            None => self.exact.list(serve).push(target),
            Some((Token::Rest, _)) => self.rest.list(serve).push(target),
            Some((Token::One, tail)) => {
                self.one.get_or_insert_default().insert(tail, target, serve)
            }
            Some((Token::Literal(lit), tail)) => self
                .literal
                .entry((*lit).into())
                .or_default()
                .insert(tail, target, serve),
        }
    }

    /// Remove one subscription; prunes branches left empty. True if it was found.
    fn remove(&mut self, tokens: &[Token<'_>], conn: ConnId, sub: u64, serve: bool) -> bool {
        let take = |list: &mut Vec<Target>| {
            let before = list.len();
            list.retain(|t| !t.is(conn, sub));
            list.len() != before
        };
        match tokens.split_first() {
            None => take(self.exact.list(serve)),
            Some((Token::Rest, _)) => take(self.rest.list(serve)),
            Some((Token::One, tail)) => {
                let Some(child) = self.one.as_mut() else {
                    return false;
                };
                let found = child.remove(tail, conn, sub, serve);
                if child.is_empty() {
                    self.one = None;
                }
                found
            }
            Some((Token::Literal(lit), tail)) => {
                let Some(child) = self.literal.get_mut(*lit) else {
                    return false;
                };
                let found = child.remove(tail, conn, sub, serve);
                if child.is_empty() {
                    self.literal.remove(*lit);
                }
                found
            }
        }
    }

    fn collect(&self, tokens: &[&str], out: &mut Matches) {
        let Some((head, tail)) = tokens.split_first() else {
            self.exact.add_to(out);
            return;
        };
        self.rest.add_to(out);
        if let Some(child) = self.literal.get(*head) {
            child.collect(tail, out);
        }
        if let Some(child) = &self.one {
            child.collect(tail, out);
        }
    }
}

/// All namespaces' tries.
#[derive(Default)]
pub struct Index {
    roots: FastMap<Namespace, Node>,
    count: usize,
}

impl Index {
    pub fn insert(&mut self, ns: Namespace, pattern: &Pattern, target: Target, serve: bool) {
        let tokens: Vec<Token<'_>> = pattern.tokens().collect();
        self.roots
            .entry(ns)
            .or_default()
            .insert(&tokens, target, serve);
        self.count += 1;
    }

    pub fn remove(
        &mut self,
        ns: Namespace,
        pattern: &Pattern,
        conn: ConnId,
        sub: u64,
        serve: bool,
    ) -> bool {
        let tokens: Vec<Token<'_>> = pattern.tokens().collect();
        let Some(root) = self.roots.get_mut(&ns) else {
            return false;
        };
        let found = root.remove(&tokens, conn, sub, serve);
        if root.is_empty() {
            self.roots.remove(&ns);
        }
        if found {
            self.count -= 1;
        }
        found
    }

    /// Everything a topic published in `ns` reaches: that namespace plus the services.
    pub fn lookup(&self, ns: Namespace, topic: &Topic) -> Matches {
        let tokens: Vec<&str> = topic.tokens().collect();
        let mut out = Matches::default();
        // Services answer first: a service topic is never shadowed by a user's subscription.
        if let Some(root) = self.roots.get(&Namespace::Service) {
            root.collect(&tokens, &mut out);
        }
        if ns != Namespace::Service
            && let Some(root) = self.roots.get(&ns)
        {
            root.collect(&tokens, &mut out);
        }
        out
    }

    pub fn len(&self) -> usize {
        self.count
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::super::outbox::{Outbox, OutboxKind};
    use super::*;

    fn target(conn: u64, sub: u64) -> Target {
        let (outbox, _rx) = Outbox::new(conn, OutboxKind::Remote, 16);
        Target { outbox, sub }
    }

    fn subs(m: &Matches) -> Vec<(u64, u64)> {
        let mut v: Vec<_> = m.listeners.iter().map(|t| (t.outbox.id, t.sub)).collect();
        v.sort();
        v
    }

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }
    fn t(s: &str) -> Topic {
        Topic::parse(s).unwrap()
    }

    #[test]
    fn lookups_follow_wildcards_and_namespaces() {
        let mut index = Index::default();
        let ana = Namespace::User(1);
        let bob = Namespace::User(2);
        index.insert(ana, &p("a.b"), target(1, 1), false);
        index.insert(ana, &p("a.*"), target(1, 2), false);
        index.insert(ana, &p("a.>"), target(1, 3), false);
        index.insert(ana, &p(">"), target(1, 4), false);
        index.insert(bob, &p(">"), target(2, 1), false);
        index.insert(Namespace::Service, &p("a.b"), target(9, 1), true);
        let m = index.lookup(ana, &t("a.b"));
        assert_eq!(subs(&m), [(1, 1), (1, 2), (1, 3), (1, 4)]);
        assert_eq!(m.responders.len(), 1);
        assert_eq!(subs(&index.lookup(ana, &t("a.b.c"))), [(1, 3), (1, 4)]);
        assert_eq!(subs(&index.lookup(ana, &t("a"))), [(1, 4)]);
        assert_eq!(subs(&index.lookup(bob, &t("a.b"))), [(2, 1)]);
        assert_eq!(index.len(), 6);
    }

    #[test]
    fn removal_prunes() {
        let mut index = Index::default();
        let ns = Namespace::User(1);
        index.insert(ns, &p("a.*.c"), target(1, 1), false);
        index.insert(ns, &p("a.b.c"), target(1, 2), true);
        assert!(index.remove(ns, &p("a.*.c"), 1, 1, false));
        assert!(!index.remove(ns, &p("a.*.c"), 1, 1, false));
        assert!(
            !index.remove(ns, &p("a.b.c"), 1, 2, false),
            "serve flag must match"
        );
        assert!(index.remove(ns, &p("a.b.c"), 1, 2, true));
        assert!(index.is_empty());
        assert!(index.roots.is_empty());
    }
}
