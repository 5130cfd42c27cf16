//! A local OpenAI-compatible server for tests. It speaks the streaming chat
//! completions wire format as OpenAI does (SSE `data:` lines: a role chunk,
//! content chunks, a finish chunk, `data: [DONE]`), and can be scripted to
//! answer 429 with Retry-After, 5xx or 4xx error bodies, cut a stream
//! mid-way, stall, or stream slowly. The node's real async-openai path runs
//! against it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web::Bytes;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures_util::{Stream, StreamExt, stream};
use serde_json::{Value, json};

/// How the server answers one request.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// Streams these content pieces, waiting `delay` before each.
    Stream {
        tokens: Vec<String>,
        delay: Duration,
    },
    /// 429 with `Retry-After: secs` and OpenAI's rate-limit error body.
    RateLimited { retry_after_secs: u64 },
    /// 500 with OpenAI's server error body.
    ServerError,
    /// 401 with OpenAI's invalid key error body.
    Unauthorized,
    /// Streams `tokens`, then drops the connection without a finish chunk.
    CutAfter { tokens: Vec<String> },
    /// Streams `tokens`, then sends nothing more while keeping the
    /// connection open.
    Stall { tokens: Vec<String> },
}

impl Behavior {
    pub fn reply(tokens: &[&str]) -> Self {
        Behavior::Stream {
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            delay: Duration::ZERO,
        }
    }
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Behavior>,
    fallback: Option<Behavior>,
    requests: Vec<Recorded>,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub body: Value,
    pub authorization: Option<String>,
}

/// A running fake provider.
pub struct FakeOpenAi {
    pub base_url: String,
    script: Arc<Mutex<Script>>,
    handle: ServerHandle,
}

const MODEL: &str = "fake-model";
const CREATED: u64 = 1_763_856_000;

fn chunk(delta: Value, finish: Option<&str>) -> Bytes {
    let body = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_test",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    });
    Bytes::from(format!("data: {body}\n\n"))
}

fn content_chunks(tokens: Vec<String>, delay: Duration) -> impl Stream<Item = Bytes> {
    let role = stream::once(async { chunk(json!({"role": "assistant", "content": ""}), None) });
    let contents = stream::iter(tokens).then(move |token| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        chunk(json!({"content": token}), None)
    });
    role.chain(contents)
}

fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

fn sse() -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::Ok();
    builder
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"));
    builder
}

async fn completions(
    req: HttpRequest,
    body: web::Json<Value>,
    script: web::Data<Arc<Mutex<Script>>>,
) -> HttpResponse {
    let behavior = {
        let mut script = script.lock().expect("script lock");
        script.requests.push(Recorded {
            body: body.into_inner(),
            authorization: req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        script
            .queue
            .pop_front()
            .or_else(|| script.fallback.clone())
            .unwrap_or_else(|| Behavior::reply(&["Hello", " there"]))
    };
    match behavior {
        Behavior::Stream { tokens, delay } => {
            let finish = stream::iter([
                chunk(json!({}), Some("stop")),
                Bytes::from_static(b"data: [DONE]\n\n"),
            ]);
            let body = content_chunks(tokens, delay)
                .chain(finish)
                .map(Ok::<Bytes, Infallible>);
            sse().streaming(body)
        }
        Behavior::RateLimited { retry_after_secs } => HttpResponse::TooManyRequests()
            .insert_header(("retry-after", retry_after_secs.to_string()))
            .json(error_body(
                "Rate limit reached for requests",
                "requests",
                Some("rate_limit_exceeded"),
            )),
        Behavior::ServerError => HttpResponse::InternalServerError().json(error_body(
            "The server had an error while processing your request.",
            "server_error",
            None,
        )),
        Behavior::Unauthorized => HttpResponse::Unauthorized().json(error_body(
            "Incorrect API key provided.",
            "invalid_request_error",
            Some("invalid_api_key"),
        )),
        Behavior::CutAfter { tokens } => {
            let body = content_chunks(tokens, Duration::ZERO)
                .map(Ok::<Bytes, std::io::Error>)
                .chain(stream::once(async {
                    // Let the chunks reach the client before the cut, as a
                    // provider crashing mid-reply would.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err(std::io::Error::other("connection cut by the test"))
                }));
            sse().streaming(body)
        }
        Behavior::Stall { tokens } => {
            let body = content_chunks(tokens, Duration::ZERO)
                .chain(stream::pending())
                .map(Ok::<Bytes, Infallible>);
            sse().streaming(body)
        }
    }
}

impl FakeOpenAi {
    /// Starts the server on 127.0.0.1:0.
    pub async fn start() -> Self {
        let script: Arc<Mutex<Script>> = Arc::default();
        let data = web::Data::new(Arc::clone(&script));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/v1/chat/completions", web::post().to(completions))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .bind(("127.0.0.1", 0))
        .expect("bind the fake provider");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            script,
            handle,
        }
    }

    /// Answers the next requests in this order.
    pub fn script(&self, behaviors: impl IntoIterator<Item = Behavior>) {
        self.script
            .lock()
            .expect("script lock")
            .queue
            .extend(behaviors);
    }

    /// Answers every request not scripted otherwise.
    pub fn always(&self, behavior: Behavior) {
        self.script.lock().expect("script lock").fallback = Some(behavior);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.script.lock().expect("script lock").requests.clone()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}
