//! Compiles the protos with protox (pure Rust: no system `protoc`).

use std::{env, fs, path::PathBuf};

/// The admin API: its descriptors back gRPC reflection on the admin port
/// and every walk over the entity fields (secrets, and the facts declared
/// as field options).
const ADMIN: &[&str] = &[
    "sluice/admin/v1/kind.proto",
    "sluice/admin/v1/options.proto",
    "sluice/admin/v1/entities.proto",
    "sluice/admin/v1/admin.proto",
];

/// Everything compiled to Rust.
const ALL: &[&str] = &[
    "sluice/admin/v1/kind.proto",
    "sluice/admin/v1/options.proto",
    "sluice/admin/v1/entities.proto",
    "sluice/admin/v1/admin.proto",
    "sluice/dataplane/v1/sync.proto",
    "tfplugin6/tfplugin6.proto",
    "plugin/grpc_controller.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // Encoded by the compiler itself: a `prost_types` round trip would drop
    // the custom field options the `facts` module reads.
    let admin = protox::Compiler::new(["proto"])?
        .include_source_info(true)
        .include_imports(true)
        .open_files(ADMIN)?
        .encode_file_descriptor_set();
    fs::write(out.join("sluice_descriptor.bin"), admin)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(protox::compile(ALL, ["proto"])?)?;
    Ok(())
}
