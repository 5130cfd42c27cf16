//! The node's metrics: counters, histograms and gauges of what sessions and
//! replies do, recorded where it happens and read by the edge's `/metrics`
//! (Prometheus text through `prometheus-client`). Labels take values from
//! fixed sets (error codes, finish reasons, outcomes, HTTP statuses), never
//! a session, conversation or store id, so their number stays bounded.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::model::ModelError;

/// Why a session ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// How a reply ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FinishLabel {
    pub finish: &'static str,
}

/// A widget error code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: &'static str,
}

/// What one model request came to: the provider (`openai`, `offline`), the
/// outcome, and the provider's HTTP status (0 for none: the offline
/// responder, a refused connection, a timeout, a stream that broke after
/// its status).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub provider: &'static str,
    pub outcome: &'static str,
    /// One of [`STATUSES`], `other_4xx`, `other_5xx` or `other`.
    pub status: &'static str,
}

/// The HTTP statuses a model request is labelled with as they are; any
/// other is counted by its class, so a provider cannot grow the label set.
pub const STATUSES: [(u16, &str); 15] = [
    (0, "0"),
    (200, "200"),
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (408, "408"),
    (409, "409"),
    (413, "413"),
    (422, "422"),
    (429, "429"),
    (500, "500"),
    (502, "502"),
    (503, "503"),
    (504, "504"),
];

fn status_label(status: u16) -> &'static str {
    match STATUSES.iter().find(|(known, _)| *known == status) {
        Some((_, label)) => label,
        None if (400..500).contains(&status) => "other_4xx",
        None if (500..600).contains(&status) => "other_5xx",
        None => "other",
    }
}

/// Whether an imported row was taken.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RowLabel {
    pub result: &'static str,
}

/// Which part of the time to first token.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartLabel {
    pub part: &'static str,
}

fn seconds_histogram(start: f64) -> Histogram {
    Histogram::new(exponential_buckets(start, 2.0, 16))
}

/// Every metric of the node. Cheap to clone (the metrics are shared).
#[derive(Clone)]
pub struct Metrics {
    pub sessions_opened: Counter,
    pub sessions_closed: Family<ReasonLabel, Counter>,
    pub messages_acknowledged: Counter,
    pub replies: Family<FinishLabel, Counter>,
    pub tokens_streamed: Counter,
    pub errors: Family<CodeLabel, Counter>,
    pub model_requests: Family<ModelLabels, Counter>,
    pub model_retries: Counter,
    pub import_rows: Family<RowLabel, Counter>,
    /// A reply's start (its message's arrival, or the end of the reply it
    /// waited behind) → its first token: `total`, and `added` (the total
    /// less the model's own wait in the attempt that answered).
    pub first_token: Family<PartLabel, Histogram>,
    /// The model's own time to first token, per attempt that produced one.
    pub model_first_token: Histogram,
    /// Shopper message received → its ack (the message is on disk).
    pub message_to_ack: Histogram,
    pub live_sessions: Gauge,
    pub replies_in_flight: Gauge,
    /// Owners and agents watching a desk now.
    pub desk_watchers: Gauge,
    /// Watchers dropped because they read too slowly.
    pub desk_watchers_dropped: Counter,
    /// Conversations taken over by a person from the store.
    pub takeovers: Counter,
    /// Conversations handed back to the assistant, by reason (`agent`, `idle`).
    pub handbacks: Family<ReasonLabel, Counter>,
    /// Conversations whose shopper asked for a person.
    pub humans_requested: Counter,
    /// Replies that ended with a correction of what they stated, by what
    /// was wrong (`price`, `stock`).
    pub replies_corrected: Family<ReasonLabel, Counter>,
    pub stores: Gauge,
    /// Replies the offline responder gave instead of the provider, by
    /// reason (`budget`, `breaker`).
    pub replies_degraded: Family<ReasonLabel, Counter>,
    /// The provider's breaker: 1 for its state now, 0 for the others.
    pub model_breaker: Family<StateLabel, Gauge>,
    /// Messages dropped from a session's memory (older than the prompt can
    /// use; they stay stored).
    pub history_trimmed: Counter,
    /// Query rewrites asked of the model, by outcome (`rewritten`,
    /// `unchanged`, `empty`, `late`, `failed`).
    pub query_rewrites: Family<OutcomeLabel, Counter>,
    /// How long each query rewrite took, up to its budget.
    pub query_rewrite_time: Histogram,
}

