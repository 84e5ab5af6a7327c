//! The one error type of the HTTP layer: a status and a JSON body
//! `{"error": {"code", "message", "field"}}`. Client mistakes are 4xx and say what was wrong;
//! server faults are 5xx and say nothing internal (the detail goes to the log).

use crate::domain::Rejection;
use crate::engine::EngineError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_value`, `missing_field`, `unauthorized`.
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub field: Option<std::borrow::Cow<'static, str>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: ErrorDetail,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, detail: ErrorDetail { code, message: message.into(), field: None } }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: self.detail.clone() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.detail })).into_response()
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        let status = match r.code {
            "invalid_json" | "invalid_body" => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Self { status, detail: ErrorDetail { code: r.code, message: r.message, field: r.field } }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::InProgress(_) => Self::new(StatusCode::CONFLICT, "in_progress", e.to_string()),
            EngineError::Store(detail) | EngineError::Unavailable(detail) => {
                tracing::error!(error = %detail, "result not stored");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "the result could not be stored; retry")
            }
            EngineError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "scoring failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            }
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(r: axum::extract::rejection::BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the request body is too large")
        } else {
            Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("cannot read the request body: {}", r.body_text()),
            )
        }
    }
}
