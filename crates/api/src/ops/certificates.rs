//! Device certificates: issuing (keys + certificate, from a CSR), registering (with or without a CA), the status
//! state machine, deletion and transfer between accounts.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{CertificateMode, CertificateStatus, NewCertificate};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::wire::{self, Body, Caller, Params, encode_token, seconds};

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Runs CPU-heavy PKI work (RSA key generation takes ~100 ms) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, pki::PkiError> + Send + 'static,
) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "issuing a certificate failed");
            Err(ApiError::internal())
        }
        Err(_) => Err(ApiError::internal()),
    }
}

fn issued(cert: &pki::Certificate, set_as_active: bool) -> NewCertificate {
    NewCertificate {
        cert_id: cert.id().to_owned(),
        pem: cert.pem().to_owned(),
        ca_cert_id: None,
        status: if set_as_active {
            CertificateStatus::Active
        } else {
            CertificateStatus::Inactive
        },
        mode: CertificateMode::Default,
        not_before: cert.not_before(),
        not_after: cert.not_after(),
    }
}

pub async fn create_keys_and_certificate(
    State(s): State<AppState>,
    caller: Caller,
    p: Params,
) -> ApiResult<Json<Value>> {
    let set_as_active = p.bool("setAsActive")?;
    let ca = s.device_ca.clone();
    let alg = s.config.device_key_algorithm;
    let (cert, key) = blocking(move || ca.issue_device_cert_with_new_key(alg, now_unix())).await?;
    let stored = s
        .store
        .insert_certificate(&caller.scope, &issued(&cert, set_as_active))
        .await?;
    tracing::info!(certificate_id = %stored.cert_id, account = %caller.scope.account_id, "issued keys and certificate");
    Ok(Json(json!({
        "certificateArn": stored.arn,
        "certificateId": stored.cert_id,
        "certificatePem": stored.pem,
        "keyPair": { "PublicKey": key.public_key_pem(), "PrivateKey": key.private_key_pem() },
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FromCsr {
    certificate_signing_request: Option<String>,
}

pub async fn create_certificate_from_csr(
    State(s): State<AppState>,
    caller: Caller,
    p: Params,
    Body(b): Body<FromCsr>,
) -> ApiResult<Json<Value>> {
    let set_as_active = p.bool("setAsActive")?;
    let pem = b
        .certificate_signing_request
        .ok_or_else(|| ApiError::invalid("certificateSigningRequest is required"))?;
    if pem.is_empty() || pem.len() > 4096 {
        return Err(ApiError::invalid(
            "certificateSigningRequest must be 1 to 4096 characters long",
        ));
    }
    let csr = pki::Csr::from_pem(&pem)
        .map_err(|e| ApiError::invalid(format!("The CSR is not valid: {e}")))?;
    let ca = s.device_ca.clone();
    let cert = blocking(move || ca.issue_device_cert_from_csr(&csr, now_unix())).await?;
    let stored = s
        .store
        .insert_certificate(&caller.scope, &issued(&cert, set_as_active))
        .await?;
    tracing::info!(certificate_id = %stored.cert_id, account = %caller.scope.account_id, "issued certificate from CSR");
    Ok(Json(json!({
        "certificateArn": stored.arn,
        "certificateId": stored.cert_id,
        "certificatePem": stored.pem,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Register {
    certificate_pem: Option<String>,
    ca_certificate_pem: Option<String>,
    status: Option<String>,
}

/// The status a registration asks for: `status`, or ACTIVE with `setAsActive`, else INACTIVE.
fn registration_status(status: Option<&str>, set_as_active: bool) -> ApiResult<CertificateStatus> {
    let status = match status {
        Some(s) => s
            .parse::<CertificateStatus>()
            .map_err(|e| ApiError::invalid(e.to_string()))?,
        None if set_as_active => CertificateStatus::Active,
        None => CertificateStatus::Inactive,
    };
    if matches!(
        status,
        CertificateStatus::PendingActivation | CertificateStatus::PendingTransfer
    ) {
        return Err(ApiError::new(
            "CertificateStateException",
            406,
            format!("Not allowed to register certificate with {status} status"),
        ));
    }
    Ok(status)
}

fn parse_device_certificate(pem: Option<String>) -> ApiResult<pki::Certificate> {
    let pem = pem.ok_or_else(|| ApiError::invalid("certificatePem is required"))?;
    if pem.len() > 65536 {
        return Err(ApiError::invalid(
            "certificatePem must be at most 65536 characters long",
        ));
    }
    let cert = pki::Certificate::from_pem(&pem).map_err(|e| {
        ApiError::certificate_validation(format!("The certificate is not valid: {e}"))
    })?;
    if cert.not_after() < now_unix() {
        return Err(ApiError::certificate_validation(
            "The certificate has expired",
        ));
    }
    Ok(cert)
}

pub async fn register_certificate(
    State(s): State<AppState>,
    caller: Caller,
    p: Params,
    Body(b): Body<Register>,
) -> ApiResult<Json<Value>> {
    let status = registration_status(b.status.as_deref(), p.bool("setAsActive")?)?;
    let cert = parse_device_certificate(b.certificate_pem)?;
    let ca = match b.ca_certificate_pem {
        Some(pem) => {
            let named = pki::Certificate::from_pem(&pem).map_err(|e| {
                ApiError::certificate_validation(format!("caCertificatePem is not valid: {e}"))
            })?;
            let ca = s
                .store
                .describe_ca_certificate(&caller.scope, named.id())
                .await
                .map_err(|_| {
                    ApiError::certificate_validation(format!(
                        "The CA certificate {} is not registered in this account and region",
                        named.id()
                    ))
                })?;
            pki::verify_signed_by(&cert, &named).map_err(|e| {
                ApiError::certificate_validation(format!(
                    "The certificate was not issued by the given CA: {e}"
                ))
            })?;
            ca
        }
        None => issuing_ca(&s, &caller, &cert).await?,
    };
    let stored = s
        .store
        .insert_certificate(
            &caller.scope,
            &NewCertificate {
                cert_id: cert.id().to_owned(),
                pem: cert.pem().to_owned(),
                ca_cert_id: Some(ca.cert_id.clone()),
                status,
                mode: ca.mode,
                not_before: cert.not_before(),
                not_after: cert.not_after(),
            },
        )
        .await?;
    tracing::info!(certificate_id = %stored.cert_id, ca = %ca.cert_id, "registered certificate");
    Ok(Json(
        json!({ "certificateArn": stored.arn, "certificateId": stored.cert_id }),
    ))
}

/// The registered CA that signed `cert`: by issuer name, then by signature. Several CAs with the same subject and
/// key are ambiguous, as in AWS: the caller must name one.
async fn issuing_ca(
    s: &AppState,
    caller: &Caller,
    cert: &pki::Certificate,
) -> ApiResult<store::CaCertificate> {
    let candidates = s
        .store
        .ca_certificates_by_subject(&caller.scope, &hex::encode(cert.issuer_der()))
        .await?;
    let mut signers = Vec::new();
    for ca in candidates {
        let Ok(parsed) = pki::Certificate::from_pem(&ca.pem) else {
            continue;
        };
        if pki::verify_signed_by(cert, &parsed).is_ok() {
            signers.push(ca);
        }
    }
    match signers.len() {
        0 => Err(ApiError::certificate_validation(
            "The certificate was not issued by any CA certificate registered in this account and region",
        )),
        1 => Ok(signers.remove(0)),
        n => Err(ApiError::new(
            "CertificateConflictException",
            409,
            format!(
                "{n} registered CA certificates share this certificate's issuer name and key; pass caCertificatePem"
            ),
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterNoCa {
    certificate_pem: Option<String>,
    status: Option<String>,
}

pub async fn register_certificate_without_ca(
    State(s): State<AppState>,
    caller: Caller,
    Body(b): Body<RegisterNoCa>,
) -> ApiResult<Json<Value>> {
    let status = registration_status(b.status.as_deref(), false)?;
    let cert = parse_device_certificate(b.certificate_pem)?;
    let stored = s
        .store
        .insert_certificate(
            &caller.scope,
            &NewCertificate {
                cert_id: cert.id().to_owned(),
                pem: cert.pem().to_owned(),
                ca_cert_id: None,
                status,
                mode: CertificateMode::SniOnly,
                not_before: cert.not_before(),
                not_after: cert.not_after(),
            },
        )
        .await?;
    tracing::info!(certificate_id = %stored.cert_id, "registered certificate without CA");
    Ok(Json(
        json!({ "certificateArn": stored.arn, "certificateId": stored.cert_id }),
    ))
}

pub async fn describe_certificate(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let c = s
        .store
        .describe_certificate(&caller.scope, &wire::certificate_id(&id)?)
        .await?;
    let mut transfer = json!({});
    for (key, value) in [
        ("transferMessage", &c.transfer_message),
        ("rejectReason", &c.reject_reason),
    ] {
        if let Some(v) = value {
            transfer[key] = json!(v);
        }
    }
    for (key, value) in [
        ("transferDate", c.transfer_ms),
        ("acceptDate", c.accept_ms),
        ("rejectDate", c.reject_ms),
    ] {
        if let Some(ms) = value {
            transfer[key] = seconds(ms);
        }
    }
    let mut d = json!({
        "certificateArn": c.arn,
        "certificateId": c.cert_id,
        "status": c.status.as_str(),
        "certificatePem": c.pem,
        "ownedBy": c.owned_by,
        "creationDate": seconds(c.created_ms),
        "lastModifiedDate": seconds(c.modified_ms),
        "customerVersion": c.customer_version,
        "transferData": transfer,
        "generationId": c.generation_id,
        "validity": { "notBefore": c.not_before, "notAfter": c.not_after },
        "certificateMode": c.mode.as_str(),
    });
    if let Some(ca) = &c.ca_cert_id {
        d["caCertificateId"] = json!(ca);
    }
    if let Some(prev) = &c.previous_owned_by {
        d["previousOwnedBy"] = json!(prev);
    }
    Ok(Json(json!({ "certificateDescription": d })))
}

fn certificate_list(page: store::Page<store::Certificate>) -> Json<Value> {
    let certs: Vec<Value> = page
        .items
        .iter()
        .map(|c| {
            json!({
                "certificateArn": c.arn,
                "certificateId": c.cert_id,
                "status": c.status.as_str(),
                "certificateMode": c.mode.as_str(),
                "creationDate": seconds(c.created_ms),
            })
        })
        .collect();
    Json(json!({ "certificates": certs, "nextMarker": encode_token(page.next) }))
}

pub async fn list_certificates(
    State(s): State<AppState>,
    caller: Caller,
    p: Params,
) -> ApiResult<Json<Value>> {
    Ok(certificate_list(
        s.store
            .list_certificates(&caller.scope, None, &p.marker_page()?)
            .await?,
    ))
}

pub async fn list_certificates_by_ca(
    State(s): State<AppState>,
    caller: Caller,
    Path(ca): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let ca = wire::certificate_id(&ca)?;
    Ok(certificate_list(
        s.store
            .list_certificates(&caller.scope, Some(&ca), &p.marker_page()?)
            .await?,
    ))
}

pub async fn update_certificate(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let id = wire::certificate_id(&id)?;
    let status = p
        .str("newStatus")
        .ok_or_else(|| ApiError::invalid("newStatus is required"))?
        .parse::<CertificateStatus>()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let before = s
        .store
        .update_certificate_status(&caller.scope, &id, status)
        .await?;
    tracing::info!(certificate_id = %id, from = %before.status, to = %status, "certificate status changed");
    Ok(Json(json!({})))
}

pub async fn delete_certificate(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let id = wire::certificate_id(&id)?;
    s.store
        .delete_certificate(&caller.scope, &id, p.bool("forceDelete")?)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    transfer_message: Option<String>,
    reject_reason: Option<String>,
}

fn at_most_128(name: &str, value: &Option<String>) -> ApiResult<()> {
    match value {
        Some(v) if v.chars().count() > 128 => Err(ApiError::invalid(format!(
            "{name} must be at most 128 characters"
        ))),
        _ => Ok(()),
    }
}

pub async fn transfer(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    p: Params,
    Body(b): Body<Transfer>,
) -> ApiResult<Json<Value>> {
    let id = wire::certificate_id(&id)?;
    let target = p
        .str("targetAwsAccount")
        .ok_or_else(|| ApiError::invalid("targetAwsAccount is required"))?;
    if target.len() != 12 || !target.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::invalid(
            "targetAwsAccount must be a 12-digit account id",
        ));
    }
    at_most_128("transferMessage", &b.transfer_message)?;
    let arn = s
        .store
        .transfer_certificate(&caller.scope, &id, target, b.transfer_message.as_deref())
        .await?;
    Ok(Json(json!({ "transferredCertificateArn": arn })))
}

pub async fn accept_transfer(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let id = wire::certificate_id(&id)?;
    s.store
        .accept_certificate_transfer(&caller.scope, &id, p.bool("setAsActive")?)
        .await?;
    Ok(Json(json!({})))
}

pub async fn reject_transfer(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<Transfer>,
) -> ApiResult<Json<Value>> {
    let id = wire::certificate_id(&id)?;
    at_most_128("rejectReason", &b.reject_reason)?;
    s.store
        .reject_certificate_transfer(&caller.scope, &id, b.reject_reason.as_deref())
        .await?;
    Ok(Json(json!({})))
}

pub async fn cancel_transfer(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = wire::certificate_id(&id)?;
    s.store
        .cancel_certificate_transfer(&caller.scope, &id)
        .await?;
    Ok(Json(json!({})))
}

pub async fn list_outgoing(
    State(s): State<AppState>,
    caller: Caller,
    p: Params,
) -> ApiResult<Json<Value>> {
    let page = s
        .store
        .list_outgoing_certificates(&caller.scope, &p.marker_page()?)
        .await?;
    let certs: Vec<Value> = page
        .items
        .iter()
        .map(|c| {
            let mut v = json!({
                "certificateArn": c.arn,
                "certificateId": c.cert_id,
                "transferredTo": c.transferred_to,
                "creationDate": seconds(c.created_ms),
            });
            if let Some(ms) = c.transfer_ms {
                v["transferDate"] = seconds(ms);
            }
            if let Some(m) = &c.transfer_message {
                v["transferMessage"] = json!(m);
            }
            v
        })
        .collect();
    Ok(Json(
        json!({ "outgoingCertificates": certs, "nextMarker": encode_token(page.next) }),
    ))
}