/// What an attempt came to.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

/// A state of a state set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            sessions_opened: Counter::default(),
            sessions_closed: Family::default(),
            messages_acknowledged: Counter::default(),
            replies: Family::default(),
            tokens_streamed: Counter::default(),
            errors: Family::default(),
            model_requests: Family::default(),
            model_retries: Counter::default(),
            import_rows: Family::default(),
            first_token: Family::new_with_constructor(|| seconds_histogram(0.001)),
            model_first_token: seconds_histogram(0.001),
            message_to_ack: seconds_histogram(0.0002),
            live_sessions: Gauge::default(),
            replies_in_flight: Gauge::default(),
            desk_watchers: Gauge::default(),
            desk_watchers_dropped: Counter::default(),
            takeovers: Counter::default(),
            handbacks: Family::default(),
            humans_requested: Counter::default(),
            replies_corrected: Family::default(),
            stores: Gauge::default(),
            replies_degraded: Family::default(),
            model_breaker: Family::default(),
            history_trimmed: Counter::default(),
            query_rewrites: Family::default(),
            query_rewrite_time: seconds_histogram(0.001),
        }
    }
}

impl Metrics {
    /// Adds every metric to `registry` (whose prefix names the node).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sessions_opened",
            "Widget sessions opened",
            self.sessions_opened.clone(),
        );
        registry.register(
            "sessions_closed",
            "Widget sessions ended, by reason (an error code, client_closed, socket_gone, slow_client)",
            self.sessions_closed.clone(),
        );
        registry.register(
            "messages_acknowledged",
            "Shopper messages stored and acknowledged",
            self.messages_acknowledged.clone(),
        );
        registry.register(
            "replies",
            "Replies ended, by finish reason (stop, length, content_filter, failed, interrupted, cut)",
            self.replies.clone(),
        );
        registry.register(
            "tokens_streamed",
            "Reply tokens streamed",
            self.tokens_streamed.clone(),
        );
        registry.register(
            "errors",
            "Error frames sent to widgets, by code",
            self.errors.clone(),
        );
        registry.register(
            "model_requests",
            "Model requests, by provider, outcome and HTTP status (0: none)",
            self.model_requests.clone(),
        );
        registry.register(
            "model_retries",
            "Model requests retried before a reply's first token",
            self.model_retries.clone(),
        );
        registry.register(
            "import_rows",
            "Catalog feed rows imported, by result (accepted, rejected)",
            self.import_rows.clone(),
        );
        registry.register_with_unit(
            "first_token",
            "A reply's start to its first token: total, and added by the node",
            Unit::Seconds,
            self.first_token.clone(),
        );
        registry.register_with_unit(
            "model_first_token",
            "The model's own time to first token, per attempt that produced one",
            Unit::Seconds,
            self.model_first_token.clone(),
        );
        registry.register_with_unit(
            "message_to_ack",
            "Shopper message received to its ack (stored on disk)",
            Unit::Seconds,
            self.message_to_ack.clone(),
        );
        registry.register(
            "live_sessions",
            "Widget sessions connected now",
            self.live_sessions.clone(),
        );
        registry.register(
            "replies_in_flight",
            "Replies being generated now",
            self.replies_in_flight.clone(),
        );
        registry.register(
            "desk_watchers",
            "Owners and agents watching a live desk now",
            self.desk_watchers.clone(),
        );
        registry.register(
            "desk_watchers_dropped",
            "Desk watchers dropped for reading too slowly",
            self.desk_watchers_dropped.clone(),
        );
        registry.register(
            "takeovers",
            "Conversations taken over by a person from the store",
            self.takeovers.clone(),
        );
        registry.register(
            "handbacks",
            "Conversations handed back to the assistant, by reason",
            self.handbacks.clone(),
        );
        registry.register(
            "humans_requested",
            "Conversations whose shopper asked for a person",
            self.humans_requested.clone(),
        );
        registry.register(
            "replies_corrected",
            "Replies that ended with a correction of a price or stock they stated, by what was wrong",
            self.replies_corrected.clone(),
        );
        registry.register("stores", "Stores served by this node", self.stores.clone());
        registry.register(
            "replies_degraded",
            "Replies the offline responder gave instead of the provider, by reason (budget, breaker)",
            self.replies_degraded.clone(),
        );
        registry.register(
            "model_breaker",
            "The model provider's circuit breaker: 1 for its state now (closed, open, half_open)",
            self.model_breaker.clone(),
        );
        registry.register(
            "history_trimmed",
            "Messages dropped from sessions' memory, older than the prompt can use",
            self.history_trimmed.clone(),
        );
        registry.register(
            "query_rewrites",
            "Search queries asked of the model for a shopper's message, by outcome",
            self.query_rewrites.clone(),
        );
        registry.register_with_unit(
            "query_rewrite",
            "Time a query rewrite took (within its budget; a late one counts its budget)",
            Unit::Seconds,
            self.query_rewrite_time.clone(),
        );
    }

    /// Shows the breaker's state.
    pub fn breaker(&self, state: crate::provider::BreakerState) {
        for each in ["closed", "open", "half_open"] {
            let value = i64::from(each == state.as_str());
            self.model_breaker
                .get_or_create(&StateLabel { state: each })
                .set(value);
        }
    }

    /// One request to `provider` and its outcome.
    pub fn model_request(&self, provider: &'static str, result: Result<(), &ModelError>) {
        let labels = match result {
            Ok(()) => ModelLabels {
                provider,
                outcome: "ok",
                status: status_label(if provider == "offline" { 0 } else { 200 }),
            },
            Err(error) => ModelLabels {
                provider,
                outcome: error.kind(),
                status: status_label(error.status().unwrap_or(0)),
            },
        };
        self.model_requests.get_or_create(&labels).inc();
    }

    /// A query rewrite ended with `outcome` after `took`.
    pub fn query_rewrite(&self, outcome: &'static str, took: Duration) {
        self.query_rewrite_time.observe(took.as_secs_f64());
        self.query_rewrites
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// The first token of a reply went out `total` after its message
    /// arrived; the model itself took `model` of it.
    pub fn first_token(&self, total: Duration, model: Duration) {
        self.model_first_token.observe(model.as_secs_f64());
        let part = |part| self.first_token.get_or_create(&PartLabel { part });
        part("total").observe(total.as_secs_f64());
        part("added").observe(total.saturating_sub(model).as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_encode_with_bounded_labels() {
        let metrics = Metrics::default();
        let mut registry = Registry::with_prefix("mikabot");
        metrics.register(&mut registry);
        metrics
            .errors
            .get_or_create(&CodeLabel {
                code: "rate_limited",
            })
            .inc();
        metrics.model_request(
            "openai",
            Err(&ModelError::RateLimited { retry_after: None }),
        );
        metrics.first_token(Duration::from_millis(250), Duration::from_millis(200));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains("mikabot_errors_total{code=\"rate_limited\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "mikabot_model_requests_total{provider=\"openai\",outcome=\"rate_limited\",status=\"429\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("mikabot_first_token_seconds_count{part=\"added\"} 1"),
            "{text}"
        );
        assert!(text.contains("mikabot_live_sessions 0"), "{text}");
        assert_eq!(status_label(418), "other_4xx");
        assert_eq!(status_label(599), "other_5xx");
        assert_eq!(status_label(302), "other");
    }
}
