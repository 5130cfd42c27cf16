//! Integration tests: a real node on 127.0.0.1:0, real WebSocket clients,
//! a real sled directory and a real OpenAI-compatible HTTP server.

use mikabot_test_support as helpers;

mod abuse;
mod catalog_import;
mod chat;
mod config_cli;
mod dashboard;
mod dashboard_isolation;
mod desk;
mod golden;
mod knowledge;
mod lifecycle;
mod limits;
mod logs;
mod model_faults;
mod persistence;
mod privacy;
mod properties;
mod query_rewrite;
mod resume;
mod shutdown;
mod tools;
mod widget_http;
