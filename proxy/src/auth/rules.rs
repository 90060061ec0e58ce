//! A virtual cluster's `authentication` rules, compiled: which rule a
//! client falls under (first match wins) and whether an open session is
//! still admitted after the rules change.
//!
//! A client that starts SASL falls under the first rule offering its
//! mechanism (`sasl_plain` → PLAIN, `sasl_scram` → its SCRAM-SHA-*,
//! `oauth_bearer` → OAUTHBEARER); a client that sends a request without
//! SASL falls under the first `anonymous` rule, or `client_certificate`
//! rule when it presented a verified certificate, whichever comes first.
//! An empty list is one `anonymous` rule.

use std::{collections::HashMap, sync::Arc};

use sluice_proto::admin::v1::{
    Mediation, OauthBearer, ScramAlgorithm, VirtualClusterAuthentication,
    virtual_cluster_authentication::Method,
};

use super::{Principal, Session, oauth::Validator};
use crate::listener::handshake::Hello;

/// How a rule handles a client's SASL exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Clients without credentials, as `User:ANONYMOUS`.
    Anonymous,
    /// Clients identified by their verified TLS certificate.
    ClientCertificate,
    /// PLAIN checked by the gateway against these password hashes (by
    /// username); the upstream uses the backend cluster's credentials.
    PlainTerminate(Arc<HashMap<String, String>>),
    /// PLAIN relayed to the broker on the client's own upstream.
    PlainPassthrough,
    /// SCRAM-SHA-256 or -512 relayed to the broker.
    ScramPassthrough(&'static str),
    /// OAUTHBEARER: relayed unchecked, checked then relayed, or checked
    /// and answered by the gateway.
    Oauth(OauthRule),
}

/// A compiled `oauth_bearer` rule.
#[derive(Debug, Clone)]
pub struct OauthRule {
    spec: OauthBearer,
    /// How tokens are checked; `None` for passthrough.
    pub validator: Option<Arc<Validator>>,
}

impl PartialEq for OauthRule {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

impl Eq for OauthRule {}

impl OauthRule {
    /// `passthrough`, `validate_forward` or `terminate`.
    pub fn mediation(&self) -> Mediation {
        self.validator
            .as_ref()
            .map_or(Mediation::Passthrough, |v| v.mediation())
    }
}

impl Rule {
    /// The SASL mechanism it answers to, if any.
    pub fn mechanism(&self) -> Option<&'static str> {
        match self {
            Rule::Anonymous | Rule::ClientCertificate => None,
            Rule::PlainTerminate(_) | Rule::PlainPassthrough => Some("PLAIN"),
            Rule::ScramPassthrough(m) => Some(m),
            Rule::Oauth(_) => Some("OAUTHBEARER"),
        }
    }

    /// Whether the client's exchange is relayed to the broker (its
    /// upstream then carries the client's own credentials, not the
    /// backend cluster's).
    pub fn relays(&self) -> bool {
        match self {
            Rule::PlainPassthrough | Rule::ScramPassthrough(_) => true,
            Rule::Oauth(o) => o.mediation() != Mediation::Terminate,
            _ => false,
        }
    }
}

/// The compiled rules of one virtual cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            rules: vec![Rule::Anonymous],
        }
    }
}

impl Rules {
    /// Rules that admit nobody: what a virtual cluster whose rules cannot
    /// be compiled gets (its connections are refused besides).
    pub fn deny_all() -> Rules {
        Rules { rules: Vec::new() }
    }

