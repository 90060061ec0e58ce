//! Command-line operations on a store that are more than one call.

use std::{io::Write, path::Path};

use anyhow::Context;
use sluice_proto::admin::v1::{DataPlaneCertificate, Entity, Kind, entity::Spec};

use crate::store::{ListFilter, Mode, Store};

/// Finds a gateway by id or name.
pub async fn find_gateway(store: &Store, name_or_id: &str) -> anyhow::Result<Entity> {
    if let Ok(gateway) = store.get(Kind::Gateway, name_or_id).await {
        return Ok(gateway);
    }
    let filter = ListFilter {
        kind: Some(Kind::Gateway),
        name: name_or_id.to_string(),
        ..Default::default()
    };
    let (found, _) = store.list(&filter).await?;
    found
        .into_iter()
        .next()
        .with_context(|| format!("no gateway named or with id {name_or_id:?}"))
}

fn write_file(path: &Path, contents: &str, private: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

/// Issues a generated data_plane_certificate for a gateway and writes
/// `ca.crt` (the control plane's CA, to verify the sync endpoint),
/// `tls.crt` and `tls.key` into `out`. Returns the certificate's id.
pub async fn issue_dataplane_cert(
    store: &Store,
    gateway: &str,
    out: &Path,
    name: Option<String>,
) -> anyhow::Result<String> {
    let gateway = find_gateway(store, gateway).await?;
    let name =
        name.unwrap_or_else(|| format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
    let entity = Entity {
        gateway_id: gateway.id.clone(),
        name,
        description: "issued by sluice-server dataplane-cert issue".into(),
        spec: Some(Spec::DataPlaneCertificate(DataPlaneCertificate {
            generated: true,
            ..Default::default()
        })),
        ..Default::default()
    };
    let created = store
        .create(entity, Mode::Commit)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(Spec::DataPlaneCertificate(dp)) = &created.spec else {
        anyhow::bail!("the server returned no certificate");
    };
    let ca = store
        .control_plane_ca()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    write_file(&out.join("ca.crt"), &ca.cert_pem, false)?;
    write_file(&out.join("tls.crt"), &dp.certificate, false)?;
    write_file(&out.join("tls.key"), &dp.private_key, true)?;
    eprintln!(
        "issued data_plane_certificate {:?} ({}) for gateway {:?}; wrote ca.crt, tls.crt, tls.key to {}",
        created.name,
        created.id,
        gateway.name,
        out.display()
    );
    Ok(created.id)
}
