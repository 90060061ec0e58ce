//! Write-only secrets: sealed with AES-256-GCM under the master key, exposed
//! only as fingerprints.
//!
//! Secret fields are found by type (`sluice.admin.v1.Secret`) through the
//! compiled descriptors, so a new secret field anywhere in the model is
//! protected without touching this module.

use std::{collections::BTreeMap, io::Write, path::Path};

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, AeadCore, KeyInit, OsRng},
};
use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD as B64};
use prost::Message;
use prost_reflect::{DynamicMessage, ReflectMessage, Value};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_proto::admin::v1::{Entity, Secret};

const SECRET_TYPE: &str = "sluice.admin.v1.Secret";
const ENTITY_TYPE: &str = "sluice.admin.v1.Entity";

/// The key every secret at rest is sealed with.
#[derive(Clone)]
pub struct MasterKey(Key<Aes256Gcm>);

impl MasterKey {
    /// Reads the key file, or creates it (mode 0600, 32 random bytes,
    /// base64) when it does not exist yet.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = B64
                    .decode(text.trim())
                    .with_context(|| format!("master key file {}: not base64", path.display()))?;
                if bytes.len() != 32 {
                    bail!(
                        "master key file {}: holds {} bytes, expected 32",
                        path.display(),
                        bytes.len()
                    );
                }
                Ok(Self(*Key::<Aes256Gcm>::from_slice(&bytes)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Aes256Gcm::generate_key(OsRng);
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options
                    .open(path)
                    .with_context(|| format!("creating master key file {}", path.display()))?;
                writeln!(file, "{}", B64.encode(key))?;
                tracing::info!(path = %path.display(), "generated a new master key");
                Ok(Self(key))
            }
            Err(e) => Err(e).with_context(|| format!("reading master key file {}", path.display())),
        }
    }

    /// A key for tests and tools that need no persistence.
    pub fn random() -> Self {
        Self(Aes256Gcm::generate_key(OsRng))
    }

    /// Seals a text: base64 of nonce || ciphertext.
    pub(crate) fn seal(&self, plain: &str) -> String {
        let cipher = Aes256Gcm::new(&self.0);
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption with a valid key and nonce cannot fail for in-memory input.
        let sealed = cipher.encrypt(&nonce, plain.as_bytes()).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        B64.encode(out)
    }

    /// Opens what [`MasterKey::seal`] sealed.
    pub(crate) fn open(&self, sealed: &str) -> anyhow::Result<String> {
        let bytes = B64.decode(sealed).context("sealed secret is not base64")?;
        if bytes.len() < 12 {
            bail!("sealed secret is too short");
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = Aes256Gcm::new(&self.0)
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| anyhow::anyhow!("sealed secret does not open with this master key"))?;
        Ok(String::from_utf8(plain)?)
    }
}

/// `sha256:<hex>` of a secret value.
pub fn fingerprint(value: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(value.as_bytes())))
}

/// One secret at rest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SealedSecret {
    /// The fingerprint reads return.
    pub fingerprint: String,
    /// base64 of nonce || AES-256-GCM ciphertext.
    pub sealed: String,
}

/// The sealed secrets of one entity, by field path
/// (`authentication.sasl_plain.password`).
pub type SealedSecrets = BTreeMap<String, SealedSecret>;

/// Calls `f` with the path (relative to the kind's spec) and value of every
/// `Secret` set in the entity, letting it change them.
pub fn for_each_secret(
    entity: &mut Entity,
    mut f: impl FnMut(&str, &mut Secret),
) -> anyhow::Result<()> {
    let pool = sluice_proto::descriptor_pool();
    let descriptor = pool
        .get_message_by_name(ENTITY_TYPE)
        .context("Entity descriptor missing")?;
    let mut dynamic = DynamicMessage::decode(descriptor, entity.encode_to_vec().as_slice())?;
    let mut changed = false;
    for (field, value) in dynamic.fields_mut() {
        // Only the spec oneof holds secrets; paths start below it.
        if field.containing_oneof().is_some() {
            walk(value, "", &mut |path, secret| {
                changed = true;
                f(path, secret)
            })?;
        }
    }
    if changed {
        *entity = dynamic.transcode_to()?;
    }
    Ok(())
}

