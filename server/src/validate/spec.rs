//! Field checks for each kind's spec: everything that needs no database
//! beyond what the fields declare (`required` and references are checked
//! from their options by `declared`).

use sluice_proto::admin::v1::{
    BackendAuthentication, BackendCluster, BackendTls, BootstrapPort, BrokerHostFormat,
    CertificateAndKey, ClientAuthenticationMode, EventHandler, EventHook, EventSource, Listener,
    ListenerPolicyForwardToVirtualCluster, ListenerPolicyTlsServer, Mediation, NameSelector,
    NamespaceMode, ScramAlgorithm, TlsVersion, VirtualCluster, backend_authentication,
    entity::Spec, listener_policy_forward_to_virtual_cluster, name_selector,
    virtual_cluster_authentication,
};

use super::{policies, rules};
use crate::error::Violations;

/// Events a data plane reports.
pub const DATAPLANE_EVENTS: &[&str] = &[
    "acl_denied",
    "auth_failed",
    "record_policy",
    "quota_exceeded",
    "node_connected",
    "node_disconnected",
    "config_rejected",
];

const SCRAM: &str = "sha256, sha512";
const TLS_VERSIONS: &str = "tls12, tls13";

/// Checks the fields of a spec; `v` collects what is wrong.
pub fn check(v: &mut Violations, spec: &Spec) {
    policies::check_common(v, spec);
    match spec {
        Spec::Gateway(_) => {}
        Spec::BackendCluster(b) => backend_cluster(v, b),
        Spec::VirtualCluster(vc) => virtual_cluster(v, vc),
        Spec::Listener(l) => listener(v, l),
        Spec::ListenerPolicyTlsServer(t) => tls_server(v, t),
        Spec::ListenerPolicyForwardToVirtualCluster(f) => forward(v, f),
        Spec::ClusterPolicyAcls(_)
        | Spec::ProducePolicyModifyHeaders(_)
        | Spec::ConsumePolicyModifyHeaders(_)
        | Spec::ProducePolicySchemaValidation(_)
        | Spec::ConsumePolicySchemaValidation(_)
        | Spec::ProducePolicyEncrypt(_)
        | Spec::ConsumePolicyDecrypt(_)
        | Spec::ConsumePolicySkipRecord(_)
        | Spec::ClusterPolicyQuota(_) => policies::check(v, spec),
        Spec::StaticKey(k) => {
            let value = k.value.as_ref().map(|s| s.value.trim()).unwrap_or_default();
            if !value.is_empty() && decode_key(value).is_none() {
                v.add("value", "must be 32 bytes, base64 or hex encoded");
            }
        }
        Spec::TlsTrustBundle(t) => rules::pem(v, "trusted_ca", &t.trusted_ca, "CERTIFICATE"),
        Spec::DataPlaneCertificate(c) => {
            let csr = c.csr.trim();
            let problem = match (c.generated, csr.is_empty()) {
                (true, false) => Some("set either csr or generated = true, not both"),
                (false, true) => Some("set a PEM certificate signing request, or generated = true"),
                (false, false) if !csr.contains("-----BEGIN CERTIFICATE REQUEST-----") => Some(
                    "must be a PEM certificate signing request (BEGIN CERTIFICATE REQUEST) for the gateway CA to sign",
                ),
                _ => None,
            };
            if let Some(problem) = problem {
                v.add_comparing("csr", ["generated"], problem);
            }
        }
        Spec::EventHook(h) => event_hook(v, h),
    }
}

/// Decodes a 32-byte key from base64 or hex.
pub fn decode_key(text: &str) -> Option<Vec<u8>> {
    sluice_proto::record_policy::decode_key(text)
}

fn backend_cluster(v: &mut Violations, b: &BackendCluster) {
    if b.bootstrap_servers.is_empty() {
        v.add("bootstrap_servers", "at least one host:port is required");
    }
    for (i, server) in b.bootstrap_servers.iter().enumerate() {
        rules::host_port(v, &format!("bootstrap_servers[{i}]"), server);
    }
    if !(1..=43200).contains(&b.metadata_update_interval_seconds) {
        v.add("metadata_update_interval_seconds", "must be 1-43200");
    }
    backend_authentication(v, b.authentication.as_ref());
    if let Some(tls) = &b.tls {
        backend_tls(v, tls);
    }
}

