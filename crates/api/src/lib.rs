#![forbid(unsafe_code)]
//! The AWS IoT control plane over HTTP: restJson1 routes signed with SigV4, answering exactly as AWS does so the AWS
//! CLI, boto3 and the SDKs work unchanged.
//!
//! Layout: [`auth`] verifies every signature and names the caller; [`wire`] turns query strings, bodies and page
//! tokens into domain values; `ops/*` hold one handler per operation, grouped by resource; [`error`] maps domain
//! errors to AWS error codes. Handlers validate input, call pki/policy for the stateless checks, then make exactly
//! one store call for each change.

pub mod auth;
pub mod error;
mod metrics;
mod ops;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, on, post};

pub use metrics::ApiMetrics;

/// Settings the control plane needs.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Enables `POST /_onboard/reset`.
    pub dev_mode: bool,
    /// Device endpoints are `<prefix>-ats.iot.<region>.<domain>`.
    pub domain: String,
    pub max_body_bytes: usize,
    /// The key type CreateKeysAndCertificate generates (AWS: RSA-2048).
    pub device_key_algorithm: pki::KeyAlgorithm,
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub store: store::Store,
    pub device_ca: Arc<pki::CertificateAuthority>,
    pub config: Arc<ApiConfig>,
    pub keys: Arc<auth::KeyCache>,
    pub metrics: Arc<ApiMetrics>,
    pub registry: Arc<prometheus_client::registry::Registry>,
    /// Set once every configured listener accepts connections; `/health` answers 503 until then.
    pub ready: Arc<AtomicBool>,
}

/// The name of the operation a response answered, for metrics and logs.
#[derive(Debug, Clone, Copy)]
pub struct Operation(pub &'static str);

/// Wraps a handler so its responses carry their operation name.
fn op<H, T>(name: &'static str, handler: H) -> impl Handler<T, AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    handler.layer(middleware::map_response(
        move |mut r: Response| async move {
            r.extensions_mut().insert(Operation(name));
            r
        },
    ))
}

