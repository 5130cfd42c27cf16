//! What the integration tests and the load generator share: a real node on
//! 127.0.0.1:0 with a temporary sled directory ([`spawn_app`]), a shopper's
//! WebSocket client ([`Shopper`]), a local OpenAI-compatible streaming
//! server with scripted faults ([`FakeOpenAi`]), and a local SMTP sink that
//! keeps and decodes the emails the node sends ([`SmtpSink`]).

pub mod app;
pub mod model;
pub mod owner;
pub mod process;
pub mod shopper;
pub mod smtp;

pub use app::{
    TestApp, spawn_app, spawn_app_in, spawn_app_on, spawn_app_with_clock, test_settings,
};
pub use model::{Behavior, FakeOpenAi};
pub use owner::{Owner, Page};
pub use shopper::Shopper;
pub use smtp::{Mail, SmtpSink};
