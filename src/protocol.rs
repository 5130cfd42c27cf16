//! The widget's JSON wire format (version 1, documented in
//! `docs/protocol.md`): decoding client frames into the actors' typed
//! events and encoding server events into frames.

use mikabot_actors::catalog::ProductCard;
use mikabot_actors::events::{
    ClientEvent, ErrorCode, Hello, HistoryEntry, ResumeFrom, ServerEvent,
};
use serde::{Deserialize, Serialize};

/// Longest URL accepted in a hello (page and referrer).
pub const MAX_URL_BYTES: usize = 2048;
/// Longest language tag accepted in a hello.
pub const MAX_LANGUAGE_TAG_BYTES: usize = 35;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Hello {
        v: u32,
        session_id: Option<String>,
        language: Option<String>,
        page_url: Option<String>,
        referrer: Option<String>,
        resume: Option<ResumeFrame>,
    },
    Message {
        client_id: String,
        text: String,
    },
    Retry {},
    Ping {
        nonce: Option<String>,
    },
    Typing {},
    RequestHuman {},
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeFrame {
    reply_id: String,
    last_seq: Option<u32>,
}

const CLIENT_FRAME_TYPES: &[&str] = &[
    "hello",
    "message",
    "retry",
    "ping",
    "typing",
    "request_human",
];

fn invalid(code: ErrorCode, message: impl Into<String>) -> ClientEvent {
    ClientEvent::Invalid {
        code,
        message: message.into(),
    }
}

/// The error for a frame that did not parse as a client frame.
fn explain_invalid(text: &str) -> ClientEvent {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => return invalid(ErrorCode::InvalidJson, format!("not JSON: {e}")),
    };
    let Some(kind) = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
    else {
        return invalid(
            ErrorCode::InvalidFrame,
            "a frame is a JSON object with a string field \"type\"",
        );
    };
    if !CLIENT_FRAME_TYPES.contains(&kind.as_str()) {
        let shown: String = kind.chars().take(32).collect();
        return invalid(
            ErrorCode::UnknownFrameType,
            format!(
                "unknown frame type {shown:?}; expected hello, message, retry, ping, typing or request_human"
            ),
        );
    }
    match serde_json::from_value::<ClientFrame>(value) {
        Err(e) => invalid(ErrorCode::InvalidFrame, format!("{kind} frame: {e}")),
        // Unreachable in practice: the same text failed to parse above.
        Ok(_) => invalid(
            ErrorCode::InvalidFrame,
            format!("{kind} frame is malformed"),
        ),
    }
}

/// Decodes one text frame. Never fails: what cannot be understood becomes
/// [`ClientEvent::Invalid`] with a stable code.
pub fn decode(text: &str, max_frame_bytes: usize) -> ClientEvent {
    if text.len() > max_frame_bytes {
        return invalid(
            ErrorCode::FrameTooLarge,
            format!("a frame is at most {max_frame_bytes} bytes"),
        );
    }
    // Valid frames parse once; only a failure is parsed again to say why.
    let frame: ClientFrame = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(_) => return explain_invalid(text),
    };
    match frame {
        ClientFrame::Hello {
            v,
            session_id,
            language,
            page_url,
            referrer,
            resume,
        } => {
            let too_long =
                |field: &Option<String>, max: usize| field.as_ref().is_some_and(|f| f.len() > max);
            if too_long(&page_url, MAX_URL_BYTES) || too_long(&referrer, MAX_URL_BYTES) {
                return invalid(
                    ErrorCode::InvalidFrame,
                    format!("page_url and referrer are at most {MAX_URL_BYTES} bytes"),
                );
            }
            if too_long(&language, MAX_LANGUAGE_TAG_BYTES)
                || too_long(&session_id, 64)
                || resume.as_ref().is_some_and(|r| r.reply_id.len() > 64)
            {
                return invalid(
                    ErrorCode::InvalidFrame,
                    "language, session_id or resume.reply_id is too long",
                );
            }
            ClientEvent::Hello(Hello {
                version: v,
                session_id,
                language,
                page_url,
                referrer,
                resume: resume.map(|r| ResumeFrom {
                    reply_id: r.reply_id,
                    last_seq: r.last_seq,
                }),
            })
        }
        ClientFrame::Retry {} => ClientEvent::Retry,
        ClientFrame::Typing {} => ClientEvent::Typing,
        ClientFrame::RequestHuman {} => ClientEvent::RequestHuman,
        ClientFrame::Message { client_id, text } => ClientEvent::Message { client_id, text },
        ClientFrame::Ping { nonce } => {
            if nonce.as_ref().is_some_and(|n| n.len() > 64) {
                return invalid(ErrorCode::InvalidFrame, "a ping nonce is at most 64 bytes");
            }
            ClientEvent::Ping { nonce }
        }
    }
}

