//! `Outbox`: where a session's events go. The HTTP edge implements it over
//! the shopper's socket; the session hands it each event without waiting
//! and learns at once when the socket is gone or its client reads too
//! slowly.

use crate::events::ServerEvent;

/// The socket's sending side, as a session sees it.
pub trait Outbox {
    /// Hands `event` to the socket, in order after every earlier one,
    /// without waiting.
    fn push(&mut self, event: ServerEvent) -> Result<(), OutboxError>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxError {
    /// More events wait than the socket's bound: its client reads slower
    /// than the node writes.
    Full,
    /// The socket is gone.
    Closed,
}

/// Folds `next` into `last` when both are tokens of the same reply: one
/// frame with both texts and the later `seq` (a client shows the text and
/// remembers the seq, so nothing is shown twice or skipped). Gives `next`
/// back when it cannot be folded.
pub fn fold_token(last: &mut ServerEvent, next: ServerEvent) -> Option<ServerEvent> {
    match (last, next) {
        (
            ServerEvent::Token {
                reply_id,
                seq,
                text,
            },
            ServerEvent::Token {
                reply_id: next_reply,
                seq: next_seq,
                text: next_text,
            },
        ) if *reply_id == next_reply && next_seq > *seq => {
            text.push_str(&next_text);
            *seq = next_seq;
            None
        }
        (_, next) => Some(next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MessageId;
    use crate::model::FinishReason;

    fn token(reply_id: MessageId, seq: u32, text: &str) -> ServerEvent {
        ServerEvent::Token {
            reply_id,
            seq,
            text: text.into(),
        }
    }

    #[test]
    fn tokens_of_one_reply_fold_and_nothing_else_does() {
        let reply = MessageId::new();
        let mut last = token(reply, 3, "war");
        assert_eq!(fold_token(&mut last, token(reply, 4, "m ")), None);
        assert_eq!(fold_token(&mut last, token(reply, 5, "parka")), None);
        assert_eq!(last, token(reply, 5, "warm parka"));

        let other = token(MessageId::new(), 0, "x");
        assert_eq!(fold_token(&mut last, other.clone()), Some(other));
        let stale = token(reply, 5, "again");
        assert_eq!(fold_token(&mut last, stale.clone()), Some(stale));
        let done = ServerEvent::Done {
            reply_id: reply,
            finish: FinishReason::Stop,
        };
        assert_eq!(fold_token(&mut last, done.clone()), Some(done));
        assert_eq!(last, token(reply, 5, "warm parka"));
    }
}
