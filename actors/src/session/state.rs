//! A conversation as one session holds it: what was said (each message by
//! its id), which shopper messages are being flushed and which were
//! acknowledged, the reply being shown, and whether a turn waits. A plain
//! type with no actix in it: the session's phases drive it, and its rules
//! are tested here without sockets.

use std::collections::VecDeque;

use crate::events::HistoryEntry;
use crate::ids::MessageId;
use crate::log::{ConversationMeta, StoredMessage};
use crate::prompt::{Role, Turn, estimated_tokens};

/// Client message ids remembered for idempotent resends.
pub const REMEMBERED_CLIENT_IDS: usize = 64;

/// One message of the conversation, as the session keeps it.
#[derive(Clone, Debug, PartialEq)]
struct Said {
    id: MessageId,
    role: Role,
    text: String,
}

/// The reply the session shows now.
#[derive(Debug)]
struct Showing {
    id: MessageId,
    /// The shopper message it answers.
    answers: MessageId,
    /// Its text so far, for the history once it ends.
    text: String,
}

/// What the next turn of the assistant is about.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnPlan {
    pub reply_id: MessageId,
    /// The shopper message being answered.
    pub answers: MessageId,
    /// That message's text.
    pub message: String,
    /// Everything said before it, oldest first (not yet bounded).
    pub earlier: Vec<Turn>,
}

/// Why a reply cannot start now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoTurn {
    /// A reply is running; the newest message is answered when it ends.
    Busy,
    /// No shopper message to answer.
    NothingToAnswer,
}

/// What follows from a message that could not be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lost {
    /// The reply shown now answered it: withdraw it, unshown.
    pub withdraw: bool,
    /// Another message waits for its reply and none runs: start it.
    pub answer_now: bool,
}

/// Why a `retry` is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoRetry {
    /// A reply is on its way.
    Busy,
    /// The last reply did not fail.
    NotFailed,
}

/// A conversation loaded from storage for a returning shopper.
pub struct Resumed {
    pub conversation: Conversation,
    /// The stored messages, for the client to render.
    pub entries: Vec<HistoryEntry>,
    /// The newest stored message is the shopper's: acknowledged, but its
    /// reply never started (the socket or the node went away first).
    pub unanswered: bool,
}

/// One conversation's state in its session.
#[derive(Debug)]
pub struct Conversation {
    /// The conversation's record; its language follows the shopper's.
    pub meta: ConversationMeta,
    /// Whether the record exists in storage yet (it is written with the
    /// first message).
    pub opened: bool,
    /// What was said, in id order (time order, as storage keeps it):
    /// stored messages, shopper messages being flushed, and the text of
    /// replies that ended.
    history: Vec<Said>,
    /// Acknowledged client ids with their message ids, oldest first, at
    /// most [`REMEMBERED_CLIENT_IDS`].
    acked: VecDeque<(String, MessageId)>,
    /// Shopper messages written but not yet on disk (not yet acknowledged).
    unflushed: Vec<(String, MessageId)>,
    /// The reply shown now, if any.
    showing: Option<Showing>,
    /// A shopper message arrived while a reply ran; it is answered when
    /// that reply ends.
    turn_waiting: bool,
    /// The last reply failed (its id); the shopper may ask for it again.
    failed: Option<MessageId>,
}

impl Conversation {
    /// A new conversation, not yet stored.
    pub fn start(meta: ConversationMeta) -> Self {
        Self {
            meta,
            opened: false,
            history: Vec::new(),
            acked: VecDeque::new(),
            unflushed: Vec::new(),
            showing: None,
            turn_waiting: false,
            failed: None,
        }
    }

    /// A stored conversation with its newest messages, oldest first.
    pub fn resume(meta: ConversationMeta, stored: Vec<StoredMessage>) -> Resumed {
        let unanswered = stored.last().is_some_and(|m| m.role == Role::Shopper);
        let failed = stored
            .last()
            .filter(|m| m.reply.as_ref().is_some_and(|r| r.incomplete))
            .map(|m| m.id);
        let mut conversation = Self::start(meta);
        conversation.opened = true;
        conversation.failed = failed;
        let mut entries = Vec::with_capacity(stored.len());
        for message in stored {
            if let Some(client_id) = &message.client_id {
                conversation.remember_ack(client_id.clone(), message.id);
            }
            conversation.history.push(Said {
                id: message.id,
                role: message.role,
                text: message.text.clone(),
            });
            let (incomplete, cards) = message
                .reply
                .map_or((false, Vec::new()), |r| (r.incomplete, r.cards));
            entries.push(HistoryEntry {
                message_id: message.id,
                role: message.role,
                author: message.author,
                text: message.text,
                incomplete,
                cards,
            });
        }
        Resumed {
            conversation,
            entries,
            unanswered,
        }
    }

