//! A shopper's WebSocket client speaking the widget protocol
//! (`docs/protocol.md`), for the integration tests and the load generator.
//! Every operation has a fallible form (`try_…`, a [`Failure`] with a
//! stable label, for the load generator's counts) and the tests' form,
//! which fails the test with the reason.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Longest wait for one frame before a test fails.
const FRAME_TIMEOUT: Duration = Duration::from_secs(15);

/// The origin of the test node's own pages, which the demo store allows.
pub const NODE_ORIGIN: &str = "http://localhost:8080";

/// Why a shopper's socket failed, with a stable label for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// TCP connect failed (`io::ErrorKind` in snake case).
    Connect(String),
    /// The WebSocket handshake failed.
    Handshake,
    /// A frame from the node was not the protocol's JSON.
    UnreadableFrame,
    /// The node sent an `error` frame with this code.
    Refused(String),
    /// The socket closed (1005 for no code, 1006 for no close frame).
    Closed { code: u16, reason: String },
    /// Nothing arrived in time.
    Timeout,
}

impl Failure {
    pub fn label(&self) -> String {
        match self {
            Failure::Connect(kind) => format!("connect_{kind}"),
            Failure::Handshake => "handshake_failed".into(),
            Failure::UnreadableFrame => "unreadable_frame".into(),
            Failure::Refused(code) => code.clone(),
            Failure::Closed { code, .. } => format!("closed_{code}"),
            Failure::Timeout => "timeout".into(),
        }
    }

    fn dropped() -> Self {
        Failure::Closed {
            code: 1006,
            reason: "connection dropped".into(),
        }
    }
}

fn snake(kind: std::io::ErrorKind) -> String {
    let name = format!("{kind:?}");
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Where and how a shopper connects.
#[derive(Clone, Debug)]
pub struct Connect {
    /// `ws://HOST:PORT/v1/widget/ws?store=…`.
    pub url: String,
    /// The Origin header, or none.
    pub origin: Option<String>,
    /// The local address to connect from (any port); `None` lets the
    /// system choose.
    pub source: Option<IpAddr>,
    /// Small client buffers, so that tens of thousands fit in memory.
    pub small_buffers: bool,
    /// More request headers (`X-Forwarded-For`, say).
    pub headers: Vec<(String, String)>,
}

impl Connect {
    /// Connects as a page of the demo shop would.
    pub fn to(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            origin: Some(NODE_ORIGIN.to_owned()),
            source: None,
            small_buffers: false,
            headers: Vec::new(),
        }
    }
}

/// The `i`th of `count` loopback source addresses: 127.0.0.2, 127.0.0.3, …
pub fn source_address(i: usize, count: usize) -> IpAddr {
    let n = (i % count.max(1)) as u32 + 2;
    IpAddr::from([127, (n >> 16) as u8, (n >> 8) as u8, n as u8])
}

/// What the node sent, as the tests read it.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Json(Value),
    Closed { code: u16, reason: String },
}

impl Frame {
    pub fn json(self) -> Value {
        match self {
            Frame::Json(v) => v,
            Frame::Closed { code, reason } => panic!("expected a frame, got close {code} {reason}"),
        }
    }
}

/// One reply as the shopper saw it.
#[derive(Debug)]
pub struct Reply {
    pub ack: Value,
    pub tokens: Vec<Value>,
    pub products: Option<Value>,
    /// The `done` or `error` frame that ended the reply.
    pub end: Value,
}

