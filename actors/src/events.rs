//! What a widget session receives from and sends to its shopper, as typed
//! events. The JSON wire format that carries them lives in the `mikabot`
//! crate's protocol module; this crate never sees JSON.

use std::time::Duration;

use crate::catalog::ProductCard;
use crate::ids::{ConversationId, MessageId, SessionId};
use crate::language::Language;
use crate::model::FinishReason;
use crate::prompt::Role;

/// The protocol version this node speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// WebSocket close codes the node uses.
pub mod close_code {
    /// The node is stopping.
    pub const GOING_AWAY: u16 = 1001;
    /// A WebSocket-level protocol violation.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame that is not UTF-8 (RFC 6455 §8.1).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Repeated misuse of the protocol.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A frame above the transport limit.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The node is at its most sessions; try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// The hello asked for a protocol version this node does not speak.
    pub const UNSUPPORTED_VERSION: u16 = 4400;
    /// The page's origin is not one of the store's allowed origins.
    pub const ORIGIN_NOT_ALLOWED: u16 = 4403;
    /// The store in the URL does not exist.
    pub const UNKNOWN_STORE: u16 = 4404;
    /// The hello did not arrive, or the client stopped answering heartbeats.
    pub const TIMEOUT: u16 = 4408;
    /// A newer connection took over the conversation (another tab).
    pub const SESSION_REPLACED: u16 = 4409;
    /// The conversation was erased.
    pub const CONVERSATION_ERASED: u16 = 4410;
    /// Too many new sessions from this address; retry later.
    pub const TOO_MANY_SESSIONS: u16 = 4429;
}

/// Declares [`ErrorCode`] from one table: each code's stable text and the
/// close code the socket gets when that error ends the session (`None`:
/// the error never ends it).
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $text:literal, $close:expr;)*) => {
        /// Stable error codes. Their text forms are documented in
        /// `docs/protocol.md` and never change meaning.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code's stable text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }

            /// The close code when this error ends the session.
            pub fn close_code(self) -> Option<u16> {
                match self {
                    $(ErrorCode::$variant => $close,)*
                }
            }
        }
    };
}

error_codes! {
    InvalidJson => "invalid_json", None;
    InvalidFrame => "invalid_frame", None;
    UnknownFrameType => "unknown_frame_type", None;
    BinaryNotSupported => "binary_not_supported", None;
    /// Above the protocol limit the frame is refused and the session goes
    /// on; far above it the transport closes.
    FrameTooLarge => "frame_too_large", Some(close_code::MESSAGE_TOO_BIG);
    MessageEmpty => "message_empty", None;
    MessageTooLong => "message_too_long", None;
    HelloRequired => "hello_required", None;
    DuplicateHello => "duplicate_hello", None;
    UnsupportedVersion => "unsupported_version", Some(close_code::UNSUPPORTED_VERSION);
    RateLimited => "rate_limited", None;
    /// Too many new sessions a minute, or too many open at once, from one
    /// address.
    TooManySessions => "too_many_sessions", Some(close_code::TOO_MANY_SESSIONS);
    /// The node holds its most sessions.
    NodeBusy => "node_busy", Some(close_code::TRY_AGAIN_LATER);
    /// Too many new conversations an hour from one address.
    TooManyConversations => "too_many_conversations", None;
    UnknownStore => "unknown_store", Some(close_code::UNKNOWN_STORE);
    StorageFailed => "storage_failed", None;
    /// Too many writes wait for the disk; the message was not stored.
    StorageBusy => "storage_busy", None;
    ModelUnavailable => "model_unavailable", None;
    ModelFailed => "model_failed", None;
    TooManyErrors => "too_many_errors", Some(close_code::POLICY_VIOLATION);
    HelloTimeout => "hello_timeout", Some(close_code::TIMEOUT);
    HeartbeatTimeout => "heartbeat_timeout", Some(close_code::TIMEOUT);
    ServerShutdown => "server_shutdown", Some(close_code::GOING_AWAY);
    ProtocolError => "protocol_error", Some(close_code::PROTOCOL_ERROR);
    InvalidUtf8 => "invalid_utf8", Some(close_code::INVALID_PAYLOAD);
    OriginNotAllowed => "origin_not_allowed", Some(close_code::ORIGIN_NOT_ALLOWED);
    SessionReplaced => "session_replaced", Some(close_code::SESSION_REPLACED);
    /// The conversation was erased (by the shopper, the store or a
    /// retention rule): the widget forgets it.
    ConversationErased => "conversation_erased", Some(close_code::CONVERSATION_ERASED);
    NothingToRetry => "nothing_to_retry", None;
}

