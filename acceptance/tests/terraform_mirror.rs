//! The provider as users install it: `scripts/release-provider` packages
//! the built binary in the registry layout (zip, manifest, SHA256SUMS),
//! the zip goes into a filesystem mirror, and a real `terraform init` with
//! no other installation method (no dev_overrides, no network) installs
//! `sluice/sluice` from it, records its hash in the lock file, and plans
//! against a real server.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use sluice_acceptance::{
    server::{self, Server},
    terraform::Terraform,
    workspace_bin,
};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The registry's name for this host (`linux_amd64`).
fn platform() -> String {
    let os = std::env::consts::OS;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{os}_{arch}")
}

/// SHA-256 of a file or of stdin text, as hex, by coreutils' `sha256sum`.
fn sha256_hex(file: Option<&Path>, text: &str) -> String {
    use std::io::Write;
    let mut command = Command::new("sha256sum");
    if let Some(file) = file {
        command.arg(file);
    }
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "sha256sum failed");
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Terraform's `h1:` hash of a package holding one file (dirhash Hash1:
/// SHA-256 over the lines `<sha256 hex>  <name>\n`, base64).
fn h1(file: &Path, name: &str) -> String {
    let line = format!("{}  {name}\n", sha256_hex(Some(file), ""));
    let hex = sha256_hex(None, &line);
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    format!("h1:{}", base64(&bytes))
}

/// Runs the release script on the debug binary; returns the output dir.
fn package(out: &Path) -> PathBuf {
    let binary = workspace_bin("terraform-provider-sluice");
    let run = Command::new(Path::new(ROOT).join("scripts/release-provider"))
        .arg("--binary")
        .arg(&binary)
        .arg("")
        .arg(out)
        .output()
        .expect("run scripts/release-provider");
    assert!(
        run.status.success(),
        "release-provider failed: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    out.to_path_buf()
}

#[test]
fn base64_matches_the_standard_alphabet() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foob"), "Zm9vYg==");
    assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
}

#[test]
fn init_installs_the_release_package_from_a_filesystem_mirror() {
    let work = tempfile::tempdir().unwrap();
    // The version defaults to the workspace's (this crate shares it).
    let dist = package(&work.path().join("dist"));
    let prefix = format!("terraform-provider-sluice_{VERSION}");
    let zip = format!("{prefix}_{}.zip", platform());
    let manifest = format!("{prefix}_manifest.json");
    for file in [&zip, &manifest, &format!("{prefix}_SHA256SUMS")] {
        assert!(dist.join(file).is_file(), "{file} missing from {dist:?}");
    }
    assert_eq!(
        std::fs::read_to_string(dist.join(&manifest)).unwrap(),
        std::fs::read_to_string(Path::new(ROOT).join("terraform-registry-manifest.json")).unwrap()
    );
    let sums = std::fs::read_to_string(dist.join(format!("{prefix}_SHA256SUMS"))).unwrap();
    for file in [&zip, &manifest] {
        let line = format!("{}  {file}", sha256_hex(Some(&dist.join(file)), ""));
        assert!(sums.lines().any(|l| l == line), "{line} not in {sums}");
    }

    // The packed mirror layout: HOSTNAME/NAMESPACE/TYPE/<the zip>.
    let mirror = work.path().join("mirror");
    let at = mirror.join("registry.terraform.io/sluice/sluice");
    std::fs::create_dir_all(&at).unwrap();
    std::fs::copy(dist.join(&zip), at.join(&zip)).unwrap();
    let cli_config = format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/sluice/sluice\"]\n  }}\n}}\n",
        mirror.display()
    );

    let bin = workspace_bin("sluice-server");
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let token = server::create_token(&bin, &data);
    let server = Server::start(&bin, &data, &[]);
    let dir = work.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "terraform {{\n  required_providers {{\n    sluice = {{\n      source  = \"sluice/sluice\"\n      version = \"= {VERSION}\"\n    }}\n  }}\n}}\n\nprovider \"sluice\" {{}}\n\nresource \"sluice_gateway\" \"example\" {{\n  name = \"mirrored\"\n}}\n"
        ),
    )
    .unwrap();
    let tf = Terraform::with_cli_config(&dir, &cli_config, &server.addr, &token);

    let init = tf.ok(&["init", "-no-color", "-input=false"]);
    assert!(
        init.contains(&format!("Installed sluice/sluice v{VERSION}")),
        "{init}"
    );
    assert!(!init.contains("dev_overrides"), "{init}");
    let installed = dir.join(format!(
        ".terraform/providers/registry.terraform.io/sluice/sluice/{VERSION}/{}/terraform-provider-sluice_v{VERSION}",
        platform()
    ));
    let binary = workspace_bin("terraform-provider-sluice");
    assert_eq!(
        std::fs::read(&installed).expect("the unpacked provider"),
        std::fs::read(&binary).unwrap(),
        "terraform installed something else than the packaged binary"
    );
    let lock = std::fs::read_to_string(dir.join(".terraform.lock.hcl")).unwrap();
    let hash = h1(&binary, &format!("terraform-provider-sluice_v{VERSION}"));
    for part in [
        "provider \"registry.terraform.io/sluice/sluice\"".to_string(),
        format!("version     = \"{VERSION}\""),
        format!("\"{hash}\""),
    ] {
        assert!(lock.contains(&part), "lock file lacks {part}:\n{lock}");
    }

    let valid = tf.ok(&["validate", "-no-color"]);
    assert!(valid.contains("The configuration is valid"), "{valid}");
    let plan = tf.plan();
    assert_eq!(plan.code, 2, "plan:\n{}", plan.output);
    assert!(
        plan.output
            .contains("sluice_gateway.example will be created"),
        "{}",
        plan.output
    );
    server.stop();
}
