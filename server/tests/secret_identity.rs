//! A secret is known by a keyed fingerprint and kept by what identifies
//! it: fingerprints are HMACs under the server's master key (the same
//! value reads the same on one server and differently on another, and
//! nobody can test a guess without the key), and "keep the stored secret"
//! pairs list items by username or certificate, never by position.

mod common;

use common::create;

use common::fixtures;
use sha2::{Digest, Sha256};
use sluice_acceptance::node::{self, Node};
use sluice_proto::admin::v1::{
    CertificateAndKey, Entity, ListenerPolicyTlsServer, Principal, Secret, UpdateEntityRequest,
    VirtualCluster, entity::Spec, virtual_cluster_authentication::Method,
};

async fn update(admin: &mut common::Admin, e: Entity) -> Entity {
    admin
        .update_entity(UpdateEntityRequest {
            entity: Some(e),
            expected_revision: 0,
        })
        .await
        .unwrap()
        .into_inner()
}

fn backend_print(e: &Entity) -> String {
    let Some(Spec::BackendCluster(b)) = &e.spec else {
        panic!()
    };
    let Some(sluice_proto::admin::v1::backend_authentication::Method::SaslPlain(p)) =
        b.authentication.as_ref().unwrap().method.as_ref()
    else {
        panic!()
    };
    p.password.as_ref().unwrap().fingerprint.clone()
}

fn vc_spec(e: &mut Entity) -> &mut VirtualCluster {
    match e.spec.as_mut() {
        Some(Spec::VirtualCluster(v)) => v,
        _ => panic!("not a virtual cluster"),
    }
}

fn principals(e: &mut Entity) -> &mut Vec<Principal> {
    match vc_spec(e).authentication[0].method.as_mut() {
        Some(Method::SaslPlain(p)) => &mut p.principals,
        _ => panic!("not sasl_plain"),
    }
}

/// (username, password value, password fingerprint) of each principal.
fn users(mut e: Entity) -> Vec<(String, String, String)> {
    principals(&mut e)
        .iter()
        .map(|p| {
            let s = p.password.clone().unwrap_or_default();
            (p.username.clone(), s.value, s.fingerprint)
        })
        .collect()
}

fn keys(e: &Entity) -> Vec<(String, String)> {
    let Some(Spec::ListenerPolicyTlsServer(t)) = &e.spec else {
        panic!()
    };
    t.certificates
        .iter()
        .map(|c| {
            let k = c.key.clone().unwrap_or_default();
            (
                c.certificate.clone(),
                if k.value.is_empty() {
                    k.fingerprint
                } else {
                    k.value
                },
            )
        })
        .collect()
}

#[tokio::test]
async fn fingerprints_are_keyed_by_the_master_key() {
    let (_d1, _s1, mut one, _) = common::start().await;
    let (_d2, _s2, mut two, _) = common::start().await;
    let mut prints = Vec::new();
    for admin in [&mut one, &mut two] {
        let gw = create(admin, fixtures::gateway("gw")).await;
        let b = create(admin, fixtures::backend(&gw.id, "kafka", "backend-pw-123")).await;
        let print = backend_print(&b);
        assert!(print.starts_with("hmac-sha256:"), "{print}");
        let bare = hex::encode(Sha256::digest("backend-pw-123"));
        assert!(!print.contains(&bare), "an unkeyed digest: {print}");
        // The same value sent again reads the same on this server.
        let mut resend = b.clone();
        if let Some(Spec::BackendCluster(spec)) = resend.spec.as_mut()
            && let Some(sluice_proto::admin::v1::backend_authentication::Method::SaslPlain(p)) =
                spec.authentication.as_mut().and_then(|a| a.method.as_mut())
        {
            p.password = fixtures::secret("backend-pw-123");
        }
        assert_eq!(backend_print(&update(admin, resend).await), print);
        prints.push(print);
    }
    assert_ne!(prints[0], prints[1], "two master keys, two fingerprints");
}

