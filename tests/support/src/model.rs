//! A local OpenAI-compatible chat completions server, for the integration
//! tests and the load generator. It speaks the streaming wire format as
//! OpenAI does (SSE `data:` lines: a role chunk, content chunks, a finish
//! chunk, `data: [DONE]`; JSON error bodies with status codes), and each
//! request is answered by a scripted [`Behavior`]: a reply, a 429 with
//! `Retry-After`, a 5xx or 4xx, a stream cut mid-way, a stall, a slow
//! stream, or a stream of set speed whose timing it notes (the load
//! generator's model). The node's real async-openai path runs against it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use dashmap::DashMap;
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
    /// Streams at a set speed and notes when each chunk was written (see
    /// [`FakeOpenAi::take_timeline`]).
    Shaped(Shape),
    /// 429 with `Retry-After: secs` and OpenAI's rate-limit error body.
    RateLimited { retry_after_secs: u64 },
    /// 500 with OpenAI's server error body.
    ServerError,
    /// 401 with OpenAI's invalid key error body.
    Unauthorized,
    /// This status with this JSON body.
    Error { status: u16, body: Value },
    /// Streams `tokens`, then drops the connection without a finish chunk.
    CutAfter { tokens: Vec<String> },
    /// Streams `tokens`, then sends nothing more while keeping the
    /// connection open.
    Stall { tokens: Vec<String> },
    /// Streams `before` as text, then one call of the tool `name` whose
    /// arguments come in these pieces, and ends with `tool_calls`.
    ToolCall {
        before: Vec<String>,
        name: String,
        arguments: Vec<String>,
    },
}

impl Behavior {
    pub fn reply(tokens: &[&str]) -> Self {
        Behavior::Stream {
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            delay: Duration::ZERO,
        }
    }
}

/// A stream of known speed: the load generator's model.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Shape {
    /// Wait before the first content chunk.
    pub ttft: Duration,
    /// Content chunks per second after the first.
    pub tokens_per_sec: f64,
    /// Content chunks per reply.
    pub reply_tokens: usize,
}

/// What the server did for one tagged request of a [`Behavior::Shaped`]
/// answer (the tag is `#N` at the end of the last user message).
#[derive(Clone, Debug)]
pub struct Timeline {
    pub arrived: Instant,
    /// For each content chunk: the byte offset where its text ends in the
    /// reply, and when it was handed to the socket.
    pub chunks: Vec<(usize, Instant)>,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub body: Value,
    pub authorization: Option<String>,
}

/// How the server runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Loopback port (0: any free port).
    pub port: u16,
    pub workers: usize,
    /// Keep every request's body for [`FakeOpenAi::requests`]; off for load,
    /// where they would pile up.
    pub record_requests: bool,
    /// The answer to every request not scripted otherwise.
    pub fallback: Behavior,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            port: 0,
            workers: 1,
            record_requests: true,
            fallback: Behavior::reply(&["Hello", " there"]),
        }
    }
}

struct Shared {
    script: Mutex<Script>,
    record_requests: bool,
    requests: AtomicU64,
    /// Streamed answers whose client went away before their end.
    cancelled: AtomicU64,
    timelines: DashMap<u64, Timeline>,
}

struct Script {
    queue: VecDeque<Behavior>,
    fallback: Behavior,
    recorded: Vec<Recorded>,
}

