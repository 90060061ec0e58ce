//! The last applied configuration on local disk, so a node can start (and
//! keep serving) while the control plane is unreachable. It holds secret
//! values, so it is written 0600.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;
use prost::Message;
use sluice_proto::dataplane::v1::ConfigUpdate;

use super::Config;

const FILE: &str = "config.pb";

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// A cache in `dir` (created when missing).
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating cache dir {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The cached configuration, if there is a readable one.
    pub fn load(&self) -> anyhow::Result<Option<Config>> {
        let path = self.dir.join(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let snapshot = ConfigUpdate::decode(bytes.as_slice())
            .with_context(|| format!("{} is not a cached configuration", path.display()))?;
        let config = Config::default()
            .apply(&snapshot)
            .map_err(|e| anyhow::anyhow!("cached configuration is unusable: {e}"))?;
        Ok(Some(config))
    }

    /// Writes `config` atomically (temp file, then rename).
    pub fn save(&self, config: &Config) -> anyhow::Result<()> {
        let path = self.dir.join(FILE);
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        // A leftover temp file keeps its mode through `truncate`, so it is
        // removed and created afresh: the file holds secrets, it is 0600.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", tmp.display()));
            }
            _ => {}
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(&config.to_snapshot().encode_to_vec())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    }

    /// This node's id, generated and kept in the cache dir on first use.
    pub fn node_id(&self) -> anyhow::Result<String> {
        let path = self.dir.join("node-id");
        if let Ok(id) = std::fs::read_to_string(&path) {
            let id = id.trim();
            if !id.is_empty() {
                return Ok(id.to_string());
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
        Ok(id)
    }
}
