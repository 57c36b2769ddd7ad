//! `sys.*`: who am I, ping, stats, tokens, users, permissions, audit, stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use aether_proto::api::Call as _;
use aether_proto::api::sys::{self, PermsAnswer};
use aether_proto::api::telemetry::TelemetryEvents;
use aether_proto::manifest::valid_app_id;
use aether_proto::{ErrorBody, ErrorCode};

use super::{Handler, Incoming, Reply, Seat};
use crate::audit::AuditLog;
use crate::hub::HubStats;
use crate::identity::Identity;
use crate::perms::PermsView;

const MAX_TOKEN_TTL_SECS: i64 = 365 * 24 * 3600;

/// What the sys service answers from.
pub struct Sys {
    pub identity: Identity,
    pub perms: PermsView,
    /// The bus counters in `sys.stats`.
    pub hub: HubStats,
    /// Denials: how many were dropped, and the recent ones.
    pub audit: AuditLog,
    pub shutdown: CancellationToken,
    pub started: Instant,
    pub tcp_addr: Option<SocketAddr>,
    /// Whether TCP clients speak TLS.
    pub tls: bool,
    pub token_ttl_days: u64,
    /// Shown to admins in `sys.stats`.
    pub socket_path: PathBuf,
    pub data_dir: PathBuf,
}

pub fn start(seat: Seat, sys: Sys) {
    seat.run(Arc::new(sys));
}

impl Handler for Sys {
    async fn handle(self: &Arc<Self>, request: &Incoming) -> Reply {
        // Who may ask what (admins only, never an app acting for the user) was decided by
        // the permission manager before the request got here.
        match request.topic.as_str() {
            sys::Whoami::TOPIC => request.call(|_: sys::Whoami| self.whoami(request)).await,
            sys::Ping::TOPIC => {
                request
                    .call(|_: sys::Ping| async { Ok(sys::Pong { pong: true }) })
                    .await
            }
            sys::Stats::TOPIC => {
                request
                    .call(|_: sys::Stats| async { Ok(self.stats(request.caller.admin)) })
                    .await
            }
            sys::TokenCreate::TOPIC => request.call(|ask| self.create_token(request, ask)).await,
            sys::TokenList::TOPIC => {
                request
                    .call(|_: sys::TokenList| self.list_tokens(request))
                    .await
            }
            sys::TokenRevoke::TOPIC => request.call(|ask| self.revoke_token(request, ask)).await,
            sys::UserAdd::TOPIC => request.call(|ask| self.add_user(ask)).await,
            sys::UserList::TOPIC => request.call(|_: sys::UserList| self.list_users()).await,
            sys::Passwd::TOPIC => request.call(|ask| self.passwd(request, ask)).await,
            sys::PermsShow::TOPIC => {
                request
                    .call(|ask| self.perms_show(request.caller.user_id, ask))
                    .await
            }
            sys::DaemonStop::TOPIC => request.call(|_: sys::DaemonStop| self.stop(request)).await,
            sys::AuditList::TOPIC => request.call(|ask| self.audit_list(ask)).await,
            _ => Err(request.unknown()),
        }
    }

    fn telemetry(&self, request: &Incoming, ok: bool, took: Duration) -> Option<(String, Value)> {
        let op = TelemetryEvents::request_op(request.topic.as_str()).replace('.', "_");
        let data = json!({ "ok": ok, "micros": took.as_micros() as u64 });
        Some((TelemetryEvents::topic_of("sys", &op), data))
    }
}

impl Sys {
    async fn whoami(&self, request: &Incoming) -> Result<sys::WhoamiAnswer, ErrorBody> {
        Ok(sys::WhoamiAnswer {
            user: request.caller.user_info(),
            app: request.app.clone(),
            bound_app: request.caller.bound_app.clone(),
        })
    }

    /// Counters for everyone; where the daemon lives (pid, paths) for admins only.
    fn stats(&self, admin: bool) -> sys::StatsAnswer {
        let catalog = self.perms.catalog();
        let path = |p: &PathBuf| p.display().to_string();
        sys::StatsAnswer {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: self.started.elapsed().as_secs(),
            hub: self.hub.snapshot(),
            apps: catalog.apps.len(),
            manifest_errors: catalog.errors.iter().map(ToString::to_string).collect(),
            audit_dropped: self.audit.dropped(),
            tcp: self.tcp_addr.map(|a| a.to_string()),
            tls: self.tls,
            pid: admin.then(std::process::id),
            socket: admin.then(|| path(&self.socket_path)),
            data_dir: admin.then(|| path(&self.data_dir)),
        }
    }

    async fn create_token(
        &self,
        request: &Incoming,
        ask: sys::TokenCreate,
    ) -> Result<sys::TokenCreated, ErrorBody> {
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
            && (!valid_app_id(app)
                || self
                    .perms
                    .catalog()
                    .effective(caller.user_id, app)
                    .is_none())
        {
            return Err(ErrorBody::new(
                ErrorCode::NotFound,
                format!("no app {app:?} is installed"),
            ));
        }
        let ttl = ask
            .ttl_secs
            .unwrap_or(self.token_ttl_days as i64 * 24 * 3600);
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
        let minted = self
            .identity
            .create_token(caller.user_id, app.clone(), label, Some(ttl))
            .await?;
        Ok(sys::TokenCreated {
            token: minted.token,
            id: minted.id,
            app,
            user: caller.user.clone(),
            expires_at: minted.expires_at,
        })
    }

