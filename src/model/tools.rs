//! The `show_products` tool: an alternative to the references in the text
//! for providers that take tool calls. The model calls it with the
//! references of the products to show; the node turns the call into
//! cards, answers it ("shown"), and streams the model's text after it from
//! a second request. References in the text keep working beside it.

use std::collections::VecDeque;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionResponseStream, ChatCompletionTool,
    ChatCompletionToolChoiceOption, ChatCompletionTools, CreateChatCompletionRequest,
    CreateChatCompletionStreamResponse, FunctionCall, FunctionObject, ToolChoiceOptions,
};
use futures_util::{Stream, StreamExt};
use mikabot_actors::model::{ModelChunk, ModelError, Usage};
use serde_json::{Value, json};

use super::openai::{finish_of, model_error, usage_of};

/// The tool's name, as the model calls it.
pub const TOOL_NAME: &str = "show_products";
/// Most products one call shows.
const MAX_SHOWN: usize = 10;
/// Longest arguments kept from one call, in bytes.
const MAX_ARGUMENTS_BYTES: usize = 4 * 1024;
/// Most calls one answer may make.
const MAX_CALLS: usize = 4;

/// What the system prompt adds when the tool is offered.
pub const PROMPT_LINE: &str = "You can also show product cards by calling the show_products \
    tool with the references of the products you recommend (for example [\"P1\", \"P3\"]); \
    then write your answer.";

/// The tool as a request offers it.
pub fn definition() -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: TOOL_NAME.into(),
            description: Some(
                "Show the shopper a card for each of these products from the list, by reference."
                    .into(),
            ),
            parameters: Some(json!({
                "type": "object",
                "properties": {
                    "products": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "The references of the products to show, for example P1.",
                    },
                },
                "required": ["products"],
            })),
            strict: None,
        },
    })
}

/// The reference numbers a call's arguments name (`"P2"`, `"[P2]"`, `"2"`
/// or `2`), in order, each once, at most [`MAX_SHOWN`].
pub fn shown(arguments: &str) -> Vec<usize> {
    let value: Value = serde_json::from_str(arguments).unwrap_or_default();
    let listed = value
        .get("products")
        .or_else(|| value.get("references"))
        .and_then(Value::as_array);
    let mut out: Vec<usize> = Vec::new();
    for item in listed.into_iter().flatten() {
        let number = match item {
            Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
            Value::String(s) => {
                let s = s.trim().trim_start_matches('[').trim_end_matches(']');
                let s = s.strip_prefix(['P', 'p']).unwrap_or(s);
                s.trim().parse().ok()
            }
            _ => None,
        };
        if let Some(n) = number.filter(|n| *n > 0)
            && !out.contains(&n)
            && out.len() < MAX_SHOWN
        {
            out.push(n);
        }
    }
    out
}

/// A tool call as it streams in.
#[derive(Default)]
struct Call {
    id: String,
    name: String,
    arguments: String,
    /// Arguments beyond [`MAX_ARGUMENTS_BYTES`] came: the call is refused.
    truncated: bool,
}

/// A reply's stream that follows one round of tool calls: the first
/// answer's text and calls, then (when it called) the answer after them.
struct Rounds {
    client: Client<OpenAIConfig>,
    request: CreateChatCompletionRequest,
    inner: ChatCompletionResponseStream,
    calls: Vec<Call>,
    /// The first answer's text, for the assistant message of the second.
    text: String,
    phase: Phase,
    /// The last usage each request reported (a provider may send a running
    /// total), summed into one chunk at the end.
    usage: [Option<Usage>; 2],
    /// Products retrieved for the turn: a call's reference beyond them
    /// shows nothing, and the model is told so.
    retrieved: usize,
    ready: VecDeque<Result<ModelChunk, ModelError>>,
}

/// Where a reply of tool rounds stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the first answer.
    First,
    /// The first answer called and finished: the second request is made
    /// once its stream has ended (its usage comes after the finish reason).
    Calling,
    /// Reading the answer after the calls; `spoken` once it showed text.
    Second {
        spoken: bool,
    },
    Done,
}

/// The chunks of a reply whose request offered the tool.
pub fn stream(
    client: Client<OpenAIConfig>,
    request: CreateChatCompletionRequest,
    inner: ChatCompletionResponseStream,
    retrieved: usize,
) -> impl Stream<Item = Result<ModelChunk, ModelError>> + Send {
    let rounds = Rounds {
        client,
        request,
        inner,
        calls: Vec::new(),
        text: String::new(),
        phase: Phase::First,
        usage: [None, None],
        retrieved,
        ready: VecDeque::new(),
    };
    futures_util::stream::unfold(rounds, |mut rounds| async move {
        loop {
            if let Some(item) = rounds.ready.pop_front() {
                return Some((item, rounds));
            }
            if rounds.phase == Phase::Done {
                return None;
            }
            match rounds.inner.next().await {
                Some(Ok(response)) => rounds.take(response),
                Some(Err(error)) => {
                    rounds.ready.push_back(Err(model_error(error)));
                    rounds.phase = Phase::Done;
                }
                None if rounds.phase == Phase::Calling => rounds.follow().await,
                None => {
                    rounds.phase = Phase::Done;
                    rounds.end();
                }
            }
        }
    })
}

