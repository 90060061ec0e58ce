//! Writes `docs/` from the provider's schemas and `examples/`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for (path, contents) in terraform_provider_sluice::docs::render(&root) {
        let file = root.join(&path);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&file, contents)?;
        println!("wrote {path}");
    }
    Ok(())
}
