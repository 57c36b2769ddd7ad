//! The tables the one decision reads: which topics each capability opens and for what
//! (`capability_topics`), the open requests and those that stay the user's own, what each
//! service serves, listens to, publishes and may request on its own; and the capability
//! table of `docs/protocol.md`, generated from them.

use std::sync::LazyLock;

use serde::Serialize;

use aether_proto::api::{
    self, Call as _, Event as _, agent, ai, apps, chat, presence, session, sys, telemetry, vfs, vm,
};
use aether_proto::{Capability, Pattern};

/// What a frame wants to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Listen to publications.
    Sub,
    /// Answer requests.
    Serve,
    Pub,
    Req,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Sub => "sub",
            Op::Serve => "serve",
            Op::Pub => "pub",
            Op::Req => "req",
        }
    }

    pub(crate) const fn bit(self) -> u8 {
        match self {
            Op::Sub => 1,
            Op::Serve => 2,
            Op::Pub => 4,
            Op::Req => 8,
        }
    }
}

const SUB: u8 = Op::Sub.bit();
const REQ: u8 = Op::Req.bit();

/// The one table: which topics each capability opens, and for which operations.
pub(super) fn capability_topics(cap: Capability) -> &'static [(u8, &'static str)] {
    match cap {
        Capability::VfsRead => &[
            (REQ, vfs::Read::TOPIC),
            (REQ, vfs::List::TOPIC),
            (REQ, vfs::Stat::TOPIC),
            (REQ, vfs::Search::TOPIC),
            (REQ, vfs::Usage::TOPIC),
            (SUB, vfs::EVENTS),
        ],
        Capability::VfsWrite => &[
            (REQ, vfs::Write::TOPIC),
            (REQ, vfs::Mkdir::TOPIC),
            (REQ, vfs::Remove::TOPIC),
            (REQ, vfs::Move::TOPIC),
            (REQ, vfs::Copy::TOPIC),
        ],
        Capability::VmRun => &[
            (REQ, vm::Run::TOPIC),
            (REQ, vm::Kill::TOPIC),
            (REQ, vm::Stdin::TOPIC),
            (REQ, vm::Jobs::TOPIC),
            (SUB, vm::JobEvents::PATTERN),
        ],
        Capability::AiAccess => &[
            (REQ, ai::Status::TOPIC),
            (REQ, ai::Generate::TOPIC),
            (REQ, ai::Cancel::TOPIC),
            (REQ, ai::Embed::TOPIC),
            (REQ, ai::Chat::TOPIC),
            (REQ, ai::Image::TOPIC),
            (SUB, ai::STREAMS),
        ],
        Capability::AgentRun => &[
            (REQ, agent::Plan::TOPIC),
            (REQ, agent::Run::TOPIC),
            (REQ, agent::Cancel::TOPIC),
            (REQ, agent::Approve::TOPIC),
            (REQ, agent::Retry::TOPIC),
            (REQ, agent::List::TOPIC),
            (REQ, agent::Get::TOPIC),
            (SUB, agent::EVENTS),
        ],
        Capability::Chat => &[
            (REQ, chat::Rooms::TOPIC),
            (REQ, chat::Create::TOPIC),
            (REQ, chat::Join::TOPIC),
            (REQ, chat::Leave::TOPIC),
            (REQ, chat::Invite::TOPIC),
            (REQ, chat::Direct::TOPIC),
            (REQ, chat::Post::TOPIC),
            (REQ, chat::Edit::TOPIC),
            (REQ, chat::Delete::TOPIC),
            (REQ, chat::History::TOPIC),
            (REQ, chat::MarkRead::TOPIC),
            (REQ, chat::Members::TOPIC),
            // Only the chat service publishes here, and only into its members' namespaces.
            (SUB, chat::SUBSCRIBE),
        ],
        Capability::Presence => &[
            (REQ, presence::Set::TOPIC),
            (REQ, presence::List::TOPIC),
            (SUB, presence::SUBSCRIBE),
        ],
        Capability::TelemetryRead => &[
            (SUB, telemetry::TelemetryEvents::PATTERN),
            (REQ, telemetry::RulesAdd::TOPIC),
            (REQ, telemetry::RulesList::TOPIC),
            (REQ, telemetry::RulesRm::TOPIC),
        ],
        Capability::AppsManage => &[
            (REQ, apps::Catalog::TOPIC),
            (REQ, apps::Inspect::TOPIC),
            (REQ, apps::Install::TOPIC),
            (REQ, apps::Update::TOPIC),
            (REQ, apps::Uninstall::TOPIC),
            (SUB, apps::EVENTS),
        ],
        Capability::Session => &[
            (REQ, session::Save::TOPIC),
            (REQ, session::Load::TOPIC),
            (REQ, session::ListSessions::TOPIC),
            (REQ, session::Delete::TOPIC),
        ],
        Capability::Admin => &[
            (REQ, sys::UserAdd::TOPIC),
            (REQ, sys::UserList::TOPIC),
            (REQ, sys::DaemonStop::TOPIC),
            (REQ, sys::AuditList::TOPIC),
        ],
    }
}

