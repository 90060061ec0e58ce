//! Admin tokens: random bearer tokens, stored only as SHA-256 hashes, with
//! an optional expiry and revocation. An expired or revoked token is
//! refused like an unknown one.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Store, now_millis};

/// Prefix of every admin token, so a leaked one is recognisable.
const PREFIX: &str = "sluice_";

/// The condition a usable token's row meets at `?` (now, unix ms).
const LIVE: &str = "revoked_at = 0 AND (expires_at = 0 OR expires_at > ?)";

/// A freshly created token: the only time its value is known.
pub struct NewToken {
    /// The token's id.
    pub id: String,
    /// The bearer token to give the user.
    pub token: String,
}

/// What is known of a token after its creation (never its value).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// The token's id.
    pub id: String,
    /// The name it was created with.
    pub name: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms; 0: never expires.
    pub expires_at: i64,
    /// Unix ms; 0: not revoked.
    pub revoked_at: i64,
}

impl TokenInfo {
    /// `active`, `expired` or `revoked`, as of `now` (unix ms).
    pub fn status(&self, now: i64) -> &'static str {
        if self.revoked_at != 0 {
            "revoked"
        } else if self.expires_at != 0 && self.expires_at <= now {
            "expired"
        } else {
            "active"
        }
    }
}

/// Which tokens to revoke.
#[derive(Debug, Clone, Default)]
pub struct TokenSelector {
    /// Only the token with this id.
    pub id: Option<String>,
    /// Only tokens with this name.
    pub name: Option<String>,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Creates a token named `name`, valid for `lifetime` (None: until
    /// revoked), and returns its value (never stored).
    pub async fn create_token(
        &self,
        name: &str,
        lifetime: Option<Duration>,
    ) -> anyhow::Result<NewToken> {
        let mut bytes = [0u8; 32];
        aes_gcm::aead::rand_core::RngCore::fill_bytes(&mut aes_gcm::aead::OsRng, &mut bytes);
        let token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_millis();
        let expires_at = match lifetime {
            None => 0,
            Some(d) => {
                let millis = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                now.saturating_add(millis.max(1))
            }
        };
        sqlx::query(
            "INSERT INTO admin_tokens (id, name, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(name)
        .bind(hash(&token))
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(NewToken { id, token })
    }

    /// The name of the token, if `token` is a known one that has neither
    /// expired nor been revoked.
    pub async fn check_token(&self, token: &str) -> anyhow::Result<Option<String>> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT name FROM admin_tokens WHERE hash = ? AND {LIVE}"
        ))
        .bind(hash(token))
        .bind(now_millis())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// How many tokens can be used now.
    pub async fn count_tokens(&self) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM admin_tokens WHERE {LIVE}"))
                .bind(now_millis())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Every token ever created, oldest first.
    pub async fn list_tokens(&self) -> anyhow::Result<Vec<TokenInfo>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, expires_at, revoked_at FROM admin_tokens \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| TokenInfo {
                id: r.get("id"),
                name: r.get("name"),
                created_at: r.get("created_at"),
                expires_at: r.get("expires_at"),
                revoked_at: r.get("revoked_at"),
            })
            .collect())
    }

    /// Revokes the tokens `which` selects (every one that matches all that
    /// is set, and is not revoked yet); returns their ids. Takes effect on
    /// the next call a running server authorizes.
    pub async fn revoke_tokens(&self, which: &TokenSelector) -> anyhow::Result<Vec<String>> {
        if which.id.is_none() && which.name.is_none() {
            anyhow::bail!("name a token to revoke by id or name");
        }
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE admin_tokens SET revoked_at = ? \
             WHERE revoked_at = 0 AND (? IS NULL OR id = ?) AND (? IS NULL OR name = ?) \
             RETURNING id",
        )
        .bind(now_millis())
        .bind(&which.id)
        .bind(&which.id)
        .bind(&which.name)
        .bind(&which.name)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }
}
