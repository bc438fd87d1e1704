//! The one place where errors become HTTP statuses. Every error body is JSON:
//! `{"error": code, "message": text, "field"?: path}`.

use crate::wasm::CallError;
use crate::xapi::documents::Refused;
use crate::xapi::store::StoreError;
use crate::xapi::validate::Invalid;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String, field: Option<String> },
    #[error("authentication required")]
    Unauthorized,
    /// 401 for a browser: no `WWW-Authenticate: Basic`, which would make it
    /// ask for a client credential in a dialog.
    #[error("sign in first: /login")]
    SignInRequired,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    Unavailable(String),
    #[error("the request took longer than {0:?}")]
    Timeout(std::time::Duration),
    #[error("Content-Type {0} is not application/json")]
    UnsupportedMediaType(String),
    #[error("too many sign-in checks are waiting; try again in {0} s")]
    Busy(u64),
    #[error("too many failed sign-ins from this address; try again in {0} s")]
    TooManyAttempts(u64),
    #[error(transparent)]
    Module(#[from] CallError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest { code, message: message.into(), field: None }
    }

    pub fn field(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest { code, message: message.into(), field: Some(field.into()) }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::SignInRequired => (StatusCode::UNAUTHORIZED, "sign_in_required"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            ApiError::Module(e) => match e {
                CallError::NoSuchModule(_) | CallError::Busy { .. } => {
                    (StatusCode::SERVICE_UNAVAILABLE, "module_unavailable")
                }
                CallError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "module_timeout"),
                CallError::MemoryLimit { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "module_memory_limit"),
                CallError::Trap { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "module_trap"),
                CallError::BadResponse { .. } => (StatusCode::BAD_GATEWAY, "module_bad_response"),
            },
            ApiError::Store(StoreError::Conflict { .. }) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Store(StoreError::OutboxFull { .. }) => (StatusCode::SERVICE_UNAVAILABLE, "outbox_full"),
            ApiError::Store(StoreError::Document(r)) => match r {
                Refused::Precondition(_) => (StatusCode::PRECONDITION_FAILED, "precondition_failed"),
                Refused::NeedsPrecondition(_) => (StatusCode::CONFLICT, "precondition_required"),
                Refused::NotMergeable(_) => (StatusCode::BAD_REQUEST, "not_mergeable"),
            },
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
        }
    }
}

impl ApiError {
    /// What the client is told. Server-side failures whose text names the
    /// node's insides (the database path, a trap's backtrace) are told in
    /// general terms; the node's log has the full text.
    fn public_message(&self) -> String {
        match self {
            ApiError::Store(StoreError::Db { .. } | StoreError::Closed) => {
                "the node's storage failed; its log has the details".into()
            }
            ApiError::Module(CallError::Trap { module, .. }) => {
                format!("module {module}: trapped; the node's log has the details")
            }
            other => other.to_string(),
        }
    }
}

impl From<crate::roster::RosterError> for ApiError {
    fn from(e: crate::roster::RosterError) -> Self {
        use crate::roster::RosterError as R;
        match e {
            R::Invalid { field, message } => ApiError::field("invalid_field", field, format!("{field}: {message}")),
            R::NotFound(id) => ApiError::NotFound(format!("no person {id:?}")),
            R::Exists(id) => ApiError::Conflict(format!("a person with id {id:?} already exists")),
            R::Db { path, message } => ApiError::Store(StoreError::Db { path, message: format!("roster: {message}") }),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::BadRequest { code: "invalid_statement", message: e.to_string(), field: Some(e.field) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::warn!(error = %self, code, "request failed");
        }
        let mut body = serde_json::json!({"error": code, "message": self.public_message()});
        if let ApiError::BadRequest { field: Some(f), .. } = &self {
            body["field"] = f.clone().into();
        }
        let mut resp = (status, axum::Json(body)).into_response();
        if let ApiError::Busy(secs) | ApiError::TooManyAttempts(secs) = self {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let ApiError::Unauthorized = self {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"lms\", charset=\"UTF-8\""));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10, case 12: 5xx bodies named the database path.
    #[tokio::test]
    async fn server_failures_do_not_tell_the_nodes_insides() {
        let errors = [
            ApiError::Store(StoreError::Db { path: "/data/lms/lms.sqlite3".into(), message: "disk I/O error".into() }),
            ApiError::Module(CallError::Trap {
                module: "quiz".into(),
                message: "wasm backtrace: /build/src/x.rs".into(),
            }),
        ];
        for e in errors {
            let resp = e.into_response();
            assert!(resp.status().is_server_error());
            let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains("/data") && !text.contains("/build") && !text.contains("I/O"), "{text}");
            assert!(text.contains("log"), "{text}");
        }
    }
}
