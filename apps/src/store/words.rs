//! What an app's signature and requests mean, in words: the detail pane and the consent
//! dialog say the same things the same way.

use aether_proto::api::apps::{BundleInfo, Requested, Signature};

use super::Action;
use app_kit::widgets::human_bytes;

/// Who vouches for a bundle, and whether that should worry you.
pub(crate) fn signature(signature: &Signature) -> (String, bool) {
    match signature {
        Signature::Verified { publisher } => (format!("signed by {publisher} (verified)"), false),
        Signature::UnknownPublisher { publisher } => (
            format!("signed by {publisher}, whose key this daemon does not know"),
            true,
        ),
        Signature::Unsigned => ("not signed: no publisher vouches for it".into(), true),
    }
}

/// The reason an app gives for a capability (and the paths it is limited to), if it gives
/// one.
pub(crate) fn reason(requested: &[Requested], capability: &str) -> String {
    requested
        .iter()
        .find(|r| r.capability.as_str() == capability)
        .map_or_else(String::new, Requested::described)
}

/// The consent dialog's question: what is installed, who vouches for it, every capability
/// that needs your consent with its reason, and the daemon's warnings.
pub(crate) fn consent_question(info: &BundleInfo, action: Action) -> String {
    let (signed, _) = signature(&info.signature);
    let what = match (action, &info.installed) {
        (Action::Update, Some(installed)) => {
            format!("Update {} {installed} to {}?", info.name, info.version)
        }
        _ => format!("Install {} {}?", info.name, info.version),
    };
    let mut lines = vec![
        what,
        format!("{}, {signed}.", human_bytes(info.size)),
        String::new(),
    ];
    if info.needs_consent.is_empty() {
        lines.push("It asks for nothing new.".into());
    } else {
        lines.push("It asks for your consent to:".into());
        for capability in &info.needs_consent {
            let why = reason(&info.capabilities, capability.as_str());
            lines.push(match why.as_str() {
                "" => format!("• {capability}"),
                why => format!("• {capability}: {why}"),
            });
        }
    }
    if !info.warnings.is_empty() {
        lines.push(String::new());
    }
    for warning in &info.warnings {
        lines.push(format!("Warning: {warning}"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use aether_proto::Capability;

    use super::*;

    #[test]
    fn the_question_lists_each_capability_with_its_reason_and_the_warnings() {
        let info = BundleInfo {
            id: "todo".into(),
            name: "To-do".into(),
            version: "1.0.0".into(),
            description: None,
            sha256: "ab".into(),
            size: 2048,
            signature: Signature::Unsigned,
            capabilities: vec![Requested {
                capability: Capability::VfsRead,
                reason: "read your list".into(),
                paths: vec!["/todo.md".into()],
            }],
            installed: None,
            needs_consent: vec![Capability::VfsRead, Capability::VfsWrite],
            warnings: vec!["it is not signed".into()],
        };
        assert_eq!(
            consent_question(&info, Action::Install),
            "Install To-do 1.0.0?\n2.0 KiB, not signed: no publisher vouches for it.\n\n\
             It asks for your consent to:\n• vfs_read: read your list (only /todo.md)\n• vfs_write\n\n\
             Warning: it is not signed"
        );
    }
}
