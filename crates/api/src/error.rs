//! AWS restJson1 errors: the code in `x-amzn-ErrorType`, the message in a JSON body.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use store::StoreError;

/// An error answer. `code` is the AWS error shape name; `message` is shown to the client, so it never carries
/// secrets.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: &'static str,
    pub status: StatusCode,
    pub message: String,
    /// `resourceId` / `resourceArn` members of ResourceAlreadyExistsException.
    pub resource: Option<(String, Option<String>)>,
}

impl ApiError {
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        ApiError {
            code,
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: message.into(),
            resource: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidRequestException", 400, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("ResourceNotFoundException", 404, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new("UnauthorizedException", 401, message)
    }

    pub fn certificate_validation(message: impl Into<String>) -> Self {
        Self::new("CertificateValidationException", 400, message)
    }

    pub fn malformed_policy(message: impl Into<String>) -> Self {
        Self::new("MalformedPolicyException", 400, message)
    }

    pub fn internal() -> Self {
        Self::new(
            "InternalFailureException",
            500,
            "An internal error occurred; the server log has the details",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        match e {
            StoreError::NotFound(_) => Self::not_found(message),
            StoreError::AlreadyExists {
                resource_id,
                resource_arn,
                ..
            } => ApiError {
                resource: Some((resource_id, resource_arn)),
                ..Self::new("ResourceAlreadyExistsException", 409, message)
            },
            StoreError::VersionConflict(_) => Self::new("VersionConflictException", 409, message),
            StoreError::DeleteConflict(_) => Self::new("DeleteConflictException", 409, message),
            StoreError::CertificateState(_) => Self::new("CertificateStateException", 406, message),
            StoreError::CertificateConflict(_) => {
                Self::new("CertificateConflictException", 409, message)
            }
            StoreError::LimitExceeded(_) => Self::new("LimitExceededException", 410, message),
            StoreError::VersionsLimitExceeded(_) => {
                Self::new("VersionsLimitExceededException", 409, message)
            }
            StoreError::TransferConflict(_) => Self::new("TransferConflictException", 409, message),
            StoreError::TransferAlreadyCompleted(_) => {
                Self::new("TransferAlreadyCompletedException", 410, message)
            }
            StoreError::InvalidRequest(_) => Self::invalid(message),
            StoreError::Unauthorized(_) => Self::unauthorized(message),
            StoreError::Database(_) | StoreError::Corrupt(_) => {
                tracing::error!(error = %message, "store failure");
                Self::internal()
            }
        }
    }
}

impl From<sigv4::Error> for ApiError {
    fn from(e: sigv4::Error) -> Self {
        Self::new(e.code(), e.status(), e.message())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "message": self.message });
        if let Some((id, arn)) = &self.resource {
            body["resourceId"] = id.clone().into();
            if let Some(arn) = arn {
                body["resourceArn"] = arn.clone().into();
            }
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(self.code));
        // Lets the metrics and log layer see the code without parsing the body.
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

/// The error code of a response, for metrics and logs.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

pub type ApiResult<T> = Result<T, ApiError>;