impl Shared {
    fn script(&self) -> MutexGuard<'_, Script> {
        // A panicking handler leaves the script usable.
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake provider.
pub struct FakeOpenAi {
    pub base_url: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

const MODEL: &str = "fake-model";
const CREATED: u64 = 1_763_856_000;
const DONE: &[u8] = b"data: [DONE]\n\n";

/// One `chat.completion.chunk` event with this delta and finish reason.
fn chunk(delta: &Value, finish: Option<&str>) -> Bytes {
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

fn role_chunk() -> Bytes {
    chunk(&json!({"role": "assistant", "content": ""}), None)
}

fn content_chunk(text: &str) -> Bytes {
    // The load generator writes thousands of these a second on the cores
    // the node uses: written directly, with the same fields as `chunk`.
    let text = serde_json::to_string(text).unwrap_or_default();
    Bytes::from(format!(
        "data: {{\"id\":\"chatcmpl-test\",\"object\":\"chat.completion.chunk\",\"created\":{CREATED},\"model\":\"{MODEL}\",\"system_fingerprint\":\"fp_test\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{text}}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
    ))
}

fn finish_chunk(reason: &str) -> Bytes {
    chunk(&json!({}), Some(reason))
}

/// The last chunk OpenAI sends when asked for usage: no choices, the
/// request's token counts.
fn usage_chunk(prompt_tokens: u64, completion_tokens: u64) -> Bytes {
    let body = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_test",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    });
    Bytes::from(format!("data: {body}\n\n"))
}

/// What a stream ends with: its finish chunk, the usage chunk when the
/// request asked for it, and `[DONE]`.
fn ending(usage: Option<(u64, u64)>) -> Bytes {
    let mut end = finish_chunk("stop").to_vec();
    if let Some((prompt, completion)) = usage {
        end.extend_from_slice(&usage_chunk(prompt, completion));
    }
    end.extend_from_slice(DONE);
    Bytes::from(end)
}

fn content_chunks(tokens: Vec<String>, delay: Duration) -> impl Stream<Item = Bytes> {
    let contents = stream::iter(tokens).then(move |token| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        content_chunk(&token)
    });
    stream::once(async { role_chunk() }).chain(contents)
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

/// The tag a message carries at its end (`#123`), read back from the last
/// user message of a request.
pub fn tag_of(request: &Value) -> Option<u64> {
    let messages = request.get("messages")?.as_array()?;
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(|r| r.as_str()) == Some("user"))?;
    let content = last_user.get("content")?.as_str()?;
    let (_, tail) = content.rsplit_once('#')?;
    tail.trim().parse().ok()
}

/// Words shaped replies are made of: short, like a tokenizer's pieces.
const WORDS: [&str; 16] = [
    " The", " Alpine", " parka", " is", " warm", ",", " light", " and", " water", "proof", " for",
    " winter", " walks", " in", " the", " city",
];

enum Step {
    Role,
    Content(usize),
    Finish,
    Done,
}

/// A shaped reply in progress.
struct Shaped {
    shared: Arc<Shared>,
    shape: Shape,
    tag: Option<u64>,
    started: tokio::time::Instant,
    timeline: Timeline,
    offset: usize,
    step: Step,
    /// The prompt's tokens, when the request asked for usage.
    usage_prompt: Option<u64>,
}

impl Shaped {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        let shape = self.shape;
        let bytes = match self.step {
            Step::Role => {
                self.step = if shape.reply_tokens == 0 {
                    Step::Finish
                } else {
                    Step::Content(0)
                };
                role_chunk()
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
                let completion = shape.reply_tokens as u64;
                ending(self.usage_prompt.map(|prompt| (prompt, completion)))
            }
            Step::Done => return None,
        };
        Some((Ok(bytes), self))
    }
}

async fn completions(
    req: HttpRequest,
    body: Bytes,
    shared: web::Data<Arc<Shared>>,
) -> HttpResponse {
    let arrived = Instant::now();
    let started = tokio::time::Instant::now();
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest().json(error_body(
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
            None,
        ));
    };
    let tag = tag_of(&body);
    // OpenAI streams only when asked to; otherwise one JSON answer.
    let streams = body["stream"] == true;
    let prompt_tokens = body.to_string().len() as u64 / 4;
    // A rough count, as a tokenizer would give: four bytes a token.
    let usage_prompt = (body["stream_options"]["include_usage"] == true)
        .then(|| body.to_string().len() as u64 / 4);
    let behavior = {
        let mut script = shared.script();
        if shared.record_requests {
            script.recorded.push(Recorded {
                body,
                authorization: req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            });
        }
        match script.queue.pop_front() {
            Some(behavior) => behavior,
            None => script.fallback.clone(),
        }
    };
    if !streams {
        return answer_whole(behavior, started, prompt_tokens).await;
    }
    match behavior {
        Behavior::Stream { tokens, delay } => {
            let completion = tokens.len() as u64;
            let finish = stream::iter([ending(usage_prompt.map(|p| (p, completion)))]);
            let body = content_chunks(tokens, delay)
                .chain(finish)
                .map(Ok::<Bytes, Infallible>);
            sse().streaming(Watched {
                inner: Box::pin(body),
                shared: Arc::clone(&shared),
                ended: false,
            })
        }
        Behavior::Shaped(shape) => {
            let shaped = Shaped {
                shared: Arc::clone(&shared),
                shape,
                tag,
                started,
                timeline: Timeline {
                    arrived,
                    chunks: Vec::with_capacity(shape.reply_tokens),
                },
                offset: 0,
                step: Step::Role,
                usage_prompt,
            };
            sse().streaming(stream::unfold(shaped, Shaped::next))
        }
        error @ (Behavior::RateLimited { .. }
        | Behavior::ServerError
        | Behavior::Unauthorized
        | Behavior::Error { .. }) => error_response(error),
        Behavior::ToolCall {
            before,
            name,
            arguments,
        } => {
            let opening = chunk(
                &json!({"tool_calls": [{
                    "index": 0,
                    "id": "call_test",
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }]}),
                None,
            );
            let pieces = arguments.into_iter().map(|piece| {
                chunk(
                    &json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                    None,
                )
            });
            let mut end = finish_chunk("tool_calls").to_vec();
            if let Some(prompt) = usage_prompt {
                end.extend_from_slice(&usage_chunk(prompt, 8));
            }
            end.extend_from_slice(DONE);
            let body = content_chunks(before, Duration::ZERO)
                .chain(stream::iter(
                    std::iter::once(opening)
                        .chain(pieces)
                        .chain(std::iter::once(Bytes::from(end))),
                ))
                .map(Ok::<Bytes, Infallible>);
            sse().streaming(body)
        }
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

/// One `chat.completion` object: the whole answer, with its usage (a
/// request that does not stream always gets it).
fn completion(text: &str, prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_test",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    })
}

/// The answer to a request that does not stream: the behaviour's text as
/// one JSON body once all of it would have been streamed, or its error.
async fn answer_whole(
    behavior: Behavior,
    started: tokio::time::Instant,
    prompt_tokens: u64,
) -> HttpResponse {
    let (text, due): (String, tokio::time::Instant) = match behavior {
        Behavior::Stream { tokens, delay } => {
            let due = started + delay * u32::try_from(tokens.len()).unwrap_or(u32::MAX);
            (tokens.concat(), due)
        }
        Behavior::Shaped(shape) => {
            // A short query: the first token after the shape's wait, the
            // rest at its speed.
            let words = ["rain", " jacket"];
            let due = started
                + shape.ttft
                + Duration::from_secs_f64((words.len() - 1) as f64 / shape.tokens_per_sec);
            (words.concat(), due)
        }
        Behavior::Stall { .. } => {
            std::future::pending::<()>().await;
            unreachable!("a stall never answers")
        }
        Behavior::ToolCall { before, .. } => (before.concat(), started),
        Behavior::CutAfter { .. } => {
            // Nothing whole to send: the answer fails as a cut stream does.
            return HttpResponse::BadGateway().json(error_body(
                "The upstream connection was cut.",
                "server_error",
                None,
            ));
        }
        error => return error_response(error),
    };
    tokio::time::sleep_until(due).await;
    let completion_tokens = text.split_whitespace().count().max(1) as u64;
    HttpResponse::Ok().json(completion(&text, prompt_tokens, completion_tokens))
}

/// The answer of an error behaviour.
fn error_response(behavior: Behavior) -> HttpResponse {
    match behavior {
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
        Behavior::Error { status, body } => {
            let status = actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
            HttpResponse::build(status).json(body)
        }
        other => HttpResponse::InternalServerError().json(error_body(
            &format!("not an error behaviour: {other:?}"),
            "server_error",
            None,
        )),
    }
}

/// A streamed answer that counts itself cancelled when the client drops
/// it before its end (the server drops the body of a closed connection).
struct Watched<S> {
    inner: std::pin::Pin<Box<S>>,
    shared: Arc<Shared>,
    ended: bool,
}

impl<S: Stream> Stream for Watched<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let std::task::Poll::Ready(None) = polled {
            self.ended = true;
        }
        polled
    }
}

