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

/// Declare an event family's kinds: an enum with each kind's name in the topic.
macro_rules! event_kinds {
    ($kind:ident, { $($variant:ident => $name:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $kind {
            $($variant),+
        }

        impl $kind {
            pub const ALL: &[$kind] = &[$($kind::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($kind::$variant => $name),+
                }
            }

            pub fn parse(name: &str) -> Option<$kind> {
                match name {
                    $($name => Some($kind::$variant),)+
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use event_kinds;

/// Declare a family of `<prefix>.<id>.<kind>` events: the family (`$family`, with `of` for
/// all of one id's events, `pattern_of` and `topic_of`), one event's parts (`$event`: the
/// id and the kind) and the kinds (`$kind`, each with its name in the topic).
macro_rules! id_events {
    (
        $(#[$doc:meta])*
        $family:ident, $event:ident, $kind:ident, $prefix:literal,
        { $($kinds:tt)+ }
    ) => {
        $(#[$doc])*
        pub struct $family;

        /// One event of the family, as its topic names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $event<'a> {
            pub id: &'a str,
            pub kind: $kind,
        }

        $crate::api::event::event_kinds!($kind, { $($kinds)+ });

        impl $family {
            /// Where all of `id`'s events go: this, then `.<kind>`.
            pub fn of(id: &str) -> String {
                format!(concat!($prefix, ".{}"), id)
            }

            /// The pattern of all of `id`'s events.
            pub fn pattern_of(id: &str) -> String {
                format!(concat!($prefix, ".{}.>"), id)
            }

            /// The topic of `id`'s `kind` event.
            pub fn topic_of(id: &str, kind: $kind) -> String {
                <Self as $crate::api::Event>::topic(&$event { id, kind })
            }
        }

        impl $crate::api::Event for $family {
            const PATTERN: &'static str = concat!($prefix, ".>");
            type Parts<'a> = $event<'a>;

            fn topic(event: &$event<'_>) -> String {
                format!(concat!($prefix, ".{}.{}"), event.id, event.kind.as_str())
            }

            fn parse(topic: &str) -> Option<$event<'_>> {
                let (id, kind) = topic.strip_prefix(concat!($prefix, "."))?.rsplit_once('.')?;
                let kind = $kind::parse(kind)?;
                (!id.is_empty()).then_some($event { id, kind })
            }
        }
    };
}
pub(crate) use id_events;

/// Declare a family of `<prefix>.<kind>` events (no id): the family, covered by `$pattern`,
/// and its kinds.
macro_rules! kind_events {
    (
        $(#[$doc:meta])*
        $family:ident, $kind:ident, $prefix:literal, $pattern:literal,
        { $($kinds:tt)+ }
    ) => {
        $(#[$doc])*
        pub struct $family;

        $crate::api::event::event_kinds!($kind, { $($kinds)+ });

        impl $family {
            /// The topic of a `kind` event.
            pub fn topic_of(kind: $kind) -> String {
                <Self as $crate::api::Event>::topic(&kind)
            }
        }

        impl $crate::api::Event for $family {
            const PATTERN: &'static str = $pattern;
            type Parts<'a> = $kind;

            fn topic(kind: &$kind) -> String {
                format!(concat!($prefix, ".{}"), kind.as_str())
            }

            fn parse(topic: &str) -> Option<$kind> {
                $kind::parse(topic.strip_prefix(concat!($prefix, "."))?)
            }
        }
    };
}
pub(crate) use kind_events;

#[cfg(test)]
mod tests {
    use super::Event;
    use crate::api::{apps, chat, telemetry, vfs};
    use crate::{Pattern, Topic};

    fn covered<E: Event>(topic: &str) -> bool {
        Pattern::parse(E::PATTERN)
            .unwrap()
            .matches(&Topic::parse(topic).unwrap())
    }

    #[test]
    fn every_family_reads_back_the_topics_it_builds_and_nothing_else() {
        for &kind in vfs::FileEventKind::ALL {
            let topic = vfs::FileEvents::topic_of(kind);
            assert!(covered::<vfs::FileEvents>(&topic), "{topic}");
            assert_eq!(vfs::FileEvents::parse(&topic), Some(kind));
        }
        for &kind in apps::AppEventKind::ALL {
            let topic = apps::AppEvents::topic_of(kind);
            assert!(covered::<apps::AppEvents>(&topic), "{topic}");
            assert_eq!(apps::AppEvents::parse(&topic), Some(kind));
        }
        for &kind in chat::RoomEventKind::ALL {
            let topic = chat::RoomEvents::topic_of("team.a", kind);
            assert!(covered::<chat::RoomEvents>(&topic), "{topic}");
            let event = chat::RoomEvents::parse(&topic).unwrap();
            assert_eq!((event.id, event.kind), ("team.a", kind));
        }
        let topic = telemetry::TelemetryEvents::topic_of("vfs", "write");
        assert!(covered::<telemetry::TelemetryEvents>(&topic));
        let event = telemetry::TelemetryEvents::parse(&topic).unwrap();
        assert_eq!((event.service, event.op), ("vfs", "write"));
        for other in [
            "vfs.events",
            "vfs.events.chmod",
            "vfs.read",
            "apps.events.x",
            "chat.room.a",
        ] {
            assert_eq!(vfs::FileEvents::parse(other), None, "{other}");
            assert_eq!(apps::AppEvents::parse(other), None, "{other}");
            assert_eq!(chat::RoomEvents::parse(other), None, "{other}");
        }
        assert_eq!(telemetry::TelemetryEvents::parse("telemetry.vfs"), None);
        assert_eq!(
            telemetry::TelemetryEvents::parse("vfs.events.written"),
            None
        );
    }
}
