//! The OpenAI-compatible provider: streaming chat completions through
//! async-openai against any base URL (OpenAI, Azure, vLLM, Ollama,
//! llama.cpp's llama-server).
//!
//! async-openai's own retry layer is replaced by a plain HTTP service that
//! turns every non-2xx answer into an [`UpstreamStatus`] carrying the status
//! and `Retry-After`, so the reply task's policy (jitter, budget, only before
//! the first token) is the only one that retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    ChatCompletionResponseStream, ChatCompletionStreamOptions, CompletionUsage,
    CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
    CreateChatCompletionStreamResponse, FinishReason as WireFinish,
};
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, stream};
use mikabot_actors::model::{
    ChatModel, ChunkStream, FinishReason, ModelChunk, ModelError, QueryRequest, Rewritten, Usage,
};
use mikabot_actors::prompt::{Prompt, Role};

use super::tools;
use crate::config::{MaxTokensField, ModelSettings, ToolUse};

/// Longest error body read from the provider.
const MAX_ERROR_BODY_BYTES: usize = 16 * 1024;
/// Longest provider error code kept.
const MAX_ERROR_CODE_CHARS: usize = 64;

/// A non-2xx answer from the provider. Its body is not kept: providers and
/// proxies echo request content (the shopper's words) and masked keys in
/// error messages. Only OpenAI's `error.type` and `error.code`, short
/// identifiers such as `invalid_api_key`, are.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status} ({kind})")]
struct UpstreamStatus {
    status: u16,
    retry_after: Option<Duration>,
    kind: String,
    /// The error body speaks of tools (a provider refusing them).
    mentions_tools: bool,
}

/// Whether a refused request may have been refused for carrying tools:
/// llama-server without `--jinja`, vLLM without tool parsing and Ollama
/// models without tool support all say so in their error.
fn refuses_tools(error: &OpenAIError) -> bool {
    let OpenAIError::Boxed(boxed) = error else {
        return false;
    };
    boxed
        .downcast_ref::<UpstreamStatus>()
        .is_some_and(|upstream| (400..600).contains(&upstream.status) && upstream.mentions_tools)
}

/// `error.type/error.code` of an OpenAI-style error body, when they are
/// plain identifiers; `unknown` otherwise.
fn error_kind(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let identifier = |field: &str| {
        value["error"][field]
            .as_str()
            .filter(|s| {
                !s.is_empty()
                    && s.len() <= MAX_ERROR_CODE_CHARS
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            })
            .map(str::to_owned)
    };
    match (identifier("type"), identifier("code")) {
        (Some(kind), Some(code)) => format!("{kind}/{code}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => "unknown".into(),
    }
}

/// Reads `retry-after-ms` (OpenAI) or `retry-after` in seconds.
/// Longest Retry-After believed; a provider asking for more is asked again
/// after this (or, beyond the retry budget, the reply fails).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    let valid = |v: f64| v.is_finite() && v >= 0.0;
    let clamped = |secs: f64| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64()));
    if let Some(ms) = value("retry-after-ms").filter(|v| valid(*v)) {
        return Some(clamped(ms / 1000.0));
    }
    value("retry-after").filter(|v| valid(*v)).map(clamped)
}

/// The HTTP service under async-openai: one attempt, errors kept typed.
#[derive(Clone)]
struct StatusAware {
    http: reqwest::Client,
}

impl tower::Service<HttpRequestFactory> for StatusAware {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = BoxFuture<'static, Result<reqwest::Response, OpenAIError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), OpenAIError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        let http = self.http.clone();
        Box::pin(async move {
            let request = factory.build().await?;
            let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
            if response.status().is_success() {
                return Ok(response);
            }
            let status = response.status().as_u16();
            let retry_after = retry_after(response.headers());
            let mut body = Vec::new();
            let mut chunks = response.bytes_stream();
            while let Some(Ok(chunk)) = chunks.next().await {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_ERROR_BODY_BYTES {
                    break;
                }
            }
            let body = String::from_utf8_lossy(&body);
            Err(OpenAIError::Boxed(Box::new(UpstreamStatus {
                status,
                retry_after,
                kind: error_kind(&body),
                mentions_tools: body.to_lowercase().contains("tool"),
            })))
        })
    }
}

pub(super) fn model_error(error: OpenAIError) -> ModelError {
    match error {
        OpenAIError::Boxed(boxed) => match boxed.downcast::<UpstreamStatus>() {
            Ok(upstream) => match upstream.status {
                429 => ModelError::RateLimited {
                    retry_after: upstream.retry_after,
                },
                408 | 500..=599 => ModelError::Unavailable {
                    status: Some(upstream.status),
                    detail: upstream.to_string(),
                },
                _ => ModelError::Rejected {
                    status: Some(upstream.status),
                    detail: upstream.to_string(),
                },
            },
            Err(other) => ModelError::unavailable(other.to_string()),
        },
        OpenAIError::Reqwest(e) => ModelError::unavailable(e.to_string()),
        OpenAIError::StreamError(e) => ModelError::unavailable(format!("stream broken: {e}")),
        OpenAIError::JSONDeserialize(e, _) => {
            ModelError::unavailable(format!("malformed chunk: {e}"))
        }
        OpenAIError::ApiError(e) if e.status_code.is_server_error() => ModelError::Unavailable {
            status: Some(e.status_code.as_u16()),
            detail: e.to_string(),
        },
        other => ModelError::Rejected {
            status: None,
            detail: other.to_string(),
        },
    }
}