#[tokio::test]
async fn reordered_items_keep_their_own_secrets() {
    let (dir, server, mut admin, _) = common::start().await;
    let gw = create(&mut admin, fixtures::gateway("pairs")).await;
    let backend = create(
        &mut admin,
        fixtures::backend(&gw.id, "kafka", "backend-pw-123"),
    )
    .await;
    let mut vc = fixtures::virtual_cluster(&gw.id, "vc", &backend.id, "vc");
    *principals(&mut vc) = vec![
        Principal {
            username: "alice".into(),
            password: fixtures::secret("alice-pw-123"),
            ..Default::default()
        },
        Principal {
            username: "bob".into(),
            password: fixtures::secret("bob-pw-456"),
            ..Default::default()
        },
    ];
    let vc = create(&mut admin, vc).await;
    let before = users(vc.clone());

    // Reordered, passwords left empty: each keeps its own.
    let mut reordered = vc.clone();
    principals(&mut reordered).reverse();
    for p in principals(&mut reordered).iter_mut() {
        p.password = Some(Secret::default());
    }
    let after = users(update(&mut admin, reordered).await);
    assert_eq!(
        after,
        [before[1].clone(), before[0].clone()],
        "bob's and alice's fingerprints follow them"
    );

    // The data plane gets a hash of each principal's own password.
    let certs = node::issue(common::bin(), dir.path(), "pairs", &dir.path().join("node"));
    let mut n = Node::connect(&server.sync_addr, &certs, node::hello("n1", 0))
        .await
        .unwrap();
    let snapshot = n.update().await;
    n.ack(&snapshot).await;
    let mut sent = snapshot
        .upserted
        .into_iter()
        .find(|e| e.id == vc.id)
        .unwrap();
    let hashed: Vec<(String, bool)> = principals(&mut sent)
        .iter()
        .map(|p| {
            use argon2::{PasswordHash, PasswordVerifier};
            let own = format!(
                "{}-pw-{}",
                p.username,
                if p.username == "bob" { 456 } else { 123 }
            );
            let hash = PasswordHash::new(&p.password_hash).expect("a password hash");
            let verified = argon2::Argon2::default()
                .verify_password(own.as_bytes(), &hash)
                .is_ok();
            (p.username.clone(), verified)
        })
        .collect();
    assert_eq!(
        hashed,
        [("bob".to_string(), true), ("alice".into(), true)],
        "each principal's hash is of its own password"
    );

    // Certificate and key pairs follow their certificate.
    let listener = create(&mut admin, fixtures::listener(&gw.id, "l", &["19092"])).await;
    let (cert_a, key_a) = fixtures::cert_and_key();
    let (cert_b, key_b) = fixtures::cert_and_key();
    let tls = create(
        &mut admin,
        fixtures::entity(
            &gw.id,
            "tls",
            Spec::ListenerPolicyTlsServer(ListenerPolicyTlsServer {
                listener_id: listener.id.clone(),
                certificates: vec![
                    CertificateAndKey {
                        certificate: cert_a.clone(),
                        key: fixtures::secret(&key_a),
                    },
                    CertificateAndKey {
                        certificate: cert_b.clone(),
                        key: fixtures::secret(&key_b),
                    },
                ],
                ..Default::default()
            }),
        ),
    )
    .await;
    let prints = keys(&tls);
    let mut swapped = tls.clone();
    if let Some(Spec::ListenerPolicyTlsServer(t)) = swapped.spec.as_mut() {
        t.certificates.reverse();
        for c in &mut t.certificates {
            c.key = Some(Secret::default());
        }
    }
    let swapped = update(&mut admin, swapped).await;
    assert_eq!(keys(&swapped), [prints[1].clone(), prints[0].clone()]);
    // Updates coalesce while one is in flight: the policy's last state
    // arrives within a few.
    let mut last = None;
    for _ in 0..5 {
        let u = n.update().await;
        n.ack(&u).await;
        if let Some(e) = u.upserted.into_iter().find(|e| e.id == tls.id) {
            last = Some(e.clone());
            if e.revision == swapped.revision {
                break;
            }
        }
    }
    let sent = last.expect("the tls policy reached the node");
    assert_eq!(sent.revision, swapped.revision);
    assert_eq!(keys(&sent), [(cert_b, key_b), (cert_a, key_a)]);
}