impl Rounds {
    fn take(&mut self, response: CreateChatCompletionStreamResponse) {
        if let Some(usage) = &response.usage {
            let second = matches!(self.phase, Phase::Second { .. });
            self.usage[usize::from(second)] = Some(usage_of(usage));
        }
        let Some(choice) = response.choices.into_iter().next() else {
            return;
        };
        if let Some(mut text) = choice.delta.content.filter(|t| !t.is_empty()) {
            match self.phase {
                Phase::First | Phase::Calling => self.text.push_str(&text),
                Phase::Second { spoken: false } => {
                    self.phase = Phase::Second { spoken: true };
                    // The answer after the call goes on from the text before it.
                    if self.text.chars().last().is_some_and(|c| !c.is_whitespace())
                        && !text.starts_with(char::is_whitespace)
                    {
                        text.insert(0, ' ');
                    }
                }
                Phase::Second { spoken: true } | Phase::Done => {}
            }
            self.ready.push_back(Ok(ModelChunk::Text(text)));
        }
        for piece in choice.delta.tool_calls.into_iter().flatten() {
            if self.phase != Phase::First {
                // The answer after the call may not call again.
                continue;
            }
            let index = piece.index as usize;
            if index >= MAX_CALLS {
                continue;
            }
            while self.calls.len() <= index {
                self.calls.push(Call::default());
            }
            let call = &mut self.calls[index];
            if let Some(id) = piece.id {
                call.id = id;
            }
            if let Some(function) = piece.function {
                // Named once; a provider repeating the name in every chunk
                // does not make it another.
                if let Some(name) = function.name
                    && call.name.is_empty()
                {
                    call.name = name.chars().take(64).collect();
                }
                if let Some(arguments) = function.arguments {
                    if call.arguments.len() + arguments.len() > MAX_ARGUMENTS_BYTES {
                        call.truncated = true;
                    } else if !call.truncated {
                        call.arguments.push_str(&arguments);
                    }
                }
            }
        }
        let Some(reason) = choice.finish_reason else {
            return;
        };
        if self.phase == Phase::First && !self.calls.is_empty() {
            // Read the first answer to its end (its usage), then follow.
            self.phase = Phase::Calling;
            return;
        }
        self.ready
            .push_back(Ok(ModelChunk::Finished(finish_of(reason))));
    }

    /// Shows what the calls asked for, answers them and streams the
    /// answer after them.
    async fn follow(&mut self) {
        self.phase = Phase::Second { spoken: false };
        let mut references: Vec<usize> = Vec::new();
        let mut messages: Vec<ChatCompletionRequestMessage> = Vec::new();
        let mut tool_calls = Vec::new();
        for (n, call) in self.calls.iter().enumerate() {
            let id = if call.id.is_empty() {
                format!("call_{n}")
            } else {
                call.id.clone()
            };
            let answer = if call.truncated {
                "The call's arguments were too long; nothing was shown.".to_owned()
            } else if call.name == TOOL_NAME {
                let retrieved = self.retrieved;
                let shown: Vec<usize> = shown(&call.arguments)
                    .into_iter()
                    .filter(|n| *n <= retrieved)
                    .collect();
                let listed: Vec<String> = shown.iter().map(|n| format!("P{n}")).collect();
                for n in shown {
                    if !references.contains(&n) {
                        references.push(n);
                    }
                }
                if listed.is_empty() {
                    "No product of the list was named; nothing was shown.".to_owned()
                } else {
                    format!("Shown to the shopper as cards: {}.", listed.join(", "))
                }
            } else {
                format!("There is no tool named {:?}.", call.name)
            };
            let arguments = if call.truncated {
                "{}".to_owned()
            } else {
                call.arguments.clone()
            };
            tool_calls.push(ChatCompletionMessageToolCalls::Function(
                ChatCompletionMessageToolCall {
                    id: id.clone(),
                    function: FunctionCall {
                        name: call.name.clone(),
                        arguments,
                    },
                },
            ));
            messages.push(ChatCompletionRequestMessage::Tool(
                ChatCompletionRequestToolMessage {
                    content: ChatCompletionRequestToolMessageContent::Text(answer),
                    tool_call_id: id,
                },
            ));
        }
        if !references.is_empty() {
            self.ready.push_back(Ok(ModelChunk::Show(references)));
        }
        let assistant = ChatCompletionRequestAssistantMessage {
            content: (!self.text.is_empty())
                .then(|| ChatCompletionRequestAssistantMessageContent::Text(self.text.clone())),
            tool_calls: Some(tool_calls),
            ..Default::default()
        };
        let mut request = self.request.clone();
        request
            .messages
            .push(ChatCompletionRequestMessage::Assistant(assistant));
        request.messages.extend(messages);
        request.tool_choice = Some(ChatCompletionToolChoiceOption::Mode(
            ToolChoiceOptions::None,
        ));
        match self.client.chat().create_stream(request).await {
            Ok(next) => self.inner = next,
            Err(error) => {
                self.end();
                self.ready.push_back(Err(model_error(error)));
                self.phase = Phase::Done;
            }
        }
    }

    /// What both requests cost, as one chunk.
    fn end(&mut self) {
        let spent = match self.usage {
            [Some(first), Some(second)] => Some(first.plus(second)),
            [one, other] => one.or(other),
        };
        if let Some(spent) = spent {
            self.ready.push_back(Ok(ModelChunk::Usage(spent)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calls_references_are_read_in_every_shape_once_and_bounded() {
        assert_eq!(
            shown(r#"{"products": ["P2", "[P1]", "p2", 3, "4"]}"#),
            [2, 1, 3, 4]
        );
        assert_eq!(shown(r#"{"references": ["P5"]}"#), [5]);
        assert!(shown(r#"{"products": ["P0", "x", null, -1]}"#).is_empty());
        assert!(shown("not json").is_empty());
        let many: Vec<String> = (1..40).map(|n| format!("P{n}")).collect();
        let arguments = json!({ "products": many }).to_string();
        assert_eq!(shown(&arguments).len(), MAX_SHOWN);
    }
}
