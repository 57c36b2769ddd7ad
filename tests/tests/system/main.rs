//! Whole-system tests: a real `aetherd` on a temp dir and loopback, real clients.
//!
//! One test binary; each module is one area. Every bad-input test checks the
//! `err` code and then that the connection still works (a ping gets its pong),
//! unless the protocol says the connection closes.

mod agent;
mod ai;
mod apps;
mod auth;
mod bad_frames;
mod bus;
mod chat;
mod compute;
mod fuzz;
mod guests;
mod http;
mod limits;
mod manifests;
mod perms;
mod search;
mod session;
mod shape;
mod sign_in;
mod telemetry;
mod tls;
mod tokens;
mod vfs;
