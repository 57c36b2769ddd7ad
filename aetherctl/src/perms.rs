//! What apps may do and why: perms show.

use clap::Subcommand;

use aether_proto::api::sys::{self, PermsAnswer};
use aether_proto::client::AppHandle;

use crate::output::print_with;
use crate::{Failure, call};

#[derive(Subcommand)]
pub enum PermsCommand {
    /// One app's capabilities and the topics they open, or every app.
    Show { app: Option<String> },
}

pub async fn run(command: &PermsCommand, app: &AppHandle, json: bool) -> Result<(), Failure> {
    let PermsCommand::Show { app: shown } = command;
    let answer = call(app, &sys::PermsShow { app: shown.clone() }).await?;
    print_with(json, &answer, print_perms);
    Ok(())
}

fn print_perms(answer: &PermsAnswer) {
    match answer {
        PermsAnswer::All { apps, errors } => {
            for app in apps {
                outln!(
                    "{:<10} {:<18} {}",
                    app.id,
                    app.name,
                    app.capabilities.join(", ")
                );
            }
            for error in errors {
                outln!("skipped: {error}");
            }
        }
        PermsAnswer::App {
            app,
            grants,
            own_namespace,
        } => {
            outln!("{} ({} {})", app.id, app.name, app.version);
            outln!("  own namespace: {own_namespace} (pub, sub, serve, req)");
            for grant in grants {
                outln!(
                    "  {:<16} {:<22} {:<10} because: {}",
                    grant.capability.as_str(),
                    grant.topic,
                    grant.ops.join(","),
                    grant.reason
                );
            }
        }
    }
}
