//! Compiling the policies of one connection, and evaluating requests against them.

use crate::action::{Action, ActionSet};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
        let p = self.prefix();
        p.strip_suffix('/').unwrap_or(p)
    }

    /// The ARN resource type and its slash, e.g. `"topicfilter/"`. No one of these is a prefix
    /// of another.
    fn prefix(self) -> &'static str {
        match self {
            ResourceKind::Client => "client/",
            ResourceKind::Topic => "topic/",
            ResourceKind::TopicFilter => "topicfilter/",
            ResourceKind::Thing => "thing/",
            ResourceKind::RoleAlias => "rolealias/",
        }
    }
}

/// `arn:<partition>:iot:<region>:<account>:<kind>/<name>` for the connection's account.
pub fn resource_arn(ctx: &ConnectionContext, kind: ResourceKind, name: &str) -> String {
    format!("{}{}{name}", arn_base(ctx), kind.prefix())
}

/// `arn:<partition>:iot:<region>:<account>:`.
fn arn_base(ctx: &ConnectionContext) -> String {
    format!(
        "arn:{}:iot:{}:{}:",
        ctx.partition, ctx.region, ctx.account_id
    )
}

/// What a compiled pattern is matched against. Most resource patterns begin with the
/// connection's `arn:<partition>:iot:<region>:<account>:<kind>/`; that is stored once (the
/// base) or not at all (the kind), and matching such a pattern compares only the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    /// The resource name after the base and `<kind>/`.
    Kind(ResourceKind),
    /// The resource after the base.
    Relative,
    /// The whole resource.
    Absolute,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pattern {
    scope: Scope,
    glob: Glob,
}

/// One statement (or several that differ only in their actions), reduced to what evaluation
/// needs. Its patterns are `CompiledPolicy::patterns[<previous rule's end>..end]`.
#[derive(Debug, Clone)]
struct Rule {
    actions: ActionSet,
    end: u32,
    deny: bool,
    not_resource: bool,
}

/// The policies of one connection, with connection-stable variables substituted, conditions
/// decided and resource patterns compiled. Owns all its data; cheap to evaluate and
/// `Send + Sync`.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    /// Deny rules first, so that the first matching rule decides.
    rules: Box<[Rule]>,
    /// The patterns of all rules, in one allocation.
    patterns: Box<[Pattern]>,
    /// [`arn_base`] of the connection.
    base: Box<str>,
}

impl Default for CompiledPolicy {
    /// Allows nothing.
    fn default() -> Self {
        compile(&[], &ConnectionContext::new("", "", ""))
    }
}

/// A statement while compiling.
struct Pending {
    actions: ActionSet,
    deny: bool,
    not_resource: bool,
    patterns: Vec<Pattern>,
}

impl Pending {
    /// Statements with equal keys differ only in their actions.
    fn key(&self) -> (bool, bool, &[Pattern]) {
        (self.deny, self.not_resource, &self.patterns)
    }
}

/// `glob`, matching the whole resource, in the narrowest scope.
fn scoped(glob: Glob, base: &str) -> Pattern {
    let Some(relative) = glob.strip_prefix(base) else {
        return Pattern {
            scope: Scope::Absolute,
            glob,
        };
    };
    ResourceKind::ALL
        .into_iter()
        .find_map(|k| {
            relative.strip_prefix(k.prefix()).map(|glob| Pattern {
                scope: Scope::Kind(k),
                glob,
            })
        })
        .unwrap_or(Pattern {
            scope: Scope::Relative,
            glob: relative,
        })
}

/// Compiles the policies in effect for one connection. Call once per connection (and again
/// when its policies change).
///
/// Statements whose conditions are false for this connection are dropped; resource patterns
/// with a variable that cannot be substituted are dropped (they can never match); a statement
/// with `Resource` left without patterns is dropped, one with `NotResource` left without
/// patterns applies to every resource.
pub fn compile<'a>(
    policies: impl IntoIterator<Item = &'a PolicyDocument>,
    ctx: &ConnectionContext,
) -> CompiledPolicy {
    let base = arn_base(ctx);
    let resolve = |name: &str| substitution(ctx, name);
    let mut pending = Vec::new();
    for st in policies.into_iter().flat_map(|p| p.statements.iter()) {
        let actions = st.action_set();
        if actions.is_empty() || !st.conditions.iter().all(|c| c.evaluate(ctx)) {
            continue;
        }
        let patterns: Vec<Pattern> = st
            .resources
            .iter()
            .filter_map(|r| r.to_glob(&resolve))
            .map(|g| scoped(g, &base))
            .collect();
        if patterns.is_empty() && !st.not_resource {
            continue;
        }
        pending.push(Pending {
            actions,
            deny: st.effect == Effect::Deny,
            not_resource: st.not_resource,
            patterns,
        });
    }
    merge_same_resources(&mut pending);
    // Deny first, so that the first matching rule decides; otherwise in document order.
    pending.sort_by_key(|p| !p.deny);
    let mut patterns = Vec::with_capacity(pending.iter().map(|p| p.patterns.len()).sum());
    let rules = pending
        .into_iter()
        .map(|p| {
            patterns.extend(p.patterns);
            Rule {
                actions: p.actions,
                // Saturating is moot: 2^32 patterns would take far more than 4 GB of policy.
                end: u32::try_from(patterns.len()).unwrap_or(u32::MAX),
                deny: p.deny,
                not_resource: p.not_resource,
            }
        })
        .collect();
    CompiledPolicy {
        rules,
        patterns: patterns.into_boxed_slice(),
        base: base.into_boxed_str(),
    }
}