/// Streams replies from an OpenAI-compatible chat completions endpoint.
pub struct OpenAiModel {
    client: Client<OpenAIConfig>,
    model: String,
    max_tokens: u32,
    max_tokens_field: MaxTokensField,
    temperature: f32,
    stream_usage: bool,
    tool_use: ToolUse,
    /// Cleared when the provider refused the tool (`auto`).
    offers_tools: Arc<AtomicBool>,
}

impl OpenAiModel {
    pub fn new(settings: &ModelSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(settings.timeout_secs))
            .build()?;
        let config = OpenAIConfig::new()
            .with_api_base(settings.base_url.trim_end_matches('/'))
            .with_api_key(settings.api_key.expose());
        let client = Client::with_config(config).with_http_service(StatusAware { http });
        Ok(Self {
            client,
            model: settings.model.clone(),
            max_tokens: settings.max_tokens,
            max_tokens_field: settings.max_tokens_field,
            temperature: settings.temperature,
            stream_usage: settings.stream_usage,
            tool_use: settings.show_products_tool,
            offers_tools: Arc::new(AtomicBool::new(settings.show_products_tool != ToolUse::Off)),
        })
    }

    fn request(
        &self,
        prompt: &Prompt,
        tools: bool,
    ) -> Result<CreateChatCompletionRequest, OpenAIError> {
        let mut messages: Vec<ChatCompletionRequestMessage> =
            Vec::with_capacity(prompt.history.len() + 2);
        let mut system = prompt.system_text();
        if tools {
            system.push_str(tools::PROMPT_LINE);
            system.push('\n');
        }
        messages.push(ChatCompletionRequestSystemMessage::from(system).into());
        for turn in &prompt.history {
            messages.push(match turn.role {
                Role::Shopper => ChatCompletionRequestUserMessage::from(turn.text.as_str()).into(),
                Role::Assistant => {
                    ChatCompletionRequestAssistantMessage::from(turn.text.as_str()).into()
                }
                // What a person from the store said stays in the history
                // after they hand back, marked as theirs.
                Role::Agent => ChatCompletionRequestAssistantMessage::from(format!(
                    "[a person from the store wrote] {}",
                    turn.text
                ))
                .into(),
            });
        }
        messages.push(ChatCompletionRequestUserMessage::from(prompt.message.as_str()).into());
        let mut request = CreateChatCompletionRequestArgs::default()
            .model(&self.model)
            .messages(messages)
            .temperature(self.temperature)
            .stream(true)
            .build()?;
        if self.stream_usage {
            request.stream_options = Some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            });
        }
        self.limit(&mut request, self.max_tokens);
        if tools {
            request.tools = Some(vec![tools::definition()]);
        }
        Ok(request)
    }

    /// Sets the answer's token limit in the field the provider reads.
    fn limit(&self, request: &mut CreateChatCompletionRequest, tokens: u32) {
        match self.max_tokens_field {
            MaxTokensField::MaxCompletionTokens => {
                request.max_completion_tokens = Some(tokens);
            }
            MaxTokensField::MaxTokens => {
                // Deprecated by OpenAI for reasoning models, but the field
                // llama-server, vLLM, Ollama and OpenAI chat models all read.
                #[allow(deprecated)]
                {
                    request.max_tokens = Some(tokens);
                }
            }
        }
    }

    /// The one short request that asks for a search query.
    fn rewrite_request(
        &self,
        asked: &QueryRequest,
    ) -> Result<CreateChatCompletionRequest, OpenAIError> {
        let system = format!(
            "You turn a shopper's message to an online shop into a product search query. \
             Write the query in {}: the kind of product and the words that matter (brand, \
             colour, size, material, use), at most {REWRITE_WORDS} words. Keep a price limit \
             the shopper gave, for example: under 100. Answer with the query only, on one \
             line. If the message asks for no product, answer with a single dash.",
            asked.catalog_language.english_name()
        );
        let user = match &asked.earlier {
            Some(earlier) => format!(
                "Their message before: {earlier}\nTheir message now: {}",
                asked.message
            ),
            None => asked.message.clone(),
        };
        let messages: Vec<ChatCompletionRequestMessage> = vec![
            ChatCompletionRequestSystemMessage::from(system).into(),
            ChatCompletionRequestUserMessage::from(user).into(),
        ];
        let mut request = CreateChatCompletionRequestArgs::default()
            .model(&self.model)
            .messages(messages)
            .temperature(0.0)
            .stream(false)
            .build()?;
        self.limit(&mut request, REWRITE_MAX_TOKENS);
        Ok(request)
    }
}

