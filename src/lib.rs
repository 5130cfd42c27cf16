//! Mikabot's edges: configuration, start-up, HTTP routes, the widget wire
//! protocol, storage and model providers. The behaviour lives in the
//! `mikabot-actors` crate.

pub mod accounts;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod email;
pub mod golden;
pub mod http;
pub mod import;
pub mod knowledge;
pub mod logging;
pub mod model;
pub mod privacy;
pub mod protocol;
pub mod startup;
pub mod storage;