/// Requests about the user's own credentials: open to the user's apps, but never made by an
/// app acting for them (a program, an agent or a rule: a `delegated` caller).
pub const USERS_OWN_REQUESTS: &[&str] = &[
    sys::TokenCreate::TOPIC,
    sys::TokenRevoke::TOPIC,
    sys::Passwd::TOPIC,
];

/// Requests every signed-in app may make, whatever its capabilities.
pub const OPEN_REQUESTS: &[&str] = &[
    sys::Whoami::TOPIC,
    sys::Ping::TOPIC,
    sys::Stats::TOPIC,
    sys::TokenCreate::TOPIC,
    sys::TokenList::TOPIC,
    sys::TokenRevoke::TOPIC,
    sys::Passwd::TOPIC,
    sys::PermsShow::TOPIC,
    apps::List::TOPIC,
];

/// The daemon's own services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Sys,
    Vfs,
    Telemetry,
    Compute,
    Session,
    Ai,
    Agent,
    Apps,
    Chat,
}

impl Service {
    pub const ALL: [Service; 9] = [
        Service::Sys,
        Service::Vfs,
        Service::Telemetry,
        Service::Compute,
        Service::Session,
        Service::Ai,
        Service::Agent,
        Service::Apps,
        Service::Chat,
    ];
}

static CHAT_TOPICS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    api::chat::TOPICS
        .iter()
        .chain(api::presence::TOPICS)
        .copied()
        .collect()
});

/// The topics each service serves: its calls in the typed API, and no others.
pub fn service_topics(service: Service) -> &'static [&'static str] {
    match service {
        Service::Sys => api::sys::TOPICS,
        Service::Vfs => api::vfs::TOPICS,
        Service::Telemetry => api::telemetry::TOPICS,
        Service::Compute => api::vm::TOPICS,
        Service::Session => api::session::TOPICS,
        Service::Ai => api::ai::TOPICS,
        Service::Agent => api::agent::TOPICS,
        Service::Apps => api::apps::TOPICS,
        // Chat and presence are one service: presence goes to those who share a room.
        Service::Chat => CHAT_TOPICS.as_slice(),
    }
}

/// Requests only services make (no capability opens them), and which service may make each.
pub(super) fn service_requests(service: Service) -> &'static [&'static str] {
    match service {
        // After a job that changed files, and to size a job's write budget.
        Service::Compute => &[vfs::Rescan::TOPIC, vfs::Usage::TOPIC],
        // Embeddings for the user's semantic search.
        Service::Vfs => &[ai::Embed::TOPIC],
        // An app uninstalled or updated: its programs still running for that user stop. An
        // app installed: its entry is compiled and linked before it counts as installed.
        Service::Apps => &[vm::Jobs::TOPIC, vm::Kill::TOPIC, vm::Prepare::TOPIC],
        Service::Sys
        | Service::Telemetry
        | Service::Session
        | Service::Ai
        | Service::Agent
        | Service::Chat => &[],
    }
}

