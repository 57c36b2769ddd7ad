//! `aetherd`, the Aether kernel: a pub/sub bus, a WebSocket gateway, identity,
//! the permission manager and the services on the bus.
//!
//! Layers point down only: daemon → gateway/session → services → hub → perms → identity → store.

pub mod audit;
pub mod config;
pub mod daemon;
#[doc(hidden)]
pub mod fuzz;
pub mod gateway;
pub mod http;
pub mod hub;
pub mod identity;
pub mod metrics;
pub mod perms;
pub mod services;
pub mod session;
pub mod store;
pub mod tls;

pub use config::Config;
pub use daemon::Daemon;
