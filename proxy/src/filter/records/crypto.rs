//! AES-256-GCM for record parts and JSON fields: a random 96-bit nonce per
//! encryption (so one key should seal at most about 2^32 records: rotate),
//! the format, key id and part or field path as associated data (a
//! ciphertext moved to another part or field, or relabelled with another
//! key id, does not decrypt), the static key's id carried with the record
//! so decryption picks the right key from those a policy lists (keys
//! rotate by adding a new one to `key_sources`).
//!
//! Whole parts: the part becomes `nonce ‖ ciphertext ‖ tag`, and the
//! headers `sluice-key-id` (the key) and `sluice-encrypted` (`key`,
//! `value` or `key,value`) say how. Fields: the member's JSON text is
//! encrypted and the member replaced by the envelope string
//! `sluice:v1:<key id>:<base64 of nonce ‖ ciphertext ‖ tag>`.

use base64::Engine;
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

/// The header naming the key a record's parts were encrypted with.
pub(super) const KEY_ID_HEADER: &str = "sluice-key-id";
/// The header naming the parts that are encrypted.
pub(super) const PARTS_HEADER: &str = "sluice-encrypted";
/// How an encrypted field's envelope starts.
const ENVELOPE: &str = "sluice:v1:";
const NONCE: usize = 12;
const TAG: usize = 16;

/// A static key, ready to use.
pub(crate) struct Key {
    /// The static_key's id.
    pub(super) id: String,
    /// The id as a header value (shared, not copied per record).
    pub(super) id_header: bytes::Bytes,
    /// ring's AES-256-GCM (the one rustls uses: hardware AES and carry-less
    /// multiplication, stitched).
    cipher: LessSafeKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

impl Key {
    /// The key `id` with its 32 bytes; an error for any other length.
    pub(super) fn new(id: &str, bytes: &[u8]) -> Result<Key, String> {
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| format!("static_key {id}: not a 32-byte key"))?;
        Ok(Key {
            id: id.to_string(),
            id_header: bytes::Bytes::copy_from_slice(id.as_bytes()),
            cipher: LessSafeKey::new(key),
        })
    }

    /// `plaintext` sealed, bound to `label` (a part or a field path):
    /// `nonce ‖ ciphertext ‖ tag` in one buffer, encrypted in place. The
    /// nonce is random (a fresh one per record, from the thread's CSPRNG).
    pub(super) fn seal(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(NONCE + plaintext.len() + TAG);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let aad = self.associated(label);
        let tag = self
            .cipher
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut out[NONCE..],
            )
            .map_err(|_| "cannot encrypt".to_string())?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// What `sealed` (from [`Key::seal`] with the same `label`) holds.
    pub(super) fn open(&self, label: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        let refused = || {
            format!(
                "{label}: does not decrypt with static_key {} (another key, or altered)",
                self.id
            )
        };
        if sealed.len() < NONCE + TAG {
            return Err(format!("{label}: too short to be a ciphertext"));
        }
        let (nonce, body) = sealed.split_at(NONCE);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let aad = self.associated(label);
        let mut buf = body.to_vec();
        let plain = self
            .cipher
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
            .map_err(|_| refused())?
            .len();
        buf.truncate(plain);
        Ok(buf)
    }

    /// What a ciphertext is bound to: the format, this key and the part or
    /// field path (moved to another part, or relabelled with another key
    /// id, it does not decrypt).
    fn associated(&self, label: &str) -> String {
        format!("{ENVELOPE}{}:{label}", self.id)
    }

    /// The envelope of a JSON field's `text`.
    pub(super) fn seal_field(&self, path: &str, text: &[u8]) -> Result<String, String> {
        let sealed = self.seal(path, text)?;
        Ok(format!(
            "{ENVELOPE}{}:{}",
            self.id,
            base64::engine::general_purpose::STANDARD.encode(sealed)
        ))
    }
}

/// The key id and the sealed bytes of an envelope string, if it is one.
pub(super) fn envelope(text: &str) -> Option<Result<(&str, Vec<u8>), String>> {
    let rest = text.strip_prefix(ENVELOPE)?;
    let Some((id, sealed)) = rest.split_once(':') else {
        return Some(Err("an envelope without a key id".into()));
    };
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map(|bytes| (id, bytes))
            .map_err(|_| "an envelope whose ciphertext is not base64".into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_parts_and_fields_open_only_with_their_key_and_label() {
        let key = Key::new("k1", &[7; 32]).unwrap();
        let other = Key::new("k2", &[8; 32]).unwrap();
        let sealed = key.seal("value", b"secret").unwrap();
        assert_ne!(&sealed[NONCE..NONCE + 6], b"secret");
        assert_eq!(key.open("value", &sealed).unwrap(), b"secret");
        assert!(key.open("key", &sealed).is_err(), "bound to its part");
        assert!(other.open("value", &sealed).unwrap_err().contains("k2"));
        // The same key bytes under another id: bound to the id too.
        let renamed = Key::new("k9", &[7; 32]).unwrap();
        assert!(
            renamed.open("value", &sealed).is_err(),
            "bound to its key id"
        );
        assert_ne!(
            key.seal("value", b"secret").unwrap(),
            sealed,
            "a fresh nonce each time"
        );
        let field = key.seal_field("$.card", b"\"4111\"").unwrap();
        let (id, bytes) = envelope(&field).unwrap().unwrap();
        assert_eq!(id, "k1");
        assert_eq!(key.open("$.card", &bytes).unwrap(), b"\"4111\"");
        assert!(envelope("plain").is_none());
        assert!(envelope("sluice:v1:nokey").unwrap().is_err());
    }
}