    fn remember_ack(&mut self, client_id: String, id: MessageId) {
        self.acked.push_back((client_id, id));
        while self.acked.len() > REMEMBERED_CLIENT_IDS {
            self.acked.pop_front();
        }
    }

    /// The message id a client id was acknowledged with.
    pub fn acknowledged(&self, client_id: &str) -> Option<MessageId> {
        self.acked
            .iter()
            .find(|(id, _)| id == client_id)
            .map(|(_, message)| *message)
    }

    /// Whether the message with this client id is being flushed.
    pub fn is_flushing(&self, client_id: &str) -> bool {
        self.unflushed.iter().any(|(id, _)| id == client_id)
    }

    /// The client id of a shopper message being flushed.
    pub fn unflushed_client_id(&self, id: MessageId) -> Option<&str> {
        self.unflushed
            .iter()
            .find(|(_, m)| *m == id)
            .map(|(client_id, _)| client_id.as_str())
    }

    /// Whether any shopper message is being flushed.
    pub fn flushing(&self) -> bool {
        !self.unflushed.is_empty()
    }

    /// The shopper's newest message.
    pub fn last_shopper(&self) -> Option<MessageId> {
        self.history
            .iter()
            .rev()
            .find(|said| said.role == Role::Shopper)
            .map(|said| said.id)
    }

    /// A shopper message joins the conversation while it is flushed.
    pub fn add_shopper_message(&mut self, client_id: String, message: &StoredMessage) {
        self.unflushed.push((client_id, message.id));
        self.history.push(Said {
            id: message.id,
            role: Role::Shopper,
            text: message.text.clone(),
        });
    }

    /// A message from the person holding the conversation (stored): it is
    /// in the model's history once the conversation is handed back.
    pub fn add_agent_message(&mut self, message: &StoredMessage) {
        if self.history.iter().any(|said| said.id == message.id) {
            return;
        }
        let at = self.history.partition_point(|said| said.id < message.id);
        self.history.insert(
            at,
            Said {
                id: message.id,
                role: Role::Agent,
                text: message.text.clone(),
            },
        );
    }

    /// The message is on disk: it is acknowledged (the client id to
    /// acknowledge is returned).
    pub fn message_flushed(&mut self, id: MessageId) -> Option<String> {
        let at = self.unflushed.iter().position(|(_, m)| *m == id)?;
        let (client_id, _) = self.unflushed.remove(at);
        self.remember_ack(client_id.clone(), id);
        Some(client_id)
    }

    /// The message could not be stored: it was never acknowledged and
    /// leaves the conversation. Says whether the reply shown now answered
    /// it (that reply must be withdrawn) and whether a turn is due now.
    pub fn message_lost(&mut self, id: MessageId) -> Lost {
        self.unflushed.retain(|(_, m)| *m != id);
        self.history.retain(|said| said.id != id);
        // Whether a shopper message sent after `reference` is still there:
        // it waits for a reply.
        let after = |history: &[Said], reference: MessageId| {
            history
                .iter()
                .any(|said| said.role == Role::Shopper && said.id > reference)
        };
        match &self.showing {
            Some(showing) if showing.answers == id => {
                self.showing = None;
                self.turn_waiting = false;
                Lost {
                    withdraw: true,
                    answer_now: after(&self.history, id),
                }
            }
            Some(showing) => {
                self.turn_waiting = after(&self.history, showing.answers);
                Lost {
                    withdraw: false,
                    answer_now: false,
                }
            }
            None => Lost {
                withdraw: false,
                answer_now: false,
            },
        }
    }

