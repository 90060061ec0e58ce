//! `sluice-proxy`: the Sluice data plane (Kafka proxy). Not built yet.

fn main() -> std::process::ExitCode {
    eprintln!(
        "sluice-proxy: the data plane is not implemented yet; the control plane \
         (sluice-server) is. See README.md for what works today."
    );
    std::process::ExitCode::FAILURE
}