    /// Compiles a virtual cluster's rules, or names the field this node
    /// cannot enforce (a method or mediation it does not know, a
    /// principal without its password hash).
    pub fn compile(list: &[VirtualClusterAuthentication]) -> Result<Rules, String> {
        if list.is_empty() {
            return Ok(Rules::default());
        }
        let mut rules = Vec::with_capacity(list.len());
        for (i, rule) in list.iter().enumerate() {
            let at = format!("authentication[{i}]");
            rules.push(match &rule.method {
                Some(Method::Anonymous(_)) => Rule::Anonymous,
                Some(Method::ClientCertificate(_)) => Rule::ClientCertificate,
                Some(Method::SaslPlain(p)) => match Mediation::try_from(p.mediation) {
                    Ok(Mediation::Unspecified | Mediation::Passthrough) => Rule::PlainPassthrough,
                    Ok(Mediation::Terminate) => {
                        let mut hashes = HashMap::with_capacity(p.principals.len());
                        for (j, principal) in p.principals.iter().enumerate() {
                            if principal.password_hash.is_empty() {
                                return Err(format!(
                                    "{at}.sasl_plain.principals[{j}]: no password hash came with \
                                     it (is sluice-server older than this node?)"
                                ));
                            }
                            hashes.insert(
                                principal.username.clone(),
                                principal.password_hash.clone(),
                            );
                        }
                        Rule::PlainTerminate(Arc::new(hashes))
                    }
                    _ => {
                        return Err(format!(
                            "{at}.sasl_plain.mediation: {} is not one this node enforces",
                            p.mediation
                        ));
                    }
                },
                Some(Method::SaslScram(s)) => match ScramAlgorithm::try_from(s.algorithm) {
                    Ok(ScramAlgorithm::Sha256) => Rule::ScramPassthrough("SCRAM-SHA-256"),
                    Ok(ScramAlgorithm::Sha512) => Rule::ScramPassthrough("SCRAM-SHA-512"),
                    _ => {
                        return Err(format!(
                            "{at}.sasl_scram.algorithm: {} is unknown to this node",
                            s.algorithm
                        ));
                    }
                },
                Some(Method::OauthBearer(o)) => Rule::Oauth(OauthRule {
                    spec: o.clone(),
                    validator: Validator::compile(o, super::key_sets())
                        .map_err(|e| format!("{at}.oauth_bearer.{e}"))?
                        .map(Arc::new),
                }),
                None => return Err(format!("{at}: a method unknown to this node")),
            });
        }
        Ok(Rules { rules })
    }

    /// Whether any rule takes SASL (the connection then starts in the
    /// gate, where its SASL exchange happens before anything else).
    pub fn takes_sasl(&self) -> bool {
        self.rules.iter().any(|r| r.mechanism().is_some())
    }

    /// The mechanisms offered, in rule order, each once.
    pub fn mechanisms(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for m in self.rules.iter().filter_map(Rule::mechanism) {
            if !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }

    /// The rule at `index`.
    pub fn rule(&self, index: usize) -> Option<&Rule> {
        self.rules.get(index)
    }

    /// The first rule offering `mechanism`, with its position.
    pub fn for_mechanism(&self, mechanism: &str) -> Option<(usize, &Rule)> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.mechanism() == Some(mechanism))
    }

    /// The principal of a client that sends requests without SASL: the
    /// first `anonymous` rule, or `client_certificate` rule when the
    /// client presented a verified certificate.
    pub fn without_sasl(&self, hello: &Hello) -> Option<Session> {
        self.rules.iter().enumerate().find_map(|(i, r)| match r {
            Rule::Anonymous => Some(Session {
                principal: Principal::anonymous(),
                mechanism: "ANONYMOUS",
                rule: i,
                relayed: false,
                expires_at: None,
            }),
            Rule::ClientCertificate => hello.certificate.as_ref().map(|c| Session {
                principal: Principal::of_certificate(c),
                mechanism: "MTLS",
                rule: i,
                relayed: false,
                expires_at: None,
            }),
            _ => None,
        })
    }

    /// The rule that admits an open session under these rules, if it is
    /// admitted the same way as by `before` (the rule that admitted it):
    /// the same kind of rule at the first match for its mechanism, and for
    /// gateway-checked passwords the same password hash. `None` ends it.
    pub fn still_admit(&self, session: &Session, hello: &Hello, before: &Rule) -> Option<Rule> {
        if session.mechanism == "ANONYMOUS" || session.mechanism == "MTLS" {
            let now = self.without_sasl(hello)?;
            return (now.principal == session.principal)
                .then(|| self.rules.get(now.rule).cloned())
                .flatten();
        }
        let (_, now) = self.for_mechanism(session.mechanism)?;
        let same = match (before, now) {
            (Rule::PlainTerminate(old), Rule::PlainTerminate(new)) => {
                let user = session.principal.name();
                old.get(user).is_some() && old.get(user) == new.get(user)
            }
            (before, now) => before == now,
        };
        same.then(|| now.clone())
    }
}

#[cfg(test)]
mod tests {
    use sluice_proto::admin::v1::{
        Anonymous, ClientCertificate, Principal as Credential, VirtualSaslPlain, VirtualSaslScram,
    };

    use super::*;

    fn rule(method: Method) -> VirtualClusterAuthentication {
        VirtualClusterAuthentication {
            method: Some(method),
        }
    }

    fn plain_terminate(hash: &str) -> VirtualClusterAuthentication {
        rule(Method::SaslPlain(VirtualSaslPlain {
            mediation: Mediation::Terminate as i32,
            principals: vec![Credential {
                username: "alice".into(),
                password_hash: hash.into(),
                ..Default::default()
            }],
        }))
    }

