//! Shared test helpers: a node on 127.0.0.1:0 with a temporary sled
//! directory, a typed WebSocket shopper, and a local OpenAI-compatible
//! streaming server.

pub mod app;
pub mod fake_openai;
pub mod shopper;

pub use app::{TestApp, spawn_app, spawn_app_in, spawn_app_on};
pub use fake_openai::{Behavior, FakeOpenAi};
pub use shopper::Shopper;
