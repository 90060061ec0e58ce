//! Write-only secrets: sealed with AES-256-GCM under the master key,
//! exposed only as keyed fingerprints.
//!
//! Secret fields are found by type (`sluice.admin.v1.Secret`) through the
//! compiled descriptors ([`paths`]), so a new secret field anywhere in the
//! model is protected without touching this module.

pub mod hashed;
mod key;
pub mod paths;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_proto::admin::v1::Entity;

pub use key::{FINGERPRINT_PREFIX, MasterKey};
pub use paths::{Naming, for_each_secret};

/// One secret at rest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SealedSecret {
    /// The fingerprint reads return.
    pub fingerprint: String,
    /// base64 of nonce || AES-256-GCM ciphertext.
    pub sealed: String,
}

/// The sealed secrets of one entity, by path
/// (`authentication[sasl_plain].sasl_plain.principals[username=alice].password`).
pub type SealedSecrets = BTreeMap<String, SealedSecret>;

/// Prepares secrets before validation. Client-sent fingerprints are
/// dropped (they are output only); a secret sent with a value gets the
/// fingerprint of that value; on update, a secret sent without a value
/// keeps the one stored at its path, fingerprint included. So every secret
/// that is set carries its fingerprint, and checks compare fingerprints.
pub fn carry_over(
    entity: &mut Entity,
    stored: &SealedSecrets,
    key: &MasterKey,
) -> anyhow::Result<()> {
    for_each_secret(entity, Naming::Stable, |path, secret| {
        secret.fingerprint = if !secret.value.is_empty() {
            key.fingerprint(&secret.value)
        } else {
            stored
                .get(path)
                .map(|old| old.fingerprint.clone())
                .unwrap_or_default()
        };
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
    for_each_secret(entity, Naming::Stable, |path, secret| {
        if !secret.value.is_empty() {
            let print = key.fingerprint(&secret.value);
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
/// need them to talk to brokers and clients, and for webhook delivery).
pub fn open(entity: &mut Entity, sealed: &SealedSecrets, key: &MasterKey) -> anyhow::Result<()> {
    open_named(entity, sealed, key, Naming::Stable)
}

/// [`open`] for secrets stored under paths named the way `naming` says.
pub fn open_named(
    entity: &mut Entity,
    sealed: &SealedSecrets,
    key: &MasterKey,
    naming: Naming,
) -> anyhow::Result<()> {
    let mut failure = None;
    for_each_secret(entity, naming, |path, secret| {
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
mod tests;