#[derive(Serialize)]
pub(crate) struct CardFrame<'a> {
    id: &'a str,
    name: &'a str,
    /// Decimal string in the currency's minor digits, e.g. "49.95".
    price: String,
    /// The highest variant price, when variants differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    price_max: Option<String>,
    currency: &'a str,
    image: &'a str,
    url: &'a str,
}

impl<'a> From<&'a ProductCard> for CardFrame<'a> {
    fn from(card: &'a ProductCard) -> Self {
        Self {
            id: &card.id.0,
            name: &card.name,
            price: card.price.decimal(),
            price_max: card.price_max.map(|m| m.decimal()),
            currency: card.price.currency.code(),
            image: &card.image_url,
            url: &card.url,
        }
    }
}

#[derive(Serialize)]
struct HistoryFrame<'a> {
    message_id: String,
    role: &'a str,
    /// An agent message's author.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    text: &'a str,
    incomplete: bool,
    cards: Vec<CardFrame<'a>>,
}

impl<'a> From<&'a HistoryEntry> for HistoryFrame<'a> {
    fn from(entry: &'a HistoryEntry) -> Self {
        Self {
            message_id: entry.message_id.to_string(),
            role: match entry.role {
                mikabot_actors::prompt::Role::Shopper => "shopper",
                mikabot_actors::prompt::Role::Assistant => "assistant",
                mikabot_actors::prompt::Role::Agent => "agent",
            },
            name: entry.author.as_deref(),
            text: &entry.text,
            incomplete: entry.incomplete,
            cards: entry.cards.iter().map(CardFrame::from).collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerFrame<'a> {
    Ready {
        v: u32,
        session_id: String,
        conversation_id: String,
        resumed: bool,
        language: &'a str,
        history: Vec<HistoryFrame<'a>>,
        pending_reply: Option<String>,
        /// The person from the store holding the conversation, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<&'a str>,
    },
    AgentJoined {
        name: &'a str,
    },
    AgentMessage {
        message_id: String,
        name: &'a str,
        text: &'a str,
    },
    AgentTyping {
        name: &'a str,
    },
    HandedBack {
        reason: &'a str,
    },
    HumanRequested {},
    Ack {
        client_id: &'a str,
        message_id: String,
    },
    Token {
        reply_id: String,
        seq: u32,
        text: &'a str,
    },
    Products {
        reply_id: String,
        cards: Vec<CardFrame<'a>>,
    },
    Done {
        reply_id: String,
        finish_reason: &'a str,
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_id: Option<String>,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        nonce: Option<&'a str>,
    },
}

/// What to put on the socket for one server event.
#[derive(Debug, PartialEq)]
pub enum Outgoing {
    Text(String),
    Ping,
    Pong(Vec<u8>),
    Close { code: u16, reason: &'static str },
}

/// Encodes one server event.
pub fn encode(event: &ServerEvent) -> Outgoing {
    let frame = match event {
        ServerEvent::Ready {
            session_id,
            conversation_id,
            resumed,
            language,
            history,
            pending_reply,
            agent,
        } => ServerFrame::Ready {
            agent: agent.as_deref(),
            v: mikabot_actors::events::PROTOCOL_VERSION,
            session_id: session_id.to_string(),
            conversation_id: conversation_id.to_string(),
            resumed: *resumed,
            language: language.code(),
            history: history.iter().map(HistoryFrame::from).collect(),
            pending_reply: pending_reply.map(|id| id.to_string()),
        },
        ServerEvent::Ack {
            client_id,
            message_id,
        } => ServerFrame::Ack {
            client_id,
            message_id: message_id.to_string(),
        },
        ServerEvent::Token {
            reply_id,
            seq,
            text,
        } => ServerFrame::Token {
            reply_id: reply_id.to_string(),
            seq: *seq,
            text,
        },
        ServerEvent::Products { reply_id, cards } => ServerFrame::Products {
            reply_id: reply_id.to_string(),
            cards: cards.iter().map(CardFrame::from).collect(),
        },
        ServerEvent::Done { reply_id, finish } => ServerFrame::Done {
            reply_id: reply_id.to_string(),
            finish_reason: finish.as_str(),
        },
        ServerEvent::Error(error) => ServerFrame::Error {
            code: error.code.as_str(),
            message: &error.message,
            // Rounded up so a client never retries too early.
            retry_after_ms: error
                .retry_after
                .map(|d| d.as_micros().div_ceil(1000) as u64),
            client_id: error.client_id.as_deref(),
            reply_id: error.reply_id.map(|id| id.to_string()),
        },
        ServerEvent::Pong { nonce } => ServerFrame::Pong {
            nonce: nonce.as_deref(),
        },
        ServerEvent::AgentJoined { name } => ServerFrame::AgentJoined { name },
        ServerEvent::AgentMessage {
            message_id,
            name,
            text,
        } => ServerFrame::AgentMessage {
            message_id: message_id.to_string(),
            name,
            text,
        },
        ServerEvent::AgentTyping { name } => ServerFrame::AgentTyping { name },
        ServerEvent::HandedBack { idle } => ServerFrame::HandedBack {
            reason: if *idle { "idle" } else { "agent" },
        },
        ServerEvent::HumanRequested => ServerFrame::HumanRequested {},
        ServerEvent::TransportPing => return Outgoing::Ping,
        ServerEvent::TransportPong(payload) => return Outgoing::Pong(payload.clone()),
        ServerEvent::Close { code, reason } => {
            return Outgoing::Close {
                code: *code,
                reason,
            };
        }
    };
    // The frame types hold only strings, numbers and booleans, which always
    // serialise.
    Outgoing::Text(serde_json::to_string(&frame).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use mikabot_actors::events::ErrorEvent;
    use mikabot_actors::ids::MessageId;

    use super::*;

    fn code_of(event: ClientEvent) -> Option<ErrorCode> {
        match event {
            ClientEvent::Invalid { code, .. } => Some(code),
            _ => None,
        }
    }

    #[test]
    fn malformed_frames_get_distinct_codes() {
        assert_eq!(code_of(decode("{", 100)), Some(ErrorCode::InvalidJson));
        assert_eq!(code_of(decode("[1]", 100)), Some(ErrorCode::InvalidFrame));
        assert_eq!(
            code_of(decode(r#"{"type":"dance"}"#, 100)),
            Some(ErrorCode::UnknownFrameType)
        );
        assert_eq!(
            code_of(decode(r#"{"type":"message"}"#, 100)),
            Some(ErrorCode::InvalidFrame)
        );
        assert_eq!(
            code_of(decode(&"x".repeat(101), 100)),
            Some(ErrorCode::FrameTooLarge)
        );
    }

    #[test]
    fn a_message_frame_decodes() {
        assert_eq!(
            decode(r#"{"type":"message","client_id":"c1","text":"hi"}"#, 100),
            ClientEvent::Message {
                client_id: "c1".into(),
                text: "hi".into()
            }
        );
    }

    #[test]
    fn hello_carries_where_a_reply_stopped() {
        let frame =
            r#"{"type":"hello","v":1,"session_id":"s","resume":{"reply_id":"r","last_seq":7}}"#;
        let ClientEvent::Hello(hello) = decode(frame, 1000) else {
            panic!("a hello");
        };
        assert_eq!(
            hello.resume,
            Some(ResumeFrom {
                reply_id: "r".into(),
                last_seq: Some(7)
            })
        );
        assert_eq!(decode(r#"{"type":"retry"}"#, 100), ClientEvent::Retry);
        let negative = r#"{"type":"hello","v":1,"resume":{"reply_id":"r","last_seq":-1}}"#;
        assert_eq!(
            code_of(decode(negative, 1000)),
            Some(ErrorCode::InvalidFrame)
        );
    }

    /// The error table of `docs/protocol.md`: each code with the close code
    /// its "connection" column names (`None` for "stays open").
    fn documented_codes() -> Vec<(String, Option<u16>)> {
        let doc = include_str!("../docs/protocol.md");
        let table = doc
            .split("## Error codes")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("docs/protocol.md has an error code table");
        table
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                let connection = cells.get(3)?;
                let close = connection
                    .rsplit([' ', ','])
                    .next()
                    .and_then(|last| last.parse::<u16>().ok());
                Some((code.to_owned(), close))
            })
            .collect()
    }

    #[test]
    fn the_documented_error_table_is_the_code_table() {
        let documented = documented_codes();
        let table: Vec<(String, Option<u16>)> = ErrorCode::ALL
            .iter()
            .map(|code| (code.as_str().to_owned(), code.close_code()))
            .collect();
        assert_eq!(documented, table);
    }

    #[test]
    fn errors_encode_retry_after_in_whole_milliseconds() {
        let mut error = ErrorEvent::new(ErrorCode::RateLimited, "slow down");
        error.retry_after = Some(std::time::Duration::from_micros(1500));
        error.reply_id = Some(MessageId::new());
        let Outgoing::Text(text) = encode(&ServerEvent::Error(error)) else {
            panic!("errors are text frames");
        };
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["type"], "error");
        assert_eq!(value["code"], "rate_limited");
        assert_eq!(value["retry_after_ms"], 2);
        assert!(value.get("client_id").is_none());
    }
}
