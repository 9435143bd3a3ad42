//! DescribeEndpoint, STS GetCallerIdentity, the development reset, and unknown operations.

use axum::Json;
use axum::extract::State;
use axum::http::{Method, Uri, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::wire::{Caller, Params};

/// DescribeEndpoint. Without `endpointType` the ATS endpoint is returned: legacy VeriSign endpoints are a thing of
/// the past, and every Onboard endpoint is served under the same trust anchor.
pub async fn describe_endpoint(
    State(s): State<AppState>,
    caller: Caller,
    p: Params,
) -> ApiResult<Json<Value>> {
    let (prefix, region, domain) = (
        &caller.endpoint_prefix,
        &caller.scope.region,
        &s.config.domain,
    );
    let address = match p.str("endpointType").unwrap_or("iot:Data-ATS") {
        "iot:Data-ATS" => format!("{prefix}-ats.iot.{region}.{domain}"),
        "iot:Data" => format!("{prefix}.iot.{region}.{domain}"),
        "iot:CredentialProvider" => format!("{prefix}.credentials.iot.{region}.{domain}"),
        "iot:Jobs" => format!("{prefix}.jobs.iot.{region}.{domain}"),
        other => {
            return Err(ApiError::invalid(format!(
                "Endpoint type {other} is not supported"
            )));
        }
    };
    Ok(Json(json!({ "endpointAddress": address })))
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An error in STS's own (query protocol, XML) shape, with STS's names for the signature errors.
pub(crate) fn sts_error(e: ApiError) -> Response {
    let code = match e.code {
        "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
        "UnrecognizedClientException" => "InvalidClientTokenId",
        "InvalidSignatureException" => "SignatureDoesNotMatch",
        "IncompleteSignatureException" => "IncompleteSignature",
        "InvalidRequestException" => "InvalidAction",
        other => other,
    };
    let xml = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        xml_escape(&e.message),
        uuid_like()
    );
    let mut response = (e.status, [(CONTENT_TYPE, "text/xml")], xml).into_response();
    response
        .extensions_mut()
        .insert(crate::error::ErrorCode(e.code));
    response
}

/// STS GetCallerIdentity (query protocol, XML), which AWS walkthroughs use to find the account id.
pub async fn get_caller_identity(caller: Caller, body: axum::body::Bytes) -> Response {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let action = form
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.as_str());
    if action != Some("GetCallerIdentity") {
        let what = action.unwrap_or("(none)");
        return sts_error(ApiError::invalid(format!(
            "The STS action {what} is not supported by Onboard"
        )));
    }
    let account = &caller.scope.account_id;
    let xml = format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <GetCallerIdentityResult><Arn>arn:aws:iam::{account}:root</Arn><UserId>{account}</UserId>\
         <Account>{account}</Account></GetCallerIdentityResult>\
         <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
        uuid_like()
    );
    ([(CONTENT_TYPE, "text/xml")], xml).into_response()
}

fn uuid_like() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `POST /_onboard/reset` (development mode only): wipes the registry; accounts and keys stay.
pub async fn reset(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    s.store.reset().await?;
    tracing::warn!("registry reset (development mode)");
    Ok(Json(json!({})))
}

pub async fn unknown_operation(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        "UnknownOperationException",
        404,
        format!("No operation matches {method} {}", uri.path()),
    )
}
