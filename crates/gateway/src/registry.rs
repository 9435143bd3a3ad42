//! The in-memory identity and authorization cache.
//!
//! A [`Registry`] is an immutable, indexed copy of the parts of the store the gateway needs, built from one
//! [`store::GatewaySnapshot`]. The watcher in `lib.rs` replaces it whenever the store's change counter moves;
//! connections hold no reference into it across a change, they re-resolve against the new one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use policy::{PolicyDocument, ThingInfo};
use store::{CertificateMode, CertificateStatus, GatewaySnapshot, PrincipalType};

/// An account and region: everything on the data plane (topics, client ids, sessions) is scoped by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub account_id: Arc<str>,
    pub region: Arc<str>,
}

impl Scope {
    fn key(&self) -> (&str, &str) {
        (&self.account_id, &self.region)
    }
}

/// Why a certificate may not connect. `label` is the metrics label, `Display` the log / reason-string text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the certificate is not registered")]
    UnknownCertificate,
    #[error(
        "the certificate is not registered in account {account} ({region}), which the SNI names"
    )]
    NotInSniAccount { account: String, region: String },
    #[error(
        "the certificate is registered in several accounts; the SNI must name an account endpoint"
    )]
    Ambiguous,
    #[error("the certificate is in SNI_ONLY mode; the SNI must name the account endpoint")]
    SniRequired,
    #[error("the certificate is {0}")]
    Status(CertificateStatus),
    #[error("the certificate is outside its validity period")]
    Expired,
    #[error("the issuing CA {0} is not ACTIVE")]
    CaInactive(String),
    #[error("the certificate chain could not be read")]
    BadCertificate,
    #[error("no policy allows iot:Connect for this client id")]
    ConnectDenied,
}

impl Refusal {
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::UnknownCertificate => "unknown_certificate",
            Refusal::NotInSniAccount { .. } => "not_in_sni_account",
            Refusal::Ambiguous => "ambiguous_account",
            Refusal::SniRequired => "sni_required",
            Refusal::Status(CertificateStatus::Inactive) => "inactive",
            Refusal::Status(CertificateStatus::Revoked) => "revoked",
            Refusal::Status(CertificateStatus::PendingTransfer) => "pending_transfer",
            Refusal::Status(CertificateStatus::PendingActivation) => "pending_activation",
            Refusal::Status(_) => "not_active",
            Refusal::Expired => "outside_validity",
            Refusal::CaInactive(_) => "ca_inactive",
            Refusal::BadCertificate => "bad_certificate",
            Refusal::ConnectDenied => "connect_denied",
        }
    }
}

/// A policy's default version, parsed once per registry load.
#[derive(Debug)]
pub struct LoadedPolicy {
    pub generation_id: String,
    pub document: PolicyDocument,
}

/// What determines a connection's compiled policy besides the CONNECT itself: when it is equal after a registry
/// change, the compiled policy is still right and is not recompiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzKey {
    pub generations: Vec<String>,
    pub thing: Option<ThingInfo>,
    pub exclusive_thing: bool,
}

/// The policies and thing of one connection.
#[derive(Debug)]
pub struct Authz {
    pub policies: Vec<Arc<LoadedPolicy>>,
    pub key: AuthzKey,
}

#[derive(Debug, Clone)]
struct Reg {
    scope: Scope,
    status: CertificateStatus,
    mode: CertificateMode,
    ca_cert_id: Option<String>,
    not_before: i64,
    not_after: i64,
}

type Key3 = (String, String, String);

#[derive(Debug, Default)]
pub struct Registry {
    /// The store's registry version this cache was built from.
    pub version: i64,
    prefixes: HashMap<String, Arc<str>>,
    certs: HashMap<String, Vec<Reg>>,
    /// (account, region, ca id) -> (status, mode)
    cas: HashMap<Key3, (CertificateStatus, CertificateMode)>,
    policies: HashMap<Key3, Arc<LoadedPolicy>>,
    /// (account, region, target ARN) -> policy names
    attachments: HashMap<Key3, Vec<String>>,
    /// (account, region, principal ARN) -> things
    principal_things: HashMap<Key3, Vec<(String, PrincipalType)>>,
    things: HashMap<Key3, store::AttachedThing>,
    group_parent: HashMap<Key3, Option<String>>,
    /// Interned region names, so scopes share their strings.
    regions: HashSet<Arc<str>>,
}

