//! Compiling the policies of one connection, and evaluating requests against them.

use crate::action::Action;
use crate::context::{ConnectionContext, substitution};
use crate::document::{Effect, PolicyDocument};
use crate::glob::Glob;

/// The outcome of an authorization check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// At least one `Allow` statement matched and no `Deny` did.
    Allow,
    /// A `Deny` statement matched.
    ExplicitDeny,
    /// No statement matched (the default).
    ImplicitDeny,
}

impl Decision {
    /// `true` only for [`Decision::Allow`].
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

/// The resource types the gateway builds ARNs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `client/<clientId>` (`iot:Connect`).
    Client,
    /// `topic/<topic>` (`iot:Publish`, `iot:Receive`, `iot:RetainPublish`).
    Topic,
    /// `topicfilter/<filter>` (`iot:Subscribe`).
    TopicFilter,
    /// `thing/<name>` (shadows, jobs).
    Thing,
    /// `rolealias/<alias>` (`iot:AssumeRoleWithCertificate`).
    RoleAlias,
}

impl ResourceKind {
    const ALL: [ResourceKind; 5] = [
        ResourceKind::Client,
        ResourceKind::Topic,
        ResourceKind::TopicFilter,
        ResourceKind::Thing,
        ResourceKind::RoleAlias,
    ];

    /// The ARN resource type, e.g. `"topicfilter"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Client => "client",
            ResourceKind::Topic => "topic",
            ResourceKind::TopicFilter => "topicfilter",
            ResourceKind::Thing => "thing",
            ResourceKind::RoleAlias => "rolealias",
        }
    }
}

/// `arn:<partition>:iot:<region>:<account>:<kind>/<name>` for the connection's account.
pub fn resource_arn(ctx: &ConnectionContext, kind: ResourceKind, name: &str) -> String {
    format!("{}{name}", arn_prefix(ctx, kind))
}

fn arn_prefix(ctx: &ConnectionContext, kind: ResourceKind) -> String {
    format!(
        "arn:{}:iot:{}:{}:{}/",
        ctx.partition,
        ctx.region,
        ctx.account_id,
        kind.as_str()
    )
}

/// One statement, reduced to what evaluation needs.
#[derive(Debug, Clone)]
struct Rule {
    not_resource: bool,
    patterns: Box<[Glob]>,
}

impl Rule {
    fn matches(&self, head: &str, tail: &str) -> bool {
        self.patterns.iter().any(|p| p.is_match_split(head, tail)) != self.not_resource
    }
}

#[derive(Debug, Clone, Default)]
struct ActionRules {
    deny: Vec<Rule>,
    allow: Vec<Rule>,
}

/// The policies of one connection, with connection-stable variables substituted, conditions
/// decided and resource patterns compiled. Owns all its data; cheap to evaluate and
/// `Send + Sync`.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    by_action: [ActionRules; Action::ALL.len()],
    prefixes: [Box<str>; ResourceKind::ALL.len()],
}

impl Default for CompiledPolicy {
    /// Allows nothing.
    fn default() -> Self {
        compile(&[], &ConnectionContext::new("", "", ""))
    }
}

/// Compiles the policies in effect for one connection. Call once per connection (and again
/// when its policies change).
///
/// Statements whose conditions are false for this connection are dropped; resource patterns
/// with a variable that cannot be substituted are dropped (they can never match); a statement
/// with `Resource` left without patterns is dropped, one with `NotResource` left without
/// patterns applies to every resource.
pub fn compile(policies: &[PolicyDocument], ctx: &ConnectionContext) -> CompiledPolicy {
    let mut by_action: [ActionRules; Action::ALL.len()] = Default::default();
    let resolve = |name: &str| substitution(ctx, name);
    for st in policies.iter().flat_map(|p| p.statements.iter()) {
        let actions = st.action_set();
        if !Action::ALL.iter().any(|a| actions.contains(*a)) {
            continue;
        }
        if !st.conditions.iter().all(|c| c.evaluate(ctx)) {
            continue;
        }
        let patterns: Box<[Glob]> = st
            .resources
            .iter()
            .filter_map(|r| r.to_glob(&resolve))
            .collect();
        if patterns.is_empty() && !st.not_resource {
            continue;
        }
        let rule = Rule {
            not_resource: st.not_resource,
            patterns,
        };
        for a in Action::ALL {
            if actions.contains(a) {
                let rules = &mut by_action[a.index()];
                match st.effect {
                    Effect::Allow => rules.allow.push(rule.clone()),
                    Effect::Deny => rules.deny.push(rule.clone()),
                }
            }
        }
    }
    CompiledPolicy {
        by_action,
        prefixes: ResourceKind::ALL.map(|k| arn_prefix(ctx, k).into_boxed_str()),
    }
}

impl CompiledPolicy {
    /// Decides `action` on the full resource ARN (e.g.
    /// `arn:aws:iot:us-east-1:123456789012:topic/a/b`). Does not allocate.
    pub fn evaluate(&self, action: Action, resource: &str) -> Decision {
        self.decide(action, resource, "")
    }

    /// Decides `action` on `<kind>/<name>` in the connection's own account and region,
    /// without building the ARN: the same answer as
    /// `evaluate(action, &resource_arn(ctx, kind, name))`. Does not allocate.
    pub fn evaluate_resource(&self, action: Action, kind: ResourceKind, name: &str) -> Decision {
        let head = self.prefixes.get(kind as usize).map_or("", |p| p.as_ref());
        self.decide(action, head, name)
    }

    /// Is any statement left that could allow `action` on some resource?
    pub fn may_allow(&self, action: Action) -> bool {
        self.by_action
            .get(action.index())
            .is_some_and(|r| !r.allow.is_empty())
    }

    fn decide(&self, action: Action, head: &str, tail: &str) -> Decision {
        let Some(rules) = self.by_action.get(action.index()) else {
            return Decision::ImplicitDeny;
        };
        if rules.deny.iter().any(|r| r.matches(head, tail)) {
            Decision::ExplicitDeny
        } else if rules.allow.iter().any(|r| r.matches(head, tail)) {
            Decision::Allow
        } else {
            Decision::ImplicitDeny
        }
    }
}
