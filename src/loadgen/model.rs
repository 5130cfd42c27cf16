//! The load generator's model: an OpenAI-compatible streaming server with a
//! set time to first token, token rate and reply length. It notes when each
//! request arrived and when it wrote each chunk, so the shopper's side can
//! tell what the node added on top of the model's own time.

use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpResponse, HttpServer};
use dashmap::DashMap;
use futures_util::stream;

/// How the model answers every request.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct ModelShape {
    /// Wait before the first content chunk.
    pub ttft: Duration,
    /// Content chunks per second after the first.
    pub tokens_per_sec: f64,
    /// Content chunks per reply.
    pub reply_tokens: usize,
}

/// What the model did for one tagged request.
#[derive(Clone, Debug)]
pub struct Timeline {
    pub arrived: Instant,
    /// For each content chunk: the byte offset where its text ends in the
    /// reply, and when it was handed to the socket.
    pub chunks: Vec<(usize, Instant)>,
}

/// A running model server.
pub struct FakeModel {
    pub base_url: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

struct Shared {
    shape: ModelShape,
    timelines: DashMap<u64, Timeline>,
    requests: AtomicU64,
}

/// Words the replies are made of: short, like a tokenizer's pieces, and
/// free of anything JSON would escape.
const WORDS: [&str; 16] = [
    " The", " Alpine", " parka", " is", " warm", ",", " light", " and", " water", "proof", " for",
    " winter", " walks", " in", " the", " city",
];

/// The tag a load-generator message carries (`#123`), read back from the
/// last user message of a request.
pub fn tag_of(request: &serde_json::Value) -> Option<u64> {
    let messages = request.get("messages")?.as_array()?;
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(|r| r.as_str()) == Some("user"))?;
    let content = last_user.get("content")?.as_str()?;
    let (_, tail) = content.rsplit_once('#')?;
    tail.trim().parse().ok()
}

fn content_chunk(text: &str) -> Bytes {
    Bytes::from(format!(
        "data: {{\"id\":\"chatcmpl-loadgen\",\"object\":\"chat.completion.chunk\",\"created\":1763856000,\"model\":\"loadgen\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
    ))
}

const ROLE_CHUNK: &[u8] = b"data: {\"id\":\"chatcmpl-loadgen\",\"object\":\"chat.completion.chunk\",\"created\":1763856000,\"model\":\"loadgen\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
const FINISH_CHUNK: &[u8] = b"data: {\"id\":\"chatcmpl-loadgen\",\"object\":\"chat.completion.chunk\",\"created\":1763856000,\"model\":\"loadgen\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

enum Step {
    Role,
    Content(usize),
    Finish,
    Done,
}

struct Streaming {
    shared: Arc<Shared>,
    tag: Option<u64>,
    started: tokio::time::Instant,
    timeline: Timeline,
    offset: usize,
    step: Step,
}

impl Streaming {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        let shape = self.shared.shape;
        let bytes = match self.step {
            Step::Role => {
                self.step = if shape.reply_tokens == 0 {
                    Step::Finish
                } else {
                    Step::Content(0)
                };
                Bytes::from_static(ROLE_CHUNK)
            }
            Step::Content(i) => {
                let due = self.started
                    + shape.ttft
                    + Duration::from_secs_f64(i as f64 / shape.tokens_per_sec);
                tokio::time::sleep_until(due).await;
                let word = WORDS[i % WORDS.len()];
                self.offset += word.len();
                let bytes = content_chunk(word);
                self.timeline.chunks.push((self.offset, Instant::now()));
                self.step = if i + 1 == shape.reply_tokens {
                    Step::Finish
                } else {
                    Step::Content(i + 1)
                };
                bytes
            }
            Step::Finish => {
                if let Some(tag) = self.tag {
                    let timeline = Timeline {
                        arrived: self.timeline.arrived,
                        chunks: std::mem::take(&mut self.timeline.chunks),
                    };
                    self.shared.timelines.insert(tag, timeline);
                }
                self.step = Step::Done;
                Bytes::from_static(FINISH_CHUNK)
            }
            Step::Done => return None,
        };
        Some((Ok(bytes), self))
    }
}

async fn completions(body: Bytes, shared: web::Data<Arc<Shared>>) -> HttpResponse {
    let arrived = Instant::now();
    let started = tokio::time::Instant::now();
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let tag = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .as_ref()
        .and_then(tag_of);
    let streaming = Streaming {
        shared: Arc::clone(&shared),
        tag,
        started,
        timeline: Timeline {
            arrived,
            chunks: Vec::with_capacity(shared.shape.reply_tokens),
        },
        offset: 0,
        step: Step::Role,
    };
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(stream::unfold(streaming, Streaming::next))
}

impl FakeModel {
    /// Starts the server on loopback `port` (0: any free port) with
    /// `workers` threads. Must run inside a tokio runtime.
    pub fn start(shape: ModelShape, workers: usize, port: u16) -> anyhow::Result<Self> {
        anyhow::ensure!(
            shape.tokens_per_sec > 0.0 && shape.tokens_per_sec.is_finite(),
            "the model's tokens per second must be above zero"
        );
        let shared = Arc::new(Shared {
            shape,
            timelines: DashMap::new(),
            requests: AtomicU64::new(0),
        });
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        let data = web::Data::new(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
                .route("/v1/chat/completions", web::post().to(completions))
        })
        .on_connect(crate::http::send_without_delay)
        .workers(workers.max(1))
        .backlog(4096)
        .max_connections(100_000)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            shared,
            handle,
        })
    }

    /// The timeline of the request tagged `tag`, once its last chunk is out.
    pub fn take_timeline(&self, tag: u64) -> Option<Timeline> {
        self.shared.timelines.remove(&tag).map(|(_, t)| t)
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_read_from_the_last_user_message() {
        let request = serde_json::json!({"messages": [
            {"role": "system", "content": "You are #1"},
            {"role": "user", "content": "earlier #7"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "a warm parka #42"},
        ]});
        assert_eq!(tag_of(&request), Some(42));
        let untagged = serde_json::json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(tag_of(&untagged), None);
    }
}