    /// Starts a reply to the shopper's newest message, or notes that one is
    /// due once the running reply ends.
    pub fn begin_reply(&mut self) -> Result<TurnPlan, NoTurn> {
        if self.showing.is_some() {
            self.turn_waiting = true;
            return Err(NoTurn::Busy);
        }
        let at = self
            .history
            .iter()
            .rposition(|said| said.role == Role::Shopper)
            .ok_or(NoTurn::NothingToAnswer)?;
        self.failed = None;
        let message = &self.history[at];
        let plan = TurnPlan {
            reply_id: MessageId::new(),
            answers: message.id,
            message: message.text.clone(),
            earlier: self.history[..at]
                .iter()
                .map(|said| Turn {
                    role: said.role,
                    text: said.text.clone(),
                })
                .collect(),
        };
        self.showing = Some(Showing {
            id: plan.reply_id,
            answers: plan.answers,
            text: String::new(),
        });
        Ok(plan)
    }

    /// Shows a reply already running (a resumed conversation's), whose
    /// text up to now the client has already seen.
    pub fn follow_reply(&mut self, id: MessageId, answers: MessageId, shown: String) {
        self.showing = Some(Showing {
            id,
            answers,
            text: shown,
        });
        // The reply answers an earlier message: the newest is due next.
        self.turn_waiting = Some(answers) != self.last_shopper();
    }

    /// The reply shown now.
    pub fn showing(&self) -> Option<MessageId> {
        self.showing.as_ref().map(|s| s.id)
    }

    /// Text of the reply shown now, as it streams.
    pub fn reply_text(&mut self, id: MessageId, text: &str) {
        if let Some(showing) = self.showing.as_mut().filter(|s| s.id == id) {
            showing.text.push_str(text);
        }
    }

    /// The reply shown now ended (`failed`: with an error). Its text joins
    /// the history. Returns true when a turn waits and should start now.
    pub fn end_reply(&mut self, id: MessageId, failed: bool) -> bool {
        let Some(showing) = self.showing.take_if(|s| s.id == id) else {
            return false;
        };
        if failed {
            self.failed = Some(showing.id);
        }
        if !showing.text.is_empty() {
            // In id order, as storage keeps it: a reply's id is taken when
            // it starts, so a message sent while it streamed comes after it.
            let at = self.history.partition_point(|said| said.id < showing.id);
            self.history.insert(
                at,
                Said {
                    id: showing.id,
                    role: Role::Assistant,
                    text: showing.text,
                },
            );
        }
        std::mem::take(&mut self.turn_waiting)
    }

    /// Forgets the oldest messages the prompt cannot use any more: it takes
    /// the newest message and at most `history_tokens` of those before it.
    /// They stay stored. Returns how many were forgotten.
    pub fn trim(&mut self, history_tokens: usize) -> usize {
        let mut kept = 0;
        let mut budget_left = history_tokens;
        // The newest is the message being answered; it is always kept.
        for said in self.history.iter().rev().skip(1) {
            let cost = estimated_tokens(&said.text);
            if cost > budget_left {
                break;
            }
            budget_left -= cost;
            kept += 1;
        }
        let keep = (kept + 1).min(self.history.len());
        let forget = self.history.len() - keep;
        // A message still being flushed, or answered by the reply shown
        // now, is never forgotten: the session still needs it.
        // The newest shopper message is kept too: a retry answers it.
        let newest_shopper = self.last_shopper();
        let needed = |said: &Said| {
            self.unflushed.iter().any(|(_, id)| *id == said.id)
                || self.showing.as_ref().is_some_and(|s| s.answers == said.id)
                || Some(said.id) == newest_shopper
        };
        let forget = self.history[..forget]
            .iter()
            .position(needed)
            .unwrap_or(forget);
        self.history.drain(..forget);
        forget
    }

    /// Stops showing the reply (another connection follows it now).
    pub fn let_go_of_reply(&mut self) {
        self.showing = None;
    }

