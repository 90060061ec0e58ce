use sluice_proto::admin::v1::{
    BackendAuthentication, BackendCluster, BackendSaslPlain, CertificateAndKey,
    ListenerPolicyTlsServer, Principal, Secret, VirtualCluster, VirtualClusterAuthentication,
    VirtualSaslPlain, backend_authentication::Method, entity::Spec, virtual_cluster_authentication,
};

use super::*;

fn secret(value: &str) -> Option<Secret> {
    Some(Secret {
        value: value.into(),
        fingerprint: String::new(),
    })
}

fn cluster(password: &str) -> Entity {
    Entity {
        spec: Some(Spec::BackendCluster(BackendCluster {
            authentication: Some(BackendAuthentication {
                method: Some(Method::SaslPlain(BackendSaslPlain {
                    username: "u".into(),
                    password: secret(password),
                })),
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn password(e: &Entity) -> Secret {
    let Some(Spec::BackendCluster(b)) = &e.spec else {
        panic!("not a backend")
    };
    let Some(Method::SaslPlain(p)) = b.authentication.as_ref().and_then(|a| a.method.clone())
    else {
        panic!("not sasl_plain")
    };
    p.password.unwrap_or_default()
}

#[test]
fn seal_redacts_and_open_restores() {
    let key = MasterKey::random();
    let mut e = cluster("hunter2");
    let sealed = seal(&mut e, &SealedSecrets::new(), &key).unwrap();
    assert_eq!(password(&e).value, "");
    assert_eq!(password(&e).fingerprint, key.fingerprint("hunter2"));
    let entry = &sealed["authentication.sasl_plain.password"];
    assert!(!entry.sealed.contains("hunter2"));
    open(&mut e, &sealed, &key).unwrap();
    assert_eq!(password(&e).value, "hunter2");
}

#[test]
fn empty_value_keeps_the_stored_secret() {
    let key = MasterKey::random();
    let mut first = cluster("hunter2");
    let stored = seal(&mut first, &SealedSecrets::new(), &key).unwrap();
    let mut update = cluster("");
    carry_over(&mut update, &stored, &key).unwrap();
    assert_eq!(password(&update).fingerprint, key.fingerprint("hunter2"));
    let sealed = seal(&mut update, &stored, &key).unwrap();
    assert_eq!(sealed, stored);
    // A value sent carries its own fingerprint into the checks.
    let mut again = cluster("hunter3");
    carry_over(&mut again, &stored, &key).unwrap();
    assert_eq!(password(&again).fingerprint, key.fingerprint("hunter3"));
}

#[test]
fn a_wrong_key_does_not_open() {
    let mut e = cluster("hunter2");
    let sealed = seal(&mut e, &SealedSecrets::new(), &MasterKey::random()).unwrap();
    assert!(open(&mut e, &sealed, &MasterKey::random()).is_err());
}

fn principals(users: &[(&str, &str)]) -> Entity {
    let rule = VirtualClusterAuthentication {
        method: Some(virtual_cluster_authentication::Method::SaslPlain(
            VirtualSaslPlain {
                principals: users
                    .iter()
                    .map(|(u, p)| Principal {
                        username: (*u).into(),
                        password: secret(p),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
        )),
    };
    Entity {
        spec: Some(Spec::VirtualCluster(VirtualCluster {
            authentication: vec![rule],
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn certificates(pairs: &[(&str, &str)]) -> Entity {
    Entity {
        spec: Some(Spec::ListenerPolicyTlsServer(ListenerPolicyTlsServer {
            certificates: pairs
                .iter()
                .map(|(c, k)| CertificateAndKey {
                    certificate: (*c).into(),
                    key: secret(k),
                })
                .collect(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// (path, plain value) of every secret after sealing `update` over `stored`.
fn opened(update: &mut Entity, stored: &SealedSecrets, key: &MasterKey) -> Vec<(String, String)> {
    carry_over(update, stored, key).unwrap();
    let sealed = seal(update, stored, key).unwrap();
    open(update, &sealed, key).unwrap();
    let mut out = Vec::new();
    for_each_secret(update, Naming::Stable, |path, s| {
        out.push((path.to_string(), s.value.clone()))
    })
    .unwrap();
    out
}

#[test]
fn reordered_items_keep_their_own_secrets() {
    let key = MasterKey::random();
    let mut first = principals(&[("alice", "a-pw"), ("bob", "b-pw")]);
    let stored = seal(&mut first, &SealedSecrets::new(), &key).unwrap();
    let mut reordered = principals(&[("bob", ""), ("alice", "")]);
    assert_eq!(
        opened(&mut reordered, &stored, &key),
        [
            (
                "authentication[sasl_plain].sasl_plain.principals[username=bob].password".into(),
                "b-pw".into()
            ),
            (
                "authentication[sasl_plain].sasl_plain.principals[username=alice].password".into(),
                "a-pw".into()
            ),
        ]
    );
    // A renamed principal has no stored password to keep.
    let mut renamed = principals(&[("carol", "")]);
    assert_eq!(
        opened(&mut renamed, &stored, &key),
        [(
            "authentication[sasl_plain].sasl_plain.principals[username=carol].password".into(),
            String::new()
        )]
    );

    let (one, two) = (
        "-----BEGIN CERTIFICATE-----\none",
        "-----BEGIN CERTIFICATE-----\ntwo",
    );
    let mut first = certificates(&[(one, "key-1"), (two, "key-2")]);
    let stored = seal(&mut first, &SealedSecrets::new(), &key).unwrap();
    let mut reordered = certificates(&[(two, ""), (one, "")]);
    let values: Vec<String> = opened(&mut reordered, &stored, &key)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values, ["key-2", "key-1"]);
}

#[test]
fn positions_remain_readable_for_the_upgrade() {
    let key = MasterKey::random();
    let mut e = principals(&[("alice", "a-pw"), ("bob", "b-pw")]);
    let mut legacy = SealedSecrets::new();
    for_each_secret(&mut e, Naming::Position, |path, s| {
        legacy.insert(
            path.to_string(),
            SealedSecret {
                fingerprint: String::new(),
                sealed: key.seal(&s.value),
            },
        );
        s.value.clear();
    })
    .unwrap();
    assert!(legacy.contains_key("authentication[0].sasl_plain.principals[1].password"));
    open_named(&mut e, &legacy, &key, Naming::Position).unwrap();
    let sealed = seal(&mut e, &SealedSecrets::new(), &key).unwrap();
    let mut back = principals(&[("bob", ""), ("alice", "")]);
    open(&mut back, &sealed, &key).unwrap();
    let Some(Spec::VirtualCluster(vc)) = back.spec else {
        panic!()
    };
    let Some(virtual_cluster_authentication::Method::SaslPlain(p)) =
        vc.authentication[0].method.clone()
    else {
        panic!()
    };
    let pws: Vec<String> = p
        .principals
        .iter()
        .map(|p| p.password.clone().unwrap_or_default().value)
        .collect();
    assert_eq!(pws, ["b-pw", "a-pw"]);
}