fn backend_authentication(v: &mut Violations, auth: Option<&BackendAuthentication>) {
    use backend_authentication::Method;
    match auth.and_then(|a| a.method.as_ref()) {
        None => v.add(
            "authentication",
            "set one of anonymous, sasl_plain, sasl_scram",
        ),
        Some(Method::Anonymous(_)) => {}
        Some(Method::SaslPlain(p)) => {
            rules::max_len(v, "authentication.sasl_plain.username", &p.username, 255);
        }
        Some(Method::SaslScram(s)) => {
            rules::enum_set::<ScramAlgorithm>(
                v,
                "authentication.sasl_scram.algorithm",
                s.algorithm,
                SCRAM,
            );
            rules::max_len(v, "authentication.sasl_scram.username", &s.username, 255);
        }
    }
}

fn backend_tls(v: &mut Violations, tls: &BackendTls) {
    // A present block that is switched off is a mistake (`tls = {}` reads
    // like "TLS with the system roots"), never plaintext in disguise.
    if !tls.enabled {
        let set = [
            ("ca_bundle", !tls.ca_bundle.is_empty()),
            ("client_identity", tls.client_identity.is_some()),
            ("insecure_skip_verify", tls.insecure_skip_verify),
            ("versions", !tls.versions.is_empty()),
        ];
        let holding = match set.iter().find(|(_, set)| *set) {
            Some((field, _)) => format!("tls.{field} is set but enabled is false"),
            None => "the tls block is present but enabled is false".to_string(),
        };
        v.add(
            "tls.enabled",
            format!(
                "{holding}: set enabled = true to connect to the brokers over TLS (with the \
                 system roots unless ca_bundle is set), or remove the tls block for plaintext"
            ),
        );
    }
    for (i, version) in tls.versions.iter().enumerate() {
        rules::enum_set::<TlsVersion>(v, &format!("tls.versions[{i}]"), *version, TLS_VERSIONS);
    }
    if !tls.ca_bundle.is_empty() {
        rules::pem(v, "tls.ca_bundle", &tls.ca_bundle, "CERTIFICATE");
    }
    if let Some(identity) = &tls.client_identity {
        certificate_and_key(v, "tls.client_identity", identity);
    }
}

fn certificate_and_key(v: &mut Violations, at: &str, pair: &CertificateAndKey) {
    rules::pem(
        v,
        &format!("{at}.certificate"),
        &pair.certificate,
        "CERTIFICATE",
    );
    let key = pair
        .key
        .as_ref()
        .map(|k| k.value.as_str())
        .unwrap_or_default();
    let looks_like_pem = key.contains("-----BEGIN ") && key.contains("PRIVATE KEY-----");
    if !key.is_empty() && !looks_like_pem {
        v.add(format!("{at}.key"), "must be a PEM private key");
    }
    let certificate_field = format!("{at}.certificate");
    if v.has(&certificate_field) {
        return;
    }
    // An empty key on an update keeps the stored one, not seen here: only
    // a key sent is checked against the certificate.
    let key = (!key.is_empty() && looks_like_pem).then_some(key);
    if let Err((field, problem)) = key_pair(&pair.certificate, key) {
        let field = format!("{at}.{field}");
        match field == certificate_field {
            true => v.add(field, problem),
            false => v.add_comparing(field, [certificate_field], problem),
        }
    }
}

/// Reads a PEM certificate (chain, leaf first) and, when given, a PEM
/// private key the way sluice-proxy loads them (rustls with ring), and
/// checks that the key is the certificate's. On failure, the field
/// (`certificate` or `key`) and what is wrong; the description never
/// quotes the key (a PEM parse error would show a line of it).
pub fn key_pair(certificate: &str, key: Option<&str>) -> Result<(), (&'static str, &'static str)> {
    use rustls::{
        Error, InconsistentKeys,
        crypto::ring::sign::any_supported_type,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::ParsedCertificate,
        sign::CertifiedKey,
    };
    const UNREADABLE: &str =
        "the first CERTIFICATE block is not an X.509 certificate sluice-proxy can read";
    let chain = CertificateDer::pem_slice_iter(certificate.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            (
                "certificate",
                "is not PEM certificates sluice-proxy can read",
            )
        })?;
    let Some(leaf) = chain.into_iter().next() else {
        return Err(("certificate", UNREADABLE));
    };
    if ParsedCertificate::try_from(&leaf).is_err() {
        return Err(("certificate", UNREADABLE));
    }
    let Some(key) = key else { return Ok(()) };
    let Ok(key) = PrivateKeyDer::from_pem_slice(key.as_bytes()) else {
        return Err((
            "key",
            "is not a PEM private key sluice-proxy can read (PKCS#8 PRIVATE KEY, RSA PRIVATE \
             KEY or EC PRIVATE KEY)",
        ));
    };
    let Ok(signer) = any_supported_type(&key) else {
        return Err((
            "key",
            "is not a private key sluice-proxy can use: RSA (2048 bits or more), ECDSA P-256 or \
             P-384, or Ed25519",
        ));
    };
    match CertifiedKey::new(vec![leaf], signer).keys_match() {
        Ok(()) | Err(Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(()),
        Err(Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(("key", "the private key does not match the certificate"))
        }
        Err(_) => Err(("certificate", UNREADABLE)),
    }
}

