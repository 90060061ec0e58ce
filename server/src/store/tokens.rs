//! Admin tokens: random bearer tokens, stored only as SHA-256 hashes.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use super::{Store, now_millis};

/// Prefix of every admin token, so a leaked one is recognisable.
const PREFIX: &str = "sluice_";

/// A freshly created token: the only time its value is known.
pub struct NewToken {
    /// The token's id.
    pub id: String,
    /// The bearer token to give the user.
    pub token: String,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Creates a token named `name` and returns its value (never stored).
    pub async fn create_token(&self, name: &str) -> anyhow::Result<NewToken> {
        let mut bytes = [0u8; 32];
        aes_gcm::aead::rand_core::RngCore::fill_bytes(&mut aes_gcm::aead::OsRng, &mut bytes);
        let token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO admin_tokens (id, name, hash, created_at) VALUES (?, ?, ?, ?)")
            .bind(&id)
            .bind(name)
            .bind(hash(&token))
            .bind(now_millis())
            .execute(&self.pool)
            .await?;
        Ok(NewToken { id, token })
    }

    /// The name of the token, if `token` is a valid one.
    pub async fn check_token(&self, token: &str) -> anyhow::Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM admin_tokens WHERE hash = ?")
                .bind(hash(token))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// How many tokens exist.
    pub async fn count_tokens(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM admin_tokens")
            .fetch_one(&self.pool)
            .await?)
    }
}
