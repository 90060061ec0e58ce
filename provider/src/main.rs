//! `terraform-provider-sluice`: the Terraform provider. Not built yet.

fn main() -> std::process::ExitCode {
    eprintln!(
        "terraform-provider-sluice: the Terraform provider is not implemented yet; \
         see README.md for what works today."
    );
    std::process::ExitCode::FAILURE
}
