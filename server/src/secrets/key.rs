//! The master key: seals secrets at rest (AES-256-GCM) and keys their
//! fingerprints (HMAC-SHA256 under a key derived from it), so a
//! fingerprint shows that a secret changed without letting anyone who reads
//! it test guesses offline.

use std::{io::Write, path::Path};

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, AeadCore, KeyInit, OsRng},
};
use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD as B64};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What every fingerprint starts with; one that does not (`sha256:`, the
/// unkeyed digest of earlier versions) is recomputed at start.
pub const FINGERPRINT_PREFIX: &str = "hmac-sha256:";

/// The label the fingerprint key is derived with.
const FINGERPRINT_LABEL: &[u8] = b"sluice fingerprint v1";
/// The label the password-hash salt key is derived with.
const SALT_LABEL: &[u8] = b"sluice principal salt v1";

/// The key every secret at rest is sealed with.
#[derive(Clone)]
pub struct MasterKey {
    sealing: Key<Aes256Gcm>,
    /// HMAC(master, "sluice fingerprint v1"): never used to seal, so a
    /// fingerprint reveals nothing about the sealing key.
    fingerprints: [u8; 32],
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

impl MasterKey {
    fn from_key(sealing: Key<Aes256Gcm>) -> Self {
        let fingerprints = hmac(sealing.as_slice(), FINGERPRINT_LABEL);
        Self {
            sealing,
            fingerprints,
        }
    }

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
                Ok(Self::from_key(*Key::<Aes256Gcm>::from_slice(&bytes)))
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
                Ok(Self::from_key(key))
            }
            Err(e) => Err(e).with_context(|| format!("reading master key file {}", path.display())),
        }
    }

    /// A key for tests and tools that need no persistence.
    pub fn random() -> Self {
        Self::from_key(Aes256Gcm::generate_key(OsRng))
    }

    /// `hmac-sha256:<hex>` of a secret value: what reads return instead of
    /// the value. The same value always has the same fingerprint under one
    /// master key.
    pub fn fingerprint(&self, value: &str) -> String {
        format!(
            "{FINGERPRINT_PREFIX}{}",
            hex::encode(hmac(&self.fingerprints, value.as_bytes()))
        )
    }

    /// A 16-byte salt for hashing a secret that belongs to `context`
    /// (an entity and a username, say): the same under one master key,
    /// different for every context, unpredictable without the key.
    pub fn salt(&self, context: &[u8]) -> [u8; 16] {
        let salts = hmac(self.sealing.as_slice(), SALT_LABEL);
        let mut out = [0u8; 16];
        out.copy_from_slice(&hmac(&salts, context)[..16]);
        out
    }

    /// Seals a text: base64 of nonce || ciphertext.
    pub(crate) fn seal(&self, plain: &str) -> String {
        let cipher = Aes256Gcm::new(&self.sealing);
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
        let plain = Aes256Gcm::new(&self.sealing)
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| anyhow::anyhow!("sealed secret does not open with this master key"))?;
        Ok(String::from_utf8(plain)?)
    }
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    use super::*;

    #[test]
    fn fingerprints_are_keyed() {
        let (a, b) = (MasterKey::random(), MasterKey::random());
        let print = a.fingerprint("hunter2");
        assert!(print.starts_with(FINGERPRINT_PREFIX), "{print}");
        assert_eq!(print, a.fingerprint("hunter2"), "stable under one key");
        assert_ne!(print, a.fingerprint("hunter3"));
        assert_ne!(
            print,
            b.fingerprint("hunter2"),
            "another key, another print"
        );
        // Nobody without the key can test a guess against it.
        let unkeyed = hex::encode(Sha256::digest(b"hunter2"));
        assert!(!print.contains(&unkeyed));
    }
}