fn walk(value: &mut Value, path: &str, f: &mut dyn FnMut(&str, &mut Secret)) -> anyhow::Result<()> {
    match value {
        Value::Message(message) if message.descriptor().full_name() == SECRET_TYPE => {
            let mut secret: Secret = message.transcode_to()?;
            f(path, &mut secret);
            message.clear();
            message.transcode_from(&secret)?;
        }
        Value::Message(message) => {
            for (field, child) in message.fields_mut() {
                walk(child, &join(path, field.name()), f)?;
            }
        }
        Value::List(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &format!("{path}[{i}]"), f)?;
            }
        }
        Value::Map(entries) => {
            for (key, item) in entries.iter_mut() {
                let key = match key {
                    prost_reflect::MapKey::String(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                walk(item, &format!("{path}[{key}]"), f)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Prepares secrets before validation: client-sent fingerprints are
/// dropped (they are output only) and, on update, a secret sent without a
/// value keeps the stored one (its fingerprint is filled in).
pub fn carry_over(entity: &mut Entity, stored: &SealedSecrets) -> anyhow::Result<()> {
    for_each_secret(entity, |path, secret| {
        secret.fingerprint.clear();
        if secret.value.is_empty()
            && let Some(old) = stored.get(path)
        {
            secret.fingerprint = old.fingerprint.clone();
        }
    })
}

/// Seals every secret value of a validated entity: values are encrypted
/// into the returned map and replaced by fingerprints in the entity.
pub fn seal(
    entity: &mut Entity,
    stored: &SealedSecrets,
    key: &MasterKey,
) -> anyhow::Result<SealedSecrets> {
    let mut sealed = SealedSecrets::new();
    for_each_secret(entity, |path, secret| {
        if !secret.value.is_empty() {
            let print = fingerprint(&secret.value);
            let value = std::mem::take(&mut secret.value);
            sealed.insert(
                path.to_string(),
                SealedSecret {
                    sealed: key.seal(&value),
                    fingerprint: print.clone(),
                },
            );
            secret.fingerprint = print;
        } else if let Some(old) = stored.get(path) {
            sealed.insert(path.to_string(), old.clone());
        }
    })?;
    Ok(sealed)
}

/// Puts the plain values back into an entity (for the data planes, which
/// need them to talk to brokers and clients).
pub fn open(entity: &mut Entity, sealed: &SealedSecrets, key: &MasterKey) -> anyhow::Result<()> {
    let mut failure = None;
    for_each_secret(entity, |path, secret| {
        if let Some(s) = sealed.get(path) {
            match key.open(&s.sealed) {
                Ok(v) => secret.value = v,
                Err(e) => failure = Some(e.context(format!("secret {path}"))),
            }
        }
    })?;
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::admin::v1::{
        BackendAuthentication, BackendCluster, BackendSaslPlain, backend_authentication::Method,
        entity::Spec,
    };

    fn cluster(password: &str) -> Entity {
        Entity {
            spec: Some(Spec::BackendCluster(BackendCluster {
                authentication: Some(BackendAuthentication {
                    method: Some(Method::SaslPlain(BackendSaslPlain {
                        username: "u".into(),
                        password: Some(Secret {
                            value: password.into(),
                            fingerprint: String::new(),
                        }),
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
        assert_eq!(password(&e).fingerprint, fingerprint("hunter2"));
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
        carry_over(&mut update, &stored).unwrap();
        assert_eq!(password(&update).fingerprint, fingerprint("hunter2"));
        let sealed = seal(&mut update, &stored, &key).unwrap();
        assert_eq!(sealed, stored);
    }

    #[test]
    fn a_wrong_key_does_not_open() {
        let mut e = cluster("hunter2");
        let sealed = seal(&mut e, &SealedSecrets::new(), &MasterKey::random()).unwrap();
        assert!(open(&mut e, &sealed, &MasterKey::random()).is_err());
    }
}
