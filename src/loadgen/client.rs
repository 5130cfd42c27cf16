//! One simulated shopper's socket: connected from a chosen loopback source
//! address, speaking the widget protocol (`docs/protocol.md`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Where shoppers connect.
#[derive(Clone, Debug)]
pub struct Target {
    pub node: SocketAddr,
    pub url: String,
    pub origin: String,
}

/// Why a shopper's socket failed, as a stable label for reports.
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
    /// The socket closed (close code, 1006 for none).
    Closed(u16),
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
            Failure::Closed(code) => format!("closed_{code}"),
            Failure::Timeout => "timeout".into(),
        }
    }
}

/// A server frame, with the fields the load generator reads.
#[derive(Debug, serde::Deserialize)]
pub struct Frame {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    /// On a refusal: when asking again can succeed.
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
}

/// A connected shopper.
pub struct Shopper {
    ws: WebSocketStream<TcpStream>,
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

/// The `i`th of `count` loopback source addresses: 127.0.0.2, 127.0.0.3, …
pub fn source_address(i: usize, count: usize) -> IpAddr {
    let n = (i % count.max(1)) as u32 + 2;
    IpAddr::from([127, (n >> 16) as u8, (n >> 8) as u8, n as u8])
}

impl Shopper {
    /// Connects from `source` (any port) and completes the WebSocket
    /// handshake, with small client buffers so that many fit in memory.
    pub async fn connect(target: &Target, source: IpAddr) -> Result<Self, Failure> {
        let socket = match source {
            IpAddr::V4(_) => TcpSocket::new_v4(),
            IpAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(|e| Failure::Connect(snake(e.kind())))?;
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| Failure::Connect(snake(e.kind())))?;
        let stream = socket
            .connect(target.node)
            .await
            .map_err(|e| Failure::Connect(snake(e.kind())))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Failure::Connect(snake(e.kind())))?;
        let mut request = target
            .url
            .as_str()
            .into_client_request()
            .map_err(|_| Failure::Handshake)?;
        let origin = target.origin.parse().map_err(|_| Failure::Handshake)?;
        request.headers_mut().insert("origin", origin);
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(|_| Failure::Handshake)?;
        Ok(Self { ws })
    }

    pub async fn send(&mut self, frame: String) -> Result<(), Failure> {
        self.ws
            .send(Message::text(frame))
            .await
            .map_err(|_| Failure::Closed(1006))
    }

    /// The next server frame (transport pings are answered underneath).
    pub async fn next(&mut self) -> Result<Frame, Failure> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text).map_err(|_| Failure::UnreadableFrame);
                }
                Some(Ok(Message::Close(close))) => {
                    return Err(Failure::Closed(close.map_or(1005, |c| c.code.into())));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(Failure::Closed(1006)),
            }
        }
    }

    /// The next frame within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Result<Frame, Failure> {
        tokio::time::timeout(limit, self.next())
            .await
            .map_err(|_| Failure::Timeout)?
    }

    /// Sends `hello` and returns the session id from `ready`.
    pub async fn hello(&mut self, limit: Duration) -> Result<String, Failure> {
        self.send(r#"{"type":"hello","v":1,"language":"en-GB"}"#.to_owned())
            .await?;
        let frame = self.next_within(limit).await?;
        match frame.kind.as_str() {
            "ready" => Ok(frame.session_id.unwrap_or_default()),
            "error" => Err(Failure::Refused(frame.code.unwrap_or_default())),
            _ => Err(Failure::UnreadableFrame),
        }
    }

    /// Sends a shopper message.
    pub async fn message(&mut self, client_id: &str, text: &str) -> Result<(), Failure> {
        let frame = serde_json::json!({"type": "message", "client_id": client_id, "text": text});
        self.send(frame.to_string()).await
    }

    /// Sends a close frame and waits briefly for the node's.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
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
