//! Settings that are valid but weaken the gateway as a security boundary:
//! `Validate` (terraform plan) warns about each, naming the attribute and
//! what it exposes, so nobody ships them by accident.

use sluice_proto::admin::v1::{
    Entity, ValidateWarning, backend_authentication::Method, entity::Spec,
    virtual_cluster_authentication::Method as VcMethod,
};

/// The warnings for an entity as it would be stored.
pub fn warnings(entity: &Entity) -> Vec<ValidateWarning> {
    let mut out = Vec::new();
    let mut warn = |field: &str, summary: &str, message: &str| {
        out.push(ValidateWarning {
            field: field.into(),
            summary: summary.into(),
            message: message.into(),
        })
    };
    match &entity.spec {
        Some(Spec::BackendCluster(b)) => {
            let tls = b.tls.as_ref().filter(|t| t.enabled);
            if tls.is_some_and(|t| t.insecure_skip_verify) {
                warn(
                    "tls.insecure_skip_verify",
                    "broker certificates are not verified",
                    "tls.insecure_skip_verify = true: the gateway accepts any certificate from the \
                     brokers, so anyone on the network path can pose as the backend cluster (and \
                     receive its SASL credentials); use it for tests only, and set ca_bundle instead",
                );
            }
            let plain = matches!(
                b.authentication.as_ref().and_then(|a| a.method.as_ref()),
                Some(Method::SaslPlain(_))
            );
            if plain && tls.is_none() {
                warn(
                    "authentication.sasl_plain",
                    "the SASL PLAIN password crosses the network in clear",
                    "authentication.sasl_plain without tls.enabled = true: the backend password \
                     is sent to the brokers in clear text; enable tls, or use sasl_scram",
                );
            }
        }
        Some(Spec::Listener(l)) => {
            let open = l
                .proxy_protocol
                .iter()
                .flat_map(|p| p.trusted_ranges.iter());
            for (i, range) in open.enumerate() {
                let range = range.trim();
                if super::rules::parse_cidr(range).is_some_and(|(_, prefix)| prefix == 0) {
                    warn(
                        &format!("proxy_protocol.trusted_ranges[{i}]"),
                        "every address may send PROXY headers",
                        &format!(
                            "proxy_protocol.trusted_ranges[{i}] = {range:?} trusts every address: \
                             any client can claim any source address in logs, events and \
                             policy conditions; list only your load balancers' ranges"
                        ),
                    );
                }
            }
        }
        Some(Spec::VirtualCluster(vc)) => {
            for (i, rule) in vc.authentication.iter().enumerate() {
                let Some(VcMethod::OauthBearer(o)) = &rule.method else {
                    continue;
                };
                let Some(endpoint) = o.jwks.as_ref().map(|j| j.endpoint.as_str()) else {
                    continue;
                };
                if plain_http_off_loopback(endpoint) {
                    warn(
                        &format!("authentication[{i}].oauth_bearer.jwks.endpoint"),
                        "token keys are fetched over plain HTTP",
                        &format!(
                            "authentication[{i}].oauth_bearer.jwks.endpoint = {endpoint:?} is \
                             http:// off loopback: anyone on the network path can serve their \
                             own keys and sign tokens for any sub; use https://"
                        ),
                    );
                }
            }
        }
        _ => {}
    }
    out
}

/// Whether `url` is `http://` to a host other than loopback.
fn plain_http_off_loopback(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    let loopback = host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback());
    !(loopback || host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost"))
}

#[cfg(test)]
mod tests {
    use sluice_proto::admin::v1::{
        BackendAuthentication, BackendCluster, BackendSaslPlain, BackendTls, Listener,
        ProxyProtocol,
    };

    use super::*;

    #[test]
    fn plain_http_is_flagged_off_loopback_only() {
        for url in [
            "http://idp.example/keys",
            "http://10.0.0.1:8080/jwks",
            "http://user@idp.example/",
        ] {
            assert!(plain_http_off_loopback(url), "{url}");
        }
        for url in [
            "https://idp.example/keys",
            "http://127.0.0.1:8080/jwks",
            "http://[::1]:80/jwks",
            "http://localhost/jwks",
            "http://idp.localhost:9/jwks",
        ] {
            assert!(!plain_http_off_loopback(url), "{url}");
        }
    }

    fn fields(spec: Spec) -> Vec<String> {
        warnings(&Entity {
            spec: Some(spec),
            ..Default::default()
        })
        .into_iter()
        .map(|w| w.field)
        .collect()
    }

    #[test]
    fn risky_settings_are_named() {
        let plain = Some(BackendAuthentication {
            method: Some(Method::SaslPlain(BackendSaslPlain::default())),
        });
        let backend = |tls: Option<BackendTls>| {
            Spec::BackendCluster(BackendCluster {
                tls,
                authentication: plain.clone(),
                ..Default::default()
            })
        };
        assert_eq!(fields(backend(None)), ["authentication.sasl_plain"]);
        let verified = BackendTls {
            enabled: true,
            ..Default::default()
        };
        assert_eq!(
            fields(backend(Some(verified.clone()))),
            Vec::<String>::new()
        );
        let unverified = BackendTls {
            insecure_skip_verify: true,
            ..verified
        };
        assert_eq!(
            fields(backend(Some(unverified))),
            ["tls.insecure_skip_verify"]
        );
        let listener = Spec::Listener(Listener {
            proxy_protocol: Some(ProxyProtocol {
                trusted_ranges: vec![
                    "10.0.0.0/8".into(),
                    "0.0.0.0/0".into(),
                    "::/0".into(),
                    "::ffff:0.0.0.0/96".into(),
                ],
            }),
            ..Default::default()
        });
        assert_eq!(
            fields(listener),
            [
                "proxy_protocol.trusted_ranges[1]",
                "proxy_protocol.trusted_ranges[2]",
                "proxy_protocol.trusted_ranges[3]"
            ]
        );
    }
}
