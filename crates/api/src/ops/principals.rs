//! Thing ↔ principal attachments.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use store::PrincipalType;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::wire::{self, Caller, Params, encode_token};

fn principal(caller: &Caller, headers: &HeaderMap) -> ApiResult<store::Target> {
    let value = headers
        .get("x-amzn-principal")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid("the header x-amzn-principal is required"))?;
    wire::target(caller, value)
}

fn principal_type(p: &Params) -> ApiResult<Option<PrincipalType>> {
    match p.str("thingPrincipalType") {
        None => Ok(None),
        Some("EXCLUSIVE_THING") => Ok(Some(PrincipalType::Exclusive)),
        Some("NON_EXCLUSIVE_THING") => Ok(Some(PrincipalType::NonExclusive)),
        Some(other) => Err(ApiError::invalid(format!(
            "thingPrincipalType must be EXCLUSIVE_THING or NON_EXCLUSIVE_THING, not {other}"
        ))),
    }
}

pub async fn attach_thing_principal(
    State(s): State<AppState>,
    caller: Caller,
    Path(thing): Path<String>,
    headers: HeaderMap,
    p: Params,
) -> ApiResult<Json<Value>> {
    wire::thing_name("thingName", &thing)?;
    let target = principal(&caller, &headers)?;
    let kind = principal_type(&p)?.unwrap_or(PrincipalType::NonExclusive);
    s.store
        .attach_thing_principal(&caller.scope, &thing, &target, kind)
        .await?;
    Ok(Json(json!({})))
}

pub async fn detach_thing_principal(
    State(s): State<AppState>,
    caller: Caller,
    Path(thing): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    wire::thing_name("thingName", &thing)?;
    let target = principal(&caller, &headers)?;
    s.store
        .detach_thing_principal(&caller.scope, &thing, &target)
        .await?;
    Ok(Json(json!({})))
}

async fn principals_of(
    s: &AppState,
    caller: &Caller,
    thing: &str,
    p: &Params,
) -> ApiResult<store::Page<store::ThingPrincipal>> {
    wire::thing_name("thingName", thing)?;
    Ok(s.store
        .list_thing_principals(
            &caller.scope,
            Some(thing),
            None,
            principal_type(p)?,
            &p.token_page()?,
        )
        .await?)
}

pub async fn list_thing_principals(
    State(s): State<AppState>,
    caller: Caller,
    Path(thing): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let page = principals_of(&s, &caller, &thing, &p).await?;
    let principals: Vec<&str> = page.items.iter().map(|tp| tp.principal.as_str()).collect();
    Ok(Json(
        json!({ "principals": principals, "nextToken": encode_token(page.next) }),
    ))
}

pub async fn list_thing_principals_v2(
    State(s): State<AppState>,
    caller: Caller,
    Path(thing): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let page = principals_of(&s, &caller, &thing, &p).await?;
    let objects: Vec<Value> = page
        .items
        .iter()
        .map(|tp| json!({ "principal": tp.principal, "thingPrincipalType": tp.principal_type.as_str() }))
        .collect();
    Ok(Json(
        json!({ "thingPrincipalObjects": objects, "nextToken": encode_token(page.next) }),
    ))
}

async fn things_of(
    s: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    p: &Params,
) -> ApiResult<store::Page<store::ThingPrincipal>> {
    let target = principal(caller, headers)?;
    Ok(s.store
        .list_thing_principals(
            &caller.scope,
            None,
            Some(&target),
            principal_type(p)?,
            &p.token_page()?,
        )
        .await?)
}

pub async fn list_principal_things(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    p: Params,
) -> ApiResult<Json<Value>> {
    let page = things_of(&s, &caller, &headers, &p).await?;
    let things: Vec<&str> = page.items.iter().map(|tp| tp.thing_name.as_str()).collect();
    Ok(Json(
        json!({ "things": things, "nextToken": encode_token(page.next) }),
    ))
}

pub async fn list_principal_things_v2(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    p: Params,
) -> ApiResult<Json<Value>> {
    let page = things_of(&s, &caller, &headers, &p).await?;
    let objects: Vec<Value> = page
        .items
        .iter()
        .map(|tp| json!({ "thingName": tp.thing_name, "thingPrincipalType": tp.principal_type.as_str() }))
        .collect();
    Ok(Json(
        json!({ "principalThingObjects": objects, "nextToken": encode_token(page.next) }),
    ))
}