impl Reply {
    /// The ids of the product cards sent with the reply.
    pub fn card_ids(&self) -> Vec<String> {
        self.products
            .as_ref()
            .and_then(|p| p["cards"].as_array())
            .map(|cards| {
                cards
                    .iter()
                    .map(|c| c["id"].as_str().expect("a card id").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn text(&self) -> String {
        self.tokens
            .iter()
            .map(|t| t["text"].as_str().expect("token text"))
            .collect()
    }
}

/// A connected shopper.
pub struct Shopper {
    ws: WebSocketStream<TcpStream>,
}

async fn node_address(url: &str) -> Result<SocketAddr, Failure> {
    let request = url.into_client_request().map_err(|_| Failure::Handshake)?;
    let uri = request.uri();
    let host = uri.host().ok_or(Failure::Handshake)?;
    let port = uri.port_u16().unwrap_or(80);
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Failure::Connect(snake(e.kind())))?
        .next()
        .ok_or_else(|| Failure::Connect("no_address".into()))
}

impl Shopper {
    /// Connects and completes the WebSocket handshake.
    pub async fn open(options: &Connect) -> Result<Self, Failure> {
        let node = node_address(&options.url).await?;
        let connect_failed = |e: std::io::Error| Failure::Connect(snake(e.kind()));
        let socket = match node {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(connect_failed)?;
        if let Some(source) = options.source {
            socket
                .bind(SocketAddr::new(source, 0))
                .map_err(connect_failed)?;
        }
        let stream = socket.connect(node).await.map_err(connect_failed)?;
        stream.set_nodelay(true).map_err(connect_failed)?;
        let mut request = options
            .url
            .as_str()
            .into_client_request()
            .map_err(|_| Failure::Handshake)?;
        if let Some(origin) = &options.origin {
            let origin = origin.parse().map_err(|_| Failure::Handshake)?;
            request.headers_mut().insert("origin", origin);
        }
        for (name, value) in &options.headers {
            let name =
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| Failure::Handshake)?;
            let value = value.parse().map_err(|_| Failure::Handshake)?;
            request.headers_mut().insert(name, value);
        }
        let config = options.small_buffers.then(|| {
            WebSocketConfig::default()
                .read_buffer_size(4096)
                .write_buffer_size(0)
        });
        let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, config)
            .await
            .map_err(|_| Failure::Handshake)?;
        Ok(Self { ws })
    }

    /// Connects as a page of the demo shop would.
    pub async fn connect(url: &str) -> Self {
        Self::connect_from(url, Some(NODE_ORIGIN)).await
    }

    /// Connects with the given Origin header, or none.
    pub async fn connect_from(url: &str, origin: Option<&str>) -> Self {
        let options = Connect {
            origin: origin.map(str::to_owned),
            ..Connect::to(url)
        };
        match Self::open(&options).await {
            Ok(shopper) => shopper,
            Err(failure) => panic!("the socket does not upgrade: {failure:?}"),
        }
    }

    pub async fn try_send(&mut self, message: Message) -> Result<(), Failure> {
        self.ws.send(message).await.map_err(|_| Failure::dropped())
    }

    /// The next text frame, skipping pings and pongs (which the client
    /// answers underneath); a close is a [`Failure::Closed`].
    pub async fn try_next_text(&mut self) -> Result<String, Failure> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
                Some(Ok(Message::Close(frame))) => {
                    return Err(match frame {
                        Some(f) => Failure::Closed {
                            code: u16::from(f.code),
                            reason: f.reason.to_string(),
                        },
                        None => Failure::Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                    });
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(_)) => return Err(Failure::UnreadableFrame),
                Some(Err(_)) | None => return Err(Failure::dropped()),
            }
        }
    }

    /// The next frame within `limit`, parsed as `T`.
    pub async fn try_next<T: DeserializeOwned>(&mut self, limit: Duration) -> Result<T, Failure> {
        let text = tokio::time::timeout(limit, self.try_next_text())
            .await
            .map_err(|_| Failure::Timeout)??;
        serde_json::from_str(&text).map_err(|_| Failure::UnreadableFrame)
    }

    /// Sends `hello` and returns the session id from `ready`.
    pub async fn try_hello(&mut self, limit: Duration) -> Result<String, Failure> {
        self.try_send(Message::text(
            r#"{"type":"hello","v":1,"language":"en-GB"}"#,
        ))
        .await?;
        let frame: Value = self.try_next(limit).await?;
        let field = |name: &str| frame[name].as_str().unwrap_or_default().to_owned();
        match frame["type"].as_str() {
            Some("ready") => Ok(field("session_id")),
            Some("error") => Err(Failure::Refused(field("code"))),
            _ => Err(Failure::UnreadableFrame),
        }
    }

    /// Sends one JSON frame.
    pub async fn try_send_json(&mut self, frame: &Value) -> Result<(), Failure> {
        self.try_send(Message::text(frame.to_string())).await
    }

    /// Sends a shopper message.
    pub async fn try_message(&mut self, client_id: &str, text: &str) -> Result<(), Failure> {
        let frame = json!({"type": "message", "client_id": client_id, "text": text});
        self.try_send(Message::text(frame.to_string())).await
    }

    pub async fn send(&mut self, value: Value) {
        self.send_raw(Message::text(value.to_string())).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.try_send(message).await.expect("send");
    }

    /// The next text frame or the close, skipping pings and pongs.
    pub async fn next(&mut self) -> Frame {
        let next = tokio::time::timeout(FRAME_TIMEOUT, self.try_next_text())
            .await
            .expect("a frame arrives in time");
        match next {
            Ok(text) => Frame::Json(serde_json::from_str(&text).expect("frames are JSON")),
            Err(Failure::Closed { code, reason }) => Frame::Closed { code, reason },
            Err(other) => panic!("unexpected message: {other:?}"),
        }
    }

    /// Reads frames until the socket closes; returns the close.
    pub async fn until_closed(&mut self) -> (Vec<Value>, u16, String) {
        let mut frames = Vec::new();
        loop {
            match self.next().await {
                Frame::Json(v) => frames.push(v),
                Frame::Closed { code, reason } => return (frames, code, reason),
            }
        }
    }

    pub async fn hello(&mut self, extra: Value) -> Value {
        let mut hello = json!({"type": "hello", "v": 1, "language": "en-GB"});
        if let (Some(h), Some(e)) = (hello.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                h.insert(k.clone(), v.clone());
            }
        }
        self.send(hello).await;
        let ready = self.next().await.json();
        assert_eq!(ready["type"], "ready", "{ready}");
        ready
    }

    pub async fn message(&mut self, client_id: &str, text: &str) {
        self.try_message(client_id, text).await.expect("send");
    }

    /// Sends a message and reads its ack and the whole reply.
    pub async fn ask(&mut self, client_id: &str, text: &str) -> Reply {
        self.message(client_id, text).await;
        let ack = self.next().await.json();
        assert_eq!(ack["type"], "ack", "{ack}");
        assert_eq!(ack["client_id"], client_id);
        self.read_reply(ack).await
    }

    /// Reads token, products and done/error frames of one reply.
    pub async fn read_reply(&mut self, ack: Value) -> Reply {
        let mut tokens = Vec::new();
        let mut products = None;
        loop {
            let frame = self.next().await.json();
            match frame["type"].as_str() {
                Some("token") => tokens.push(frame),
                Some("products") => products = Some(frame),
                Some("done" | "error") => {
                    return Reply {
                        ack,
                        tokens,
                        products,
                        end: frame,
                    };
                }
                _ => panic!("unexpected frame in a reply: {frame}"),
            }
        }
    }

    /// Everything the node sends from now until it closes the connection,
    /// as raw bytes, read without answering pings (so a test can play a
    /// client that has stopped responding).
    pub async fn raw_bytes_until_eof(mut self) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut bytes = Vec::new();
        let read = self.ws.get_mut().read_to_end(&mut bytes);
        let _ = tokio::time::timeout(FRAME_TIMEOUT, read).await;
        bytes
    }

    /// Closes the socket politely and waits briefly for the node's close.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_cycle_through_loopback_from_127_0_0_2() {
        assert_eq!(source_address(0, 4).to_string(), "127.0.0.2");
        assert_eq!(source_address(5, 4).to_string(), "127.0.0.3");
        assert_eq!(source_address(300, 1000).to_string(), "127.0.1.46");
        assert_eq!(
            snake(std::io::ErrorKind::ConnectionRefused),
            "connection_refused"
        );
    }
}