impl ErrorCode {
    /// The close code for ending the session with this error. Codes that
    /// never end a session close as a policy violation, should one ever be
    /// used to.
    pub fn closing(self) -> u16 {
        self.close_code().unwrap_or(close_code::POLICY_VIOLATION)
    }
}

/// The first frame of every session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hello {
    pub version: u32,
    /// Present when the shopper returns with a stored session id.
    pub session_id: Option<String>,
    /// The browser's language tag (`nl-BE`).
    pub language: Option<String>,
    pub page_url: Option<String>,
    pub referrer: Option<String>,
    /// The reply the client was showing when its socket dropped.
    pub resume: Option<ResumeFrom>,
}

/// Where a reconnecting client's copy of a reply stops.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResumeFrom {
    pub reply_id: String,
    /// The last token the client rendered; `None` if it rendered none.
    pub last_seq: Option<u32>,
}

/// Something the shopper's client did.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    Hello(Hello),
    Message {
        client_id: String,
        text: String,
    },
    /// Answer the last message again after a failed reply.
    Retry,
    /// The shopper is typing (the widget sends it at most every few
    /// seconds while they type).
    Typing,
    /// The shopper asks for a person from the store.
    RequestHuman,
    /// An application-level ping; answered with a pong carrying the nonce.
    Ping {
        nonce: Option<String>,
    },
    /// A WebSocket ping; answered with a WebSocket pong.
    TransportPing(Vec<u8>),
    /// Any sign of life (WebSocket pong).
    Alive,
    /// A frame that could not be understood; the connection stays open.
    Invalid {
        code: ErrorCode,
        message: String,
    },
    /// The transport failed; the session ends with the code's close code.
    Broken {
        code: ErrorCode,
        message: String,
    },
    /// The client closed the socket.
    Closed,
}

/// One message of a resumed conversation, for the client to render.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    pub message_id: MessageId,
    pub role: Role,
    /// The name of the person from the store who wrote an agent message.
    pub author: Option<String>,
    pub text: String,
    pub incomplete: bool,
    pub cards: Vec<ProductCard>,
}

/// An error told to the shopper's client.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorEvent {
    pub code: ErrorCode,
    pub message: String,
    pub retry_after: Option<Duration>,
    /// The client message the error is about, if any.
    pub client_id: Option<String>,
    /// The reply the error ends, if any.
    pub reply_id: Option<MessageId>,
}

impl ErrorEvent {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
            client_id: None,
            reply_id: None,
        }
    }
}

/// Something the node tells the shopper's client.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerEvent {
    Ready {
        session_id: SessionId,
        conversation_id: ConversationId,
        resumed: bool,
        language: Language,
        history: Vec<HistoryEntry>,
        /// A reply in flight; its tokens follow the ready frame.
        pending_reply: Option<MessageId>,
        /// The person from the store who holds the conversation now.
        agent: Option<String>,
    },
    /// A person from the store joined: the assistant stops, they answer.
    AgentJoined {
        name: String,
    },
    /// A message from the person holding the conversation (stored).
    AgentMessage {
        message_id: MessageId,
        name: String,
        text: String,
    },
    /// The person holding the conversation is typing.
    AgentTyping {
        name: String,
    },
    /// The assistant answers again; `idle`: the person left.
    HandedBack {
        idle: bool,
    },
    /// The request for a person reached the store.
    HumanRequested,
    Ack {
        client_id: String,
        message_id: MessageId,
    },
    Token {
        reply_id: MessageId,
        seq: u32,
        text: String,
    },
    Products {
        reply_id: MessageId,
        cards: Vec<ProductCard>,
    },
    Done {
        reply_id: MessageId,
        finish: FinishReason,
    },
    Error(ErrorEvent),
    Pong {
        nonce: Option<String>,
    },
    /// A WebSocket ping (heartbeat).
    TransportPing,
    /// A WebSocket pong answering the client's ping.
    TransportPong(Vec<u8>),
    /// Close the socket with this code and reason; nothing follows.
    Close {
        code: u16,
        reason: &'static str,
    },
}
