//! Admin tokens have a lifetime: `token list` shows them, `token revoke`
//! (by id or name) and `--expires-in` end them, and a running server
//! refuses an ended token at once with UNAUTHENTICATED.

mod common;

use std::{path::Path, process::Command, time::Duration};

use sluice_proto::admin::v1::{Kind, ListEntitiesRequest};
use tonic::Code;

/// `sluice-server token <args> --data-dir <dir>` with extra environment;
/// returns stdout (the command must succeed).
fn token_cli(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(common::bin())
        .arg("token")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .envs(env.iter().copied())
        .output()
        .expect("run sluice-server token");
    assert!(
        out.status.success(),
        "token {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `token list` as (id, name, expires, status) rows.
fn listed(dir: &Path) -> Vec<(String, String, String, String)> {
    let out = token_cli(dir, &["list"], &[]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("ID\tNAME\tCREATED\tEXPIRES\tSTATUS"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "{l:?}");
            (f[0].into(), f[1].into(), f[3].into(), f[4].into())
        })
        .collect()
}

/// What the admin API answers a call with `token`.
async fn call(server: &common::Server, token: &str) -> Result<(), Code> {
    let mut admin = server.client(Some(token)).await;
    admin
        .list_entities(ListEntitiesRequest {
            kind: Kind::Gateway as i32,
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(|s| s.code())
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let forever = token_cli(d, &["create", "--name", "ci"], &[])
        .trim()
        .to_string();
    let by_name = token_cli(d, &["create", "--name", "laptop"], &[])
        .trim()
        .to_string();
    let brief = token_cli(
        d,
        &["create", "--name", "brief"],
        &[("SLUICE_TOKEN_EXPIRES_IN", "2s")],
    )
    .trim()
    .to_string();
    let later = token_cli(
        d,
        &["create", "--name", "later", "--expires-in", "30d"],
        &[],
    )
    .trim()
    .to_string();
    let rows = listed(d);
    let names: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(names, ["ci", "laptop", "brief", "later"]);
    assert!(rows.iter().all(|r| r.3 == "active"), "{rows:?}");
    assert_eq!(rows[0].2, "-", "no expiry by default");
    assert!(rows[3].2.contains('T'), "an RFC 3339 expiry: {rows:?}");
    let listing = token_cli(d, &["list"], &[]);
    for value in [&forever, &by_name, &brief, &later] {
        assert!(!listing.contains(value.as_str()), "a token value is listed");
    }

    let server = common::start_server(d, &[]);
    for token in [&forever, &by_name, &brief, &later] {
        assert_eq!(call(&server, token).await, Ok(()));
    }

    // Revoked while the server runs: refused from the next call.
    token_cli(d, &["revoke", "--name", "laptop"], &[]);
    assert_eq!(call(&server, &by_name).await, Err(Code::Unauthenticated));
    let ci = rows[0].0.clone();
    token_cli(d, &["revoke"], &[("SLUICE_REVOKE_TOKEN_ID", ci.as_str())]);
    assert_eq!(call(&server, &forever).await, Err(Code::Unauthenticated));
    // Nothing left to revoke by that name is an error.
    let again = Command::new(common::bin())
        .args(["token", "revoke", "--name", "laptop", "--data-dir"])
        .arg(d)
        .output()
        .unwrap();
    assert!(!again.status.success());

    // The short-lived token runs out (polled, at most 20 s).
    let mut outcome = call(&server, &brief).await;
    for _ in 0..200 {
        if outcome.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        outcome = call(&server, &brief).await;
    }
    assert_eq!(outcome, Err(Code::Unauthenticated));
    assert_eq!(call(&server, &later).await, Ok(()));

    let statuses: Vec<(String, String)> = listed(d).into_iter().map(|r| (r.1, r.3)).collect();
    assert_eq!(
        statuses,
        [
            ("ci".to_string(), "revoked".to_string()),
            ("laptop".into(), "revoked".into()),
            ("brief".into(), "expired".into()),
            ("later".into(), "active".into()),
        ]
    );
    server.stop();
}