fn virtual_cluster(v: &mut Violations, vc: &VirtualCluster) {
    use virtual_cluster_authentication::Method;
    rules::dns_label(v, "dns_label", &vc.dns_label);
    for (i, rule) in vc.authentication.iter().enumerate() {
        let at = format!("authentication[{i}]");
        match &rule.method {
            None => v.add(
                at,
                "set one of anonymous, sasl_plain, sasl_scram, oauth_bearer, client_certificate",
            ),
            Some(Method::Anonymous(_)) | Some(Method::ClientCertificate(_)) => {}
            Some(Method::SaslPlain(p)) => {
                let mediation = format!("{at}.sasl_plain.mediation");
                rules::enum_in(
                    v,
                    &mediation,
                    p.mediation,
                    &[
                        (Mediation::Passthrough as i32, "passthrough"),
                        (Mediation::Terminate as i32, "terminate"),
                    ],
                );
                if p.mediation == Mediation::Terminate as i32 && p.principals.is_empty() {
                    v.add(
                        format!("{at}.sasl_plain.principals"),
                        "terminate needs at least one principal",
                    );
                }
                if p.mediation == Mediation::Passthrough as i32 && !p.principals.is_empty() {
                    // Never silently ignored: in passthrough the broker
                    // checks passwords, and these would check nothing.
                    v.add(
                        format!("{at}.sasl_plain.principals"),
                        "only checked with mediation = \"terminate\" (in passthrough, the \
                         default, the broker checks passwords): set mediation = \"terminate\" \
                         or remove principals",
                    );
                }
                for (j, principal) in p.principals.iter().enumerate() {
                    let pat = format!("{at}.sasl_plain.principals[{j}]");
                    rules::max_len(v, &format!("{pat}.username"), &principal.username, 255);
                    if p.principals[..j]
                        .iter()
                        .any(|earlier| earlier.username == principal.username)
                    {
                        v.add(
                            format!("{pat}.username"),
                            format!(
                                "{:?} is listed twice: each principal once",
                                principal.username
                            ),
                        );
                    }
                }
            }
            Some(Method::SaslScram(s)) => rules::enum_set::<ScramAlgorithm>(
                v,
                &format!("{at}.sasl_scram.algorithm"),
                s.algorithm,
                SCRAM,
            ),
            Some(Method::OauthBearer(o)) => {
                rules::enum_set::<Mediation>(
                    v,
                    &format!("{at}.oauth_bearer.mediation"),
                    o.mediation,
                    "passthrough, validate_forward, terminate",
                );
                if o.mediation == Mediation::Passthrough as i32 {
                    for (set, field) in [
                        (o.jwks.is_some(), "jwks"),
                        (o.validate.is_some(), "validate"),
                    ] {
                        if set {
                            v.add(
                                format!("{at}.oauth_bearer.{field}"),
                                "only used when the gateway checks tokens (in passthrough, the \
                                 default, the broker does): set mediation = \"validate_forward\" \
                                 or \"terminate\", or remove it",
                            );
                        }
                    }
                } else {
                    // A gateway that checks tokens checks whom they are for:
                    // without an issuer and an audience, any token the key
                    // set signs (any app of a shared identity provider)
                    // would get in.
                    let checks = o.validate.clone().unwrap_or_default();
                    if checks.issuer.is_empty() {
                        v.add(
                            format!("{at}.oauth_bearer.validate.issuer"),
                            "required unless mediation is passthrough: the iss every token must carry",
                        );
                    }
                    if checks.audiences.is_empty() {
                        v.add(
                            format!("{at}.oauth_bearer.validate.audiences"),
                            "required unless mediation is passthrough: at least one aud a token must carry",
                        );
                    }
                    match &o.jwks {
                        Some(jwks) => rules::url(
                            v,
                            &format!("{at}.oauth_bearer.jwks.endpoint"),
                            &jwks.endpoint,
                        ),
                        None => v.add(
                            format!("{at}.oauth_bearer.jwks"),
                            "required unless mediation is passthrough",
                        ),
                    }
                }
            }
        }
    }
    rules::enum_set::<sluice_proto::admin::v1::AclMode>(
        v,
        "acl_mode",
        vc.acl_mode,
        "enforce_on_gateway, passthrough",
    );
    if let Some(ns) = &vc.namespace {
        rules::enum_set::<NamespaceMode>(
            v,
            "namespace.mode",
            ns.mode,
            "hide_prefix, enforce_prefix",
        );
        rules::max_len(v, "namespace.prefix", &ns.prefix, 200);
        if let Some(additional) = &ns.additional {
            name_selector(v, "namespace.additional.topics", additional.topics.as_ref());
            name_selector(
                v,
                "namespace.additional.consumer_groups",
                additional.consumer_groups.as_ref(),
            );
        }
    }
    for (i, alias) in vc.topic_aliases.iter().enumerate() {
        rules::max_len(v, &format!("topic_aliases[{i}].alias"), &alias.alias, 249);
        rules::max_len(v, &format!("topic_aliases[{i}].topic"), &alias.topic, 249);
        if let Some(first) = vc.topic_aliases[..i]
            .iter()
            .position(|a| a.alias == alias.alias)
        {
            v.add_comparing(
                format!("topic_aliases[{i}].alias"),
                [format!("topic_aliases[{first}].alias")],
                format!("alias {:?} is listed twice", alias.alias),
            );
        }
        let at = format!("topic_aliases[{i}].alias");
        if alias.alias == alias.topic {
            v.add(
                at.clone(),
                format!("alias {:?} stands for itself", alias.alias),
            );
        }
        if let Some(other) = vc
            .topic_aliases
            .iter()
            .position(|a| a.topic == alias.alias && a.alias != alias.alias)
        {
            v.add_comparing(
                at.clone(),
                [format!("topic_aliases[{other}].topic")],
                format!(
                    "alias {:?} is the topic another alias stands for: aliases do not chain, so \
                     clients naming it would reach a different topic than that alias does",
                    alias.alias
                ),
            );
        }
        let shared = vc
            .namespace
            .as_ref()
            .and_then(|n| n.additional.as_ref())
            .and_then(|a| a.topics.as_ref())
            .and_then(|t| t.selector.as_ref());
        let shadows = match shared {
            Some(name_selector::Selector::ExactList(list)) => list.names.contains(&alias.alias),
            Some(name_selector::Selector::Glob(g)) => sluice_proto::names::glob(g, &alias.alias),
            None => false,
        };
        if shadows {
            v.add(
                at,
                format!(
                    "alias {:?} is also a shared topic (namespace.additional.topics): clients \
                     naming it would reach {:?}, never the shared topic",
                    alias.alias, alias.topic
                ),
            );
        }
    }
}

