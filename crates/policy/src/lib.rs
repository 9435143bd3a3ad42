//! The AWS IoT policy language: parse, validate, compile, evaluate. Pure: no IO, no clock.
//!
//! The pipeline is **parse → compile → evaluate**:
//!
//! * [`PolicyDocument::parse`] validates a document as `CreatePolicy` / `CreatePolicyVersion`
//!   must; the [`PolicyError`] text is the `MalformedPolicyException` message.
//!   [`PolicyDocument::warnings`] lists advisory [`Warning`]s (any-client-id Connect, claim
//!   policies without `create-from-csr`, MQTT wildcards in topic resources, ...).
//! * [`compile`] takes the documents in effect for one connection and a
//!   [`ConnectionContext`], substitutes the policy variables (`${iot:ClientId}`,
//!   `${iot:Connection.Thing.*}`, `${iot:Certificate.*}`, `${aws:SourceIp}`, escapes `${*}`
//!   `${?}` `${$}`), decides every condition (all condition keys depend only on the
//!   connection) and compiles resource patterns. The [`CompiledPolicy`] owns its data.
//! * [`CompiledPolicy::evaluate`] (full ARN) or [`CompiledPolicy::evaluate_resource`] (kind +
//!   name, no ARN built) returns a [`Decision`] with IAM logic: any matching `Deny` wins,
//!   else any matching `Allow`, else implicit deny. Neither allocates.
//!
//! ```
//! use policy::{Action, ConnectionContext, Decision, PolicyDocument, ResourceKind, compile};
//!
//! let doc = PolicyDocument::parse(r#"{"Version": "2012-10-17", "Statement": [{
//!     "Effect": "Allow", "Action": "iot:Publish",
//!     "Resource": "arn:aws:iot:us-east-1:123456789012:topic/dev/${iot:ClientId}/*"}]}"#)?;
//! let ctx = ConnectionContext::new("meter-1", "123456789012", "us-east-1");
//! let compiled = compile(&[doc], &ctx);
//! assert_eq!(compiled.evaluate_resource(Action::Publish, ResourceKind::Topic, "dev/meter-1/t"),
//!            Decision::Allow);
//! assert_eq!(compiled.evaluate(Action::Publish,
//!            "arn:aws:iot:us-east-1:123456789012:topic/dev/meter-2/t"), Decision::ImplicitDeny);
//! # Ok::<(), policy::PolicyError>(())
//! ```
//!
//! Matching rules: `*` matches any run of characters including `/`, `?` exactly one
//! character; MQTT `+` and `#` are literal. A variable value that is longer than 1024
//! characters or contains `*`, `$`, `+`, `?` or `#` is not substituted, and a resource or
//! condition value using a variable that cannot be substituted never matches.
#![forbid(unsafe_code)]

mod action;
mod compile;
mod condition;
mod context;
mod document;
mod error;
mod glob;
mod known_actions;
mod template;

pub use action::Action;
pub use compile::{CompiledPolicy, Decision, ResourceKind, compile, resource_arn};
pub use context::{
    CertificateInfo, CertificateInfoBuilder, ConnectAttributes, ConnectionContext, ThingAttributes,
    ThingInfo,
};
pub use document::{DEFAULT_MAX_CHARS, PolicyDocument, Warning};
pub use error::PolicyError;

#[cfg(test)]
mod tests;
