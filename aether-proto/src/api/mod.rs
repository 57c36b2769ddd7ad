//! The typed API: for every service topic, its request and answer types and the topic
//! name, in one place. The daemon's handlers decode these, the permission tables name
//! topics through them, and clients send them with `AppHandle::request`.
//!
//! A request is a [`Call`]: `const TOPIC` and `type Answer`. Each service's module
//! lists its calls once, in `CALLS` (the JSON Schema and the docs are generated from
//! them); its `TOPICS` are derived from that list at compile time.

pub mod agent;
pub mod ai;
pub mod apps;
pub mod chat;
pub mod event;
pub mod presence;
pub mod session;
pub mod sys;
pub mod telemetry;
pub mod vfs;
pub mod vm;

pub use event::Event;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One request topic: what is sent, and what comes back.
pub trait Call: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// The topic the request is sent on.
    const TOPIC: &'static str;
    /// What a successful answer decodes to.
    type Answer: Serialize + DeserializeOwned + JsonSchema + Send + 'static;
}

/// A call's topic and the schemas of its request and answer, for docs and the JSON Schema.
pub struct CallInfo {
    pub topic: &'static str,
    pub request: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
    pub answer: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

impl CallInfo {
    pub const fn of<C: Call>() -> CallInfo {
        CallInfo {
            topic: C::TOPIC,
            request: schema_of::<C>,
            answer: schema_of::<C::Answer>,
        }
    }
}

/// The topics of `calls`, in order: how each module's `TOPICS` is derived from its `CALLS`.
pub(crate) const fn topics<const N: usize>(calls: &[CallInfo]) -> [&'static str; N] {
    let mut topics = [""; N];
    let mut i = 0;
    while i < N {
        topics[i] = calls[i].topic;
        i += 1;
    }
    topics
}

fn schema_of<T: JsonSchema>(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    generator.subschema_for::<T>()
}

/// Declare that `$request` is sent on `$topic` and answered with `$answer`.
macro_rules! call {
    ($request:ty => $answer:ty, $topic:literal) => {
        impl $crate::api::Call for $request {
            const TOPIC: &'static str = $topic;
            type Answer = $answer;
        }
    };
}
pub(crate) use call;

/// A service's calls, each named once: every `Call` impl, the service's [`CallInfo`] list
/// (`CALLS`, in this order) and its `TOPICS`, derived from that list.
macro_rules! calls {
    ($($request:ident => $answer:ty, $topic:literal;)+) => {
        $( $crate::api::call!($request => $answer, $topic); )+

        pub const CALLS: &[$crate::api::CallInfo] = &[$($crate::api::CallInfo::of::<$request>(),)+];

        /// Every topic this service serves: the topics of [`CALLS`].
        pub const TOPICS: &[&str] = &$crate::api::topics::<{ CALLS.len() }>(CALLS);
    };
}
pub(crate) use calls;

/// An event family: the topics it is published on (`*` for an id in them) and the type of
/// its payload, for the schema and the docs.
pub struct EventInfo {
    pub topic: &'static str,
    pub payload: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

impl EventInfo {
    const fn of<T: JsonSchema>(topic: &'static str) -> EventInfo {
        EventInfo {
            topic,
            payload: schema_of::<T>,
        }
    }
}

/// Every event a service publishes, by topic.
pub const EVENTS: &[EventInfo] = &[
    EventInfo::of::<vfs::Changed>("vfs.events.created"),
    EventInfo::of::<vfs::Changed>("vfs.events.written"),
    EventInfo::of::<vfs::Changed>("vfs.events.removed"),
    EventInfo::of::<vfs::Changed>("vfs.events.moved"),
    EventInfo::of::<vfs::Rescanned>("vfs.events.rescanned"),
    EventInfo::of::<vm::OutputChunk>("vm.job.*.stdout"),
    EventInfo::of::<vm::OutputChunk>("vm.job.*.stderr"),
    EventInfo::of::<vm::Exit>("vm.job.*.exit"),
    EventInfo::of::<ai::Delta>("ai.stream.*.delta"),
    EventInfo::of::<ai::Generated>("ai.stream.*.done"),
    EventInfo::of::<crate::ErrorBody>("ai.stream.*.error"),
    EventInfo::of::<ai::Notice>("ai.stream.*.notice"),
    EventInfo::of::<agent::NodeEvent>("agent.graph.*.node"),
    EventInfo::of::<agent::StateEvent>("agent.graph.*.state"),
    EventInfo::of::<agent::LogEvent>("agent.graph.*.log"),
    EventInfo::of::<chat::Message>("chat.room.*.message"),
    EventInfo::of::<chat::Message>("chat.room.*.edit"),
    EventInfo::of::<chat::Message>("chat.room.*.delete"),
    EventInfo::of::<chat::MemberEvent>("chat.room.*.member"),
    EventInfo::of::<chat::RoomInfo>("chat.room.*.read"),
    EventInfo::of::<chat::Message>("chat.mention"),
    EventInfo::of::<presence::Person>("presence.changed"),
    EventInfo::of::<apps::Progress>("apps.events.progress"),
    EventInfo::of::<apps::AppEvent>("apps.events.installed"),
    EventInfo::of::<apps::AppEvent>("apps.events.updated"),
    EventInfo::of::<apps::AppEvent>("apps.events.uninstalled"),
    EventInfo::of::<telemetry::TelemetryEvent>("telemetry.*.*"),
];

/// The namespace every app owns, whatever its capabilities: `app.<id>.>`.
pub fn app_namespace(app: &str) -> String {
    format!("app.{app}.>")
}

/// A topic in `app`'s own namespace: `app.<id>.<name>`.
pub fn app_topic(app: &str, name: &str) -> String {
    format!("app.{app}.{name}")
}

/// Every call of every service.
pub fn all_calls() -> impl Iterator<Item = &'static CallInfo> {
    sys::CALLS
        .iter()
        .chain(vfs::CALLS)
        .chain(ai::CALLS)
        .chain(agent::CALLS)
        .chain(vm::CALLS)
        .chain(telemetry::CALLS)
        .chain(session::CALLS)
        .chain(apps::CALLS)
        .chain(chat::CALLS)
        .chain(presence::CALLS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payload table spells each event's topic for the schema and the docs: it must
    /// be exactly the topics the typed families make, with `*` for an id.
    #[test]
    fn the_event_table_is_exactly_the_families_topics() {
        let mut made: Vec<String> = vec![];
        made.extend(
            vfs::FileEventKind::ALL
                .iter()
                .map(|k| vfs::FileEvents::topic_of(*k)),
        );
        made.extend(
            vm::JobEventKind::ALL
                .iter()
                .map(|k| vm::JobEvents::topic_of("*", *k)),
        );
        made.extend(
            ai::StreamEventKind::ALL
                .iter()
                .map(|k| ai::StreamEvents::topic_of("*", *k)),
        );
        made.extend(
            agent::GraphEventKind::ALL
                .iter()
                .map(|k| agent::GraphEvents::topic_of("*", *k)),
        );
        made.extend(
            chat::RoomEventKind::ALL
                .iter()
                .map(|k| chat::RoomEvents::topic_of("*", *k)),
        );
        made.extend(
            chat::MentionKind::ALL
                .iter()
                .map(|k| chat::MentionEvents::topic_of(*k)),
        );
        made.extend(
            presence::PresenceKind::ALL
                .iter()
                .map(|k| presence::PresenceEvents::topic_of(*k)),
        );
        made.extend(
            apps::AppEventKind::ALL
                .iter()
                .map(|k| apps::AppEvents::topic_of(*k)),
        );
        made.push(telemetry::TelemetryEvents::topic_of("*", "*"));
        made.sort();
        let mut table: Vec<String> = EVENTS.iter().map(|e| e.topic.to_owned()).collect();
        table.sort();
        assert_eq!(table, made);
    }

    #[test]
    fn every_call_has_one_topic_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for call in all_calls() {
            assert!(seen.insert(call.topic), "{} is listed twice", call.topic);
            assert!(
                crate::Topic::parse(call.topic).is_ok(),
                "{} is not a topic",
                call.topic
            );
        }
    }
}