    async fn list_tokens(&self, request: &Incoming) -> Result<sys::TokenListAnswer, ErrorBody> {
        let mut tokens = self.identity.list_tokens(request.caller.user_id).await?;
        // An app-bound token sees only its own app's tokens.
        if let Some(bound) = &request.caller.bound_app {
            tokens.retain(|t| t.app.as_deref() == Some(bound));
        }
        for token in &mut tokens {
            token.current = request.caller.token_id == Some(token.id);
        }
        Ok(sys::TokenListAnswer { tokens })
    }

    async fn revoke_token(
        &self,
        request: &Incoming,
        ask: sys::TokenRevoke,
    ) -> Result<sys::TokenRevoked, ErrorBody> {
        let caller = &request.caller;
        let listed = self.list_tokens(request).await?.tokens;
        let ids: Vec<i64> = match (ask.id, ask.all_others) {
            (Some(id), false) => {
                if !listed.iter().any(|t| t.id == id) {
                    return Err(ErrorBody::new(
                        ErrorCode::NotFound,
                        format!("you have no token {id}"),
                    ));
                }
                vec![id]
            }
            (None, true) => listed
                .iter()
                .filter(|t| Some(t.id) != caller.token_id)
                .map(|t| t.id)
                .collect(),
            _ => {
                return Err(ErrorBody::new(
                    ErrorCode::BadFrame,
                    "name one token with `id`, or set `all_others`, not both",
                ));
            }
        };
        let (revoked, closed) = self.identity.revoke_tokens(caller.user_id, &ids).await?;
        Ok(sys::TokenRevoked { revoked, closed })
    }

    async fn add_user(&self, ask: sys::UserAdd) -> Result<sys::UserAdded, ErrorBody> {
        let id = self
            .identity
            .add_user(&ask.name, &ask.password, ask.admin)
            .await?;
        Ok(sys::UserAdded {
            id,
            name: ask.name,
            admin: ask.admin,
        })
    }

    async fn list_users(&self) -> Result<sys::UserListAnswer, ErrorBody> {
        let users = self.identity.list_users().await?;
        Ok(sys::UserListAnswer { users })
    }

    async fn passwd(
        &self,
        request: &Incoming,
        ask: sys::Passwd,
    ) -> Result<sys::PasswdAnswer, ErrorBody> {
        let caller = &request.caller;
        let name = ask.name.unwrap_or_else(|| caller.user.clone());
        if name != caller.user {
            self.perms.check_admin(
                caller,
                &request.app,
                &request.topic,
                "change another user's password",
            )?;
        }
        let user_id = self.identity.set_password(&name, &ask.password).await?;
        let revoked = if ask.keep_tokens {
            0
        } else {
            // The caller's own credentials survive their own password change.
            let own = name == caller.user;
            let keep_token = caller.token_id.filter(|_| own);
            let keep_connection = if own { caller.connection } else { 0 };
            self.identity
                .revoke_credentials(user_id, keep_token, keep_connection)
                .await?
        };
        Ok(sys::PasswdAnswer {
            name,
            changed: true,
            revoked,
        })
    }

    async fn perms_show(
        &self,
        caller_id: i64,
        ask: sys::PermsShow,
    ) -> Result<PermsAnswer, ErrorBody> {
        let catalog = self.perms.catalog();
        let errors: Vec<String> = catalog.errors.iter().map(ToString::to_string).collect();
        let Some(app) = ask.app else {
            // Installed apps show only to the users who installed them.
            let apps = catalog
                .apps
                .keys()
                .filter_map(|id| catalog.effective(caller_id, id))
                .map(|m| sys::AppSummary {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    version: m.version.clone(),
                    capabilities: m.permissions.keys().map(ToString::to_string).collect(),
                })
                .collect();
            return Ok(PermsAnswer::All { apps, errors });
        };
        match self.perms.permissions_of(caller_id, &app) {
            Some(perms) => Ok(PermsAnswer::App {
                app: perms.manifest,
                grants: perms.topics,
                own_namespace: aether_proto::api::app_namespace(&app),
            }),
            None => Err(ErrorBody::new(
                ErrorCode::NotFound,
                format!(
                    "no app {app:?} is installed (manifest errors: {})",
                    errors.len()
                ),
            )),
        }
    }

    async fn stop(&self, request: &Incoming) -> Result<sys::Stopping, ErrorBody> {
        tracing::info!(user = %request.caller.user, "stop requested over the bus");
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            // Let the answer reach the client first.
            tokio::time::sleep(Duration::from_millis(100)).await;
            shutdown.cancel();
        });
        Ok(sys::Stopping {
            stopping: true,
            pid: std::process::id(),
        })
    }

    async fn audit_list(&self, ask: sys::AuditList) -> Result<sys::AuditListAnswer, ErrorBody> {
        let entries = self
            .audit
            .recent(ask.limit.unwrap_or(50).min(1000))
            .await
            .map_err(|e| {
                tracing::error!("audit read failed: {e:#}");
                ErrorBody::new(
                    ErrorCode::Internal,
                    "cannot read the audit log; see the daemon log",
                )
            })?;
        Ok(sys::AuditListAnswer { entries })
    }
}
