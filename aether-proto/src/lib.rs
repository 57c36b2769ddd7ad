//! The Aether wire protocol.
//!
//! **Architecture invariant:** the core of this crate does no I/O; only the
//! `client` feature talks to a network. Every frame type has a JSON round-trip test.

pub mod api;
pub mod capability;
pub mod error;
pub mod frame;
#[doc(hidden)]
pub mod fuzz;
pub mod manifest;
pub mod paths;
pub mod schema;
pub mod topic;

#[cfg(feature = "client")]
pub mod client;

pub use capability::Capability;
pub use error::{ErrorBody, ErrorCode};
pub use frame::{ClientFrame, PROTOCOL_VERSION, ServerFrame};
pub use manifest::{Manifest, ManifestError};
pub use topic::{Pattern, Topic, TopicError};
