//! Authentication and authorisation: `Authorization: Bearer <key>`, then the role table.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use regulars_core::access::allows;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How long a key, once checked against the database, is trusted without asking again. Revoking a key
/// through the API empties this cache at once; revoking it with `regulars keys revoke` from another
/// process takes effect within this time.
pub const KEY_CACHE_SECONDS: u64 = 10;

/// Authenticated keys by the hash of their secret, with when they were checked.
#[derive(Default)]
pub struct KeyCache(Mutex<HashMap<String, (ApiKey, Instant)>>);

impl KeyCache {
    fn get(&self, secret: &str) -> Option<ApiKey> {
        let map = self.0.lock().expect("key cache poisoned");
        let (key, at) = map.get(&regulars_store::hash_secret(secret))?;
        (at.elapsed() < Duration::from_secs(KEY_CACHE_SECONDS)).then(|| key.clone())
    }

    fn put(&self, secret: &str, key: &ApiKey) {
        let mut map = self.0.lock().expect("key cache poisoned");
        if map.len() > 10_000 {
            map.clear();
        }
        map.insert(regulars_store::hash_secret(secret), (key.clone(), Instant::now()));
    }

    pub fn clear(&self) {
        self.0.lock().expect("key cache poisoned").clear();
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
    let found = match state.key_cache.get(secret) {
        Some(key) => Ok(Some(key)),
        None => state.store.authenticate(secret).await.inspect(|found| {
            if let Some(key) = found {
                state.key_cache.put(secret, key);
            }
        }),
    };
    let key = match found {
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