fn k3(a: &str, b: &str, c: &str) -> Key3 {
    (a.to_owned(), b.to_owned(), c.to_owned())
}

impl Registry {
    pub fn from_snapshot(snap: GatewaySnapshot) -> Registry {
        let mut r = Registry {
            version: snap.version,
            ..Registry::default()
        };
        let mut accounts: HashMap<String, Arc<str>> = HashMap::new();
        for (id, prefix) in snap.accounts {
            let id: Arc<str> = Arc::from(id.as_str());
            accounts.insert(id.to_string(), id.clone());
            r.prefixes.insert(prefix.to_ascii_lowercase(), id);
        }
        for c in snap.certificates {
            let account = accounts
                .get(&c.account_id)
                .cloned()
                .unwrap_or_else(|| Arc::from(c.account_id.as_str()));
            let region = r.intern_region(&c.region);
            r.certs.entry(c.cert_id).or_default().push(Reg {
                scope: Scope {
                    account_id: account,
                    region,
                },
                status: c.status,
                mode: c.mode,
                ca_cert_id: c.ca_cert_id,
                not_before: c.not_before,
                not_after: c.not_after,
            });
        }
        for ca in snap.ca_certificates {
            r.cas
                .insert((ca.account_id, ca.region, ca.cert_id), (ca.status, ca.mode));
        }
        for p in snap.policies {
            // Stored documents were validated when they were created; the size limit is not re-applied here.
            match PolicyDocument::parse_with_limit(&p.document, usize::MAX) {
                Ok(document) => {
                    r.policies.insert(
                        (p.account_id, p.region, p.name.clone()),
                        Arc::new(LoadedPolicy {
                            generation_id: p.generation_id,
                            document,
                        }),
                    );
                }
                Err(e) => tracing::warn!(policy = %p.name, account = %p.account_id, error = %e,
                    "stored policy document does not parse; it grants nothing"),
            }
        }
        for a in snap.policy_attachments {
            r.attachments
                .entry((a.account_id, a.region, a.target))
                .or_default()
                .push(a.policy_name);
        }
        for p in snap.principal_attachments {
            r.principal_things
                .entry((p.account_id, p.region, p.principal))
                .or_default()
                .push((p.thing_name, p.principal_type));
        }
        for t in snap.things {
            r.things
                .insert((t.account_id.clone(), t.region.clone(), t.name.clone()), t);
        }
        for g in snap.groups {
            r.group_parent
                .insert((g.account_id, g.region, g.name), g.parent);
        }
        r
    }

    fn intern_region(&mut self, region: &str) -> Arc<str> {
        if let Some(r) = self.regions.get(region) {
            return r.clone();
        }
        let r: Arc<str> = Arc::from(region);
        self.regions.insert(r.clone());
        r
    }

    /// The account and region an SNI host name names, when it is an account endpoint
    /// (`<prefix>-ats.iot.<region>.<domain>` or `<prefix>.iot.<region>.<domain>`) of an existing account.
    pub fn account_for_sni(&self, sni: &str, domain: &str) -> Option<Scope> {
        let sni = sni.trim_end_matches('.').to_ascii_lowercase();
        let rest = sni.strip_suffix(domain)?.strip_suffix('.')?;
        let (label, region) = rest.split_once(".iot.")?;
        if region.is_empty() || region.contains('.') {
            return None;
        }
        let prefix = label.strip_suffix("-ats").unwrap_or(label);
        let account = self.prefixes.get(prefix)?;
        Some(Scope {
            account_id: account.clone(),
            region: Arc::from(region),
        })
    }

