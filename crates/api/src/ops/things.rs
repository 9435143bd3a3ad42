//! Things, thing types and thing groups.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{AttributeUpdate, NewThing, NewThingGroup, NewThingType, ThingFilter, ThingUpdate};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::wire::{self, Body, Caller, Params, encode_token, seconds};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AttributePayload {
    #[serde(default)]
    attributes: HashMap<String, String>,
    #[serde(default)]
    merge: bool,
}

impl AttributePayload {
    fn into_update(self) -> ApiResult<AttributeUpdate> {
        Ok(AttributeUpdate {
            attributes: wire::attributes(&self.attributes)?,
            merge: self.merge,
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreateThing {
    thing_type_name: Option<String>,
    attribute_payload: Option<AttributePayload>,
    billing_group_name: Option<String>,
}

pub async fn create_thing(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(b): Body<CreateThing>,
) -> ApiResult<Json<Value>> {
    wire::thing_name("thingName", &name)?;
    if let Some(t) = &b.thing_type_name {
        wire::thing_name("thingTypeName", t)?;
    }
    if let Some(g) = &b.billing_group_name {
        wire::thing_name("billingGroupName", g)?;
        return Err(ApiError::not_found(format!(
            "Billing group {g} does not exist"
        )));
    }
    let attributes = match b.attribute_payload {
        Some(p) => wire::attributes(&p.attributes)?
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect(),
        None => Default::default(),
    };
    let thing = s
        .store
        .create_thing(
            &caller.scope,
            &NewThing {
                name,
                thing_type: b.thing_type_name,
                attributes,
                billing_group: b.billing_group_name,
            },
        )
        .await?;
    Ok(Json(
        json!({ "thingName": thing.name, "thingArn": thing.arn, "thingId": thing.thing_id }),
    ))
}

fn thing_json(t: &store::Thing, full: bool) -> Value {
    let mut v = json!({
        "thingName": t.name,
        "thingArn": t.arn,
        "attributes": t.attributes,
        "version": t.version,
    });
    if let Some(ty) = &t.thing_type {
        v["thingTypeName"] = json!(ty);
    }
    if full {
        v["defaultClientId"] = json!(t.name);
        v["thingId"] = json!(t.thing_id);
        if let Some(bg) = &t.billing_group {
            v["billingGroupName"] = json!(bg);
        }
    }
    v
}

pub async fn describe_thing(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    wire::thing_name("thingName", &name)?;
    Ok(Json(thing_json(
        &s.store.describe_thing(&caller.scope, &name).await?,
        true,
    )))
}

pub async fn list_things(
    State(s): State<AppState>,
    caller: Caller,
    p: Params,
) -> ApiResult<Json<Value>> {
    let filter = ThingFilter {
        attribute_name: p.str("attributeName").map(str::to_owned),
        attribute_value: p.str("attributeValue").map(str::to_owned),
        use_prefix_attribute_value: p.bool("usePrefixAttributeValue")?,
        thing_type: p.str("thingTypeName").map(str::to_owned),
    };
    let page = s
        .store
        .list_things(&caller.scope, &filter, &p.token_page()?)
        .await?;
    let things: Vec<Value> = page.items.iter().map(|t| thing_json(t, false)).collect();
    Ok(Json(
        json!({ "things": things, "nextToken": encode_token(page.next) }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateThing {
    thing_type_name: Option<String>,
    attribute_payload: Option<AttributePayload>,
    expected_version: Option<i64>,
    #[serde(default)]
    remove_thing_type: bool,
}

pub async fn update_thing(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(b): Body<UpdateThing>,
) -> ApiResult<Json<Value>> {
    wire::thing_name("thingName", &name)?;
    let update = ThingUpdate {
        thing_type: b.thing_type_name,
        remove_thing_type: b.remove_thing_type,
        attributes: b
            .attribute_payload
            .map(AttributePayload::into_update)
            .transpose()?,
        expected_version: b.expected_version,
    };
    s.store.update_thing(&caller.scope, &name, &update).await?;
    Ok(Json(json!({})))
}

pub async fn delete_thing(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    wire::thing_name("thingName", &name)?;
    let expected = p.int("expectedVersion", i64::MIN, i64::MAX)?;
    s.store.delete_thing(&caller.scope, &name, expected).await?;
    Ok(Json(json!({})))
}

pub async fn list_groups_for_thing(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let page = s
        .store
        .list_groups_for_thing(&caller.scope, &name, &p.token_page()?)
        .await?;
    let groups: Vec<Value> = page
        .items
        .iter()
        .map(|g| json!({ "groupName": g.name, "groupArn": g.arn }))
        .collect();
    Ok(Json(
        json!({ "thingGroups": groups, "nextToken": encode_token(page.next) }),
    ))
}

// ---- thing types ----

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingType {
    thing_type_properties: Option<Value>,
}

fn check_type_properties(props: &Value) -> ApiResult<()> {
    if !props.is_object() {
        return Err(ApiError::invalid("thingTypeProperties must be an object"));
    }
    if let Some(list) = props.get("searchableAttributes") {
        let n = list
            .as_array()
            .map(Vec::len)
            .ok_or_else(|| ApiError::invalid("searchableAttributes must be a list"))?;
        if n > 3 {
            return Err(ApiError::invalid(
                "a thing type can have at most 3 searchable attributes",
            ));
        }
    }
    Ok(())
}

pub async fn create_thing_type(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(b): Body<CreateThingType>,
) -> ApiResult<Json<Value>> {
    wire::thing_name("thingTypeName", &name)?;
    let properties = b.thing_type_properties.unwrap_or_else(|| json!({}));
    check_type_properties(&properties)?;
    let t = s
        .store
        .create_thing_type(&caller.scope, &NewThingType { name, properties })
        .await?;
    Ok(Json(
        json!({ "thingTypeName": t.name, "thingTypeArn": t.arn, "thingTypeId": t.type_id }),
    ))
}

fn thing_type_json(t: &store::ThingType) -> Value {
    let mut metadata = json!({ "deprecated": t.deprecated, "creationDate": seconds(t.created_ms) });
    if let Some(ms) = t.deprecated_ms {
        metadata["deprecationDate"] = seconds(ms);
    }
    json!({
        "thingTypeName": t.name,
        "thingTypeId": t.type_id,
        "thingTypeArn": t.arn,
        "thingTypeProperties": t.properties,
        "thingTypeMetadata": metadata,
    })
}

pub async fn describe_thing_type(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    wire::thing_name("thingTypeName", &name)?;
    Ok(Json(thing_type_json(
        &s.store.describe_thing_type(&caller.scope, &name).await?,
    )))
}

pub async fn list_thing_types(
    State(s): State<AppState>,
    caller: Caller,
    p: Params,
) -> ApiResult<Json<Value>> {
    let page = s
        .store
        .list_thing_types(&caller.scope, p.str("thingTypeName"), &p.token_page()?)
        .await?;
    let types: Vec<Value> = page
        .items
        .iter()
        .map(|t| {
            let mut v = thing_type_json(t);
            if let Some(o) = v.as_object_mut() {
                o.remove("thingTypeId");
            }
            v
        })
        .collect();
    Ok(Json(
        json!({ "thingTypes": types, "nextToken": encode_token(page.next) }),
    ))
}

pub async fn update_thing_type(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(b): Body<CreateThingType>,
) -> ApiResult<Json<Value>> {
    let properties = b.thing_type_properties.unwrap_or_else(|| json!({}));
    check_type_properties(&properties)?;
    s.store
        .update_thing_type(&caller.scope, &name, &properties)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeprecateThingType {
    #[serde(default)]
    undo_deprecate: bool,
}

pub async fn deprecate_thing_type(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(b): Body<DeprecateThingType>,
) -> ApiResult<Json<Value>> {
    s.store
        .deprecate_thing_type(&caller.scope, &name, b.undo_deprecate)
        .await?;
    Ok(Json(json!({})))
}

pub async fn delete_thing_type(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    s.store.delete_thing_type(&caller.scope, &name).await?;
    Ok(Json(json!({})))
}

// ---- thing groups ----

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GroupProperties {
    thing_group_description: Option<String>,
    attribute_payload: Option<AttributePayload>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingGroup {
    parent_group_name: Option<String>,
    thing_group_properties: Option<GroupProperties>,
}

pub async fn create_thing_group(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(b): Body<CreateThingGroup>,
) -> ApiResult<Json<Value>> {
    wire::thing_name("thingGroupName", &name)?;
    if let Some(p) = &b.parent_group_name {
        wire::thing_name("parentGroupName", p)?;
    }
    let props = b.thing_group_properties.unwrap_or_default();
    let attributes = match props.attribute_payload {
        Some(a) => wire::attributes(&a.attributes)?,
        None => Default::default(),
    };
    let g = s
        .store
        .create_thing_group(
            &caller.scope,
            &NewThingGroup {
                name,
                parent: b.parent_group_name,
                description: props.thing_group_description,
                attributes,
            },
        )
        .await?;
    Ok(Json(
        json!({ "thingGroupName": g.name, "thingGroupArn": g.arn, "thingGroupId": g.group_id }),
    ))
}

pub async fn describe_thing_group(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    wire::thing_name("thingGroupName", &name)?;
    let g = s.store.describe_thing_group(&caller.scope, &name).await?;
    let mut properties = json!({ "attributePayload": { "attributes": g.attributes } });
    if let Some(d) = &g.description {
        properties["thingGroupDescription"] = json!(d);
    }
    let mut metadata = json!({
        "creationDate": seconds(g.created_ms),
        "rootToParentThingGroups": g.ancestors.iter().map(|a| json!({ "groupName": a.name, "groupArn": a.arn })).collect::<Vec<_>>(),
    });
    if let Some(p) = &g.parent {
        metadata["parentGroupName"] = json!(p);
    }
    Ok(Json(json!({
        "thingGroupName": g.name,
        "thingGroupId": g.group_id,
        "thingGroupArn": g.arn,
        "version": g.version,
        "thingGroupProperties": properties,
        "thingGroupMetadata": metadata,
    })))
}

pub async fn list_thing_groups(
    State(s): State<AppState>,
    caller: Caller,
    p: Params,
) -> ApiResult<Json<Value>> {
    let page = s
        .store
        .list_thing_groups(
            &caller.scope,
            p.str("parentGroup"),
            p.str("namePrefixFilter"),
            p.bool("recursive")?,
            &p.token_page()?,
        )
        .await?;
    let groups: Vec<Value> = page
        .items
        .iter()
        .map(|g| json!({ "groupName": g.name, "groupArn": g.arn }))
        .collect();
    Ok(Json(
        json!({ "thingGroups": groups, "nextToken": encode_token(page.next) }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateThingGroup {
    thing_group_properties: Option<GroupProperties>,
    expected_version: Option<i64>,
}

pub async fn update_thing_group(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(b): Body<UpdateThingGroup>,
) -> ApiResult<Json<Value>> {
    let props = b.thing_group_properties.unwrap_or_default();
    let attributes = props
        .attribute_payload
        .map(AttributePayload::into_update)
        .transpose()?;
    let version = s
        .store
        .update_thing_group(
            &caller.scope,
            &name,
            props.thing_group_description,
            attributes,
            b.expected_version,
        )
        .await?;
    Ok(Json(json!({ "version": version })))
}

pub async fn delete_thing_group(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let expected = p.int("expectedVersion", i64::MIN, i64::MAX)?;
    s.store
        .delete_thing_group(&caller.scope, &name, expected)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    thing_group_name: Option<String>,
    thing_group_arn: Option<String>,
    thing_name: Option<String>,
    thing_arn: Option<String>,
}

impl Membership {
    /// The group and thing names, from either the name or the ARN member (which must name the caller's account).
    fn names(self, caller: &Caller) -> ApiResult<(String, String)> {
        let pick = |name: Option<String>,
                    arn: Option<String>,
                    kind: &str,
                    member: &str|
         -> ApiResult<String> {
            let name = match (name, arn) {
                (Some(n), _) => n,
                (None, Some(arn)) => {
                    let prefix = caller.scope.arn(kind, "");
                    arn.strip_prefix(&prefix)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            ApiError::invalid(format!(
                                "{arn} is not a {kind} ARN of this account and region"
                            ))
                        })?
                }
                (None, None) => {
                    return Err(ApiError::invalid(format!(
                        "{member} or its ARN is required"
                    )));
                }
            };
            wire::thing_name(member, &name)?;
            Ok(name)
        };
        Ok((
            pick(
                self.thing_group_name,
                self.thing_group_arn,
                "thinggroup",
                "thingGroupName",
            )?,
            pick(self.thing_name, self.thing_arn, "thing", "thingName")?,
        ))
    }
}

pub async fn add_thing_to_group(
    State(s): State<AppState>,
    caller: Caller,
    Body(b): Body<Membership>,
) -> ApiResult<Json<Value>> {
    let (group, thing) = b.names(&caller)?;
    s.store
        .add_thing_to_group(&caller.scope, &group, &thing)
        .await?;
    Ok(Json(json!({})))
}

pub async fn remove_thing_from_group(
    State(s): State<AppState>,
    caller: Caller,
    Body(b): Body<Membership>,
) -> ApiResult<Json<Value>> {
    let (group, thing) = b.names(&caller)?;
    s.store
        .remove_thing_from_group(&caller.scope, &group, &thing)
        .await?;
    Ok(Json(json!({})))
}

pub async fn list_things_in_group(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let page = s
        .store
        .list_things_in_group(&caller.scope, &name, p.bool("recursive")?, &p.token_page()?)
        .await?;
    Ok(Json(
        json!({ "things": page.items, "nextToken": encode_token(page.next) }),
    ))
}
