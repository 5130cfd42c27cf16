//! HTTP errors: one [`ApiError`] type whose stable [`ApiCode`] carries its
//! HTTP status, from one table (documented in `docs/http-api.md`), so a
//! code cannot be sent with the wrong status. Every JSON endpoint answers
//! an error with `{"error": {"code": "…", "message": "…"}}`.
//!
//! A failure of the node itself ([`ApiError::internal`]) shows the client
//! an opaque message and a request id; the cause is logged with the same
//! id, never sent.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Map, Value, json};

/// Declares [`ApiCode`] from one table of code, text and HTTP status.
macro_rules! api_codes {
    ($($variant:ident => $text:literal, $status:ident;)*) => {
        /// Stable HTTP error codes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum ApiCode {
            $($variant,)*
        }

        impl ApiCode {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ApiCode::$variant => $text,)*
                }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $(ApiCode::$variant => StatusCode::$status,)*
                }
            }

            /// How many codes the table has.
            #[cfg(test)]
            const COUNT: usize = [$($text,)*].len();

            /// The code with this text.
            #[cfg(test)]
            fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(ApiCode::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

api_codes! {
    WebsocketRequired => "websocket_required", BAD_REQUEST;
    InvalidBody => "invalid_body", BAD_REQUEST;
    InvalidMode => "invalid_mode", BAD_REQUEST;
    MalformedFeed => "malformed_feed", BAD_REQUEST;
    UploadFailed => "upload_failed", BAD_REQUEST;
    Unauthorized => "unauthorized", UNAUTHORIZED;
    SignInRequired => "sign_in_required", UNAUTHORIZED;
    CatalogApiDisabled => "catalog_api_disabled", FORBIDDEN;
    OriginNotAllowed => "origin_not_allowed", FORBIDDEN;
    RoleTooLow => "role_too_low", FORBIDDEN;
    NotFound => "not_found", NOT_FOUND;
    UnknownStore => "unknown_store", NOT_FOUND;
    PayloadTooLarge => "payload_too_large", PAYLOAD_TOO_LARGE;
    TooManyAttempts => "too_many_attempts", TOO_MANY_REQUESTS;
    UnknownFormat => "unknown_format", UNPROCESSABLE_ENTITY;
    EmptyFeed => "empty_feed", UNPROCESSABLE_ENTITY;
    RowsRejected => "rows_rejected", UNPROCESSABLE_ENTITY;
    NoValidRows => "no_valid_rows", UNPROCESSABLE_ENTITY;
    InvalidSynonyms => "invalid_synonyms", UNPROCESSABLE_ENTITY;
    InvalidWidgetSettings => "invalid_widget_settings", UNPROCESSABLE_ENTITY;
    InvalidErasure => "invalid_erasure", UNPROCESSABLE_ENTITY;
    InvalidPage => "invalid_page", UNPROCESSABLE_ENTITY;
    TooManyPages => "too_many_pages", CONFLICT;
    InvalidGoldens => "invalid_goldens", UNPROCESSABLE_ENTITY;
    GoldenRunning => "golden_run_running", CONFLICT;
    StoreNotServed => "store_not_served", SERVICE_UNAVAILABLE;
    GoldenRunsBusy => "golden_runs_busy", SERVICE_UNAVAILABLE;
    Internal => "internal", INTERNAL_SERVER_ERROR;
}

/// An HTTP error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    code: ApiCode,
    message: String,
    /// Extra fields of the `error` object (`field`, `request_id`).
    details: Map<String, Value>,
    /// Extra top-level fields of the body (an import's report).
    body: Map<String, Value>,
    /// Sent as `Retry-After` (whole seconds, rounded up).
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub fn new(code: ApiCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Map::new(),
            body: Map::new(),
            retry_after: None,
        }
    }

    /// When asking again can succeed.
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// The node failed. The client sees an opaque message with a request
    /// id; `cause` is logged with the same id and never sent.
    pub fn internal(cause: impl fmt::Display) -> Self {
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(request_id = %request_id, error = %cause, "request failed");
        Self::new(
            ApiCode::Internal,
            format!("the node could not handle the request; its operator can look up request id {request_id}"),
        )
        .detail("request_id", request_id)
    }

    /// Adds a field to the `error` object.
    pub fn detail(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.details.insert(name.to_owned(), value.into());
        self
    }

    /// Adds top-level fields to the body: every field of `object`.
    pub fn with_body(mut self, object: Value) -> Self {
        if let Value::Object(fields) = object {
            self.body.extend(fields);
        }
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code.as_str()));
        error.insert("message".into(), json!(self.message));
        error.extend(self.details.clone());
        let mut body = self.body.clone();
        body.insert("error".into(), Value::Object(error));
        let mut response = HttpResponse::build(self.status_code());
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        response.json(Value::Object(body))
    }
}

/// Answers every request no route matched.
pub(crate) async fn no_route(req: actix_web::HttpRequest) -> HttpResponse {
    ApiError::new(
        ApiCode::NotFound,
        format!("no such endpoint: {} {}", req.method(), req.path()),
    )
    .error_response()
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    fn body_of(error: &ApiError) -> Value {
        let bytes = error
            .error_response()
            .into_body()
            .try_into_bytes()
            .expect("a complete body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[test]
    fn an_internal_error_hides_its_cause_and_names_its_request_id() {
        let error = ApiError::internal("disk /var/lib/mikabot is full");
        assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_of(&error);
        assert_eq!(body["error"]["code"], "internal");
        let id = body["error"]["request_id"].as_str().expect("a request id");
        assert_eq!(id.len(), 32);
        let message = body["error"]["message"].as_str().expect("a message");
        assert!(message.contains(id), "{message}");
        assert!(!body.to_string().contains("disk"), "{body}");
    }

    #[test]
    fn details_go_in_the_error_and_a_body_beside_it() {
        let error = ApiError::new(ApiCode::RowsRejected, "2 rows")
            .detail("field", "price")
            .with_body(json!({"rows": 3}));
        let body = body_of(&error);
        assert_eq!(body["rows"], 3);
        assert_eq!(body["error"]["field"], "price");
        assert_eq!(error.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn the_documented_table_is_the_code_table() {
        let doc = include_str!("../../docs/http-api.md");
        let table = doc
            .split("## Errors")
            .nth(1)
            .expect("docs/http-api.md has an error table");
        let mut documented = 0;
        for line in table.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (Some(status), Some(code)) = (cells.get(1), cells.get(2)) else {
                continue;
            };
            let Some(code) = code.strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
                continue;
            };
            let parsed = ApiCode::parse(code).unwrap_or_else(|| panic!("{code} is not a code"));
            assert_eq!(parsed.status().as_str(), *status, "{code}");
            documented += 1;
        }
        assert_eq!(documented, ApiCode::COUNT, "every code is documented once");
    }
}
