//! SigV4 verification of every control-plane request, and the access-key cache.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use store::{Scope, Store};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::wire::Caller;

/// Services a request may be signed for: current botocore signs IoT as `iot`, Debian's older awscli v2 as
/// `execute-api`; `sts` is for GetCallerIdentity, answered at `POST /`.
const SERVICES: &[&str] = &["iot", "execute-api", "sts"];

#[derive(Debug)]
struct KeyEntry {
    account_id: String,
    secret: String,
    endpoint_prefix: String,
}

/// Access keys seen so far. Keys are immutable once created, so entries never go stale; a key created by
/// `onboard account create` in another process is found in the database on first use.
#[derive(Default)]
pub struct KeyCache {
    keys: RwLock<HashMap<String, Arc<KeyEntry>>>,
}

impl KeyCache {
    async fn get(&self, store: &Store, access_key_id: &str) -> ApiResult<Option<Arc<KeyEntry>>> {
        if let Ok(keys) = self.keys.read()
            && let Some(k) = keys.get(access_key_id)
        {
            return Ok(Some(k.clone()));
        }
        let Some((account_id, secret)) = store.access_key(access_key_id).await? else {
            return Ok(None);
        };
        let account = store
            .account(&account_id)
            .await?
            .ok_or_else(ApiError::internal)?;
        let entry = Arc::new(KeyEntry {
            account_id,
            secret,
            endpoint_prefix: account.endpoint_prefix,
        });
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(access_key_id.to_owned(), entry.clone());
        }
        Ok(Some(entry))
    }
}

/// Middleware: reads the body (bounded), verifies the signature, and hands the request on with its [`Caller`].
pub async fn verify_signature(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let sts = is_sts(&request);
    match authenticate(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => {
            tracing::info!(code = e.code, reason = %e.message, "request refused at authentication");
            // STS clients parse XML errors only.
            if sts {
                crate::ops::misc::sts_error(e)
            } else {
                e.into_response()
            }
        }
    }
}

/// STS (GetCallerIdentity) is answered at `POST /`.
fn is_sts(request: &Request) -> bool {
    request.uri().path() == "/" && request.method() == axum::http::Method::POST
}

async fn authenticate(state: &AppState, request: Request) -> ApiResult<Request> {
    let (mut parts, body) = request.into_parts();
    let body = to_bytes(body, state.config.max_body_bytes)
        .await
        .map_err(|_| {
            ApiError::invalid(format!(
                "the request body is larger than {} bytes",
                state.config.max_body_bytes
            ))
        })?;
    let mut headers = Vec::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        let value = value.to_str().map_err(|_| {
            ApiError::invalid(format!("the value of header {name} is not visible ASCII"))
        })?;
        headers.push((name.as_str(), value));
    }
    let path = parts.uri.path();
    let signed = sigv4::Request {
        method: parts.method.as_str(),
        path,
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        payload: sigv4::Payload::Bytes(&body),
    };
    let auth = signed.authorization()?;
    let key = state
        .keys
        .get(&state.store, &auth.access_key_id)
        .await?
        .ok_or(sigv4::Error::UnrecognizedClient)?;
    let options = sigv4::VerifyOptions {
        services: SERVICES,
        ..Default::default()
    };
    sigv4::verify(&signed, &auth, &key.secret, now_unix(), &options)?;
    let wants_sts = parts.uri.path() == "/" && parts.method == axum::http::Method::POST;
    if (auth.service == "sts") != wants_sts {
        return Err(ApiError::new(
            "InvalidSignatureException",
            403,
            format!(
                "Credential should be scoped to correct service: '{}'.",
                if wants_sts { "sts" } else { "iot" }
            ),
        ));
    }
    parts.extensions.insert(Caller {
        scope: Scope::new(key.account_id.clone(), auth.region.clone()),
        endpoint_prefix: key.endpoint_prefix.clone(),
    });
    Ok(Request::from_parts(parts, Body::from(body)))
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
