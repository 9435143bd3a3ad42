//! Policies, policy versions, attachments, and the effective policies of a principal.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::wire::{self, Body, Caller, Params, encode_token, seconds};

/// Parses and validates a policy document; advisory findings go to the log.
fn validate_document(name: &str, document: Option<String>) -> ApiResult<String> {
    let document = document.ok_or_else(|| ApiError::invalid("policyDocument is required"))?;
    let parsed = policy::PolicyDocument::parse(&document)
        .map_err(|e| ApiError::malformed_policy(e.to_string()))?;
    for warning in parsed.warnings() {
        tracing::warn!(policy = name, %warning, "policy accepted with a warning");
    }
    Ok(document)
}

fn version_id(v: &str) -> ApiResult<i64> {
    v.parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::invalid(format!("{v:?} is not a policy version id")))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DocumentBody {
    policy_document: Option<String>,
}

pub async fn create_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(b): Body<DocumentBody>,
) -> ApiResult<Json<Value>> {
    wire::policy_name(&name)?;
    let document = validate_document(&name, b.policy_document)?;
    let p = s
        .store
        .create_policy(&caller.scope, &name, &document)
        .await?;
    Ok(Json(json!({
        "policyName": p.name,
        "policyArn": p.arn,
        "policyDocument": p.document,
        "policyVersionId": p.default_version_id.to_string(),
    })))
}

pub async fn get_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    wire::policy_name(&name)?;
    let p = s.store.get_policy(&caller.scope, &name).await?;
    Ok(Json(json!({
        "policyName": p.name,
        "policyArn": p.arn,
        "policyDocument": p.document,
        "defaultVersionId": p.default_version_id.to_string(),
        "creationDate": seconds(p.created_ms),
        "lastModifiedDate": seconds(p.modified_ms),
        "generationId": p.generation_id,
    })))
}

pub async fn delete_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    wire::policy_name(&name)?;
    s.store.delete_policy(&caller.scope, &name).await?;
    Ok(Json(json!({})))
}

fn policy_list(page: store::Page<(String, String)>) -> Value {
    let policies: Vec<Value> = page
        .items
        .iter()
        .map(|(arn, name)| json!({ "policyName": name, "policyArn": arn }))
        .collect();
    json!({ "policies": policies, "nextMarker": encode_token(page.next) })
}

pub async fn list_policies(
    State(s): State<AppState>,
    caller: Caller,
    p: Params,
) -> ApiResult<Json<Value>> {
    Ok(Json(policy_list(
        s.store
            .list_policies(&caller.scope, &p.marker_page()?)
            .await?,
    )))
}

pub async fn create_policy_version(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    p: Params,
    Body(b): Body<DocumentBody>,
) -> ApiResult<Json<Value>> {
    wire::policy_name(&name)?;
    let document = validate_document(&name, b.policy_document)?;
    let v = s
        .store
        .create_policy_version(&caller.scope, &name, &document, p.bool("setAsDefault")?)
        .await?;
    Ok(Json(json!({
        "policyArn": v.policy_arn,
        "policyDocument": v.document,
        "policyVersionId": v.version_id.to_string(),
        "isDefaultVersion": v.is_default,
    })))
}

pub async fn get_policy_version(
    State(s): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let v = s
        .store
        .get_policy_version(&caller.scope, &name, version_id(&version)?)
        .await?;
    let modified = s.store.get_policy(&caller.scope, &name).await?.modified_ms;
    Ok(Json(json!({
        "policyArn": v.policy_arn,
        "policyName": v.policy_name,
        "policyDocument": v.document,
        "policyVersionId": v.version_id.to_string(),
        "isDefaultVersion": v.is_default,
        "creationDate": seconds(v.created_ms),
        "lastModifiedDate": seconds(modified),
        "generationId": v.generation_id,
    })))
}

pub async fn list_policy_versions(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let versions: Vec<Value> = s
        .store
        .list_policy_versions(&caller.scope, &name)
        .await?
        .iter()
        .map(|v| {
            json!({
                "versionId": v.version_id.to_string(),
                "isDefaultVersion": v.is_default,
                "createDate": seconds(v.created_ms),
            })
        })
        .collect();
    Ok(Json(json!({ "policyVersions": versions })))
}

pub async fn set_default_policy_version(
    State(s): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    s.store
        .set_default_policy_version(&caller.scope, &name, version_id(&version)?)
        .await?;
    Ok(Json(json!({})))
}