/// What each service may listen to (publications from every user), as patterns.
pub(super) fn service_listens(service: Service) -> &'static [&'static str] {
    match service {
        Service::Sys
        | Service::Vfs
        | Service::Compute
        | Service::Session
        | Service::Ai
        | Service::Agent
        | Service::Apps
        | Service::Chat => &[],
        Service::Telemetry => &[telemetry::TelemetryEvents::PATTERN],
    }
}

/// What each service may publish (its events), as patterns.
pub(super) fn service_publishes(service: Service) -> &'static [&'static str] {
    match service {
        Service::Sys => &[telemetry::of::SYS],
        Service::Vfs => &[vfs::EVENTS, telemetry::of::VFS],
        Service::Telemetry => &[telemetry::of::RULES],
        Service::Compute => &[vm::JobEvents::PATTERN, telemetry::of::VM],
        Service::Session => &[telemetry::of::SESSION],
        Service::Ai => &[ai::STREAMS, telemetry::of::AI],
        Service::Agent => &[agent::EVENTS],
        Service::Apps => &[apps::EVENTS],
        Service::Chat => &[chat::EVENTS, chat::MENTIONS, presence::SUBSCRIBE],
    }
}

pub(super) struct Grant {
    pub(super) ops: u8,
    pub(super) pattern: Pattern,
}

pub(super) static GRANTS: LazyLock<Vec<(Capability, Vec<Grant>)>> = LazyLock::new(|| {
    Capability::ALL
        .into_iter()
        .map(|cap| {
            let grants = capability_topics(cap)
                .iter()
                .map(|(ops, p)| Grant {
                    ops: *ops,
                    pattern: Pattern::parse(p).expect("grant patterns are valid"),
                })
                .collect();
            (cap, grants)
        })
        .collect()
});

pub(super) static OPEN: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    OPEN_REQUESTS
        .iter()
        .map(|p| Pattern::parse(p).expect("open topics are valid"))
        .collect()
});

/// The capability table of `docs/protocol.md`, generated from the tables above (a test
/// keeps the document current).
pub fn capability_table() -> String {
    let mut out = String::from("| capability | opens |\n|---|---|\n");
    for cap in Capability::ALL {
        let mut parts: Vec<String> = vec![];
        let mut last_ops = 0;
        for (ops, topic) in capability_topics(cap) {
            if *ops == last_ops {
                if let Some(part) = parts.last_mut() {
                    part.push_str(&format!(" `{topic}`"));
                }
                continue;
            }
            last_ops = *ops;
            let names: Vec<&str> = [Op::Sub, Op::Pub, Op::Req]
                .into_iter()
                .filter(|op| ops & op.bit() != 0)
                .map(Op::as_str)
                .collect();
            parts.push(format!("{} `{topic}`", names.join(", ")));
        }
        let mut row = parts.join("; ");
        if cap == Capability::Admin {
            row.push_str(" (and the user must be an admin)");
        }
        out.push_str(&format!("| `{cap}` | {row} |\n"));
    }
    let open: Vec<String> = OPEN_REQUESTS.iter().map(|t| format!("`{t}`")).collect();
    out.push_str(&format!(
        "\nEvery app may, without a capability: request {}; and pub, sub, serve and req \
         anything under its own namespace `app.<its id>.>`.\n",
        open.join(", ")
    ));
    let own: Vec<String> = USERS_OWN_REQUESTS
        .iter()
        .map(|t| format!("`{t}`"))
        .collect();
    out.push_str(&format!(
        "Of these, {} are the user's own business: an app acting for its user (a program, an \
         agent or a rule) is refused them.\n",
        own.join(", ")
    ));
    let mut internal = vec![];
    for service in Service::ALL {
        for topic in service_requests(service) {
            internal.push(format!("`{topic}` (by {service:?})"));
        }
    }
    out.push_str(&format!(
        "Services also make these requests on their own, for a user, whatever the user's \
         apps may do: {}.\n",
        internal.join(", ")
    ));
    out
}
