//! Your tokens: token create|list|revoke.

use clap::{ArgGroup, Subcommand};

use aether_proto::api::sys;
use aether_proto::client::AppHandle;

use crate::output::{count, format_secs, print_answer, print_rows};
use crate::{Failure, call};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Mint a token; with --app it can only act as that app.
    Create {
        /// Bind the token to this app: it can act as nothing else.
        #[arg(long)]
        app: Option<String>,
        /// A note to recognize the token by.
        #[arg(long)]
        label: Option<String>,
        /// Lifetime in seconds (default 30 days; never longer than the token you sign in with).
        #[arg(long)]
        ttl_secs: Option<i64>,
    },
    /// Your tokens (never their secrets); "(this one)" marks the token you signed in with.
    List,
    /// Revoke a token by id, or all but the one you signed in with; connections signed in
    /// with a revoked token are closed.
    #[command(group(ArgGroup::new("which").required(true).args(["id", "all_others"])))]
    Revoke {
        /// The token's id (see `aetherctl token list`).
        id: Option<i64>,
        /// Every token of yours but the one this command signs in with.
        #[arg(long)]
        all_others: bool,
    },
}

pub async fn run(command: &TokenCommand, app: &AppHandle, json: bool) -> Result<(), Failure> {
    match command {
        TokenCommand::Create {
            app: bound,
            label,
            ttl_secs,
        } => {
            let ask = sys::TokenCreate {
                app: bound.clone(),
                label: label.clone(),
                ttl_secs: *ttl_secs,
            };
            let created = call(app, &ask).await?;
            print_answer(json, &created, |created| created.token.clone());
        }
        TokenCommand::List => {
            let answer = call(app, &sys::TokenList {}).await?;
            print_rows(json, &answer, |answer| {
                answer.tokens.iter().map(token_line).collect()
            });
        }
        TokenCommand::Revoke { id, all_others } => {
            let ask = sys::TokenRevoke {
                id: *id,
                all_others: *all_others,
            };
            let revoked = call(app, &ask).await?;
            print_answer(json, &revoked, |revoked| {
                format!(
                    "revoked {}; closed {}",
                    count(revoked.revoked, "token", "tokens"),
                    count(revoked.closed, "connection", "connections")
                )
            });
        }
    }
    Ok(())
}

/// `#3  files  created 2026-…Z  expires 2026-…Z  my label  (this one)`
fn token_line(token: &sys::TokenInfo) -> String {
    let expires = token
        .expires_at
        .map(format_secs)
        .unwrap_or_else(|| "never".into());
    let mut line = format!(
        "#{:<4} {:<12} created {}  expires {:<20}  {}",
        token.id,
        token.app.as_deref().unwrap_or("(any app)"),
        format_secs(token.created_at),
        expires,
        token.label
    );
    if token.current {
        line.push_str("  (this one)");
    }
    line.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_line_shows_its_dates_and_marks_the_current_one() {
        let token = sys::TokenInfo {
            id: 7,
            app: Some("files".into()),
            label: "laptop".into(),
            created_at: 1_795_557_269,
            expires_at: None,
            current: true,
        };
        assert_eq!(
            token_line(&token),
            "#7    files        created 2026-11-24T21:54:29Z  expires never                 laptop  (this one)"
        );
    }
}
