//! Principal passwords as data planes receive them: an argon2id hash, never
//! the password. A virtual cluster's `sasl_plain` principals are checked
//! by the data planes (`terminate`), which therefore hold only what lets
//! them verify a password, not what lets them present one.
//!
//! The cost is OWASP's first argon2id recommendation (19 MiB, two passes,
//! one lane): about 20-40 ms per check on a server core, which a client
//! pays once per connection. The salt is derived from the master key and
//! the principal, so a hash is the same in every snapshot and delta (nodes
//! see no spurious change), and hashes are cached by the password's
//! fingerprint, so a snapshot does not re-hash unchanged passwords.

use std::{collections::HashMap, sync::Mutex};

use anyhow::Context;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version, password_hash::SaltString};
use sluice_proto::admin::v1::{
    Entity, Mediation, entity::Spec, virtual_cluster_authentication::Method,
};

use super::MasterKey;

/// Memory cost in KiB (19 MiB).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Passes over the memory.
pub const PASSES: u32 = 2;
/// Lanes.
pub const LANES: u32 = 1;
/// Cached hashes kept before the cache is emptied.
const CACHE_LIMIT: usize = 10_000;

/// The hasher every principal password is hashed with.
pub fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes already computed, by (password fingerprint, salt).
type Hashes = HashMap<(String, [u8; 16]), String>;

/// Hashes of passwords already computed.
static CACHE: Mutex<Option<Hashes>> = Mutex::new(None);

/// Replaces the password of every `sasl_plain` principal of a virtual
/// cluster (opened, so in clear) with its argon2id hash in
/// `password_hash`; other entities are left as they are.
pub fn hash_principals(entity: &mut Entity, key: &MasterKey) -> anyhow::Result<()> {
    let id = entity.id.clone();
    let Some(Spec::VirtualCluster(vc)) = entity.spec.as_mut() else {
        return Ok(());
    };
    for rule in &mut vc.authentication {
        let Some(Method::SaslPlain(plain)) = rule.method.as_mut() else {
            continue;
        };
        // Only `terminate` checks passwords at the data plane; other rules'
        // principals are not needed there at all.
        let checked = plain.mediation == Mediation::Terminate as i32;
        for principal in &mut plain.principals {
            if !checked {
                if let Some(secret) = principal.password.as_mut() {
                    secret.value.clear();
                }
                continue;
            }
            let Some(secret) = principal.password.as_mut() else {
                continue;
            };
            if secret.value.is_empty() {
                continue;
            }
            let salt = key.salt(format!("{id}\0{}", principal.username).as_bytes());
            principal.password_hash = hash(&secret.value, &secret.fingerprint, salt, key)
                .with_context(|| {
                    format!("hashing the password of principal {:?}", principal.username)
                })?;
            secret.value.clear();
        }
    }
    Ok(())
}

fn hash(
    password: &str,
    fingerprint: &str,
    salt: [u8; 16],
    key: &MasterKey,
) -> anyhow::Result<String> {
    let fingerprint = if fingerprint.is_empty() {
        key.fingerprint(password)
    } else {
        fingerprint.to_string()
    };
    let cached = |cache: &mut Option<HashMap<_, String>>| {
        cache
            .get_or_insert_with(HashMap::new)
            .get(&(fingerprint.clone(), salt))
            .cloned()
    };
    if let Some(found) = cached(&mut CACHE.lock().unwrap_or_else(|p| p.into_inner())) {
        return Ok(found);
    }
    let salt_string = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let phc = hasher()
        .hash_password(password.as_bytes(), &salt_string)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if map.len() >= CACHE_LIMIT {
        map.clear();
    }
    map.insert((fingerprint, salt), phc.clone());
    Ok(phc)
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHash, PasswordVerifier};
    use sluice_proto::admin::v1::{
        Principal, Secret, VirtualCluster, VirtualClusterAuthentication, VirtualSaslPlain,
    };

    use super::*;

    fn vc(password: &str) -> Entity {
        Entity {
            id: "vc-1".into(),
            spec: Some(Spec::VirtualCluster(VirtualCluster {
                authentication: vec![VirtualClusterAuthentication {
                    method: Some(Method::SaslPlain(VirtualSaslPlain {
                        mediation: Mediation::Terminate as i32,
                        principals: vec![Principal {
                            username: "alice".into(),
                            password: Some(Secret {
                                value: password.into(),
                                fingerprint: String::new(),
                            }),
                            ..Default::default()
                        }],
                    })),
                }],
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn principal(e: &Entity) -> &Principal {
        match &e.spec {
            Some(Spec::VirtualCluster(vc)) => match &vc.authentication[0].method {
                Some(Method::SaslPlain(p)) => &p.principals[0],
                _ => panic!("not sasl_plain"),
            },
            _ => panic!("not a virtual cluster"),
        }
    }

    #[test]
    fn data_planes_get_a_stable_argon2id_hash_and_no_password() {
        let key = MasterKey::random();
        let mut e = vc("s3cret-pw");
        hash_principals(&mut e, &key).unwrap();
        let p = principal(&e);
        assert_eq!(p.password.as_ref().unwrap().value, "", "no password left");
        assert!(
            p.password_hash
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            p.password_hash
        );
        let parsed = PasswordHash::new(&p.password_hash).unwrap();
        assert!(hasher().verify_password(b"s3cret-pw", &parsed).is_ok());
        assert!(hasher().verify_password(b"s3cret-px", &parsed).is_err());
        // The same hash again (no spurious change for nodes); another
        // password or another master key gives another one.
        let mut again = vc("s3cret-pw");
        hash_principals(&mut again, &key).unwrap();
        assert_eq!(principal(&again).password_hash, p.password_hash);
        let mut other = vc("other-pw");
        hash_principals(&mut other, &key).unwrap();
        assert_ne!(principal(&other).password_hash, p.password_hash);
        let mut rekeyed = vc("s3cret-pw");
        hash_principals(&mut rekeyed, &MasterKey::random()).unwrap();
        assert_ne!(principal(&rekeyed).password_hash, p.password_hash);
    }
}