/// Merges each statement into the first one that differs from it only in its actions (as
/// `Publish` and `Receive` on the same topics do).
fn merge_same_resources(pending: &mut Vec<Pending>) {
    let mut order: Vec<usize> = (0..pending.len()).collect();
    let key = |k: usize| pending.get(k).map(Pending::key);
    order.sort_by(|&i, &j| key(i).cmp(&key(j)).then(i.cmp(&j)));
    // (statement, the first one equal to it)
    let mut merges = Vec::new();
    let mut first = None;
    for pair in order.windows(2) {
        if let &[prev, cur] = pair {
            if key(prev) == key(cur) {
                merges.push((cur, *first.get_or_insert(prev)));
            } else {
                first = None;
            }
        }
    }
    for (i, first) in merges {
        let actions = pending.get(i).map(|p| p.actions).unwrap_or_default();
        if let Some(f) = pending.get_mut(first) {
            f.actions = f.actions.union(actions);
        }
        if let Some(p) = pending.get_mut(i) {
            p.actions = ActionSet::default();
        }
    }
    pending.retain(|p| !p.actions.is_empty());
}

/// One resource, in the pieces each [`Scope`] is matched against.
struct Subject<'a> {
    kind: Option<(ResourceKind, &'a str)>,
    relative: Option<(&'a str, &'a str)>,
    absolute: [&'a str; 3],
}

impl Pattern {
    fn matches(&self, s: &Subject<'_>) -> bool {
        match self.scope {
            Scope::Kind(k) => s
                .kind
                .is_some_and(|(sk, name)| sk == k && self.glob.is_match(name)),
            Scope::Relative => s
                .relative
                .is_some_and(|(a, b)| self.glob.is_match_split(a, b)),
            Scope::Absolute => {
                let [a, b, c] = s.absolute;
                self.glob.is_match_parts(a, b, c)
            }
        }
    }
}

impl CompiledPolicy {
    /// Decides `action` on the full resource ARN (e.g.
    /// `arn:aws:iot:us-east-1:123456789012:topic/a/b`). Does not allocate.
    pub fn evaluate(&self, action: Action, resource: &str) -> Decision {
        let relative = resource.strip_prefix(&*self.base);
        let kind = relative.and_then(|r| {
            ResourceKind::ALL
                .into_iter()
                .find_map(|k| Some((k, r.strip_prefix(k.prefix())?)))
        });
        self.decide(
            action,
            &Subject {
                kind,
                relative: relative.map(|r| (r, "")),
                absolute: [resource, "", ""],
            },
        )
    }

    /// Decides `action` on `<kind>/<name>` in the connection's own account and region,
    /// without building the ARN: the same answer as
    /// `evaluate(action, &resource_arn(ctx, kind, name))`. Does not allocate.
    pub fn evaluate_resource(&self, action: Action, kind: ResourceKind, name: &str) -> Decision {
        self.decide(
            action,
            &Subject {
                kind: Some((kind, name)),
                relative: Some((kind.prefix(), name)),
                absolute: [&self.base, kind.prefix(), name],
            },
        )
    }

    /// Is any statement left that could allow `action` on some resource?
    pub fn may_allow(&self, action: Action) -> bool {
        self.rules
            .iter()
            .any(|r| !r.deny && r.actions.contains(action))
    }

    fn decide(&self, action: Action, subject: &Subject<'_>) -> Decision {
        let mut start = 0;
        for rule in &self.rules {
            let end = rule.end as usize;
            if rule.actions.contains(action) {
                let patterns = self.patterns.get(start..end).unwrap_or_default();
                if patterns.iter().any(|p| p.matches(subject)) != rule.not_resource {
                    return if rule.deny {
                        Decision::ExplicitDeny
                    } else {
                        Decision::Allow
                    };
                }
            }
            start = end;
        }
        Decision::ImplicitDeny
    }
}
