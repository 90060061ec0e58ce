//! The SQLite store: entities, their references, the revision log and admin
//! tokens. Every write is one transaction that also appends to the log.

mod checks;
mod dataplane;
mod delete;
pub mod nodes;
mod outbox;
mod ports;
mod read;
mod retention;
mod tokens;
mod upgrade;
mod write;

pub use dataplane::Delta;
pub use nodes::NodeRecord;
pub use outbox::{DueDelivery, Outcome};

pub use write::Mode;

use std::{
    path::Path,
    str::FromStr,
    sync::{Arc, RwLock},
    time::Duration,
};

use anyhow::Context;
use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use tokio::sync::{Mutex, watch};

pub use read::ListFilter;
pub use tokens::{NewToken, TokenInfo, TokenSelector};

use rustls::pki_types::CertificateDer;

use crate::{hub::Hub, secrets::MasterKey};

/// The embedded migrations (`server/migrations`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "sluice.db";

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    key: MasterKey,
    /// Serialises writers so that revision order is commit order and no
    /// transaction ever has to retry on a busy database.
    write_lock: Arc<Mutex<()>>,
    /// The newest committed revision, for whoever waits on changes.
    committed: Arc<watch::Sender<i64>>,
    /// Committed changes, per gateway, for the sync streams.
    hub: Arc<Hub>,
    /// How many revisions the log keeps (None: all).
    keep_revisions: Option<i64>,
    /// The gateway CA certificates, for the sync endpoint's TLS.
    roots: Arc<RwLock<Arc<Vec<CertificateDer<'static>>>>>,
    /// Wakes the event dispatcher when an event was queued.
    events_queued: Arc<tokio::sync::Notify>,
    /// When each (hook, snooze key) last fired (bounded).
    snoozer: Arc<crate::events::snooze::Snoozer>,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and runs the
    /// migrations.
    pub async fn open(data_dir: &Path, key: MasterKey) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let path = data_dir.join(DATABASE_FILE);
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .with_context(|| format!("opening database {}", path.display()))?;
        MIGRATOR
            .run(&pool)
            .await
            .with_context(|| format!("migrating database {}", path.display()))?;
        upgrade::run(&pool, &key)
            .await
            .with_context(|| format!("upgrading the secrets in {}", path.display()))?;
        let latest: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(revision), 0) FROM revisions")
            .fetch_one(&pool)
            .await?;
        let store = Self {
            pool,
            key,
            write_lock: Arc::default(),
            committed: Arc::new(watch::channel(latest).0),
            hub: Arc::default(),
            keep_revisions: None,
            roots: Arc::default(),
            events_queued: Arc::default(),
            snoozer: Arc::default(),
        };
        store.reload_roots().await?;
        Ok(store)
    }

    /// Keeps only the newest `keep` revisions in the log from now on; a
    /// node resuming from before them gets a snapshot.
    pub fn with_revision_retention(mut self, keep: Option<i64>) -> Self {
        self.keep_revisions = keep.filter(|k| *k > 0);
        self
    }

    /// Committed changes of a gateway from now on.
    pub fn changes(
        &self,
        gateway_id: &str,
    ) -> tokio::sync::broadcast::Receiver<Arc<crate::hub::Change>> {
        self.hub.subscribe(gateway_id)
    }

    /// A write transaction that takes SQLite's write lock at BEGIN, so it
    /// waits its turn (busy timeout) instead of failing when it upgrades
    /// from reading to writing.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// A receiver that sees the newest committed revision change.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.committed.subscribe()
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
