//! Authentication and authorisation: `Authorization: Bearer <key>`, then the role table.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use regulars_core::access::allows;
use regulars_store::ApiKey;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::routes;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
}

impl Caller {
    /// The scope of the caller's idempotency keys.
    pub fn scope(&self) -> String {
        self.key.id.to_string()
    }
}

pub async fn authorize(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let Some(route) = routes::find(req.method().as_str(), &path) else {
        return ApiError::new(ErrorCode::Internal, format!("{} {path} is missing from the route table", req.method()))
            .into_response();
    };
    let Some(operation) = route.operation else { return next.run(req).await };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(secret) = presented else {
        return ApiError::new(ErrorCode::Unauthorized, "send an API key as Authorization: Bearer <key>")
            .into_response();
    };
    let key = match state.store.authenticate(secret).await {
        Ok(Some(key)) => key,
        Ok(None) => return ApiError::new(ErrorCode::Unauthorized, "the API key is unknown or revoked").into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !allows(key.role, operation) {
        return ApiError::new(
            ErrorCode::Forbidden,
            format!("a key with role {} may not {} {path}", key.role, req.method()),
        )
        .into_response();
    }
    req.extensions_mut().insert(Caller { key });
    next.run(req).await
}
