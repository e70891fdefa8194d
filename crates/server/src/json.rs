//! The JSON body extractor: size limit, media type, and errors that name the field at fault.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// The largest body the API accepts.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// A JSON body, parsed with errors that say which field is wrong. Also keeps the raw bytes, which
/// the idempotency check hashes.
pub struct ApiJson<T> {
    pub value: T,
    pub bytes: Bytes,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime != "application/json" && !(mime.starts_with("application/") && mime.ends_with("+json")) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!("expected Content-Type: application/json, got {content_type:?}"),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::BodyTooLarge, format!("the body is larger than {MAX_BODY_BYTES} bytes"))
            } else {
                ApiError::new(ErrorCode::MalformedJson, format!("could not read the body: {e}"))
            }
        })?;
        let value = parse(&bytes)?;
        Ok(ApiJson { value, bytes })
    }
}

/// Parses `bytes` as `T`, naming the field at fault.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return ApiError::new(ErrorCode::MalformedJson, message);
        }
        if message.starts_with("unknown field `") {
            // The path already ends with the unknown field's name.
            return ApiError::field(ErrorCode::UnknownField, path, message);
        }
        let field = if let Some(rest) = message.strip_prefix("missing field `") {
            let name = rest.split('`').next().unwrap_or_default();
            if path == "." || path.is_empty() { name.to_owned() } else { format!("{path}.{name}") }
        } else {
            path
        };
        ApiError::field(ErrorCode::InvalidField, field, message)
    })?;
    de.end().map_err(|e| ApiError::new(ErrorCode::MalformedJson, e.to_string()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        lines: Vec<Line>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        quantity: i64,
        sku: String,
    }

    fn check(body: &str, code: ErrorCode, field: Option<&str>) {
        let e = parse::<Order>(body.as_bytes()).unwrap_err();
        assert_eq!((e.code, e.field.as_deref()), (code, field), "{body}: {}", e.detail);
    }

    #[test]
    fn errors_name_the_field() {
        check("{", ErrorCode::MalformedJson, None);
        check(r#"{"lines": []} x"#, ErrorCode::MalformedJson, None);
        check(r#"{"lines": [{"quantity": "two", "sku": "A"}]}"#, ErrorCode::InvalidField, Some("lines[0].quantity"));
        check(
            r#"{"lines": [{"sku": "A", "quantity": 1}, {"sku": "B"}]}"#,
            ErrorCode::InvalidField,
            Some("lines[1].quantity"),
        );
        check(r#"{"lines": [], "colour": 1}"#, ErrorCode::UnknownField, Some("colour"));
        check(r#"{"lines": [{"sku": "A", "quantity": 1, "x": 1}]}"#, ErrorCode::UnknownField, Some("lines[0].x"));
        check(r#"{}"#, ErrorCode::InvalidField, Some("lines"));
    }
}