    /// Decides which account a certificate connects to, and whether it may (interfaces.md "Endpoints").
    pub fn resolve(
        &self,
        cert_id: &str,
        sni_scope: Option<&Scope>,
        now_unix: i64,
    ) -> Result<Scope, Refusal> {
        let regs = self.certs.get(cert_id).ok_or(Refusal::UnknownCertificate)?;
        let reg = match sni_scope {
            Some(s) => {
                regs.iter()
                    .find(|r| r.scope == *s)
                    .ok_or_else(|| Refusal::NotInSniAccount {
                        account: s.account_id.to_string(),
                        region: s.region.to_string(),
                    })?
            }
            None => {
                let [reg] = regs.as_slice() else {
                    return Err(Refusal::Ambiguous);
                };
                let ca_sni_only = reg.ca_cert_id.as_ref().is_some_and(|ca| {
                    self.cas
                        .get(&k3(&reg.scope.account_id, &reg.scope.region, ca))
                        .is_some_and(|(_, mode)| *mode == CertificateMode::SniOnly)
                });
                if reg.mode == CertificateMode::SniOnly || ca_sni_only {
                    return Err(Refusal::SniRequired);
                }
                reg
            }
        };
        if reg.status != CertificateStatus::Active {
            return Err(Refusal::Status(reg.status));
        }
        if now_unix < reg.not_before || now_unix > reg.not_after {
            return Err(Refusal::Expired);
        }
        if let Some(ca) = &reg.ca_cert_id {
            let (account, region) = reg.scope.key();
            if let Some((status, _)) = self.cas.get(&k3(account, region, ca))
                && *status != CertificateStatus::Active
            {
                return Err(Refusal::CaInactive(ca.clone()));
            }
        }
        Ok(reg.scope.clone())
    }

    /// The thing of a connection and the policies in effect for it: those attached to the certificate, plus those
    /// attached to the thing's groups and their ancestors (AWS GetEffectivePolicies).
    pub fn authz(&self, scope: &Scope, cert_id: &str, client_id: &str) -> Authz {
        let (account, region) = scope.key();
        let cert_arn = format!("arn:aws:iot:{region}:{account}:cert/{cert_id}");
        let attached = self.principal_things.get(&k3(account, region, &cert_arn));
        // Exclusive association: the thing comes from the certificate. Otherwise it is the thing named by the
        // client id, and only if that thing is attached to this certificate.
        let (thing_name, exclusive) = match attached {
            Some(list) => match list
                .iter()
                .find(|(_, kind)| *kind == PrincipalType::Exclusive)
            {
                Some((name, _)) => (Some(name.as_str()), true),
                None => (
                    list.iter()
                        .find(|(name, _)| name == client_id)
                        .map(|(name, _)| name.as_str()),
                    false,
                ),
            },
            None => (None, false),
        };
        let thing = thing_name.and_then(|n| self.things.get(&k3(account, region, n)));
        let mut names: Vec<&str> = Vec::new();
        if let Some(list) = self.attachments.get(&k3(account, region, &cert_arn)) {
            names.extend(list.iter().map(String::as_str));
        }
        if let Some(t) = thing {
            let mut seen = HashSet::new();
            for g in &t.groups {
                let mut cur = Some(g.clone());
                // Walk to the root; `seen` also guards against a cycle in hand-edited data.
                while let Some(name) = cur {
                    if !seen.insert(name.clone()) {
                        break;
                    }
                    let arn = format!("arn:aws:iot:{region}:{account}:thinggroup/{name}");
                    if let Some(list) = self.attachments.get(&k3(account, region, &arn)) {
                        names.extend(list.iter().map(String::as_str));
                    }
                    cur = self
                        .group_parent
                        .get(&k3(account, region, &name))
                        .cloned()
                        .flatten();
                }
            }
        }
        names.sort_unstable();
        names.dedup();
        let policies: Vec<Arc<LoadedPolicy>> = names
            .iter()
            .filter_map(|n| self.policies.get(&k3(account, region, n)).cloned())
            .collect();
        let thing_info = thing.map(|t| ThingInfo {
            name: t.name.as_str().into(),
            type_name: t.thing_type.as_deref().map(Into::into),
            attributes: t
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            is_attached: true,
        });
        Authz {
            key: AuthzKey {
                generations: policies.iter().map(|p| p.generation_id.clone()).collect(),
                thing: thing_info,
                exclusive_thing: exclusive && thing.is_some(),
            },
            policies,
        }
    }
}