    /// Prepares to answer the last message again after a failed reply: the
    /// interrupted answer stays stored (marked incomplete) but leaves the
    /// prompt's history.
    pub fn retry(&mut self) -> Result<(), NoRetry> {
        if self.showing.is_some() {
            return Err(NoRetry::Busy);
        }
        let failed = self.failed.ok_or(NoRetry::NotFailed)?;
        self.history.retain(|said| said.id != failed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConversationId, SessionId, StoreId};
    use crate::language::Language;
    use crate::log::{ClientClass, ReplyOutcome};

    fn meta() -> ConversationMeta {
        ConversationMeta {
            store: StoreId::parse("s").expect("valid"),
            conversation: ConversationId::new(),
            session: SessionId::new(),
            started_at_ms: 0,
            language: Language::En,
            page_url: None,
            referrer: None,
            client: ClientClass::default(),
            ip: None,
        }
    }

    fn shopper(conversation: &Conversation, text: &str) -> StoredMessage {
        StoredMessage {
            author: None,
            id: MessageId::new(),
            conversation: conversation.meta.conversation,
            role: Role::Shopper,
            text: text.into(),
            at_ms: 0,
            client_id: None,
            reply: None,
        }
    }

    #[test]
    fn a_lost_message_leaves_by_its_id_even_beside_the_same_text() {
        let mut c = Conversation::start(meta());
        let first = shopper(&c, "a tent");
        c.add_shopper_message("c1".into(), &first);
        assert_eq!(c.message_flushed(first.id).as_deref(), Some("c1"));
        let again = shopper(&c, "a tent");
        c.add_shopper_message("c2".into(), &again);
        let plan = c.begin_reply().expect("a turn");
        assert_eq!(plan.answers, again.id);
        assert_eq!(
            plan.earlier.len(),
            1,
            "the first message is earlier history"
        );

        assert_eq!(
            c.message_lost(again.id),
            Lost {
                withdraw: true,
                answer_now: false
            },
            "its reply must not be shown"
        );
        assert_eq!(c.showing(), None);
        assert_eq!(c.last_shopper(), Some(first.id), "the earlier one stays");
        assert_eq!(c.acknowledged("c1"), Some(first.id));
        assert!(!c.is_flushing("c2"));
    }

    #[test]
    fn a_lost_message_waiting_behind_a_reply_is_not_answered_twice() {
        let mut c = Conversation::start(meta());
        let a = shopper(&c, "a tent");
        c.add_shopper_message("a".into(), &a);
        let plan = c.begin_reply().expect("a turn");
        c.message_flushed(a.id);
        let b = shopper(&c, "and a lamp");
        c.add_shopper_message("b".into(), &b);
        assert_eq!(c.begin_reply(), Err(NoTurn::Busy));
        // B's flush fails while A's reply runs: nothing waits any more.
        assert_eq!(
            c.message_lost(b.id),
            Lost {
                withdraw: false,
                answer_now: false
            }
        );
        c.reply_text(plan.reply_id, "Try the Alpine tent.");
        assert!(
            !c.end_reply(plan.reply_id, false),
            "A is not answered again"
        );
    }

    #[test]
    fn a_message_waiting_behind_a_lost_one_is_answered_at_once() {
        let mut c = Conversation::start(meta());
        let a = shopper(&c, "a tent");
        c.add_shopper_message("a".into(), &a);
        let plan = c.begin_reply().expect("a turn");
        let b = shopper(&c, "and a lamp");
        c.add_shopper_message("b".into(), &b);
        assert_eq!(c.begin_reply(), Err(NoTurn::Busy));
        // A's flush fails: its reply is withdrawn, and B is due now.
        assert_eq!(
            c.message_lost(a.id),
            Lost {
                withdraw: true,
                answer_now: true
            }
        );
        assert!(
            !c.end_reply(plan.reply_id, false),
            "the withdrawn reply is gone"
        );
        let next = c.begin_reply().expect("B's turn");
        assert_eq!(next.answers, b.id);
        assert!(next.earlier.is_empty(), "A left the conversation");
    }

    #[test]
    fn a_lost_message_after_answered_ones_starts_nothing() {
        let mut c = Conversation::start(meta());
        let a = shopper(&c, "a tent");
        c.add_shopper_message("a".into(), &a);
        c.message_flushed(a.id);
        let plan = c.begin_reply().expect("a turn");
        c.reply_text(plan.reply_id, "Try this.");
        c.end_reply(plan.reply_id, false);
        let b = shopper(&c, "and a lamp");
        c.add_shopper_message("b".into(), &b);
        c.begin_reply().expect("B's turn");
        let lost = c.message_lost(b.id);
        assert_eq!(
            lost,
            Lost {
                withdraw: true,
                answer_now: false
            },
            "A was answered already"
        );
    }

    #[test]
    fn a_message_during_a_reply_waits_for_its_end_and_sees_the_reply() {
        let mut c = Conversation::start(meta());
        let first = shopper(&c, "a tent");
        c.add_shopper_message("c1".into(), &first);
        let plan = c.begin_reply().expect("a turn");
        c.reply_text(plan.reply_id, "Try the ");
        c.reply_text(plan.reply_id, "Alpine tent.");
        let second = shopper(&c, "and a lamp");
        c.add_shopper_message("c2".into(), &second);
        assert_eq!(c.begin_reply(), Err(NoTurn::Busy));
        assert!(c.end_reply(plan.reply_id, false), "the waiting turn starts");
        let next = c.begin_reply().expect("the waiting turn");
        assert_eq!(next.message, "and a lamp");
        let earlier: Vec<&str> = next.earlier.iter().map(|t| t.text.as_str()).collect();
        // The reply started before the second message arrived: it comes
        // before it, as in storage, and the model sees it.
        assert_eq!(earlier, ["a tent", "Try the Alpine tent."]);
    }

    #[test]
    fn a_retry_needs_a_failed_reply_and_drops_its_partial_text() {
        let mut c = Conversation::start(meta());
        let first = shopper(&c, "a stove");
        c.add_shopper_message("c1".into(), &first);
        assert_eq!(c.retry(), Err(NoRetry::NotFailed));
        let plan = c.begin_reply().expect("a turn");
        assert_eq!(c.retry(), Err(NoRetry::Busy));
        c.reply_text(plan.reply_id, "The best sto");
        assert!(!c.end_reply(plan.reply_id, true));
        assert_eq!(c.retry(), Ok(()));
        let again = c.begin_reply().expect("the same message again");
        assert_eq!(again.answers, first.id);
        assert!(again.earlier.is_empty(), "{:?}", again.earlier);
    }

    #[test]
    fn a_resumed_conversation_knows_its_acks_and_what_is_unanswered() {
        let m = meta();
        let mut message = shopper(&Conversation::start(m.clone()), "hello");
        message.client_id = Some("c9".into());
        let reply = StoredMessage {
            author: None,
            id: MessageId::new(),
            role: Role::Assistant,
            text: "Hi".into(),
            client_id: None,
            reply: Some(ReplyOutcome {
                finish: None,
                incomplete: true,
                cards: Vec::new(),
            }),
            ..message.clone()
        };
        let resumed = Conversation::resume(m.clone(), vec![message.clone(), reply]);
        assert!(!resumed.unanswered);
        assert_eq!(resumed.entries.len(), 2);
        assert!(resumed.entries[1].incomplete);
        let mut c = resumed.conversation;
        assert_eq!(c.acknowledged("c9"), Some(message.id));
        assert_eq!(c.retry(), Ok(()), "the incomplete reply can be retried");

        let unanswered = Conversation::resume(m, vec![message]);
        assert!(unanswered.unanswered);
    }

    #[test]
    fn history_is_trimmed_to_what_the_prompt_can_use() {
        let mut c = Conversation::start(meta());
        for n in 0..50 {
            let message = shopper(&c, &format!("message number {n} about tents and lamps"));
            c.add_shopper_message(format!("c{n}"), &message);
            c.message_flushed(message.id);
        }
        // Each message costs about 14 estimated tokens.
        let forgotten = c.trim(100);
        assert!(forgotten > 40, "{forgotten}");
        let plan = c.begin_reply().expect("a turn");
        assert_eq!(plan.message, "message number 49 about tents and lamps");
        let earlier_tokens: usize = plan.earlier.iter().map(|t| estimated_tokens(&t.text)).sum();
        assert!(earlier_tokens <= 100, "{earlier_tokens}");
        assert!(!plan.earlier.is_empty());
        assert_eq!(c.trim(100), 0, "nothing more to forget");
        // The newest message is kept whatever it costs.
        assert_eq!(c.trim(0), plan.earlier.len());
        assert_eq!(c.last_shopper(), Some(plan.answers));
    }

    #[test]
    fn acknowledged_client_ids_are_bounded() {
        let mut c = Conversation::start(meta());
        for n in 0..REMEMBERED_CLIENT_IDS + 5 {
            let message = shopper(&c, "hi");
            c.add_shopper_message(format!("c{n}"), &message);
            c.message_flushed(message.id);
        }
        assert_eq!(c.acknowledged("c0"), None);
        assert!(
            c.acknowledged(&format!("c{}", REMEMBERED_CLIENT_IDS + 4))
                .is_some()
        );
    }
}
