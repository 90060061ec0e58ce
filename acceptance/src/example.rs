//! One of `examples/` applied with the real `terraform` against a fresh
//! `sluice-server`: the example and the modules it uses copied into a
//! temporary directory (at the same relative places), a server with an
//! admin token, and the variables the test passes on every command.

use std::path::Path;

use crate::{
    server::{self, Server},
    terraform::{Terraform, copy_dir},
    workspace_bin,
};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");

/// An example ready to apply.
pub struct Example {
    /// The temporary directory (the server's data, the copied example).
    pub dir: tempfile::TempDir,
    /// The control plane the example is applied to.
    pub server: Server,
    /// Terraform in the copied example.
    pub tf: Terraform,
    /// The admin token Terraform uses.
    pub token: String,
    vars: Vec<String>,
}

impl Example {
    /// `examples/<name>` and `examples/modules`, copied; a server started.
    pub fn prepare(name: &str) -> Example {
        let server_bin = workspace_bin("sluice-server");
        let dir = tempfile::tempdir().expect("tempdir");
        let token = server::create_token(&server_bin, dir.path());
        let server = Server::start(&server_bin, dir.path(), &[]);
        let examples = Path::new(EXAMPLES);
        let tf_dir = dir.path().join("tf");
        copy_dir(&examples.join(name), &tf_dir);
        copy_dir(&examples.join("modules"), &dir.path().join("modules"));
        let tf = Terraform::new(&tf_dir, &server.addr, &token);
        Example {
            dir,
            server,
            tf,
            token,
            vars: Vec::new(),
        }
    }

    /// Passes `-var=<name>=<value>` on every later command.
    pub fn var(&mut self, name: &str, value: impl std::fmt::Display) {
        self.vars.push(format!("-var={name}={value}"));
    }

    /// `terraform <args> <vars>`, which must succeed; its output.
    pub fn ok(&self, args: &[&str]) -> String {
        let all: Vec<&str> = args
            .iter()
            .copied()
            .chain(self.vars.iter().map(String::as_str))
            .collect();
        self.tf.ok(&all)
    }

    /// Installs its modules (`terraform get`) and applies it.
    pub fn apply(&self) {
        self.tf.ok(&["get", "-no-color"]);
        self.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    }

    /// Asserts that a second plan wants no changes.
    pub fn assert_no_changes(&self) {
        let all: Vec<&str> = ["plan", "-detailed-exitcode", "-no-color", "-input=false"]
            .into_iter()
            .chain(self.vars.iter().map(String::as_str))
            .collect();
        let run = self.tf.run(&all);
        assert_eq!(run.code, 0, "a second plan wants changes:\n{}", run.output);
    }
}
