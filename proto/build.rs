//! Compiles the protos with protox (pure Rust: no system `protoc`).

use prost::Message;
use std::{env, fs, path::PathBuf};

/// The admin API: its descriptors back gRPC reflection on the admin port
/// and the walk that finds secret fields.
const ADMIN: &[&str] = &[
    "sluice/admin/v1/entities.proto",
    "sluice/admin/v1/admin.proto",
];

/// Everything compiled to Rust.
const ALL: &[&str] = &[
    "sluice/admin/v1/entities.proto",
    "sluice/admin/v1/admin.proto",
    "sluice/dataplane/v1/sync.proto",
    "tfplugin6/tfplugin6.proto",
    "plugin/grpc_controller.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let admin = protox::compile(ADMIN, ["proto"])?;
    fs::write(out.join("sluice_descriptor.bin"), admin.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(protox::compile(ALL, ["proto"])?)?;
    Ok(())
}
