//! Parsing and validating policy documents (the control plane's `MalformedPolicyException`),
//! and advisory warnings.

use serde_json::{Map, Value};

use crate::action::{Action, ActionSet, is_valid_action};
use crate::condition::{Condition, Operator};
use crate::error::PolicyError;
use crate::template::{Part, Template};

/// AWS's documented limit: 2048 characters, not counting whitespace.
pub const DEFAULT_MAX_CHARS: usize = 2048;

const VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];

/// A validated policy document. Holds no reference to the JSON it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    version: Option<String>,
    pub(crate) statements: Vec<Statement>,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    pub(crate) effect: Effect,
    /// `NotAction` rather than `Action`.
    pub(crate) not_action: bool,
    pub(crate) actions: Vec<String>,
    /// `NotResource` rather than `Resource`.
    pub(crate) not_resource: bool,
    pub(crate) resources: Vec<Template>,
    pub(crate) conditions: Vec<Condition>,
}

impl Statement {
    /// The data-plane actions this statement applies to.
    pub(crate) fn action_set(&self) -> ActionSet {
        let set = ActionSet::from_entries(self.actions.iter().map(String::as_str));
        if self.not_action {
            set.complement()
        } else {
            set
        }
    }
}

/// An advisory finding about a valid policy (logged by the control plane, never fatal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Zero-based index of the statement concerned, if one.
    pub statement: Option<usize>,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.statement {
            Some(i) => write!(f, "Statement[{i}]: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl PolicyDocument {
    /// Parses and validates a policy document with AWS's size limit
    /// ([`DEFAULT_MAX_CHARS`] characters excluding whitespace).
    pub fn parse(text: &str) -> Result<PolicyDocument, PolicyError> {
        PolicyDocument::parse_with_limit(text, DEFAULT_MAX_CHARS)
    }

    /// Like [`PolicyDocument::parse`] with a different size limit (characters excluding
    /// whitespace).
    pub fn parse_with_limit(text: &str, max_chars: usize) -> Result<PolicyDocument, PolicyError> {
        let chars = text.chars().filter(|c| !c.is_whitespace()).count();
        if chars > max_chars {
            return Err(PolicyError::TooLarge {
                chars,
                limit: max_chars,
            });
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| PolicyError::NotJson(e.to_string()))?;
        let Value::Object(top) = value else {
            return Err(PolicyError::NotObject);
        };
        for key in top.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::UnknownElement {
                    statement: None,
                    element: key.clone(),
                });
            }
        }
        let version = match top.get("Version") {
            None => None,
            Some(Value::String(v)) if VERSIONS.contains(&v.as_str()) => Some(v.clone()),
            Some(other) => return Err(PolicyError::BadVersion(short(other))),
        };
        if let Some(id) = top.get("Id").filter(|v| !v.is_string()) {
            return Err(PolicyError::WrongType {
                statement: None,
                element: "Id",
                expected: "a string",
                found: short(id),
            });
        }
        let statements = match top.get("Statement") {
            None => return Err(PolicyError::MissingStatement),
            Some(Value::Object(s)) => vec![parse_statement(0, s)?],
            Some(Value::Array(list)) if !list.is_empty() => list
                .iter()
                .enumerate()
                .map(|(i, s)| match s {
                    Value::Object(s) => parse_statement(i, s),
                    other => Err(PolicyError::WrongType {
                        statement: Some(i),
                        element: "Statement",
                        expected: "an object",
                        found: short(other),
                    }),
                })
                .collect::<Result<_, _>>()?,
            Some(Value::Array(_)) => return Err(PolicyError::EmptyStatement),
            Some(other) => {
                return Err(PolicyError::WrongType {
                    statement: None,
                    element: "Statement",
                    expected: "an object or an array of objects",
                    found: short(other),
                });
            }
        };
        Ok(PolicyDocument {
            version,
            statements,
        })
    }

    /// The `Version` element, if present.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Advisory findings: overly broad grants and common mistakes. Empty for a tidy policy.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut out = Vec::new();
        let mut warn = |statement: Option<usize>, message: String| {
            out.push(Warning { statement, message });
        };
        let mut uses_vars = false;
        let mut unknown_vars = Vec::new();
        for (i, st) in self.statements.iter().enumerate() {
            let templates = st
                .resources
                .iter()
                .chain(st.conditions.iter().flat_map(|c| c.values.iter()));
            for var in templates.flat_map(Template::vars) {
                uses_vars = true;
                let probe = crate::context::ConnectionContext::new("", "", "");
                if crate::context::resolve_key(&probe, var) == crate::context::KeyValue::Unknown
                    && !unknown_vars.contains(&var)
                {
                    unknown_vars.push(var);
                    warn(
                        Some(i),
                        format!(
                            "unknown policy variable ${{{var}}}: a resource or condition \
                             using it never matches"
                        ),
                    );
                }
            }
            if st.effect != Effect::Allow {
                continue;
            }
            let actions = st.action_set();
            let everything = st
                .actions
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case("iot:*"));
            let any_resource = !st.not_resource && st.resources.iter().any(|r| r.is_text("*"));
            if everything && any_resource && !st.not_action {
                warn(
                    Some(i),
                    "allows every AWS IoT action on every resource".to_owned(),
                );
            } else if actions.contains(Action::Connect)
                && !st.not_resource
                && st.resources.iter().any(connect_any_client)
            {
                warn(
                    Some(i),
                    "allows iot:Connect with any client id; restrict the client/ resource \
                     (e.g. client/${iot:Connection.Thing.ThingName})"
                        .to_owned(),
                );
            }
            if actions.contains(Action::Publish) || actions.contains(Action::Receive) {
                for r in &st.resources {
                    if let Some(topic) = topic_part(r, "topic/")
                        && topic.contains(['#', '+'])
                    {
                        warn(
                            Some(i),
                            format!(
                                "topic resource {topic:?} contains an MQTT wildcard; `+` and \
                                 `#` are literal in policies, use `*` or `?`"
                            ),
                        );
                    }
                }
            }
        }
        if uses_vars && self.version.as_deref() != Some("2012-10-17") {
            warn(
                None,
                "policy variables are used but Version is not \"2012-10-17\"; AWS treats them \
                 as literal text (Onboard substitutes them anyway)"
                    .to_owned(),
            );
        }
        if let Some(i) = self.claim_without_csr() {
            warn(
                Some(i),
                "grants iot:Publish on $aws/certificates/create/* but not on \
                 $aws/certificates/create-from-csr/*: fleet provisioning by CSR will be refused"
                    .to_owned(),
            );
        }
        out
    }

    /// A claim-style policy that lets devices publish to `$aws/certificates/create/json`
    /// but not to `$aws/certificates/create-from-csr/json`: the statement index that grants
    /// the former.
    fn claim_without_csr(&self) -> Option<usize> {
        let grants = |topic: &str| {
            self.statements.iter().position(|st| {
                st.effect == Effect::Allow
                    && !st.not_resource
                    && st.action_set().contains(Action::Publish)
                    && st.resources.iter().any(|r| {
                        ["json", "cbor"]
                            .iter()
                            .any(|fmt| resource_covers(r, &format!("topic/{topic}/{fmt}")))
                    })
            })
        };
        let create = grants("$aws/certificates/create")?;
        match grants("$aws/certificates/create-from-csr") {
            Some(_) => None,
            None => Some(create),
        }
    }
}

