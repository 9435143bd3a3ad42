//! CA certificates and the registration code that proves possession of a CA's key.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{CaRegistration, CaUpdate, CertificateMode};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::wire::{self, Body, Caller, Params, encode_token, seconds};

pub async fn get_registration_code(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({ "registrationCode": s.store.registration_code(&caller.scope).await? }),
    ))
}

pub async fn delete_registration_code(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    s.store.delete_registration_code(&caller.scope).await?;
    Ok(Json(json!({})))
}

fn registration_code_error(message: impl Into<String>) -> ApiError {
    ApiError::new("RegistrationCodeValidationException", 400, message)
}

/// `registrationConfig`: an inline JITP template with its role, or the name of a JITP provisioning template.
fn check_registration_config(config: &Value) -> ApiResult<()> {
    let obj = config
        .as_object()
        .ok_or_else(|| ApiError::invalid("registrationConfig must be an object"))?;
    if let Some(body) = obj.get("templateBody") {
        let text = body
            .as_str()
            .ok_or_else(|| ApiError::invalid("registrationConfig.templateBody must be a string"))?;
        if text.len() > 10240 {
            return Err(ApiError::invalid(
                "registrationConfig.templateBody is longer than 10240 characters",
            ));
        }
        if !text.is_empty() && serde_json::from_str::<Value>(text).is_err() {
            return Err(ApiError::invalid(
                "registrationConfig.templateBody is not valid JSON",
            ));
        }
    }
    if let Some(role) = obj.get("roleArn") {
        let role = role.as_str().unwrap_or_default();
        if !(20..=2048).contains(&role.len()) {
            return Err(ApiError::invalid(
                "registrationConfig.roleArn must be 20 to 2048 characters long",
            ));
        }
    }
    if let Some(name) = obj.get("templateName") {
        // Provisioning templates are not part of the registry yet, so no name can resolve.
        return Err(ApiError::not_found(format!(
            "The provisioning template {} does not exist",
            name.as_str().unwrap_or_default()
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterCa {
    ca_certificate: Option<String>,
    verification_certificate: Option<String>,
    certificate_mode: Option<String>,
    registration_config: Option<Value>,
}

pub async fn register_ca_certificate(
    State(s): State<AppState>,
    caller: Caller,
    p: Params,
    Body(b): Body<RegisterCa>,
) -> ApiResult<Json<Value>> {
    let set_as_active = p.bool("setAsActive")?;
    let auto_registration = p.bool("allowAutoRegistration")?;
    let mode = match b.certificate_mode.as_deref() {
        None => CertificateMode::Default,
        Some(m) => m
            .parse()
            .map_err(|e: store::StoreError| ApiError::invalid(e.to_string()))?,
    };
    let pem = b
        .ca_certificate
        .ok_or_else(|| ApiError::invalid("caCertificate is required"))?;
    let ca = pki::Certificate::from_pem(&pem).map_err(|e| {
        ApiError::certificate_validation(format!("caCertificate is not valid: {e}"))
    })?;
    if !ca.is_ca() {
        return Err(ApiError::certificate_validation(
            "caCertificate is not a CA certificate: it lacks basicConstraints CA:TRUE",
        ));
    }
    if ca.not_after() < time::OffsetDateTime::now_utc().unix_timestamp() {
        return Err(ApiError::certificate_validation(
            "caCertificate has expired",
        ));
    }
    match (mode, b.verification_certificate) {
        (CertificateMode::Default, None) => {
            return Err(ApiError::invalid(
                "verificationCertificate is required to register a CA in DEFAULT mode (proof of possession of its key)",
            ));
        }
        (CertificateMode::Default, Some(v)) => {
            let verification = pki::Certificate::from_pem(&v).map_err(|e| {
                ApiError::certificate_validation(format!(
                    "verificationCertificate is not valid: {e}"
                ))
            })?;
            let code = s
                .store
                .current_registration_code(&caller.scope)
                .await?
                .ok_or_else(|| {
                    registration_code_error(
                        "This account has no registration code; call GetRegistrationCode first",
                    )
                })?;
            if verification.common_name() != Some(code.as_str()) {
                return Err(registration_code_error(
                    "The verification certificate's common name is not this account's registration code",
                ));
            }
            pki::verify_signed_by(&verification, &ca).map_err(|e| {
                registration_code_error(format!(
                    "The verification certificate was not signed by the CA's key: {e}"
                ))
            })?;
        }
        (CertificateMode::SniOnly, Some(_)) => {
            return Err(ApiError::invalid(
                "verificationCertificate must not be given in SNI_ONLY mode",
            ));
        }
        (CertificateMode::SniOnly, None) => {}
    }
    if let Some(config) = &b.registration_config {
        check_registration_config(config)?;
    }
    let registered = s
        .store
        .register_ca_certificate(
            &caller.scope,
            &CaRegistration {
                cert_id: ca.id().to_owned(),
                pem: ca.pem().to_owned(),
                subject_hex: hex::encode(ca.subject_der()),
                mode,
                active: set_as_active,
                auto_registration,
                registration_config: b.registration_config,
                not_before: ca.not_before(),
                not_after: ca.not_after(),
            },
        )
        .await?;
    tracing::info!(ca = %registered.cert_id, mode = mode.as_str(), account = %caller.scope.account_id, "registered CA");
    Ok(Json(
        json!({ "certificateArn": registered.arn, "certificateId": registered.cert_id }),
    ))
}

pub async fn describe_ca_certificate(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let ca = s
        .store
        .describe_ca_certificate(&caller.scope, &wire::certificate_id(&id)?)
        .await?;
    let mut out = json!({
        "certificateDescription": {
            "certificateArn": ca.arn,
            "certificateId": ca.cert_id,
            "status": ca.status.as_str(),
            "certificatePem": ca.pem,
            "ownedBy": ca.owned_by,
            "creationDate": seconds(ca.created_ms),
            "autoRegistrationStatus": if ca.auto_registration { "ENABLE" } else { "DISABLE" },
            "lastModifiedDate": seconds(ca.modified_ms),
            "customerVersion": ca.customer_version,
            "generationId": ca.generation_id,
            "validity": { "notBefore": ca.not_before, "notAfter": ca.not_after },
            "certificateMode": ca.mode.as_str(),
        }
    });
    if let Some(config) = ca.registration_config {
        out["registrationConfig"] = config;
    }
    Ok(Json(out))
}

pub async fn list_ca_certificates(
    State(s): State<AppState>,
    caller: Caller,
    p: Params,
) -> ApiResult<Json<Value>> {
    let page = s
        .store
        .list_ca_certificates(&caller.scope, p.str("templateName"), &p.marker_page()?)
        .await?;
    let cas: Vec<Value> = page
        .items
        .iter()
        .map(|c| {
            json!({
                "certificateArn": c.arn,
                "certificateId": c.cert_id,
                "status": c.status.as_str(),
                "creationDate": seconds(c.created_ms),
            })
        })
        .collect();
    Ok(Json(
        json!({ "certificates": cas, "nextMarker": encode_token(page.next) }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCa {
    registration_config: Option<Value>,
    #[serde(default)]
    remove_auto_registration: bool,
}

pub async fn update_ca_certificate(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    p: Params,
    Body(b): Body<UpdateCa>,
) -> ApiResult<Json<Value>> {
    let id = wire::certificate_id(&id)?;
    let active = match p.str("newStatus") {
        None => None,
        Some("ACTIVE") => Some(true),
        Some("INACTIVE") => Some(false),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "newStatus must be ACTIVE or INACTIVE, not {other}"
            )));
        }
    };
    let auto_registration = match p.str("newAutoRegistrationStatus") {
        None => None,
        Some("ENABLE") => Some(true),
        Some("DISABLE") => Some(false),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "newAutoRegistrationStatus must be ENABLE or DISABLE, not {other}"
            )));
        }
    };
    if let Some(config) = &b.registration_config {
        check_registration_config(config)?;
    }
    let update = CaUpdate {
        active,
        auto_registration,
        registration_config: b.registration_config,
        remove_auto_registration: b.remove_auto_registration,
    };
    s.store
        .update_ca_certificate(&caller.scope, &id, &update)
        .await?;
    Ok(Json(json!({})))
}

pub async fn delete_ca_certificate(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    s.store
        .delete_ca_certificate(&caller.scope, &wire::certificate_id(&id)?)
        .await?;
    Ok(Json(json!({})))
}
