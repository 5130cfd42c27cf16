//! The live desk socket's JSON frames (`docs/desk-protocol.md`): private
//! wire structs, converted from the desk's typed events here, so a rename
//! inside the actors crate never changes a frame.

use mikabot_actors::desk::{DeskEvent, DeskRefusal, LiveConversation, Typist};
use mikabot_actors::log::StoredMessage;
use mikabot_actors::prompt::Role;
use serde::{Deserialize, Serialize};

use crate::protocol::CardFrame;

/// Longest frame a desk client may send.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;

/// Longest `client_id` of an agent message.
pub const MAX_CLIENT_ID_BYTES: usize = 64;

/// Close codes of the desk socket.
pub mod close {
    pub const SHUTDOWN: u16 = 1001;
    pub const TOO_SLOW: u16 = 4001;
    pub const ACCESS_REVOKED: u16 = 4403;
    pub const HEARTBEAT_TIMEOUT: u16 = 4408;
}

/// A frame from a desk client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeskFrame {
    Watch {
        conversation_id: Option<String>,
    },
    TakeOver {
        conversation_id: String,
    },
    HandBack {
        conversation_id: String,
    },
    Message {
        conversation_id: String,
        client_id: String,
        text: String,
    },
    Typing {
        conversation_id: String,
    },
    Ping {
        nonce: Option<String>,
    },
}

const FRAME_TYPES: &[&str] = &[
    "watch",
    "take_over",
    "hand_back",
    "message",
    "typing",
    "ping",
];

/// Why a client frame was not understood: its code and message.
pub fn decode(text: &str) -> Result<DeskFrame, (&'static str, String)> {
    if text.len() > MAX_FRAME_BYTES {
        return Err((
            "frame_too_large",
            format!("a frame is at most {MAX_FRAME_BYTES} bytes"),
        ));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ("invalid_json", format!("not JSON: {e}")))?;
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or((
            "invalid_frame",
            "a frame is a JSON object with a string field \"type\"".to_owned(),
        ))?
        .to_owned();
    if !FRAME_TYPES.contains(&kind.as_str()) {
        let shown: String = kind.chars().take(32).collect();
        return Err((
            "unknown_frame_type",
            format!("unknown frame type {shown:?}; expected one of {FRAME_TYPES:?}"),
        ));
    }
    let frame: DeskFrame = serde_json::from_value(value)
        .map_err(|e| ("invalid_frame", format!("{kind} frame: {e}")))?;
    if let DeskFrame::Ping { nonce: Some(nonce) } = &frame
        && nonce.len() > 64
    {
        return Err(("invalid_frame", "a ping nonce is at most 64 bytes".into()));
    }
    Ok(frame)
}

#[derive(Serialize)]
pub struct ConversationFrame<'a> {
    conversation_id: String,
    language: &'static str,
    page_path: Option<&'a str>,
    device: &'a str,
    started_at_ms: u64,
    state: &'static str,
    holder: Option<&'a str>,
    shopper_connected: bool,
}

impl<'a> From<&'a LiveConversation> for ConversationFrame<'a> {
    fn from(line: &'a LiveConversation) -> Self {
        Self {
            conversation_id: line.facts.conversation.to_string(),
            language: line.facts.language.code(),
            page_path: line.facts.page_path.as_deref(),
            device: &line.facts.device,
            started_at_ms: line.facts.started_at_ms,
            state: line.state.as_str(),
            holder: line.holder.as_deref(),
            shopper_connected: line.shopper_connected,
        }
    }
}

#[derive(Serialize)]
pub struct MessageFrame<'a> {
    id: String,
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    text: &'a str,
    at_ms: u64,
    incomplete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    cards: Vec<CardFrame<'a>>,
}

impl<'a> From<&'a StoredMessage> for MessageFrame<'a> {
    fn from(message: &'a StoredMessage) -> Self {
        Self {
            id: message.id.to_string(),
            role: match message.role {
                Role::Shopper => "shopper",
                Role::Assistant => "assistant",
                Role::Agent => "agent",
            },
            name: message.author.as_deref(),
            text: &message.text,
            at_ms: message.at_ms,
            incomplete: message.reply.as_ref().is_some_and(|r| r.incomplete),
            finish_reason: message
                .reply
                .as_ref()
                .and_then(|r| r.finish)
                .map(|f| f.as_str()),
            cards: message
                .reply
                .as_ref()
                .map(|r| r.cards.iter().map(CardFrame::from).collect())
                .unwrap_or_default(),
        }
    }
}

