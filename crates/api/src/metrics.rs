//! Prometheus metrics of the control plane, served with every other component's at `GET /metrics`.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

/// Requests and errors per operation and error code, and latency per operation.
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabel, Histogram>,
}

impl ApiMetrics {
    /// Creates the families and registers them under `onboard_api_`.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<OperationLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        let api = registry.sub_registry_with_prefix("onboard_api");
        api.register(
            "requests",
            "Control-plane requests by operation and error code (OK for success)",
            requests.clone(),
        );
        api.register(
            "request_duration_seconds",
            "Control-plane request latency by operation",
            latency.clone(),
        );
        ApiMetrics { requests, latency }
    }

    pub(crate) fn record(&self, operation: &'static str, code: &'static str, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels { operation, code })
            .inc();
        self.latency
            .get_or_create(&OperationLabel { operation })
            .observe(elapsed.as_secs_f64());
    }
}

pub(crate) async fn serve(State(state): State<AppState>) -> Response {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &state.registry).is_err() {
        return crate::error::ApiError::internal().into_response();
    }
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