pub async fn delete_policy_version(
    State(s): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    s.store
        .delete_policy_version(&caller.scope, &name, version_id(&version)?)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize, Default)]
pub struct TargetBody {
    target: Option<String>,
}

fn required_target(caller: &Caller, target: Option<&str>) -> ApiResult<store::Target> {
    wire::target(
        caller,
        target.ok_or_else(|| ApiError::invalid("target is required"))?,
    )
}

pub async fn attach_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(b): Body<TargetBody>,
) -> ApiResult<Json<Value>> {
    wire::policy_name(&name)?;
    let target = required_target(&caller, b.target.as_deref())?;
    s.store.attach_policy(&caller.scope, &name, &target).await?;
    Ok(Json(json!({})))
}

pub async fn detach_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(b): Body<TargetBody>,
) -> ApiResult<Json<Value>> {
    wire::policy_name(&name)?;
    let target = required_target(&caller, b.target.as_deref())?;
    s.store.detach_policy(&caller.scope, &name, &target).await?;
    Ok(Json(json!({})))
}

pub async fn list_attached_policies(
    State(s): State<AppState>,
    caller: Caller,
    Path(target): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let target = wire::target(&caller, &target)?;
    let page = s
        .store
        .list_attached_policies(
            &caller.scope,
            &target,
            p.bool("recursive")?,
            &p.marker_page()?,
        )
        .await?;
    Ok(Json(policy_list(page)))
}

pub async fn list_targets_for_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let page = s
        .store
        .list_policy_targets(&caller.scope, &name, &p.marker_page()?)
        .await?;
    Ok(Json(
        json!({ "targets": page.items, "nextMarker": encode_token(page.next) }),
    ))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> ApiResult<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("the header {name} is required")))
}

pub async fn attach_principal_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let target = wire::target(&caller, header(&headers, "x-amzn-iot-principal")?)?;
    s.store.attach_policy(&caller.scope, &name, &target).await?;
    Ok(Json(json!({})))
}

pub async fn detach_principal_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let target = wire::target(&caller, header(&headers, "x-amzn-iot-principal")?)?;
    s.store.detach_policy(&caller.scope, &name, &target).await?;
    Ok(Json(json!({})))
}

pub async fn list_principal_policies(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    p: Params,
) -> ApiResult<Json<Value>> {
    let target = wire::target(&caller, header(&headers, "x-amzn-iot-principal")?)?;
    Ok(Json(policy_list(
        s.store
            .list_attached_policies(&caller.scope, &target, false, &p.marker_page()?)
            .await?,
    )))
}

pub async fn list_policy_principals(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    p: Params,
) -> ApiResult<Json<Value>> {
    let name = header(&headers, "x-amzn-iot-policy")?;
    let page = s
        .store
        .list_policy_targets(&caller.scope, name, &p.marker_page()?)
        .await?;
    Ok(Json(
        json!({ "principals": page.items, "nextMarker": encode_token(page.next) }),
    ))
}

#[derive(Deserialize, Default)]
pub struct EffectiveBody {
    principal: Option<String>,
}

/// GetEffectivePolicies: the policies on the principal, plus those on the thing's groups and their ancestors.
pub async fn get_effective_policies(
    State(s): State<AppState>,
    caller: Caller,
    p: Params,
    Body(b): Body<EffectiveBody>,
) -> ApiResult<Json<Value>> {
    let mut targets = Vec::new();
    if let Some(principal) = &b.principal {
        targets.push(wire::target(&caller, principal)?);
    }
    if let Some(thing) = p.str("thingName") {
        let all = store::PageRequest {
            after: None,
            limit: 250,
            ascending: true,
        };
        for group in s
            .store
            .list_groups_for_thing(&caller.scope, thing, &all)
            .await?
            .items
        {
            targets.push(store::Target::ThingGroup(group.name));
        }
    }
    let mut names = std::collections::BTreeSet::new();
    let all = store::PageRequest {
        after: None,
        limit: 250,
        ascending: true,
    };
    for target in &targets {
        let recursive = matches!(target, store::Target::ThingGroup(_));
        for (_, name) in s
            .store
            .list_attached_policies(&caller.scope, target, recursive, &all)
            .await?
            .items
        {
            names.insert(name);
        }
    }
    let mut effective = Vec::new();
    for name in names {
        let policy = s.store.get_policy(&caller.scope, &name).await?;
        effective.push(json!({ "policyName": policy.name, "policyArn": policy.arn, "policyDocument": policy.document }));
    }
    Ok(Json(json!({ "effectivePolicies": effective })))
}
