//! Secrets are write-only: never in a response (Validate included), never
//! in clear in the database file; reads show a keyed fingerprint that
//! changes with the value and stays when the value is kept or sent again.
//!
//! Every secret field is found in the descriptors (a field of type
//! `sluice.admin.v1.Secret`, singly, in a list or as map values, at any
//! depth below a kind's spec), so a new secret field is covered without
//! code here: the test plants a value there, and fails with the field's
//! path if it cannot make the server accept one.

mod common;

use common::fixtures::{self, Ids};
use prost::Message;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind as FieldKind, MapKey, MessageDescriptor, Value,
};
use sha2::{Digest, Sha256};
use sluice_proto::{
    admin::v1::{
        CreateEntityRequest, Entity, GetEntityRequest, Kind, ListEntitiesRequest,
        ListRevisionsRequest, UpdateEntityRequest, ValidateRequest, validate_request::Operation,
    },
    entity::ALL_KINDS,
    facts,
};
use tonic::Code;

const SECRET: &str = "sluice.admin.v1.Secret";
const CERT_AND_KEY: &str = "sluice.admin.v1.CertificateAndKey";
/// The key a planted map entry (a webhook header) gets.
const MAP_KEY: &str = "X-Planted-Secret";

/// Where one secret field is: its kind and the fields from the spec down.
struct Site {
    kind: Kind,
    steps: Vec<FieldDescriptor>,
}

impl Site {
    fn path(&self) -> String {
        let mut path = self.kind.slug().to_string();
        for f in &self.steps {
            path.push('.');
            path.push_str(f.name());
            if f.is_map() {
                path.push_str("{}");
            } else if f.is_list() {
                path.push_str("[]");
            }
        }
        path
    }

    fn leaf(&self) -> &FieldDescriptor {
        self.steps.last().unwrap()
    }