impl<S> Drop for Watched<S> {
    fn drop(&mut self) {
        if !self.ended {
            self.shared.cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Turns Nagle's algorithm off, so each chunk leaves when it is written.
fn send_without_delay(connection: &dyn std::any::Any, _: &mut actix_web::dev::Extensions) {
    if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        // A socket that refuses the option still works, only slower.
        let _ = tcp.set_nodelay(true);
    }
}

impl FakeOpenAi {
    /// Starts the server on 127.0.0.1:0 with the test defaults.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).expect("the fake provider starts")
    }

    /// Starts the server as `options` say. Must run inside a tokio runtime.
    pub fn start_with(options: Options) -> anyhow::Result<Self> {
        if let Behavior::Shaped(shape) = &options.fallback {
            anyhow::ensure!(
                shape.tokens_per_sec > 0.0 && shape.tokens_per_sec.is_finite(),
                "the model's tokens per second must be above zero"
            );
        }
        let shared = Arc::new(Shared {
            script: Mutex::new(Script {
                queue: VecDeque::new(),
                fallback: options.fallback,
                recorded: Vec::new(),
            }),
            record_requests: options.record_requests,
            requests: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            timelines: DashMap::new(),
        });
        let listener = TcpListener::bind(("127.0.0.1", options.port))?;
        let port = listener.local_addr()?.port();
        let data = web::Data::new(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
                .route("/v1/chat/completions", web::post().to(completions))
        })
        .on_connect(send_without_delay)
        .workers(options.workers.max(1))
        .backlog(4096)
        .max_connections(100_000)
        .disable_signals()
        .shutdown_timeout(0)
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

    /// Answers the next requests in this order.
    pub fn script(&self, behaviors: impl IntoIterator<Item = Behavior>) {
        self.shared.script().queue.extend(behaviors);
    }

    /// Answers every request not scripted otherwise.
    pub fn always(&self, behavior: Behavior) {
        self.shared.script().fallback = behavior;
    }

    /// Every request received so far (when recording).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.script().recorded.clone()
    }

