//! The conversation on the store's desk: a person from the store takes it
//! over (the widget is told who joined), writes (their message is already
//! stored when it arrives here), types, and hands it back; the shopper's
//! typing and requests for a person go the other way.

use std::time::{Duration, Instant};

use actix::{Context, Handler};

use super::WidgetSession;
use crate::desk::{HumanRequested, ShopperTyping, ToShopper};
use crate::events::ServerEvent;

/// The shopper's typing reaches the desk at most this often.
const TYPING_EVERY: Duration = Duration::from_secs(2);

impl WidgetSession {
    pub(super) fn on_typing(&mut self, ctx: &mut Context<Self>) {
        let Some(conversation) = self.conversation().map(|c| c.meta.conversation) else {
            self.hello_required(ctx);
            return;
        };
        let now = Instant::now();
        if self
            .typing_told
            .is_some_and(|told| now.duration_since(told) < TYPING_EVERY)
        {
            return;
        }
        self.typing_told = Some(now);
        self.deps.desk.addr.do_send(ShopperTyping { conversation });
    }

    pub(super) fn on_request_human(&mut self, ctx: &mut Context<Self>) {
        let Some(conversation) = self.conversation().map(|c| c.meta.conversation) else {
            self.hello_required(ctx);
            return;
        };
        self.request_human(conversation);
        self.send(ctx, ServerEvent::HumanRequested);
    }

    /// Marks the conversation as waiting for a person on the desk.
    pub(super) fn request_human(&mut self, conversation: crate::ids::ConversationId) {
        tracing::info!("the shopper asked for a person");
        self.deps.desk.addr.do_send(HumanRequested { conversation });
    }
}

impl Handler<ToShopper> for WidgetSession {
    type Result = ();

    fn handle(&mut self, message: ToShopper, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let event = match message {
            // The reply in flight was stopped by the desk; its end (with
            // finish `taken_over`) arrives through the reply's feed.
            ToShopper::AgentJoined { name } => ServerEvent::AgentJoined {
                name: name.to_string(),
            },
            ToShopper::AgentMessage { message } => {
                if let Some(conversation) = self.conversation() {
                    conversation.add_agent_message(&message);
                }
                ServerEvent::AgentMessage {
                    message_id: message.id,
                    name: message.author.unwrap_or_default(),
                    text: message.text,
                }
            }
            ToShopper::AgentTyping { name } => ServerEvent::AgentTyping {
                name: name.to_string(),
            },
            ToShopper::HandedBack { idle } => ServerEvent::HandedBack { idle },
        };
        self.send(ctx, event);
    }
}