    /// Whether the secret is the value of a static key, or the key of a
    /// certificate: values with a format of their own.
    fn format(&self) -> Format {
        let leaf = self.leaf();
        match (leaf.parent_message().full_name(), leaf.name()) {
            ("sluice.admin.v1.StaticKey", "value") => Format::Hex32,
            (CERT_AND_KEY, "key") => Format::PemKey,
            _ => Format::Text,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Text,
    Hex32,
    PemKey,
}

/// The message a field holds (a map's value message), if any.
fn message_of(field: &FieldDescriptor) -> Option<MessageDescriptor> {
    match field.kind() {
        FieldKind::Message(m) if field.is_map() => match m.map_entry_value_field().kind() {
            FieldKind::Message(v) => Some(v),
            _ => None,
        },
        FieldKind::Message(m) => Some(m),
        _ => None,
    }
}

/// Every secret field of every kind, from the descriptors.
fn sites() -> Vec<Site> {
    fn walk(
        kind: Kind,
        message: &MessageDescriptor,
        steps: &mut Vec<FieldDescriptor>,
        out: &mut Vec<Site>,
    ) {
        for field in message.fields() {
            let Some(m) = message_of(&field) else {
                continue;
            };
            steps.push(field.clone());
            if m.full_name() == SECRET {
                out.push(Site {
                    kind,
                    steps: steps.clone(),
                });
            } else if !steps[..steps.len() - 1]
                .iter()
                .any(|s| message_of(s).is_some_and(|o| o == m))
            {
                walk(kind, &m, steps, out);
            }
            steps.pop();
        }
    }
    let mut out = Vec::new();
    for kind in ALL_KINDS {
        if let Some(spec) = facts::spec_message(kind) {
            walk(kind, &spec, &mut Vec::new(), &mut out);
        }
    }
    out
}

/// A fresh value for `format`, and (for a key) the certificate it goes with.
fn fresh(format: Format) -> (String, Option<String>) {
    let id = || uuid::Uuid::new_v4().simple().to_string();
    match format {
        Format::Text => (format!("planted-{}", id()), None),
        Format::Hex32 => (format!("{}{}", id(), id()), None),
        Format::PemKey => {
            let (cert, key) = fixtures::cert_and_key();
            (key, Some(cert))
        }
    }
}

/// A new message along a planted path: required strings and every enum
/// set, a certificate and key pair generated.
fn filled(m: &MessageDescriptor, planted: &mut Vec<String>) -> DynamicMessage {
    let mut msg = DynamicMessage::new(m.clone());
    if m.full_name() == CERT_AND_KEY {
        let (key, cert) = fresh(Format::PemKey);
        msg.set_field_by_name("certificate", Value::String(cert.unwrap()));
        let mut secret =
            DynamicMessage::new(message_of(&m.get_field_by_name("key").unwrap()).unwrap());
        secret.set_field_by_name("value", Value::String(key.clone()));
        msg.set_field_by_name("key", Value::Message(secret));
        planted.push(key);
        return msg;
    }
    for field in m.fields() {
        if field.is_list() || field.is_map() || field.containing_oneof().is_some() {
            continue;
        }
        match field.kind() {
            FieldKind::String if facts::of(&field).required => {
                msg.set_field(&field, Value::String("planted-filler".into()))
            }
            FieldKind::Enum(e) => {
                if let Some(v) = e.values().find(|v| v.number() != 0) {
                    msg.set_field(&field, Value::EnumNumber(v.number()));
                }
            }
            // A settings block with a switch (backend `tls`) is refused
            // with settings but switched off.
            FieldKind::Bool if field.name() == "enabled" => {
                msg.set_field(&field, Value::Bool(true))
            }
            _ => {}
        }
    }
    msg
}

/// The message at `field` of `msg`, created (filled) when absent: a list's
/// first item, a map's [`MAP_KEY`] entry.
fn child<'a>(
    msg: &'a mut DynamicMessage,
    field: &FieldDescriptor,
    planted: &mut Vec<String>,
) -> &'a mut DynamicMessage {
    let m = message_of(field).unwrap();
    if field.is_map() {
        let map = msg.get_field_mut(field).as_map_mut().unwrap();
        let entry = map
            .entry(MapKey::String(MAP_KEY.into()))
            .or_insert_with(|| Value::Message(filled(&m, planted)));
        return entry.as_message_mut().unwrap();
    }
    if field.is_list() {
        let list = msg.get_field_mut(field).as_list_mut().unwrap();
        if list.is_empty() {
            list.push(Value::Message(filled(&m, planted)));
        }
        return list[0].as_message_mut().unwrap();
    }
    if !msg.has_field(field) {
        // Setting a oneof member clears the others.
        msg.set_field(field, Value::Message(filled(&m, planted)));
    }
    msg.get_field_mut(field).as_message_mut().unwrap()
}

/// The entity's spec as a dynamic message, for `f`; written back after.
fn with_spec<T>(e: &mut Entity, f: impl FnOnce(&mut DynamicMessage) -> T) -> T {
    let mut dynamic = facts::to_dynamic(e).unwrap();
    let spec = facts::entity_message()
        .get_field_by_name(e.kind().slug())
        .unwrap();
    let out = f(dynamic.get_field_mut(&spec).as_message_mut().unwrap());
    *e = dynamic.transcode_to().unwrap();
    out
}

/// Sets a value at `site` (keeping one a fixture already put there);
/// returns every plaintext now in the entity because of it.
fn plant(e: &mut Entity, site: &Site) -> Vec<String> {
    with_spec(e, |spec| {
        let mut planted = Vec::new();
        let (last, path) = site.steps.split_last().unwrap();
        let mut msg = spec;
        for field in path {
            msg = child(msg, field, &mut planted);
        }
        let secret = child(msg, last, &mut planted);
        let current = secret
            .get_field_by_name("value")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        if current.is_empty() {
            let (value, _) = fresh(site.format());
            secret.set_field_by_name("value", Value::String(value.clone()));
            planted.push(value);
        } else {
            planted.push(current);
        }
        planted
    })
}