/// Does resource `r` (variables unresolved, so they match nothing) cover
/// `<any partition/region/account>:<tail>`?
fn resource_covers(r: &Template, tail: &str) -> bool {
    if r.is_text("*") {
        return true;
    }
    r.split_colon(6)
        .get(5)
        .and_then(|last| last.to_glob(&|_| None))
        .is_some_and(|g| g.is_match(tail))
}

/// The text after `:<kind>` in an ARN resource, if it is plain text.
fn topic_part(r: &Template, kind: &str) -> Option<String> {
    let pieces = r.split_colon(6);
    let last = pieces.get(5)?;
    let mut text = String::new();
    for p in &last.parts {
        match p {
            Part::Text(t) => text.push_str(t),
            Part::Escape(c) => text.push(*c),
            Part::Var(v) => {
                text.push_str("${");
                text.push_str(v);
                text.push('}');
            }
        }
    }
    text.strip_prefix(kind).map(str::to_owned)
}

/// Does this `iot:Connect` resource admit any client id?
fn connect_any_client(r: &Template) -> bool {
    if r.is_text("*") {
        return true;
    }
    let pieces = r.split_colon(6);
    pieces.get(5).is_some_and(|last| {
        last.is_text("*") || last.is_text("client/*") || last.is_text("client*")
    })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(60).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn parse_statement(i: usize, s: &Map<String, Value>) -> Result<Statement, PolicyError> {
    for key in s.keys() {
        if !matches!(
            key.as_str(),
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" | "Condition"
        ) {
            return Err(PolicyError::UnknownElement {
                statement: Some(i),
                element: key.clone(),
            });
        }
    }
    if let Some(sid) = s.get("Sid").filter(|v| !v.is_string()) {
        return Err(PolicyError::WrongType {
            statement: Some(i),
            element: "Sid",
            expected: "a string",
            found: short(sid),
        });
    }
    let effect = match s.get("Effect") {
        None => {
            return Err(PolicyError::MissingElement {
                statement: i,
                element: "Effect",
            });
        }
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => {
            return Err(PolicyError::BadEffect {
                statement: i,
                found: short(other),
            });
        }
    };
    let (not_action, actions) = one_of(i, s, "Action", "NotAction")?;
    for a in &actions {
        if !is_valid_action(a) {
            return Err(PolicyError::UnknownAction {
                statement: i,
                action: a.clone(),
            });
        }
    }
    let (not_resource, resources) = one_of(i, s, "Resource", "NotResource")?;
    let resources = resources
        .iter()
        .map(|r| parse_resource(i, r))
        .collect::<Result<_, _>>()?;
    let conditions = match s.get("Condition") {
        None => Vec::new(),
        Some(Value::Object(c)) => parse_conditions(i, c)?,
        Some(other) => {
            return Err(PolicyError::WrongType {
                statement: Some(i),
                element: "Condition",
                expected: "an object",
                found: short(other),
            });
        }
    };
    Ok(Statement {
        effect,
        not_action,
        actions,
        not_resource,
        resources,
        conditions,
    })
}

/// Reads exactly one of `a` / `b` (e.g. `Action` / `NotAction`) as a string or a non-empty
/// array of strings; returns whether it was `b`.
fn one_of(
    i: usize,
    s: &Map<String, Value>,
    a: &'static str,
    b: &'static str,
) -> Result<(bool, Vec<String>), PolicyError> {
    let (negated, name, value) = match (s.get(a), s.get(b)) {
        (Some(_), Some(_)) => {
            return Err(PolicyError::ConflictingElements {
                statement: i,
                first: a,
                second: b,
            });
        }
        (Some(v), None) => (false, a, v),
        (None, Some(v)) => (true, b, v),
        (None, None) => {
            return Err(PolicyError::MissingElement {
                statement: i,
                element: a,
            });
        }
    };
    let wrong = |found: &Value| PolicyError::WrongType {
        statement: Some(i),
        element: name,
        expected: "a string or a non-empty array of strings",
        found: short(found),
    };
    let list = match value {
        Value::String(v) => vec![v.clone()],
        Value::Array(list) if !list.is_empty() => list
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| wrong(v)))
            .collect::<Result<_, _>>()?,
        other => return Err(wrong(other)),
    };
    Ok((negated, list))
}