    /// How many requests arrived so far.
    /// Streamed answers the client stopped reading and closed before
    /// their end.
    pub fn cancelled_streams(&self) -> u64 {
        self.shared.cancelled.load(Ordering::Relaxed)
    }

    pub fn request_count(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// The timeline of the shaped reply tagged `tag`, once its last chunk
    /// is out.
    pub fn take_timeline(&self, tag: u64) -> Option<Timeline> {
        self.shared.timelines.remove(&tag).map(|(_, t)| t)
    }

    /// A copy of the timeline of the reply tagged `tag`, kept for other
    /// readers (a shopper and the owners watching it measure one reply).
    pub fn timeline(&self, tag: u64) -> Option<Timeline> {
        self.shared.timelines.get(&tag).map(|t| t.clone())
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
        let request = json!({"messages": [
            {"role": "system", "content": "You are #1"},
            {"role": "user", "content": "earlier #7"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "a warm parka #42"},
        ]});
        assert_eq!(tag_of(&request), Some(42));
        let untagged = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(tag_of(&untagged), None);
    }

    #[test]
    fn chunks_carry_openais_fields() {
        let bytes = content_chunk("a \"quoted\" word");
        let text = std::str::from_utf8(&bytes).expect("UTF-8");
        let json: Value = serde_json::from_str(
            text.strip_prefix("data: ")
                .expect("an SSE data line")
                .trim(),
        )
        .expect("JSON");
        assert_eq!(json["object"], "chat.completion.chunk");
        assert_eq!(json["choices"][0]["delta"]["content"], "a \"quoted\" word");
        assert!(json["choices"][0]["finish_reason"].is_null());
        // The same fields as every other chunk.
        let role = role_chunk();
        let role: Value = serde_json::from_str(
            std::str::from_utf8(&role)
                .expect("UTF-8")
                .strip_prefix("data: ")
                .expect("SSE")
                .trim(),
        )
        .expect("JSON");
        let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
        assert_eq!(keys(&json), keys(&role));
    }
}