    fn hello(with_certificate: bool) -> Hello {
        let mut h = Hello::plaintext("127.0.0.1:1".parse().unwrap());
        if with_certificate {
            h.certificate = Some(Arc::new(crate::tls::identity::ClientCertificate {
                subject: "CN=app-1,O=team-a".into(),
                common_name: Some("app-1".into()),
                alternative_names: vec![],
            }));
        }
        h
    }

    #[test]
    fn first_match_wins_and_order_decides_the_principal() {
        let cert_first = Rules::compile(&[
            rule(Method::ClientCertificate(ClientCertificate {})),
            rule(Method::Anonymous(Anonymous {})),
        ])
        .unwrap();
        let s = cert_first.without_sasl(&hello(true)).unwrap();
        assert_eq!(s.principal.to_string(), "User:app-1");
        let s = cert_first.without_sasl(&hello(false)).unwrap();
        assert_eq!(s.principal.to_string(), "User:ANONYMOUS");
        let anonymous_first = Rules::compile(&[
            rule(Method::Anonymous(Anonymous {})),
            rule(Method::ClientCertificate(ClientCertificate {})),
        ])
        .unwrap();
        let s = anonymous_first.without_sasl(&hello(true)).unwrap();
        assert_eq!(s.principal.to_string(), "User:ANONYMOUS");
        // SASL only: a client without SASL falls under no rule.
        let sasl_only = Rules::compile(&[plain_terminate("$argon2id$x")]).unwrap();
        assert!(sasl_only.without_sasl(&hello(true)).is_none());
        assert!(sasl_only.takes_sasl());
        assert!(!anonymous_first.takes_sasl());
        assert_eq!(Rules::compile(&[]).unwrap(), Rules::default());
    }

    #[test]
    fn mechanisms_are_offered_in_rule_order_once() {
        let rules = Rules::compile(&[
            rule(Method::SaslScram(VirtualSaslScram {
                algorithm: ScramAlgorithm::Sha512 as i32,
            })),
            plain_terminate("$argon2id$x"),
            rule(Method::SaslPlain(VirtualSaslPlain::default())),
        ])
        .unwrap();
        assert_eq!(rules.mechanisms(), ["SCRAM-SHA-512", "PLAIN"]);
        let (i, r) = rules.for_mechanism("PLAIN").unwrap();
        assert_eq!(i, 1);
        assert!(matches!(r, Rule::PlainTerminate(_)));
        assert!(rules.for_mechanism("SCRAM-SHA-256").is_none());
    }

    #[test]
    fn what_this_node_cannot_check_is_refused_naming_the_field() {
        let err = Rules::compile(&[plain_terminate("")]).unwrap_err();
        assert!(
            err.starts_with("authentication[0].sasl_plain.principals[0]"),
            "{err}"
        );
        let err = Rules::compile(&[rule(Method::SaslPlain(VirtualSaslPlain {
            mediation: Mediation::ValidateForward as i32,
            ..Default::default()
        }))])
        .unwrap_err();
        assert!(err.contains("sasl_plain.mediation"), "{err}");
        let err = Rules::compile(&[VirtualClusterAuthentication { method: None }]).unwrap_err();
        assert!(err.contains("unknown"), "{err}");
    }

    #[test]
    fn sessions_end_when_their_rule_or_password_changes() {
        let before = Rules::compile(&[plain_terminate("$argon2id$one")]).unwrap();
        let session = Session {
            principal: Principal::user("alice"),
            mechanism: "PLAIN",
            rule: 0,
            relayed: false,
            expires_at: None,
        };
        let h = hello(false);
        let admitted_by = before.rule(0).unwrap();
        assert!(before.still_admit(&session, &h, admitted_by).is_some());
        let changed = Rules::compile(&[plain_terminate("$argon2id$two")]).unwrap();
        assert!(changed.still_admit(&session, &h, admitted_by).is_none());
        let passthrough =
            Rules::compile(&[rule(Method::SaslPlain(VirtualSaslPlain::default()))]).unwrap();
        assert!(passthrough.still_admit(&session, &h, admitted_by).is_none());
        let anonymous = Rules::default();
        let open = anonymous.without_sasl(&h).unwrap();
        assert!(anonymous.still_admit(&open, &h, &Rule::Anonymous).is_some());
        assert!(before.still_admit(&open, &h, &Rule::Anonymous).is_none());
    }
}
