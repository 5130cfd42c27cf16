//! A shopper's WebSocket client speaking the widget protocol.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest wait for one frame before a test fails.
const FRAME_TIMEOUT: Duration = Duration::from_secs(15);

/// What the node sent.
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

pub struct Shopper {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// The origin of the test node's own pages, which the demo store allows.
pub const NODE_ORIGIN: &str = "http://localhost:8080";

impl Shopper {
    /// Connects as a page of the demo shop would.
    pub async fn connect(url: &str) -> Self {
        Self::connect_from(url, Some(NODE_ORIGIN)).await
    }

    /// Connects with the given Origin header, or none.
    pub async fn connect_from(url: &str, origin: Option<&str>) -> Self {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().expect("a WebSocket URL");
        if let Some(origin) = origin {
            let value = origin.parse().expect("a header value");
            request.headers_mut().insert("origin", value);
        }
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the socket upgrades");
        Self { ws }
    }

    pub async fn send(&mut self, value: Value) {
        self.send_raw(Message::text(value.to_string())).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// The next text frame or the close, skipping pings and pongs.
    pub async fn next(&mut self) -> Frame {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.ws.next())
                .await
                .expect("a frame arrives in time");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Frame::Json(serde_json::from_str(&text).expect("frames are JSON"));
                }
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(f) => Frame::Closed {
                            code: u16::from(f.code),
                            reason: f.reason.to_string(),
                        },
                        None => Frame::Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                    };
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("unexpected message {other:?}"),
                Some(Err(_)) | None => {
                    return Frame::Closed {
                        code: 1006,
                        reason: "connection dropped".into(),
                    };
                }
            }
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
        self.send(json!({"type": "message", "client_id": client_id, "text": text}))
            .await;
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

    /// Closes the socket politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        // Drain until the node's close arrives.
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_secs(5), self.ws.next()).await
        {}
    }
}
