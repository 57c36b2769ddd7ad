//! `sys.*`: who am I, ping, stats, tokens, users, permissions, audit, stop.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use aether_proto::manifest::valid_app_id;
use aether_proto::{ErrorBody, ErrorCode};

use super::{Incoming, Participant};
use crate::daemon::Shared;
use crate::identity::IdentityError;
use crate::perms::Service;

const TOPICS: &[&str] = &[
    "sys.whoami",
    "sys.ping",
    "sys.stats",
    "sys.token.create",
    "sys.user.add",
    "sys.user.list",
    "sys.user.passwd",
    "sys.perms.show",
    "sys.daemon.stop",
    "sys.audit.list",
];

const MAX_TOKEN_TTL_SECS: i64 = 365 * 24 * 3600;

pub fn start(shared: Arc<Shared>) -> anyhow::Result<()> {
    let mut participant = Participant::serve(
        shared.hub.clone(),
        shared.perms.clone(),
        Service::Sys,
        TOPICS,
    )?;
    let responder = participant.responder();
    let events = participant.publisher();
    tokio::spawn(async move {
        while let Some(request) = participant.next().await {
            let (shared, responder, events) = (shared.clone(), responder.clone(), events.clone());
            // Each request on its own task: a slow password hash never holds up a ping.
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let result = handle(&shared, &request).await;
                let telemetry =
                    json!({ "ok": result.is_ok(), "micros": started.elapsed().as_micros() as u64 });
                responder.answer(&request, result);
                let op = request
                    .topic
                    .as_str()
                    .trim_start_matches("sys.")
                    .replace('.', "_");
                let topic = format!("telemetry.sys.{op}");
                events.publish(
                    &request.caller,
                    &request.app,
                    &topic,
                    &telemetry,
                    request.origin,
                );
            });
        }
    });
    Ok(())
}

fn from_identity(e: IdentityError) -> ErrorBody {
    ErrorBody::new(e.code, e.msg)
}

async fn handle(shared: &Arc<Shared>, request: &Incoming) -> Result<Value, ErrorBody> {
    match request.topic.as_str() {
        "sys.whoami" => Ok(json!({
            "user": request.caller.user_info(),
            "app": request.app,
            "bound_app": request.caller.bound_app,
        })),
        "sys.ping" => Ok(json!({ "pong": true })),
        "sys.stats" => Ok(stats(shared, request.caller.admin)),
        "sys.token.create" => create_token(shared, request).await,
        "sys.user.add" => add_user(shared, request).await,
        "sys.user.list" => list_users(shared, request).await,
        "sys.user.passwd" => passwd(shared, request).await,
        "sys.perms.show" => perms_show(shared, request),
        "sys.daemon.stop" => stop(shared, request),
        "sys.audit.list" => audit_list(shared, request).await,
        other => Err(ErrorBody::new(
            ErrorCode::NotFound,
            format!("sys has no {other}"),
        )),
    }
}

fn require_admin(request: &Incoming) -> Result<(), ErrorBody> {
    if request.caller.admin {
        Ok(())
    } else {
        Err(ErrorBody::new(
            ErrorCode::Forbidden,
            "only an admin user may do this",
        ))
    }
}

/// Counters for everyone; where the daemon lives (pid, paths) for admins only.
fn stats(shared: &Shared, admin: bool) -> Value {
    let catalog = shared.perms.catalog();
    let mut stats = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": shared.started.elapsed().as_secs(),
        "hub": shared.hub.snapshot(),
        "apps": catalog.apps.len(),
        "manifest_errors": catalog.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "audit_dropped": shared.audit.dropped(),
        "tcp": shared.tcp_addr.map(|a| a.to_string()),
    });
    if admin {
        stats["pid"] = json!(std::process::id());
        stats["socket"] = json!(shared.config.socket_path());
        stats["data_dir"] = json!(shared.config.data_dir);
    }
    stats
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenCreate {
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    ttl_secs: Option<i64>,
}