/// The secret at `site`: (value, fingerprint), if the entity has one.
fn read(e: &Entity, site: &Site) -> Option<(String, String)> {
    let mut e = e.clone();
    with_spec(&mut e, |spec| {
        let mut msg: DynamicMessage = spec.clone();
        for field in &site.steps {
            let value = msg.get_field(field).into_owned();
            let next = if field.is_map() {
                value
                    .as_map()?
                    .get(&MapKey::String(MAP_KEY.into()))?
                    .clone()
            } else if field.is_list() {
                value.as_list()?.first()?.clone()
            } else if msg.has_field(field) {
                value
            } else {
                return None;
            };
            msg = next.as_message()?.clone();
        }
        let get = |name| {
            msg.get_field_by_name(name)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        Some((get("value"), get("fingerprint")))
    })
}

/// Replaces the secret at `site` with `value` (a key with its certificate).
fn replace(e: &mut Entity, site: &Site, value: &str, cert: Option<&str>) {
    with_spec(e, |spec| {
        let mut planted = Vec::new();
        let (last, path) = site.steps.split_last().unwrap();
        let mut msg = spec;
        for field in path {
            msg = child(msg, field, &mut planted);
        }
        if let Some(cert) = cert {
            msg.set_field_by_name("certificate", Value::String(cert.into()));
        }
        let secret = child(msg, last, &mut planted);
        secret.set_field_by_name("value", Value::String(value.into()));
        secret.clear_field_by_name("fingerprint");
    });
}

/// What must never be seen: each plaintext, and each line of a PEM body.
fn needles(plaintexts: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for p in plaintexts {
        if p.contains("-----BEGIN") {
            out.extend(
                p.lines()
                    .filter(|l| l.len() >= 32 && !l.starts_with("-----"))
                    .map(str::to_string),
            );
        } else {
            out.push(p.clone());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every response and error the test saw, to scan at the end.
#[derive(Default)]
struct Seen(Vec<Vec<u8>>);

impl Seen {
    fn ok<T: Message>(&mut self, r: Result<tonic::Response<T>, tonic::Status>, what: &str) -> T {
        match r {
            Ok(r) => {
                let r = r.into_inner();
                self.0.push(r.encode_to_vec());
                r
            }
            Err(status) => {
                self.err(&status);
                panic!("{what}: {status:?}")
            }
        }
    }

    fn err(&mut self, status: &tonic::Status) {
        self.0.push(status.message().as_bytes().to_vec());
        self.0.push(status.details().to_vec());
    }
}

fn validate_create(e: &Entity) -> ValidateRequest {
    ValidateRequest {
        operation: Some(Operation::Create(CreateEntityRequest {
            entity: Some(e.clone()),
        })),
        ..Default::default()
    }
}

fn update_req(e: &Entity) -> UpdateEntityRequest {
    UpdateEntityRequest {
        entity: Some(e.clone()),
        expected_revision: 0,
    }
}

#[test]
fn the_descriptors_name_every_known_secret() {
    let paths: Vec<String> = sites().iter().map(Site::path).collect();
    for known in [
        "backend_cluster.authentication.sasl_plain.password",
        "backend_cluster.authentication.sasl_scram.password",
        "backend_cluster.tls.client_identity.key",
        "virtual_cluster.authentication[].sasl_plain.principals[].password",
        "listener_policy_tls_server.certificates[].key",
        "static_key.value",
        "event_hook.config.secret",
        "event_hook.config.headers{}",
    ] {
        assert!(paths.iter().any(|p| p == known), "{known} not in {paths:?}");
    }
}

#[tokio::test]
async fn no_secret_is_ever_returned_or_stored_in_clear() {
    let (dir, server, mut c, _) = common::start().await;
    let mut ids = Ids::default();
    for kind in [
        Kind::Gateway,
        Kind::BackendCluster,
        Kind::Listener,
        Kind::TlsTrustBundle,
    ] {
        let e = common::create(&mut c, fixtures::of_kind(kind, &ids)).await;
        match kind {
            Kind::Gateway => ids.gateway = e.id,
            Kind::BackendCluster => ids.backend = e.id,
            Kind::Listener => ids.listener = e.id,
            _ => ids.trust_bundle = e.id,
        }
    }
    // The base backend's password: a plaintext too.
    let mut plain: Vec<String> = vec!["backend-pw-123".into()];
    let mut seen = Seen::default();
    let sites = sites();
    for (i, site) in sites.iter().enumerate() {
        let path = site.path();
        let mut e = fixtures::of_kind(site.kind, &ids);
        e.name = format!("site-{i}");
        if let Some(sluice_proto::admin::v1::entity::Spec::VirtualCluster(vc)) = e.spec.as_mut() {
            vc.dns_label = format!("site-{i}");
        }
        plain.extend(plant(&mut e, site));
        let original = read(&e, site).unwrap().0;

        let checked = seen.ok(c.validate(validate_create(&e)).await, &path);
        let (value, print) = read(checked.entity.as_ref().unwrap(), site).unwrap();
        assert!(
            value.is_empty() && print.starts_with("hmac-sha256:"),
            "{path}: Validate"
        );
        let created = seen.ok(
            c.create_entity(CreateEntityRequest {
                entity: Some(e.clone()),
            })
            .await,
            &format!("{path}: the server refused the planted secret; teach `fresh` its format"),
        );
        let (value, first) = read(&created, site).expect(&path);
        assert_eq!(value, "", "{path}");
        assert!(first.starts_with("hmac-sha256:"), "{path}: {first}");
        assert_eq!(print, first, "{path}: Validate and create agree");
        if site.format() == Format::Text {
            // Keyed: not the bare digest anyone could test guesses against.
            let bare = hex::encode(Sha256::digest(plain.last().unwrap()));
            assert!(!first.contains(&bare), "{path}");
        }
        seen.ok(
            c.get_entity(GetEntityRequest {
                kind: site.kind as i32,
                id: created.id.clone(),
            })
            .await,
            &path,
        );
        seen.ok(
            c.list_entities(ListEntitiesRequest {
                kind: site.kind as i32,
                gateway_id: ids.gateway.clone(),
                ..Default::default()
            })
            .await,
            &path,
        );

        // Left empty, the secret is kept.
        let kept = seen.ok(c.update_entity(update_req(&created)).await, &path);
        assert_eq!(read(&kept, site).unwrap().1, first, "{path}: kept");

        // A new value changes the fingerprint (an immutable secret refuses
        // it); the same value sent again keeps it.
        let (value, cert) = fresh(site.format());
        plain.push(value.clone());
        let mut changed = kept.clone();
        replace(&mut changed, site, &value, cert.as_deref());
        let dry = c
            .validate(ValidateRequest {
                operation: Some(Operation::Update(update_req(&changed))),
                ..Default::default()
            })
            .await;
        let immutable = facts::of(site.leaf()).immutable;
        let after = if immutable {
            let status = dry.unwrap_err();
            seen.err(&status);
            assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
            let status = c.update_entity(update_req(&changed)).await.unwrap_err();
            seen.err(&status);
            assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
            changed = kept.clone();
            replace(&mut changed, site, &original, None);
            first.clone()
        } else {
            let dry = seen.ok(dry, &path);
            let second = read(
                &seen.ok(c.update_entity(update_req(&changed)).await, &path),
                site,
            )
            .unwrap()
            .1;
            assert_ne!(second, first, "{path}: a new value, a new fingerprint");
            assert_eq!(
                read(dry.entity.as_ref().unwrap(), site).unwrap().1,
                second,
                "{path}: Validate shows the new fingerprint"
            );
            second
        };
        let again = seen.ok(c.update_entity(update_req(&changed)).await, &path);
        assert_eq!(read(&again, site).unwrap().1, after, "{path}: sent again");
        eprintln!("checked {path}: {first} then {after} (immutable: {immutable})");
    }
    seen.ok(
        c.list_revisions(ListRevisionsRequest {
            gateway_id: ids.gateway.clone(),
            ..Default::default()
        })
        .await,
        "revisions",
    );

    let needles = needles(&plain);
    for r in &seen.0 {
        for p in &needles {
            assert!(!contains(r, p), "a response contains the secret {p:?}");
        }
    }

    // Stop the server (checkpointing the WAL) and scan every database file.
    // The runtime keeps running meanwhile, so the dropped client's
    // connection closes and the server need not wait for it.
    drop(c);
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    let mut scanned = 0;
    let mut names_seen = false;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("sluice.db") {
            let bytes = std::fs::read(&path).unwrap();
            scanned += bytes.len();
            for p in &needles {
                assert!(!contains(&bytes, p), "{name} contains the secret {p:?}");
            }
            // The scan can fail: names are stored in clear.
            names_seen |= contains(&bytes, "site-0");
        }
    }
    assert!(
        scanned > 0 && names_seen,
        "the scan did not see the stored entities"
    );
}
