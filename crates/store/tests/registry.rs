//! The registry's domain rules, checked directly against the store: each rule, and that a refused change leaves
//! nothing behind.

#![allow(clippy::unwrap_used)]

use store::{
    CaRegistration, CertificateMode, CertificateStatus, NewAccount, NewCertificate, NewThing,
    NewThingGroup, PageRequest, PrincipalType, Scope, Store, StoreError, Target,
};

struct Fixture {
    store: Store,
    a: Scope,
    b: Scope,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db")).await.unwrap();
    for (id, name) in [("111111111111", "a"), ("222222222222", "b")] {
        store
            .create_account(&NewAccount {
                account_id: id.into(),
                name: name.into(),
                endpoint_prefix: format!("p{id}"),
                access_key_id: format!("AKIA{id}"),
                secret_access_key: "secret".into(),
            })
            .await
            .unwrap();
    }
    Fixture {
        store,
        a: Scope::new("111111111111", "us-east-1"),
        b: Scope::new("222222222222", "us-east-1"),
        _dir: dir,
    }
}

fn cert(
    id: char,
    mode: CertificateMode,
    status: CertificateStatus,
    ca: Option<&str>,
) -> NewCertificate {
    NewCertificate {
        cert_id: id.to_string().repeat(64),
        pem: "PEM".into(),
        ca_cert_id: ca.map(str::to_owned),
        status,
        mode,
        not_before: 0,
        not_after: 2_000_000_000,
    }
}

fn ca(id: char, mode: CertificateMode) -> CaRegistration {
    CaRegistration {
        cert_id: id.to_string().repeat(64),
        pem: "CA PEM".into(),
        subject_hex: "3000".into(),
        mode,
        active: true,
        auto_registration: false,
        registration_config: None,
        not_before: 0,
        not_after: 2_000_000_000,
    }
}

fn all() -> PageRequest {
    PageRequest {
        after: None,
        limit: 250,
        ascending: true,
    }
}

#[tokio::test]
async fn certificate_status_transitions() {
    use CertificateStatus::*;
    let f = fixture().await;
    // (from, to, allowed)
    let cases = [
        (Active, Inactive, true),
        (Inactive, Active, true),
        (Active, Revoked, true),
        (Revoked, Active, false),
        (Revoked, Inactive, false),
        (Inactive, PendingTransfer, false),
        (Inactive, PendingActivation, false),
        (PendingActivation, Active, true),
    ];
    for (i, (from, to, allowed)) in cases.into_iter().enumerate() {
        let id = char::from_digit(i as u32, 16).unwrap();
        f.store
            .insert_certificate(&f.a, &cert(id, CertificateMode::Default, from, None))
            .await
            .unwrap();
        let result = f
            .store
            .update_certificate_status(&f.a, &id.to_string().repeat(64), to)
            .await;
        let now = f
            .store
            .describe_certificate(&f.a, &id.to_string().repeat(64))
            .await
            .unwrap()
            .status;
        if allowed {
            assert!(result.is_ok(), "{from} -> {to}: {result:?}");
            assert_eq!(now, to);
        } else {
            assert!(
                matches!(result, Err(StoreError::CertificateState(_))),
                "{from} -> {to}: {result:?}"
            );
            assert_eq!(now, from, "a refused transition changes nothing");
        }
    }
}

#[tokio::test]
async fn default_mode_ca_belongs_to_one_account_per_region() {
    let f = fixture().await;
    f.store
        .register_ca_certificate(&f.a, &ca('c', CertificateMode::Default))
        .await
        .unwrap();
    let refused = f
        .store
        .register_ca_certificate(&f.b, &ca('c', CertificateMode::Default))
        .await;
    assert!(
        matches!(refused, Err(StoreError::AlreadyExists { .. })),
        "{refused:?}"
    );
    assert!(
        f.store
            .describe_ca_certificate(&f.b, &"c".repeat(64))
            .await
            .is_err(),
        "nothing stored"
    );
    // SNI_ONLY in the other account, and DEFAULT in another region, are fine.
    f.store
        .register_ca_certificate(&f.b, &ca('c', CertificateMode::SniOnly))
        .await
        .unwrap();
    let west = Scope::new("222222222222", "us-west-2");
    f.store
        .register_ca_certificate(&west, &ca('c', CertificateMode::Default))
        .await
        .unwrap();
}

