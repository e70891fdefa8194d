//! API errors as RFC 9457 problem documents, each with a stable `code` from one table.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use regulars_core::FieldError;
use regulars_store::StoreError;
use serde_json::json;

/// Every error code the API can return. The codes are stable: integrations may match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The body is not JSON, or not well-formed.
    MalformedJson,
    /// The body has a field the operation does not know.
    UnknownField,
    /// A field is missing, has the wrong type or an invalid value; `field` names it.
    InvalidField,
    /// The body is larger than the limit.
    BodyTooLarge,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// No valid API key was presented.
    Unauthorized,
    /// The key's role may not do this.
    Forbidden,
    /// The resource, or something the request refers to, does not exist.
    NotFound,
    /// A unique value is already taken.
    AlreadyExists,
    /// The `Idempotency-Key` was used before with a different request.
    IdempotencyKeyReused,
    /// A request with this `Idempotency-Key` is still being processed.
    IdempotencyKeyInFlight,
    /// The `Idempotency-Key` header is not 1 to 255 visible ASCII characters.
    InvalidIdempotencyKey,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The database is unavailable or the server is shutting down.
    Unavailable,
    /// Something failed inside the server.
    Internal,
    /// The loyalty rules refused the request (`409`); the code is the refusal's own
    /// (`insufficient_points`, `hold_expired`, ... : `regulars_core::loyalty::Refusal::CODES`). Nothing
    /// was written, and a retry is judged afresh.
    Refused(&'static str),
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::MalformedJson,
        ErrorCode::UnknownField,
        ErrorCode::InvalidField,
        ErrorCode::BodyTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::IdempotencyKeyInFlight,
        ErrorCode::InvalidIdempotencyKey,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The code, its HTTP status and its title: the one table.
    pub fn describe(self) -> (&'static str, StatusCode, &'static str) {
        use ErrorCode::*;
        match self {
            MalformedJson => ("malformed_json", StatusCode::BAD_REQUEST, "The body is not well-formed JSON"),
            UnknownField => ("unknown_field", StatusCode::UNPROCESSABLE_ENTITY, "The body has an unknown field"),
            InvalidField => ("invalid_field", StatusCode::UNPROCESSABLE_ENTITY, "A field is missing or invalid"),
            BodyTooLarge => ("body_too_large", StatusCode::PAYLOAD_TOO_LARGE, "The body is too large"),
            UnsupportedMediaType => {
                ("unsupported_media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE, "The body must be application/json")
            }
            Unauthorized => ("unauthorized", StatusCode::UNAUTHORIZED, "A valid API key is required"),
            Forbidden => ("forbidden", StatusCode::FORBIDDEN, "This key's role may not do this"),
            NotFound => ("not_found", StatusCode::NOT_FOUND, "Not found"),
            AlreadyExists => ("already_exists", StatusCode::CONFLICT, "Already exists"),
            IdempotencyKeyReused => (
                "idempotency_key_reused",
                StatusCode::UNPROCESSABLE_ENTITY,
                "The idempotency key was used with a different request",
            ),
            IdempotencyKeyInFlight => (
                "idempotency_key_in_flight",
                StatusCode::CONFLICT,
                "A request with this idempotency key is still in progress",
            ),
            InvalidIdempotencyKey => {
                ("invalid_idempotency_key", StatusCode::BAD_REQUEST, "The Idempotency-Key header is invalid")
            }
            MethodNotAllowed => ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
            Unavailable => ("unavailable", StatusCode::SERVICE_UNAVAILABLE, "The service is unavailable"),
            Internal => ("internal", StatusCode::INTERNAL_SERVER_ERROR, "Internal error"),
            Refused(code) => (code, StatusCode::CONFLICT, "The loyalty rules refused the request"),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.describe().0
    }

    /// Every code the API can return: the table above and the loyalty refusals.
    pub fn all_codes() -> Vec<&'static str> {
        let table = ErrorCode::ALL.iter().map(|c| c.as_str());
        table.chain(regulars_core::loyalty::Refusal::CODES).collect()
    }
}

/// An error on its way to becoming a problem document.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    /// The input field at fault, as a path such as `lines[1].quantity`.
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError { code, detail: detail.into(), field: None }
    }

    pub fn field(code: ErrorCode, field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError { code, detail: detail.into(), field: Some(field.into()) }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{} does not exist", what.into()))
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::field(ErrorCode::InvalidField, e.field.clone(), e.to_string())
    }
}

/// A refusal of the ledger or the rewards (`insufficient_points`, `coupon_exhausted`, ...): a 409 with its code.
impl From<regulars_core::loyalty::Refusal> for ApiError {
    fn from(refusal: regulars_core::loyalty::Refusal) -> Self {
        ApiError::new(ErrorCode::Refused(refusal.code()), refusal.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { ref field, .. } if field == "id" => {
                ApiError::new(ErrorCode::NotFound, e.to_string())
            }
            StoreError::NotFound { ref field, .. } => {
                let field = field.clone();
                ApiError::field(ErrorCode::NotFound, field, e.to_string())
            }
            StoreError::Invalid(f) => f.into(),
            StoreError::Refused(refusal) => refusal.into(),
            StoreError::AlreadyExists { ref field, .. } => {
                let field = field.clone();
                ApiError::field(ErrorCode::AlreadyExists, field, e.to_string())
            }
            ref e if e.is_unavailable() => ApiError::new(ErrorCode::Unavailable, e.to_string()),
            other => ApiError::new(ErrorCode::Internal, other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status, title) = self.code.describe();
        let mut body = json!({
            "type": format!("https://regulars.dev/problems/{code}"),
            "title": title,
            "status": status.as_u16(),
            "detail": self.detail,
            "code": code,
        });
        if let Some(field) = self.field {
            body["field"] = field.into();
        }
        let mut response = (status, body.to_string()).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