fn name_selector(v: &mut Violations, at: &str, selector: Option<&NameSelector>) {
    match selector.and_then(|s| s.selector.as_ref()) {
        None => {}
        Some(name_selector::Selector::Glob(g)) => rules::max_len(v, &format!("{at}.glob"), g, 249),
        Some(name_selector::Selector::ExactList(list)) => {
            for (i, name) in list.names.iter().enumerate() {
                rules::required(v, &format!("{at}.exact_list.names[{i}]"), name, 249);
            }
        }
    }
}

fn listener(v: &mut Violations, l: &Listener) {
    if l.addresses.is_empty() {
        v.add("addresses", "at least one address is required");
    }
    let wildcard = l.addresses.iter().any(|a| a == "0.0.0.0" || a == "::");
    for (i, address) in l.addresses.iter().enumerate() {
        let field = format!("addresses[{i}]");
        if !rules::is_host(address) {
            v.add(
                &field,
                format!("{address:?} is not an IP address or host name"),
            );
        } else if wildcard && l.addresses.len() > 1 && (address == "0.0.0.0" || address == "::") {
            v.add(
                &field,
                format!("{address} listens everywhere and must stand alone"),
            );
        }
    }
    if l.ports.is_empty() {
        v.add("ports", "at least one port or range is required");
    }
    let mut seen: Vec<(u16, u16)> = Vec::new();
    for (i, port) in l.ports.iter().enumerate() {
        let field = format!("ports[{i}]");
        match rules::parse_port_spec(port) {
            None => rules::port_spec(v, &field, port),
            Some((a, b)) => {
                if seen.iter().any(|(x, y)| a <= *y && *x <= b) {
                    v.add(field, format!("{port} overlaps another entry"));
                }
                seen.push((a, b));
            }
        }
    }
    if let Some(proxy) = &l.proxy_protocol {
        if proxy.trusted_ranges.is_empty() {
            v.add(
                "proxy_protocol.trusted_ranges",
                "at least one CIDR range of the trusted load balancers is required",
            );
        }
        for (i, range) in proxy.trusted_ranges.iter().enumerate() {
            rules::cidr(v, &format!("proxy_protocol.trusted_ranges[{i}]"), range);
        }
    }
}

