//! `terraform-provider-sluice`: run by Terraform, not by hand.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    if !terraform_provider_sluice::plugin::started_by_terraform() {
        eprintln!(
            "terraform-provider-sluice is a Terraform plugin: Terraform starts it. Point Terraform at it \
             (provider source \"sluice/sluice\", e.g. with dev_overrides) instead of running it directly."
        );
        return ExitCode::FAILURE;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    // Terraform sends StopProvider on Ctrl-C; the signal itself reaches the
    // whole process group and must not kill us mid-apply.
    tokio::spawn(async {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                break;
            }
        }
    });
    match terraform_provider_sluice::plugin::serve(
        terraform_provider_sluice::provider::SluiceProvider::default(),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("terraform-provider-sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}
