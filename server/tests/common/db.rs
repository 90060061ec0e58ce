//! Direct access to a running server's SQLite file, so a test can make the
//! server's writes fail the way a full disk or a locked file would: a
//! trigger that aborts them, dropped again to heal.

use std::{path::Path, time::Duration};

use sqlx::{Connection, Executor, SqliteConnection, sqlite::SqliteConnectOptions};

/// A connection to the database in `data_dir` (WAL: the server keeps
/// working beside it).
pub(crate) async fn open(data_dir: &Path) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(data_dir.join("sluice.db"))
        .busy_timeout(Duration::from_secs(10));
    SqliteConnection::connect_with(&options)
        .await
        .expect("open the server's database")
}

fn trigger(table: &str, operation: &str) -> String {
    format!("injected_{table}_{}", operation.to_ascii_lowercase())
}

/// Makes every `operation` (INSERT, UPDATE or DELETE) on `table` fail.
pub(crate) async fn fail(conn: &mut SqliteConnection, table: &str, operation: &str) {
    let name = trigger(table, operation);
    conn.execute(
        format!(
            "CREATE TRIGGER {name} BEFORE {operation} ON {table} \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
        .as_str(),
    )
    .await
    .expect("create the failing trigger");
}

/// Lets `operation` on `table` succeed again.
pub(crate) async fn heal(conn: &mut SqliteConnection, table: &str, operation: &str) {
    let name = trigger(table, operation);
    conn.execute(format!("DROP TRIGGER IF EXISTS {name}").as_str())
        .await
        .expect("drop the failing trigger");
}
