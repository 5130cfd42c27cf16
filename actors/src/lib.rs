//! Mikabot's behaviour: widget sessions, store catalogs, replies and the
//! ports they use (model, conversation log). This crate knows no HTTP, no
//! JSON wire format and no database; the `mikabot` crate supplies those.

pub mod catalog;
pub mod cite;
pub mod claims;
pub mod desk;
pub mod events;
pub mod golden;
pub mod ids;
pub mod knowledge;
pub mod language;
pub mod limits;
pub mod live;
pub mod log;
pub mod metrics;
pub mod model;
pub mod outbox;
pub mod page;
pub mod prompt;
pub mod provider;
pub mod reply;
pub mod retrieval;
pub mod search;
pub mod session;
pub mod store;
pub mod tasks;
