//! Actions: the data-plane actions the gateway checks, and validation of `Action` entries.

use crate::glob::Glob;
use crate::known_actions::IOT_ACTIONS;

/// A data-plane action the gateway (or the data-plane HTTPS APIs) authorizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Action {
    /// `iot:Connect` on `client/<clientId>`.
    Connect,
    /// `iot:Publish` on `topic/<topic>`.
    Publish,
    /// `iot:Subscribe` on `topicfilter/<filter>`.
    Subscribe,
    /// `iot:Receive` on `topic/<topic>`.
    Receive,
    /// `iot:RetainPublish` on `topic/<topic>`.
    RetainPublish,
    /// `iot:GetThingShadow` on `thing/<name>[/<shadow>]`.
    GetThingShadow,
    /// `iot:UpdateThingShadow`.
    UpdateThingShadow,
    /// `iot:DeleteThingShadow`.
    DeleteThingShadow,
    /// `iot:ListNamedShadowsForThing`.
    ListNamedShadowsForThing,
    /// `iot:GetRetainedMessage` on `topic/<topic>`.
    GetRetainedMessage,
    /// `iot:ListRetainedMessages` on `*`.
    ListRetainedMessages,
    /// `iot:DescribeJobExecution` on `thing/<name>`.
    DescribeJobExecution,
    /// `iot:GetPendingJobExecutions`.
    GetPendingJobExecutions,
    /// `iot:UpdateJobExecution`.
    UpdateJobExecution,
    /// `iot:StartNextPendingJobExecution`.
    StartNextPendingJobExecution,
    /// `iot:AssumeRoleWithCertificate` on `rolealias/<alias>`.
    AssumeRoleWithCertificate,
}

impl Action {
    /// Every data-plane action, in declaration order.
    pub const ALL: [Action; 16] = [
        Action::Connect,
        Action::Publish,
        Action::Subscribe,
        Action::Receive,
        Action::RetainPublish,
        Action::GetThingShadow,
        Action::UpdateThingShadow,
        Action::DeleteThingShadow,
        Action::ListNamedShadowsForThing,
        Action::GetRetainedMessage,
        Action::ListRetainedMessages,
        Action::DescribeJobExecution,
        Action::GetPendingJobExecutions,
        Action::UpdateJobExecution,
        Action::StartNextPendingJobExecution,
        Action::AssumeRoleWithCertificate,
    ];

    /// The policy name, e.g. `"iot:Connect"`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Connect => "iot:Connect",
            Action::Publish => "iot:Publish",
            Action::Subscribe => "iot:Subscribe",
            Action::Receive => "iot:Receive",
            Action::RetainPublish => "iot:RetainPublish",
            Action::GetThingShadow => "iot:GetThingShadow",
            Action::UpdateThingShadow => "iot:UpdateThingShadow",
            Action::DeleteThingShadow => "iot:DeleteThingShadow",
            Action::ListNamedShadowsForThing => "iot:ListNamedShadowsForThing",
            Action::GetRetainedMessage => "iot:GetRetainedMessage",
            Action::ListRetainedMessages => "iot:ListRetainedMessages",
            Action::DescribeJobExecution => "iot:DescribeJobExecution",
            Action::GetPendingJobExecutions => "iot:GetPendingJobExecutions",
            Action::UpdateJobExecution => "iot:UpdateJobExecution",
            Action::StartNextPendingJobExecution => "iot:StartNextPendingJobExecution",
            Action::AssumeRoleWithCertificate => "iot:AssumeRoleWithCertificate",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of data-plane actions as a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ActionSet(u32);

impl ActionSet {
    pub(crate) const ALL: ActionSet = ActionSet((1 << Action::ALL.len()) - 1);

    pub(crate) fn contains(self, a: Action) -> bool {
        self.0 & a.bit() != 0
    }

    pub(crate) fn complement(self) -> ActionSet {
        ActionSet(!self.0 & ActionSet::ALL.0)
    }

    pub(crate) fn union(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 | other.0)
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The data-plane actions matched by the policy `Action` entries.
    pub(crate) fn from_entries<'a>(entries: impl IntoIterator<Item = &'a str>) -> ActionSet {
        let mut set = 0;
        for entry in entries {
            let lower = entry.to_ascii_lowercase();
            let glob = Glob::new(&lower);
            for a in Action::ALL {
                if glob.is_match(&a.name().to_ascii_lowercase()) {
                    set |= a.bit();
                }
            }
        }
        ActionSet(set)
    }
}

/// Is `entry` an action name (or IAM-style action wildcard) AWS IoT accepts?
pub(crate) fn is_valid_action(entry: &str) -> bool {
    if entry == "*" {
        return true;
    }
    let Some((service, name)) = entry.split_once(':') else {
        return false;
    };
    if name.is_empty() {
        return false;
    }
    if service.eq_ignore_ascii_case("greengrass") {
        return true;
    }
    if !service.eq_ignore_ascii_case("iot") {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    if !lower.contains(['*', '?']) {
        return IOT_ACTIONS.iter().any(|a| a.eq_ignore_ascii_case(name));
    }
    let glob = Glob::new(&lower);
    IOT_ACTIONS
        .iter()
        .any(|a| glob.is_match(&a.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(entry: &str, valid: bool) {
        assert_eq!(is_valid_action(entry), valid, "{entry}");
    }

    #[test]
    fn validation_table() {
        for ok in [
            "*",
            "iot:*",
            "iot:Connect",
            "IOT:connect",
            "iot:Publish",
            "iot:RetainPublish",
            "iot:AssumeRoleWithCertificate",
            "iot:CreateThing",
            "iot:Get*",
            "iot:*Shadow",
            "iot:Describe?ndpoint",
            "greengrass:*",
            "greengrass:GetConnectivityInfo",
        ] {
            check(ok, true);
        }
        for bad in [
            "",
            "iot",
            "iot:",
            "Connect",
            "iot:Conect",
            "iot:Frobnicate*",
            "s3:GetObject",
            "sts:*",
        ] {
            check(bad, false);
        }
    }

    #[test]
    fn sets() {
        let s = ActionSet::from_entries(["iot:Publish", "iot:*shadow"]);
        assert!(s.contains(Action::Publish));
        assert!(s.contains(Action::GetThingShadow));
        assert!(!s.contains(Action::Connect));
        assert!(s.complement().contains(Action::Connect));
        assert_eq!(ActionSet::from_entries(["*"]), ActionSet::ALL);
        assert_eq!(ActionSet::from_entries(["IoT:*"]), ActionSet::ALL);
        assert_eq!(
            ActionSet::from_entries(["greengrass:*"]),
            ActionSet::default()
        );
        assert_eq!(
            ActionSet::from_entries(["iot:CreateThing"]),
            ActionSet::default()
        );
    }
}