#[tokio::test]
async fn certificates_register_only_under_an_active_ca_of_the_account() {
    let f = fixture().await;
    let ca_id = "c".repeat(64);
    let mut inactive = ca('c', CertificateMode::Default);
    inactive.active = false;
    f.store
        .register_ca_certificate(&f.a, &inactive)
        .await
        .unwrap();
    let refused = f
        .store
        .insert_certificate(
            &f.a,
            &cert(
                '1',
                CertificateMode::Default,
                CertificateStatus::Active,
                Some(&ca_id),
            ),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::CertificateState(_))),
        "{refused:?}"
    );
    let other_account = f
        .store
        .insert_certificate(
            &f.b,
            &cert(
                '1',
                CertificateMode::Default,
                CertificateStatus::Active,
                Some(&ca_id),
            ),
        )
        .await;
    assert!(
        matches!(other_account, Err(StoreError::NotFound(_))),
        "{other_account:?}"
    );
    assert!(
        f.store
            .list_certificates(&f.a, None, &all())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_default_mode_certificate_lives_in_one_account_but_sni_only_in_many() {
    let f = fixture().await;
    let sni = cert(
        '5',
        CertificateMode::SniOnly,
        CertificateStatus::Active,
        None,
    );
    f.store.insert_certificate(&f.a, &sni).await.unwrap();
    f.store.insert_certificate(&f.b, &sni).await.unwrap();
    let default = cert(
        '6',
        CertificateMode::Default,
        CertificateStatus::Active,
        None,
    );
    f.store.insert_certificate(&f.a, &default).await.unwrap();
    assert!(matches!(
        f.store.insert_certificate(&f.b, &default).await,
        Err(StoreError::AlreadyExists { .. })
    ));
}

#[tokio::test]
async fn delete_certificate_rules() {
    let f = fixture().await;
    let id = "d".repeat(64);
    f.store
        .insert_certificate(
            &f.a,
            &cert(
                'd',
                CertificateMode::Default,
                CertificateStatus::Active,
                None,
            ),
        )
        .await
        .unwrap();
    assert!(matches!(
        f.store.delete_certificate(&f.a, &id, false).await,
        Err(StoreError::CertificateState(_))
    ));
    f.store
        .update_certificate_status(&f.a, &id, CertificateStatus::Inactive)
        .await
        .unwrap();
    f.store.create_policy(&f.a, "p", "{}").await.unwrap();
    f.store
        .attach_policy(&f.a, "p", &Target::Certificate(id.clone()))
        .await
        .unwrap();
    f.store
        .create_thing(
            &f.a,
            &NewThing {
                name: "t".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    f.store
        .attach_thing_principal(
            &f.a,
            "t",
            &Target::Certificate(id.clone()),
            PrincipalType::NonExclusive,
        )
        .await
        .unwrap();
    // Thing attachments block even a forced delete; policy attachments block only an unforced one.
    assert!(matches!(
        f.store.delete_certificate(&f.a, &id, true).await,
        Err(StoreError::DeleteConflict(_))
    ));
    f.store
        .detach_thing_principal(&f.a, "t", &Target::Certificate(id.clone()))
        .await
        .unwrap();
    assert!(matches!(
        f.store.delete_certificate(&f.a, &id, false).await,
        Err(StoreError::DeleteConflict(_))
    ));
    f.store.delete_certificate(&f.a, &id, true).await.unwrap();
    assert!(
        f.store
            .list_policy_targets(&f.a, "p", &all())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn transfer_lifecycle() {
    let f = fixture().await;
    let id = "e".repeat(64);
    f.store
        .insert_certificate(
            &f.a,
            &cert(
                'e',
                CertificateMode::Default,
                CertificateStatus::Active,
                None,
            ),
        )
        .await
        .unwrap();
    assert!(matches!(
        f.store
            .transfer_certificate(&f.a, &id, &f.b.account_id, None)
            .await,
        Err(StoreError::CertificateState(_))
    ));
    f.store
        .update_certificate_status(&f.a, &id, CertificateStatus::Inactive)
        .await
        .unwrap();
    f.store
        .transfer_certificate(&f.a, &id, &f.b.account_id, Some("yours"))
        .await
        .unwrap();
    // The target sees it, and only the target can accept.
    assert_eq!(
        f.store
            .list_certificates(&f.b, None, &all())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(
        f.store
            .accept_certificate_transfer(&f.a, &id, true)
            .await
            .is_err()
    );
    f.store
        .accept_certificate_transfer(&f.b, &id, true)
        .await
        .unwrap();
    let c = f.store.describe_certificate(&f.b, &id).await.unwrap();
    assert_eq!(
        (c.owned_by.as_str(), c.previous_owned_by.as_deref()),
        ("222222222222", Some("111111111111"))
    );
    assert_eq!(c.status, CertificateStatus::Active);
    assert!(
        f.store.describe_certificate(&f.a, &id).await.is_err(),
        "gone from the source"
    );
    assert!(matches!(
        f.store.accept_certificate_transfer(&f.b, &id, true).await,
        Err(StoreError::TransferAlreadyCompleted(_))
    ));
}

#[tokio::test]
async fn policy_versions_are_limited_and_ids_never_reused() {
    let f = fixture().await;
    f.store.create_policy(&f.a, "p", "v1").await.unwrap();
    for n in 2..=5 {
        assert_eq!(
            f.store
                .create_policy_version(&f.a, "p", "vn", false)
                .await
                .unwrap()
                .version_id,
            n
        );
    }
    assert!(matches!(
        f.store.create_policy_version(&f.a, "p", "v6", false).await,
        Err(StoreError::VersionsLimitExceeded(_))
    ));
    assert!(matches!(
        f.store.delete_policy_version(&f.a, "p", 1).await,
        Err(StoreError::DeleteConflict(_))
    ));
    f.store.delete_policy_version(&f.a, "p", 5).await.unwrap();
    let v = f
        .store
        .create_policy_version(&f.a, "p", "v6", true)
        .await
        .unwrap();
    assert_eq!((v.version_id, v.is_default), (6, true));
    assert_eq!(f.store.get_policy(&f.a, "p").await.unwrap().document, "v6");
    assert!(matches!(
        f.store.delete_policy(&f.a, "p").await,
        Err(StoreError::DeleteConflict(_))
    ));
}

#[tokio::test]
async fn thing_groups_hierarchy_and_membership_rules() {
    let f = fixture().await;
    let group = |name: &str, parent: Option<&str>| NewThingGroup {
        name: name.into(),
        parent: parent.map(str::to_owned),
        ..Default::default()
    };
    f.store
        .create_thing_group(&f.a, &group("root", None))
        .await
        .unwrap();
    f.store
        .create_thing_group(&f.a, &group("child", Some("root")))
        .await
        .unwrap();
    let g = f.store.describe_thing_group(&f.a, "child").await.unwrap();
    assert_eq!(
        g.ancestors
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["root"]
    );
    f.store
        .create_thing(
            &f.a,
            &NewThing {
                name: "t".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    f.store
        .add_thing_to_group(&f.a, "child", "t")
        .await
        .unwrap();
    // Not in two groups of one hierarchy.
    assert!(matches!(
        f.store.add_thing_to_group(&f.a, "root", "t").await,
        Err(StoreError::InvalidRequest(_))
    ));
    assert!(matches!(
        f.store.delete_thing_group(&f.a, "root", None).await,
        Err(StoreError::InvalidRequest(_))
    ));
    // Group policies are inherited by children in a recursive listing.
    f.store
        .create_policy(&f.a, "rootpolicy", "{}")
        .await
        .unwrap();
    f.store
        .attach_policy(&f.a, "rootpolicy", &Target::ThingGroup("root".into()))
        .await
        .unwrap();
    let listed = f
        .store
        .list_attached_policies(&f.a, &Target::ThingGroup("child".into()), true, &all())
        .await;
    assert_eq!(listed.unwrap().items.len(), 1);
}

#[tokio::test]
async fn pagination_walks_every_item_once_in_both_orders() {
    let f = fixture().await;
    for n in 0..7 {
        f.store
            .create_thing(
                &f.a,
                &NewThing {
                    name: format!("t{n}"),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let id = char::from_digit(n, 16).unwrap();
        f.store
            .insert_certificate(
                &f.a,
                &cert(
                    id,
                    CertificateMode::Default,
                    CertificateStatus::Active,
                    None,
                ),
            )
            .await
            .unwrap();
    }
    for ascending in [true, false] {
        let mut page = PageRequest {
            after: None,
            limit: 3,
            ascending,
        };
        let mut seen = Vec::new();
        loop {
            let p = f.store.list_certificates(&f.a, None, &page).await.unwrap();
            seen.extend(p.items.into_iter().map(|c| c.cert_id));
            match p.next {
                Some(n) => page.after = Some(n),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            7,
            "every certificate exactly once (ascending={ascending})"
        );
    }
    let bad = PageRequest {
        after: Some("garbage".into()),
        limit: 3,
        ascending: true,
    };
    assert!(matches!(
        f.store.list_things(&f.a, &Default::default(), &bad).await,
        Err(StoreError::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn accounts_are_isolated_and_regions_separate() {
    let f = fixture().await;
    f.store
        .create_thing(
            &f.a,
            &NewThing {
                name: "mine".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        f.store.describe_thing(&f.b, "mine").await,
        Err(StoreError::NotFound(_))
    ));
    let west = Scope::new("111111111111", "us-west-2");
    assert!(matches!(
        f.store.describe_thing(&west, "mine").await,
        Err(StoreError::NotFound(_))
    ));
    // Account b creating the same name makes its own thing.
    f.store
        .create_thing(
            &f.b,
            &NewThing {
                name: "mine".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_ne!(
        f.store.describe_thing(&f.a, "mine").await.unwrap().thing_id,
        f.store.describe_thing(&f.b, "mine").await.unwrap().thing_id
    );
}
