//! Real Kafka clients (confluent-kafka, kafka-python, kafkajs) run as the
//! scripts in `acceptance/clients`.

use std::process::Command;

/// Where the client scripts live.
pub const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/clients");

/// Runs `program` (python3, node) on `script` with `args`; its output.
/// Fails the test if the client fails.
pub fn run(program: &str, script: &str, args: &[&str]) -> String {
    let (ok, text) = try_run(program, script, args);
    assert!(ok, "{script} failed:\n{text}");
    text
}

/// Runs a client that may fail (one a test expects to be refused):
/// whether it exited 0, and its output.
pub fn try_run(program: &str, script: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .arg(format!("{CLIENTS}/{script}"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The `brokers` a client script's last JSON line reports.
pub fn brokers(out: &str) -> serde_json::Value {
    let last = out.lines().last().unwrap_or_default();
    let json: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {out}"));
    json["brokers"].clone()
}

/// A produce-then-consume round trip through `bootstrap` with a python
/// client `script`; its output.
pub fn roundtrip(script: &str, bootstrap: &str, topic: &str, group: &str) -> String {
    run("python3", script, &[bootstrap, topic, group])
}

/// One `tenant.py` command (confluent-kafka) against `target`
/// (`[user:password@]host:port`): its JSON report.
pub fn tenant(target: &str, args: &[&str]) -> serde_json::Value {
    let out = run(
        "python3",
        "tenant.py",
        &[&args[..1], &[target], &args[1..]].concat(),
    );
    out.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON report from tenant.py {args:?}: {out}"))
}

/// A JSON list of strings (a tenant.py report's `topics`, `values`, ...).
pub fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}
