//! The one error answer of the routes: a status and a JSON `{"error": "..."}` body, made from
//! what went wrong (no sample yet, no permit, a rejected path or query, ...). Knows HTTP
//! statuses and the error view, nothing of how an answer is made.

use super::UNCACHED_PERMITS;
use crate::export::api::ErrorView;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// `Retry-After` of a 503 for want of a permit, seconds.
pub(super) const RETRY_AFTER_S: &str = "1";

/// Why a route does not answer with what was asked.
#[derive(Debug)]
pub(super) enum ApiError {
    /// No sample published yet: 503.
    NotReady,
    /// Every permit for uncached work is taken: 503 with `Retry-After`.
    Busy,
    /// 503 for another reason (the sampler is stuck).
    Unavailable(String),
    BadRequest(String),
    Forbidden(String),
    NotFound(String),
    MethodNotAllowed,
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = matches!(self, ApiError::Busy);
        let (status, message) = match self {
            ApiError::NotReady => (
                StatusCode::SERVICE_UNAVAILABLE,
                "no sample taken yet".into(),
            ),
            ApiError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "busy: {UNCACHED_PERMITS} process listings or filtered queries already \
                     running; retry shortly"
                ),
            ),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "method not allowed".into())
            }
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        let mut response = (status, Json(ErrorView { error: message })).into_response();
        if retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_S));
        }
        response
    }
}

/// A path that is not UTF-8 once percent-decoded (`%FF`), say: 400 like every other error.
impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}