/// Most words a rewritten query is asked to have.
const REWRITE_WORDS: usize = 8;
/// The token limit of a rewrite's answer.
const REWRITE_MAX_TOKENS: u32 = 32;

/// A provider's token count as the node keeps it.
pub(super) fn usage_of(usage: &CompletionUsage) -> Usage {
    Usage {
        prompt_tokens: u64::from(usage.prompt_tokens),
        completion_tokens: u64::from(usage.completion_tokens),
    }
}

/// Why the provider stopped, as the node names it (a tool call ends the
/// text as a natural stop would).
pub(super) fn finish_of(reason: WireFinish) -> FinishReason {
    match reason {
        WireFinish::Length => FinishReason::Length,
        WireFinish::ContentFilter => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

fn chunks(response: CreateChatCompletionStreamResponse) -> Vec<ModelChunk> {
    let mut out = Vec::new();
    if let Some(usage) = &response.usage {
        out.push(ModelChunk::Usage(usage_of(usage)));
    }
    if let Some(choice) = response.choices.into_iter().next() {
        if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
            out.push(ModelChunk::Text(text));
        }
        if let Some(reason) = choice.finish_reason {
            out.push(ModelChunk::Finished(finish_of(reason)));
        }
    }
    out
}

/// The chunks of a reply whose request offered no tool.
fn plain_chunks(stream: ChatCompletionResponseStream) -> ChunkStream {
    Box::pin(stream.flat_map(|item| {
        let items: Vec<Result<ModelChunk, ModelError>> = match item {
            Ok(response) => chunks(response).into_iter().map(Ok).collect(),
            Err(error) => vec![Err(model_error(error))],
        };
        stream::iter(items)
    }))
}

impl ChatModel for OpenAiModel {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn start(&self, prompt: Arc<Prompt>) -> BoxFuture<'static, Result<ChunkStream, ModelError>> {
        let tools = self.offers_tools.load(Ordering::Relaxed);
        let request = self.request(&prompt, tools);
        // Under `auto`, the same request without the tool, for a provider
        // that refuses it.
        let plain = (tools && self.tool_use == ToolUse::Auto).then(|| self.request(&prompt, false));
        let offers_tools = Arc::clone(&self.offers_tools);
        let retrieved = prompt.products.len();
        let client = self.client.clone();
        Box::pin(async move {
            let request = request.map_err(model_error)?;
            if !tools {
                let stream = client
                    .chat()
                    .create_stream(request)
                    .await
                    .map_err(model_error)?;
                return Ok(plain_chunks(stream));
            }
            // Kept for the answer after a call.
            let first = client.chat().create_stream(request.clone()).await;
            match (first, plain) {
                (Ok(stream), _) => Ok(Box::pin(tools::stream(client, request, stream, retrieved))),
                (Err(error), Some(plain)) if refuses_tools(&error) => {
                    let stream = client
                        .chat()
                        .create_stream(plain.map_err(model_error)?)
                        .await
                        .map_err(model_error)?;
                    offers_tools.store(false, Ordering::Relaxed);
                    tracing::warn!(
                        "the model provider refused the show_products tool; replies no longer offer it"
                    );
                    Ok(plain_chunks(stream))
                }
                (Err(error), _) => Err(model_error(error)),
            }
        })
    }

    fn rewrites_queries(&self) -> bool {
        true
    }

    fn rewrite_query(
        &self,
        asked: QueryRequest,
    ) -> BoxFuture<'static, Result<Rewritten, ModelError>> {
        let request = self.rewrite_request(&asked);
        let client = self.client.clone();
        Box::pin(async move {
            let request = request.map_err(model_error)?;
            let response = client.chat().create(request).await.map_err(model_error)?;
            let usage = response.usage.as_ref().map(usage_of);
            // An answer cut at the token limit is no whole query.
            let answer = response
                .choices
                .into_iter()
                .next()
                .filter(|choice| choice.finish_reason != Some(WireFinish::Length))
                .and_then(|choice| choice.message.content)
                .unwrap_or_default();
            Ok(Rewritten::from_answer(&answer, usage))
        })
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue};

    use super::*;

    #[test]
    fn only_an_error_bodys_identifiers_are_kept() {
        let echoed = r#"{"error": {"message": "bad input: 'a tent for my trip to Oslo'", "type": "invalid_request_error", "code": "context_length_exceeded"}}"#;
        assert_eq!(
            error_kind(echoed),
            "invalid_request_error/context_length_exceeded"
        );
        let odd = r#"{"error": {"type": "a tent for my trip", "code": null}}"#;
        assert_eq!(error_kind(odd), "unknown");
        assert_eq!(error_kind("<html>502 Bad Gateway</html>"), "unknown");
    }

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(150)));
        let mut bad = HeaderMap::new();
        bad.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&bad), None);
        let mut huge = HeaderMap::new();
        huge.insert("retry-after", HeaderValue::from_static("1e300"));
        assert_eq!(retry_after(&huge), Some(MAX_RETRY_AFTER));
    }
}
