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

/// Every data_plane_certificate of a gateway (by name or id), oldest first,
/// and the gateway.
pub async fn list_dataplane_certs(
    store: &Store,
    gateway: &str,
) -> anyhow::Result<(Entity, Vec<Entity>)> {
    let gateway = find_gateway(store, gateway).await?;
    let mut filter = ListFilter {
        kind: Some(Kind::DataPlaneCertificate),
        gateway_id: gateway.id.clone(),
        page_size: 1000,
        ..Default::default()
    };
    let mut all = Vec::new();
    loop {
        let (page, next) = store
            .list(&filter)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        all.extend(page);
        if next.is_empty() {
            return Ok((gateway, all));
        }
        filter.page_token = next;
    }
}

/// A timestamp as RFC 3339 (`-` when unset).
fn rfc3339(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(|t| {
        let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
    })
    .and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "-".into())
}

/// The printable facts of a certificate: (expires at, SHA-256 fingerprint).
fn certificate_facts(entity: &Entity) -> (String, String) {
    match &entity.spec {
        Some(Spec::DataPlaneCertificate(dp)) => {
            (rfc3339(dp.expires_at.as_ref()), dp.fingerprint.clone())
        }
        _ => ("-".into(), String::new()),
    }
}

/// Certificates as tab-separated lines under a header: id, name, created,
/// expires, fingerprint.
pub fn certificates_table(certificates: &[Entity]) -> String {
    let mut out = String::from("ID\tNAME\tCREATED\tEXPIRES\tFINGERPRINT\n");
    for c in certificates {
        let (expires, fingerprint) = certificate_facts(c);
        out.push_str(&format!(
            "{}\t{}\t{}\t{expires}\t{fingerprint}\n",
            c.id,
            c.name,
            rfc3339(c.created_at.as_ref())
        ));
    }
    out
}

/// Certificates as a JSON array of objects.
pub fn certificates_json(certificates: &[Entity]) -> serde_json::Value {
    certificates
        .iter()
        .map(|c| {
            let (expires, fingerprint) = certificate_facts(c);
            let generated = matches!(&c.spec, Some(Spec::DataPlaneCertificate(dp)) if dp.generated);
            serde_json::json!({
                "id": c.id,
                "gateway_id": c.gateway_id,
                "name": c.name,
                "description": c.description,
                "labels": c.labels,
                "created_at": rfc3339(c.created_at.as_ref()),
                "expires_at": expires,
                "fingerprint": fingerprint,
                "generated": generated,
            })
        })
        .collect()
}

/// Which certificates `dataplane-cert revoke` deletes.
#[derive(Debug, Default)]
pub struct CertSelector {
    /// One certificate by id.
    pub id: Option<String>,
    /// The gateway (name or id) they must belong to.
    pub gateway: Option<String>,
    /// Every certificate of `gateway`.
    pub all: bool,
}

/// Deletes (revokes) the selected data_plane_certificates one by one,
/// telling `revoked` about each as soon as it is gone; returns how many.
/// Fails without deleting anything when the selection names no
/// certificate or one outside the given gateway; a failure part-way says
/// how many were revoked before it (each already told).
pub async fn revoke_dataplane_certs(
    store: &Store,
    which: &CertSelector,
    mut revoked: impl FnMut(&Entity),
) -> anyhow::Result<usize> {
    let gateway = match &which.gateway {
        Some(g) => Some(find_gateway(store, g).await?),
        None => None,
    };
    let chosen = match (&which.id, &gateway) {
        (Some(id), _) => {
            let certificate = store
                .get(Kind::DataPlaneCertificate, id)
                .await
                .map_err(|e| anyhow::anyhow!("{e} (see `sluice-server dataplane-cert list`)"))?;
            if let Some(g) = &gateway
                && certificate.gateway_id != g.id
            {
                anyhow::bail!(
                    "data_plane_certificate {id} belongs to another gateway than {:?}",
                    g.name
                );
            }
            vec![certificate]
        }
        (None, Some(g)) if which.all => list_dataplane_certs(store, &g.id).await?.1,
        _ => anyhow::bail!(
            "name a certificate with --id, or every one of a gateway with --gateway G --all"
        ),
    };
    for (done, certificate) in chosen.iter().enumerate() {
        store
            .delete(Kind::DataPlaneCertificate, &certificate.id, 0, Mode::Commit)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "revoking {}: {e} ({done} of {} revoked before it; run again for the rest)",
                    certificate.id,
                    chosen.len()
                )
            })?;
        revoked(certificate);
    }
    Ok(chosen.len())
}
