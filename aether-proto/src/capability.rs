//! Capabilities an app may declare in its manifest.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an app may do. Which topics each capability opens is decided in one
/// place only: the daemon's permission manager.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    VfsRead,
    VfsWrite,
    VmRun,
    AiAccess,
    AgentRun,
    Chat,
    Presence,
    TelemetryRead,
    AppsManage,
    Session,
    /// Manage users and the daemon itself; also requires an admin user.
    Admin,
}

impl Capability {
    pub const ALL: [Capability; 11] = [
        Capability::VfsRead,
        Capability::VfsWrite,
        Capability::VmRun,
        Capability::AiAccess,
        Capability::AgentRun,
        Capability::Chat,
        Capability::Presence,
        Capability::TelemetryRead,
        Capability::AppsManage,
        Capability::Session,
        Capability::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::VfsRead => "vfs_read",
            Capability::VfsWrite => "vfs_write",
            Capability::VmRun => "vm_run",
            Capability::AiAccess => "ai_access",
            Capability::AgentRun => "agent_run",
            Capability::Chat => "chat",
            Capability::Presence => "presence",
            Capability::TelemetryRead => "telemetry_read",
            Capability::AppsManage => "apps_manage",
            Capability::Session => "session",
            Capability::Admin => "admin",
        }
    }

    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for cap in Capability::ALL {
            let json = serde_json::to_string(&cap).unwrap();
            assert_eq!(json, format!("\"{cap}\""));
            assert_eq!(Capability::from_name(cap.as_str()), Some(cap));
        }
        assert_eq!(Capability::from_name("root"), None);
    }
}
