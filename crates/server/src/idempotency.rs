//! `Idempotency-Key` on writes: the first response is stored with the write's effect, in the same
//! transaction; a replay gets it back byte for byte and writes nothing; the same key with another
//! request is `422 idempotency_key_reused`; a replay while the first is running is `409
//! idempotency_key_in_flight`. Keys are scoped to the API key that sent them.

use std::future::Future;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use regulars_store::{Idempotency, StoreError, StoredResponse};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};

pub const HEADER: &str = "idempotency-key";

/// Runs `write` at most once per idempotency key and returns its response.
pub async fn run<T, R, W, F>(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    request: (&str, &str, &[u8]),
    render: R,
    write: W,
) -> ApiResult<Response>
where
    T: Send + 'static,
    R: Fn(&T) -> (StatusCode, Value) + Clone + Send + 'static,
    W: FnOnce(Option<Idempotency<T>>) -> F,
    F: Future<Output = Result<T, StoreError>>,
{
    let Some(raw) = headers.get(HEADER) else {
        let value = write(None).await?;
        let (status, body) = render(&value);
        return Ok(json_response(status, body.to_string()));
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidIdempotencyKey, "use 1 to 255 visible ASCII characters"))?
        .to_owned();
    let (method, path, body) = request;
    let request_hash = hash_request(method, path, body);
    let scope = caller.scope();

    let _in_flight = InFlight::claim(state, &scope, &key)?;
    if let Some(stored) = state.store.idempotent_response(&scope, &key).await? {
        return replay(stored, &request_hash);
    }
    let idem = Idempotency {
        scope: scope.clone(),
        key: key.clone(),
        request_hash: request_hash.clone(),
        render: Box::new({
            let render = render.clone();
            move |value: &T| {
                let (status, body) = render(value);
                (status.as_u16(), body.to_string())
            }
        }),
    };
    match write(Some(idem)).await {
        Ok(value) => {
            let (status, body) = render(&value);
            Ok(json_response(status, body.to_string()))
        }
        // Another process finished the same key first: answer as a replay would.
        Err(StoreError::IdempotencyRace) => match state.store.idempotent_response(&scope, &key).await? {
            Some(stored) => replay(stored, &request_hash),
            None => Err(ApiError::new(ErrorCode::IdempotencyKeyInFlight, "retry in a moment")),
        },
        Err(e) => Err(e.into()),
    }
}

fn replay(stored: StoredResponse, request_hash: &str) -> ApiResult<Response> {
    if stored.request_hash != request_hash {
        return Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was first used with a different method, path or body",
        ));
    }
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = json_response(status, stored.body);
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}

pub fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn hash_request(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Marks a key as being processed by this server until dropped.
struct InFlight<'a> {
    state: &'a AppState,
    id: (String, String),
}

impl<'a> InFlight<'a> {
    fn claim(state: &'a AppState, scope: &str, key: &str) -> ApiResult<Self> {
        let id = (scope.to_owned(), key.to_owned());
        let mut set = state.in_flight.lock().expect("in-flight set poisoned");
        if !set.insert(id.clone()) {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyInFlight,
                "a request with this Idempotency-Key is still in progress",
            ));
        }
        Ok(InFlight { state, id })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.state.in_flight.lock().expect("in-flight set poisoned").remove(&self.id);
    }
}
