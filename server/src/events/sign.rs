//! Webhook signatures: `x-sluice-signature: sha256=<hex HMAC-SHA256 of the
//! body, keyed with the hook's secret>`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header value signing `body` with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_a_known_vector() {
        // RFC 4231 test case 2.
        let sig = super::signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
