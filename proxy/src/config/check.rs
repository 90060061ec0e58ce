//! What a configuration must satisfy before the proxy ACKs it: every
//! reference resolves to an entity of the right kind in the same gateway,
//! and what the proxy will bind is well formed.

use sluice_proto::admin::v1::{Kind, entity::Spec};

use super::Config;

/// Why `config` cannot be used, or Ok.
pub(super) fn check(config: &Config) -> Result<(), String> {
    let gateway = config.gateway_id();
    for entity in config.entities() {
        let kind = entity.kind();
        if kind == Kind::Unspecified {
            return Err(format!(
                "entity {} has no kind this node understands",
                entity.id
            ));
        }
        for reference in entity.references() {
            if reference.field == "gateway_id" {
                if gateway.is_some_and(|g| g != reference.target) {
                    return Err(format!(
                        "{} {} belongs to gateway {}, not this node's {}",
                        kind.slug(),
                        entity.id,
                        reference.target,
                        gateway.unwrap_or_default()
                    ));
                }
                continue;
            }
            match config.get(&reference.target) {
                Some(target) if reference.kinds.contains(&target.kind()) => {}
                Some(target) => {
                    return Err(format!(
                        "{} {}: {} refers to {} {}, which is not a {}",
                        kind.slug(),
                        entity.id,
                        reference.field,
                        target.kind().slug(),
                        target.id,
                        reference
                            .kinds
                            .iter()
                            .map(|k| k.slug())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ));
                }
                None => {
                    return Err(format!(
                        "{} {}: {} refers to {}, which this node does not have",
                        kind.slug(),
                        entity.id,
                        reference.field,
                        reference.target
                    ));
                }
            }
        }
        if let Some(Spec::Listener(listener)) = &entity.spec {
            for port in &listener.ports {
                if parse_ports(port).is_none() {
                    return Err(format!(
                        "listener {}: ports: {port:?} is not a port or range",
                        entity.id
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A port (`"9092"`) or an inclusive range (`"9092-9095"`).
pub fn parse_ports(text: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let port = |s: &str| s.trim().parse::<u16>().ok().filter(|p| *p != 0);
    match text.split_once('-') {
        None => port(text).map(|p| p..=p),
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            (a <= b).then_some(a..=b)
        }
    }
}
