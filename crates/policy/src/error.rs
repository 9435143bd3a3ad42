//! Why a policy document was rejected.

/// A policy document is malformed. The `Display` text is meant to be returned verbatim as the
/// message of AWS's `MalformedPolicyException`. Statement indexes are zero-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Longer than the limit, counting characters other than whitespace.
    #[error(
        "policy document is {chars} characters long excluding whitespace; the limit is {limit}"
    )]
    TooLarge {
        /// Characters counted.
        chars: usize,
        /// The limit applied.
        limit: usize,
    },
    /// Not parseable as JSON.
    #[error("policy document is not valid JSON: {0}")]
    NotJson(String),
    /// Valid JSON but not an object.
    #[error("policy document must be a JSON object")]
    NotObject,
    /// `Version` is not one of the two IAM policy language versions.
    #[error("unsupported policy Version {0}; use \"2012-10-17\"")]
    BadVersion(String),
    /// No `Statement` element.
    #[error("policy document has no Statement")]
    MissingStatement,
    /// `Statement` is an empty array.
    #[error("Statement must not be empty")]
    EmptyStatement,
    /// An element this policy language does not have (e.g. `Principal`, `statement`).
    #[error("{}unknown element {element:?}", at(*statement))]
    UnknownElement {
        /// The statement, or `None` at the top level.
        statement: Option<usize>,
        /// The element name.
        element: String,
    },
    /// An element has the wrong JSON type.
    #[error("{}{element} must be {expected}, found {found}", at(*statement))]
    WrongType {
        /// The statement, or `None` at the top level.
        statement: Option<usize>,
        /// The element name.
        element: &'static str,
        /// What was expected.
        expected: &'static str,
        /// What was found (JSON, shortened).
        found: String,
    },
    /// A required element is missing.
    #[error("Statement[{statement}]: missing {element}")]
    MissingElement {
        /// The statement.
        statement: usize,
        /// The element (for a pair such as `Action`/`NotAction`, the first).
        element: &'static str,
    },
    /// Both elements of an exclusive pair are present (`Action` and `NotAction`).
    #[error("Statement[{statement}]: {first} and {second} cannot both be present")]
    ConflictingElements {
        /// The statement.
        statement: usize,
        /// First element of the pair.
        first: &'static str,
        /// Second element of the pair.
        second: &'static str,
    },
    /// `Effect` is not `"Allow"` or `"Deny"`.
    #[error("Statement[{statement}]: Effect must be \"Allow\" or \"Deny\", found {found}")]
    BadEffect {
        /// The statement.
        statement: usize,
        /// What was found (JSON).
        found: String,
    },
    /// An action that is not an AWS IoT (or Greengrass) action.
    #[error("Statement[{statement}]: unknown action {action:?}")]
    UnknownAction {
        /// The statement.
        statement: usize,
        /// The action as written.
        action: String,
    },
    /// A resource that is neither `*` nor an AWS IoT ARN.
    #[error("Statement[{statement}]: invalid resource {resource:?}: {reason}")]
    InvalidResource {
        /// The statement.
        statement: usize,
        /// The resource as written.
        resource: String,
        /// Which part is wrong.
        reason: &'static str,
    },
    /// An unknown condition operator.
    #[error("Statement[{statement}]: unknown condition operator {operator:?}")]
    UnknownConditionOperator {
        /// The statement.
        statement: usize,
        /// The operator as written.
        operator: String,
    },
    /// A condition value that can never be valid for its operator (e.g. a bad CIDR).
    #[error("Statement[{statement}]: {operator} value {value:?} for {key} is invalid: {reason}")]
    InvalidConditionValue {
        /// The statement.
        statement: usize,
        /// The operator as written.
        operator: String,
        /// The condition key.
        key: String,
        /// The value.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
}

fn at(statement: Option<usize>) -> String {
    statement.map_or_else(String::new, |i| format!("Statement[{i}]: "))
}
