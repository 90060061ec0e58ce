//! Real Kafka clients (confluent-kafka, kafka-python, kafkajs) run as the
//! scripts in `acceptance/clients`.

use std::process::Command;

/// Where the client scripts live.
pub const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/clients");

/// Runs `program` (python3, node) on `script` with `args`; its output.
/// Fails the test if the client fails.
pub fn run(program: &str, script: &str, args: &[&str]) -> String {
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
    assert!(out.status.success(), "{script} failed:\n{text}");
    text
}

/// A produce-then-consume round trip through `bootstrap` with a python
/// client `script`; its output.
pub fn roundtrip(script: &str, bootstrap: &str, topic: &str, group: &str) -> String {
    run("python3", script, &[bootstrap, topic, group])
}