fn tls_server(v: &mut Violations, t: &ListenerPolicyTlsServer) {
    if t.certificates.is_empty() {
        v.add("certificates", "at least one certificate is required");
    }
    for (i, pair) in t.certificates.iter().enumerate() {
        certificate_and_key(v, &format!("certificates[{i}]"), pair);
    }
    if let Some(range) = &t.versions {
        rules::enum_set::<TlsVersion>(v, "versions.min", range.min, TLS_VERSIONS);
        rules::enum_set::<TlsVersion>(v, "versions.max", range.max, TLS_VERSIONS);
        if range.min > range.max {
            v.add("versions.min", "must not be above versions.max");
        }
    }
    if let Some(ca) = &t.client_authentication {
        rules::enum_set::<ClientAuthenticationMode>(
            v,
            "client_authentication.mode",
            ca.mode,
            "required, requested",
        );
        if ca.trust_bundle_ids.is_empty() {
            v.add(
                "client_authentication.trust_bundle_ids",
                "at least one trust bundle is required",
            );
        }
    }
}

fn forward(v: &mut Violations, f: &ListenerPolicyForwardToVirtualCluster) {
    use listener_policy_forward_to_virtual_cluster::Config;
    match &f.config {
        None => v.add("port_mapping", "set one of port_mapping, sni"),
        Some(Config::PortMapping(p)) => {
            if !rules::is_host(&p.advertised_host) {
                v.add(
                    "port_mapping.advertised_host",
                    format!("{:?} is not a host name or IP address", p.advertised_host),
                );
            }
            rules::enum_set::<BootstrapPort>(
                v,
                "port_mapping.bootstrap_port",
                p.bootstrap_port,
                "none, at_start",
            );
            if p.min_broker_id < 0 {
                v.add("port_mapping.min_broker_id", "must be 0 or more");
            }
        }
        Some(Config::Sni(s)) => {
            let suffix = &s.sni_suffix;
            let body = suffix.get(1..).unwrap_or_default();
            if !(suffix.starts_with('.') || suffix.starts_with('-')) || !rules::is_host(body) {
                v.add(
                    "sni.sni_suffix",
                    format!("{suffix:?} must start with '.' or '-' followed by a host name"),
                );
            }
            if s.advertised_port != 0 {
                rules::port(v, "sni.advertised_port", s.advertised_port);
            }
            rules::enum_set::<BrokerHostFormat>(
                v,
                "sni.broker_host_format",
                s.broker_host_format,
                "per_cluster_suffix, shared_suffix",
            );
        }
    }
}

fn event_hook(v: &mut Violations, h: &EventHook) {
    rules::enum_set::<EventSource>(v, "source", h.source, "crud, dataplane");
    if !h.event.is_empty() {
        let known = if h.source == EventSource::Dataplane as i32 {
            DATAPLANE_EVENTS.contains(&h.event.as_str())
        } else {
            sluice_proto::admin::v1::Kind::from_slug(&h.event).is_some()
        };
        if !known {
            let choices = if h.source == EventSource::Dataplane as i32 {
                DATAPLANE_EVENTS.join(", ")
            } else {
                "an entity kind such as virtual_cluster".to_string()
            };
            v.add_comparing(
                "event",
                ["source"],
                format!(
                    "{:?} is not an event of this source: use {choices}, or leave it empty for all",
                    h.event
                ),
            );
        }
    }
    rules::enum_set::<EventHandler>(v, "handler", h.handler, "webhook, log");
    if h.handler == EventHandler::Webhook as i32 {
        match &h.config {
            Some(config) => rules::url(v, "config.url", &config.url),
            None => v.add("config.url", "a webhook needs a url"),
        }
    }
    if let Some(config) = &h.config
        && !(1..=300).contains(&config.timeout)
    {
        v.add("config.timeout", "must be 1-300 seconds");
    }
}
