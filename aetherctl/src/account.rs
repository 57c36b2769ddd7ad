//! Signing in and out, who you are, and users: login, logout, whoami, user add|list|passwd.

use clap::{Args, Subcommand};
use serde_json::json;

use aether_proto::api::sys;
use aether_proto::client::{AppHandle, ClientOptions, Endpoint};
use aether_proto::frame::Auth;

use crate::output::{count, print_answer, print_rows, read_password};
use crate::{Failure, call, connect};

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Sign in with a password and save a token for this endpoint.
    Login(Login),
    /// Forget the saved token for this endpoint.
    Logout,
    /// Who the daemon says you are.
    Whoami,
}

#[derive(Args)]
pub struct Login {
    #[arg(long)]
    user: String,
    /// Read the password from the first line of stdin.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is prompted, or read with --password-stdin.
    Add {
        name: String,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        password_stdin: bool,
    },
    List,
    /// Change a password (your own, or anyone's as admin). The user's other tokens are
    /// revoked and their connections closed, unless --keep-tokens.
    Passwd {
        name: Option<String>,
        #[arg(long)]
        password_stdin: bool,
        /// Keep the user's other tokens valid.
        #[arg(long)]
        keep_tokens: bool,
    },
}

/// Forget the saved token for this endpoint (no daemon needed).
pub fn logout(endpoint: &Endpoint) -> Result<(), Failure> {
    let had = connect::forget_token(endpoint)?;
    outln!(
        "{}",
        if had {
            "signed out"
        } else {
            "no saved token for this endpoint"
        }
    );
    Ok(())
}

/// Sign in with a password, mint a token and save it for this endpoint.
pub async fn login(
    login: &Login,
    endpoint: &Endpoint,
    options: ClientOptions,
    autostart: bool,
    acting: &str,
    json: bool,
) -> Result<(), Failure> {
    let user = &login.user;
    let password = read_password(login.password_stdin, &format!("Password for {user}: "))?;
    let auth = Auth::Password {
        user: user.clone(),
        password,
    };
    let client = connect::connect(endpoint, auth, options, autostart).await?;
    let ask = sys::TokenCreate {
        label: Some("aetherctl login".into()),
        ..Default::default()
    };
    let created = call(&client.app(acting), &ask).await?;
    client.close();
    connect::save_token(endpoint, &created.token)?;
    if json {
        outln!(
            "{}",
            json!({"user": user, "endpoint": endpoint.to_string(), "expires_at": created.expires_at})
        );
    } else {
        outln!("signed in to {endpoint} as {user}");
    }
    Ok(())
}

/// `whoami` (login and logout are handled before connecting).
pub async fn run(command: &AccountCommand, app: &AppHandle, json: bool) -> Result<(), Failure> {
    match command {
        AccountCommand::Login(_) | AccountCommand::Logout => {
            unreachable!("handled before connecting")
        }
        AccountCommand::Whoami => {
            let answer = call(app, &sys::Whoami {}).await?;
            print_answer(json, &answer, whoami_line);
        }
    }
    Ok(())
}

fn whoami_line(answer: &sys::WhoamiAnswer) -> String {
    let user = &answer.user;
    let mut line = format!("{} (id {})", user.name, user.id);
    if user.admin {
        line.push_str(", admin");
    }
    if user.guest {
        line.push_str(", guest");
    }
    line.push_str(&format!(", acting as app {}", answer.app));
    if let Some(bound) = &answer.bound_app {
        line.push_str(&format!(" (token bound to {bound})"));
    }
    line
}

pub async fn run_user(command: &UserCommand, app: &AppHandle, json: bool) -> Result<(), Failure> {
    match command {
        UserCommand::Add {
            name,
            admin,
            password_stdin,
        } => {
            let password = read_password(*password_stdin, &format!("Password for {name}: "))?;
            let ask = sys::UserAdd {
                name: name.clone(),
                password,
                admin: *admin,
            };
            let added = call(app, &ask).await?;
            print_answer(json, &added, |added| {
                format!("added user {name} (id {})", added.id)
            });
        }
        UserCommand::List => {
            let answer = call(app, &sys::UserList {}).await?;
            print_rows(json, &answer, |answer| {
                answer
                    .users
                    .iter()
                    .map(|user| format!("{:<20} {}", user.name, user_flags(user)))
                    .collect()
            });
        }
        UserCommand::Passwd {
            name,
            password_stdin,
            keep_tokens,
        } => {
            let password = read_password(*password_stdin, "New password: ")?;
            let ask = sys::Passwd {
                name: name.clone(),
                password,
                keep_tokens: *keep_tokens,
            };
            let changed = call(app, &ask).await?;
            print_answer(json, &changed, |changed| {
                if *keep_tokens {
                    format!("password changed for {}; other tokens kept", changed.name)
                } else {
                    let revoked = count(changed.revoked, "other token", "other tokens");
                    format!("password changed for {}; {revoked} revoked", changed.name)
                }
            });
        }
    }
    Ok(())
}

fn user_flags(user: &sys::UserRow) -> String {
    let mut flags = vec![];
    if user.admin {
        flags.push("admin");
    }
    if user.guest {
        flags.push("guest");
    }
    if !user.has_password {
        flags.push("no password");
    }
    flags.join(", ")
}