/// Who the watcher is, for the ready frame.
#[derive(Serialize)]
pub struct You<'a> {
    pub name: &'a str,
    pub role: &'static str,
    pub may_act: bool,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Ready {
        store_id: &'a str,
        you: You<'a>,
        conversations: Vec<ConversationFrame<'a>>,
        idle_return_secs: f64,
    },
    Conversation {
        conversation: ConversationFrame<'a>,
    },
    ConversationEnded {
        conversation_id: String,
    },
    Watching {
        conversation: Option<ConversationFrame<'a>>,
    },
    History {
        conversation_id: String,
        messages: Vec<MessageFrame<'a>>,
    },
    Message {
        conversation_id: String,
        message: MessageFrame<'a>,
    },
    Tokens {
        conversation_id: String,
        reply_id: String,
        from_seq: u32,
        seq: u32,
        text: &'a str,
    },
    ReplyDone {
        conversation_id: String,
        reply_id: String,
        finish_reason: &'static str,
        cards: Vec<CardFrame<'a>>,
    },
    ReplyFailed {
        conversation_id: String,
        reply_id: String,
    },
    Typing {
        conversation_id: String,
        who: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
    },
    Sent {
        client_id: &'a str,
        message_id: String,
    },
    Done {
        action: &'static str,
        conversation_id: String,
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        holder: Option<&'a str>,
    },
    Pong {
        nonce: Option<&'a str>,
    },
}

impl ServerFrame<'_> {
    pub fn text(&self) -> String {
        // Frames hold strings, numbers, booleans and lists of them: they
        // always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A desk event as its frame.
pub fn event_frame(event: &DeskEvent) -> ServerFrame<'_> {
    match event {
        DeskEvent::Conversation(line) => ServerFrame::Conversation {
            conversation: ConversationFrame::from(line),
        },
        DeskEvent::Ended { conversation } => ServerFrame::ConversationEnded {
            conversation_id: conversation.to_string(),
        },
        DeskEvent::Message {
            conversation,
            message,
        } => ServerFrame::Message {
            conversation_id: conversation.to_string(),
            message: MessageFrame::from(message),
        },
        DeskEvent::Tokens {
            conversation,
            reply_id,
            from_seq,
            seq,
            text,
        } => ServerFrame::Tokens {
            conversation_id: conversation.to_string(),
            reply_id: reply_id.to_string(),
            from_seq: *from_seq,
            seq: *seq,
            text,
        },
        DeskEvent::ReplyDone {
            conversation,
            reply_id,
            finish,
            cards,
        } => ServerFrame::ReplyDone {
            conversation_id: conversation.to_string(),
            reply_id: reply_id.to_string(),
            finish_reason: finish.as_str(),
            cards: cards.iter().map(CardFrame::from).collect::<Vec<_>>(),
        },
        DeskEvent::ReplyFailed {
            conversation,
            reply_id,
        } => ServerFrame::ReplyFailed {
            conversation_id: conversation.to_string(),
            reply_id: reply_id.to_string(),
        },
        DeskEvent::Typing { conversation, who } => ServerFrame::Typing {
            conversation_id: conversation.to_string(),
            who: match who {
                Typist::Shopper => "shopper",
                Typist::Agent(_) => "agent",
            },
            name: match who {
                Typist::Shopper => None,
                Typist::Agent(name) => Some(name),
            },
        },
    }
}

/// The stable code of a refusal.
pub fn refusal_code(refusal: &DeskRefusal) -> &'static str {
    match refusal {
        DeskRefusal::NotLive => "not_live",
        DeskRefusal::HeldBy(_) => "held_by_other",
        DeskRefusal::NotHolder => "not_holder",
        DeskRefusal::RoleTooLow => "role_too_low",
        DeskRefusal::MessageEmpty => "message_empty",
        DeskRefusal::MessageTooLong(_) => "message_too_long",
        DeskRefusal::Storage(_) => "storage_failed",
        DeskRefusal::NotJoined => "too_slow",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_decode_or_say_why() {
        assert!(matches!(
            decode(r#"{"type":"take_over","conversation_id":"x"}"#),
            Ok(DeskFrame::TakeOver { .. })
        ));
        assert_eq!(decode("nope").expect_err("refused").0, "invalid_json");
        assert_eq!(
            decode(r#"{"type":"dance"}"#).expect_err("refused").0,
            "unknown_frame_type"
        );
        assert_eq!(
            decode(r#"{"type":"take_over"}"#).expect_err("refused").0,
            "invalid_frame"
        );
        assert_eq!(
            decode(r#"{"type":"typing","conversation_id":"x","extra":1}"#)
                .expect_err("refused")
                .0,
            "invalid_frame"
        );
        let big = format!(
            r#"{{"type":"ping","nonce":"{}"}}"#,
            "n".repeat(MAX_FRAME_BYTES)
        );
        assert_eq!(decode(&big).expect_err("refused").0, "frame_too_large");
    }
}