fn parse_resource(i: usize, r: &str) -> Result<Template, PolicyError> {
    let invalid = |reason: &'static str| PolicyError::InvalidResource {
        statement: i,
        resource: r.to_owned(),
        reason,
    };
    let t = Template::parse(r);
    if t.is_text("*") {
        return Ok(t);
    }
    let pieces = t.split_colon(6);
    let [arn, partition, service, region, account, rest] = pieces.as_slice() else {
        return Err(invalid(
            "expected \"*\" or arn:<partition>:iot:<region>:<account>:<type>/<name>",
        ));
    };
    if !arn.is_text("arn") {
        return Err(invalid("must start with \"arn:\""));
    }
    if partition.parts.is_empty() {
        return Err(invalid("empty partition"));
    }
    if !(service.is_text("iot") || service.is_text("greengrass") || service.is_text("*")) {
        return Err(invalid("service must be \"iot\""));
    }
    if region.parts.is_empty() || account.parts.is_empty() {
        return Err(invalid("empty region or account"));
    }
    // `<type>/<name>`, or a bare wildcard such as `*`.
    let ok = match rest.parts.first() {
        Some(Part::Text(t)) => match t.split_once('/') {
            Some((kind, _)) => !kind.is_empty(),
            None => t.contains('*') || rest.parts.len() > 1,
        },
        _ => false,
    };
    if !ok {
        return Err(invalid("resource part must be <type>/<name>"));
    }
    Ok(t)
}

fn parse_conditions(i: usize, c: &Map<String, Value>) -> Result<Vec<Condition>, PolicyError> {
    let mut out = Vec::new();
    for (op_name, block) in c {
        let Some(op) = Operator::parse(op_name) else {
            return Err(PolicyError::UnknownConditionOperator {
                statement: i,
                operator: op_name.clone(),
            });
        };
        let Value::Object(block) = block else {
            return Err(PolicyError::WrongType {
                statement: Some(i),
                element: "Condition",
                expected: "an object of condition keys",
                found: short(block),
            });
        };
        for (key, values) in block {
            let scalar = |v: &Value| match v {
                Value::String(s) => Some(s.clone()),
                Value::Bool(b) => Some(b.to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            let raw: Option<Vec<String>> = match values {
                Value::Array(list) if !list.is_empty() => list.iter().map(scalar).collect(),
                Value::Array(_) => None,
                v => scalar(v).map(|s| vec![s]),
            };
            let Some(raw) = raw else {
                return Err(PolicyError::WrongType {
                    statement: Some(i),
                    element: "Condition",
                    expected: "a string or a non-empty array of strings as condition values",
                    found: short(values),
                });
            };
            let mut templates = Vec::with_capacity(raw.len());
            for v in raw {
                let t = Template::parse(&v);
                if t.vars().next().is_none()
                    && let Err(reason) = op.validate_value(&v)
                {
                    return Err(PolicyError::InvalidConditionValue {
                        statement: i,
                        operator: op_name.clone(),
                        key: key.clone(),
                        value: v,
                        reason,
                    });
                }
                templates.push(t);
            }
            out.push(Condition {
                op,
                key: key.clone(),
                values: templates,
            });
        }
    }
    Ok(out)
}