async fn create_token(shared: &Shared, request: &Incoming) -> Result<Value, ErrorBody> {
    let ask: TokenCreate = request.decode()?;
    let caller = &request.caller;
    // An app-bound token can only mint tokens for its own app: never a way up.
    let app = match (&caller.bound_app, ask.app) {
        (Some(bound), Some(app)) if *bound != app => {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                format!("a token bound to {bound:?} cannot mint one for {app:?}"),
            ));
        }
        (Some(bound), _) => Some(bound.clone()),
        (None, app) => app,
    };
    if let Some(app) = &app
        && (!valid_app_id(app) || !shared.perms.catalog().apps.contains_key(app))
    {
        return Err(ErrorBody::new(
            ErrorCode::NotFound,
            format!("no app {app:?} is installed"),
        ));
    }
    let ttl = ask
        .ttl_secs
        .unwrap_or(shared.config.limits.token_ttl_days as i64 * 24 * 3600);
    if !(1..=MAX_TOKEN_TTL_SECS).contains(&ttl) {
        return Err(ErrorBody::new(
            ErrorCode::BadFrame,
            format!("ttl_secs must be 1 to {MAX_TOKEN_TTL_SECS}"),
        ));
    }
    // A token never mints one that outlives it, or a leaked token could renew itself forever.
    let ttl = match caller.token_expires_at {
        Some(parent) => ttl.min(parent - crate::store::now_secs()),
        None => ttl,
    };
    if ttl < 1 {
        return Err(ErrorBody::new(
            ErrorCode::Unauthenticated,
            "your token has expired; sign in again",
        ));
    }
    let label: String = ask.label.unwrap_or_default().chars().take(100).collect();
    let (token, expires_at) = shared
        .identity
        .create_token(caller.user_id, app.clone(), label, Some(ttl))
        .await
        .map_err(from_identity)?;
    Ok(json!({ "token": token, "app": app, "user": caller.user, "expires_at": expires_at }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserAdd {
    name: String,
    password: String,
    #[serde(default)]
    admin: bool,
}

async fn add_user(shared: &Shared, request: &Incoming) -> Result<Value, ErrorBody> {
    require_admin(request)?;
    let ask: UserAdd = request.decode()?;
    let id = shared
        .identity
        .add_user(&ask.name, &ask.password, ask.admin)
        .await
        .map_err(from_identity)?;
    Ok(json!({ "id": id, "name": ask.name, "admin": ask.admin }))
}

async fn list_users(shared: &Shared, request: &Incoming) -> Result<Value, ErrorBody> {
    require_admin(request)?;
    let users = shared.identity.list_users().await.map_err(from_identity)?;
    Ok(json!({ "users": users }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Passwd {
    #[serde(default)]
    name: Option<String>,
    password: String,
}

async fn passwd(shared: &Shared, request: &Incoming) -> Result<Value, ErrorBody> {
    let ask: Passwd = request.decode()?;
    let name = ask.name.unwrap_or_else(|| request.caller.user.clone());
    if name != request.caller.user {
        require_admin(request)?;
    }
    shared
        .identity
        .set_password(&name, &ask.password)
        .await
        .map_err(from_identity)?;
    Ok(json!({ "name": name, "changed": true }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermsShow {
    #[serde(default)]
    app: Option<String>,
}

#[derive(Serialize)]
struct AppSummary {
    id: String,
    name: String,
    version: String,
    capabilities: Vec<String>,
}

fn perms_show(shared: &Shared, request: &Incoming) -> Result<Value, ErrorBody> {
    let ask: PermsShow = request.decode()?;
    let catalog = shared.perms.catalog();
    let errors: Vec<String> = catalog.errors.iter().map(ToString::to_string).collect();
    match ask.app {
        Some(app) => match shared.perms.permissions_of(&app) {
            Some(perms) => Ok(json!({
                "app": perms.manifest,
                "grants": perms.topics,
                "own_namespace": format!("app.{app}.>"),
            })),
            None => Err(ErrorBody::new(
                ErrorCode::NotFound,
                format!(
                    "no app {app:?} is installed (manifest errors: {})",
                    errors.len()
                ),
            )),
        },
        None => {
            let apps: Vec<AppSummary> = catalog
                .apps
                .values()
                .map(|m| AppSummary {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    version: m.version.clone(),
                    capabilities: m.permissions.keys().map(ToString::to_string).collect(),
                })
                .collect();
            Ok(json!({ "apps": apps, "errors": errors }))
        }
    }
}

fn stop(shared: &Arc<Shared>, request: &Incoming) -> Result<Value, ErrorBody> {
    require_admin(request)?;
    tracing::info!(user = %request.caller.user, "stop requested over the bus");
    let shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        // Let the answer reach the client first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        shutdown.cancel();
    });
    Ok(json!({ "stopping": true, "pid": std::process::id() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditList {
    #[serde(default)]
    limit: Option<u32>,
}

async fn audit_list(shared: &Shared, request: &Incoming) -> Result<Value, ErrorBody> {
    require_admin(request)?;
    let ask: AuditList = request.decode()?;
    let rows = crate::audit::recent(&shared.store, ask.limit.unwrap_or(50).min(1000))
        .await
        .map_err(|e| {
            tracing::error!("audit read failed: {e:#}");
            ErrorBody::new(
                ErrorCode::Internal,
                "cannot read the audit log; see the daemon log",
            )
        })?;
    Ok(json!({ "entries": rows }))
}