/// The whole control-plane router: the signed AWS API plus `/health`, `/metrics` and, in dev mode, the reset route.
pub fn router(state: AppState) -> Router {
    use ops::{cas, certificates as certs, misc, policies as pol, principals as pr, things as th};
    let signed = Router::new()
        // things, types, groups
        .route("/things", get(op("ListThings", th::list_things)))
        .route(
            "/things/{thingName}",
            get(op("DescribeThing", th::describe_thing))
                .post(op("CreateThing", th::create_thing))
                .patch(op("UpdateThing", th::update_thing))
                .delete(op("DeleteThing", th::delete_thing)),
        )
        .route(
            "/things/{thingName}/thing-groups",
            get(op("ListThingGroupsForThing", th::list_groups_for_thing)),
        )
        .route(
            "/thing-types",
            get(op("ListThingTypes", th::list_thing_types)),
        )
        .route(
            "/thing-types/{thingTypeName}",
            get(op("DescribeThingType", th::describe_thing_type))
                .post(op("CreateThingType", th::create_thing_type))
                .patch(op("UpdateThingType", th::update_thing_type))
                .delete(op("DeleteThingType", th::delete_thing_type)),
        )
        .route(
            "/thing-types/{thingTypeName}/deprecate",
            post(op("DeprecateThingType", th::deprecate_thing_type)),
        )
        .route(
            "/thing-groups",
            get(op("ListThingGroups", th::list_thing_groups)),
        )
        .route(
            "/thing-groups/{thingGroupName}",
            get(op("DescribeThingGroup", th::describe_thing_group))
                .post(op("CreateThingGroup", th::create_thing_group))
                .patch(op("UpdateThingGroup", th::update_thing_group))
                .delete(op("DeleteThingGroup", th::delete_thing_group)),
        )
        .route(
            "/thing-groups/addThingToThingGroup",
            on(
                axum::routing::MethodFilter::PUT,
                op("AddThingToThingGroup", th::add_thing_to_group),
            ),
        )
        .route(
            "/thing-groups/removeThingFromThingGroup",
            on(
                axum::routing::MethodFilter::PUT,
                op("RemoveThingFromThingGroup", th::remove_thing_from_group),
            ),
        )
        .route(
            "/thing-groups/{thingGroupName}/things",
            get(op("ListThingsInThingGroup", th::list_things_in_group)),
        )
        // certificates
        .route(
            "/keys-and-certificate",
            post(op(
                "CreateKeysAndCertificate",
                certs::create_keys_and_certificate,
            )),
        )
        .route(
            "/certificates",
            get(op("ListCertificates", certs::list_certificates)).post(op(
                "CreateCertificateFromCsr",
                certs::create_certificate_from_csr,
            )),
        )
        .route(
            "/certificates/{certificateId}",
            get(op("DescribeCertificate", certs::describe_certificate))
                .put(op("UpdateCertificate", certs::update_certificate))
                .delete(op("DeleteCertificate", certs::delete_certificate)),
        )
        .route(
            "/certificate/register",
            post(op("RegisterCertificate", certs::register_certificate)),
        )
        .route(
            "/certificate/register-no-ca",
            post(op(
                "RegisterCertificateWithoutCA",
                certs::register_certificate_without_ca,
            )),
        )
        .route(
            "/certificates-by-ca/{caCertificateId}",
            get(op("ListCertificatesByCA", certs::list_certificates_by_ca)),
        )
        .route(
            "/certificates-out-going",
            get(op("ListOutgoingCertificates", certs::list_outgoing)),
        )
        .route(
            "/transfer-certificate/{certificateId}",
            axum::routing::patch(op("TransferCertificate", certs::transfer)),
        )
        .route(
            "/accept-certificate-transfer/{certificateId}",
            axum::routing::patch(op("AcceptCertificateTransfer", certs::accept_transfer)),
        )
        .route(
            "/reject-certificate-transfer/{certificateId}",
            axum::routing::patch(op("RejectCertificateTransfer", certs::reject_transfer)),
        )
        .route(
            "/cancel-certificate-transfer/{certificateId}",
            axum::routing::patch(op("CancelCertificateTransfer", certs::cancel_transfer)),
        )
        // CA certificates
        .route(
            "/registrationcode",
            get(op("GetRegistrationCode", cas::get_registration_code))
                .delete(op("DeleteRegistrationCode", cas::delete_registration_code)),
        )
        .route(
            "/cacertificate",
            post(op("RegisterCACertificate", cas::register_ca_certificate)),
        )
        .route(
            "/cacertificates",
            get(op("ListCACertificates", cas::list_ca_certificates)),
        )
        .route(
            "/cacertificate/{caCertificateId}",
            get(op("DescribeCACertificate", cas::describe_ca_certificate))
                .put(op("UpdateCACertificate", cas::update_ca_certificate))
                .delete(op("DeleteCACertificate", cas::delete_ca_certificate)),
        )
        // policies
        .route("/policies", get(op("ListPolicies", pol::list_policies)))
        .route(
            "/policies/{policyName}",
            get(op("GetPolicy", pol::get_policy))
                .post(op("CreatePolicy", pol::create_policy))
                .delete(op("DeletePolicy", pol::delete_policy)),
        )
        .route(
            "/policies/{policyName}/version",
            get(op("ListPolicyVersions", pol::list_policy_versions))
                .post(op("CreatePolicyVersion", pol::create_policy_version)),
        )
        .route(
            "/policies/{policyName}/version/{policyVersionId}",
            get(op("GetPolicyVersion", pol::get_policy_version))
                .patch(op(
                    "SetDefaultPolicyVersion",
                    pol::set_default_policy_version,
                ))
                .delete(op("DeletePolicyVersion", pol::delete_policy_version)),
        )
        .route(
            "/target-policies/{policyName}",
            axum::routing::put(op("AttachPolicy", pol::attach_policy))
                .post(op("DetachPolicy", pol::detach_policy)),
        )
        .route(
            "/attached-policies/{target}",
            post(op("ListAttachedPolicies", pol::list_attached_policies)),
        )
        .route(
            "/policy-targets/{policyName}",
            post(op("ListTargetsForPolicy", pol::list_targets_for_policy)),
        )
        .route(
            "/principal-policies/{policyName}",
            axum::routing::put(op("AttachPrincipalPolicy", pol::attach_principal_policy))
                .delete(op("DetachPrincipalPolicy", pol::detach_principal_policy)),
        )
        .route(
            "/principal-policies",
            get(op("ListPrincipalPolicies", pol::list_principal_policies)),
        )
        .route(
            "/policy-principals",
            get(op("ListPolicyPrincipals", pol::list_policy_principals)),
        )
        .route(
            "/effective-policies",
            post(op("GetEffectivePolicies", pol::get_effective_policies)),
        )
        // thing principals
        .route(
            "/things/{thingName}/principals",
            get(op("ListThingPrincipals", pr::list_thing_principals))
                .put(op("AttachThingPrincipal", pr::attach_thing_principal))
                .delete(op("DetachThingPrincipal", pr::detach_thing_principal)),
        )
        .route(
            "/things/{thingName}/principals-v2",
            get(op("ListThingPrincipalsV2", pr::list_thing_principals_v2)),
        )
        .route(
            "/principals/things",
            get(op("ListPrincipalThings", pr::list_principal_things)),
        )
        .route(
            "/principals/things-v2",
            get(op("ListPrincipalThingsV2", pr::list_principal_things_v2)),
        )
        // misc
        .route(
            "/endpoint",
            get(op("DescribeEndpoint", misc::describe_endpoint)),
        )
        .route(
            "/",
            post(op("GetCallerIdentity", misc::get_caller_identity)),
        )
        .fallback(misc::unknown_operation)
        .method_not_allowed_fallback(misc::unknown_operation)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::verify_signature,
        ));

    let mut router = Router::new()
        .merge(signed)
        .route("/health", get(health))
        .route("/metrics", get(metrics::serve));
    if state.config.dev_mode {
        router = router.route("/_onboard/reset", post(misc::reset));
    }
    router
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        axum::Json(serde_json::json!({ "status": "ok" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "starting" })),
        )
            .into_response()
    }
}

/// Logs every request with its operation and outcome, and counts it.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    let operation = response
        .extensions()
        .get::<Operation>()
        .map(|o| o.0)
        .unwrap_or("Unknown");
    let code = response
        .extensions()
        .get::<error::ErrorCode>()
        .map(|c| c.0)
        .unwrap_or("OK");
    let elapsed = started.elapsed();
    if method != Method::GET || !matches!(path.as_deref(), Some("/health" | "/metrics")) {
        state.metrics.record(operation, code, elapsed);
        tracing::info!(
            operation,
            status = response.status().as_u16(),
            code,
            micros = elapsed.as_micros() as u64,
            "request"
        );
    }
    response
}
