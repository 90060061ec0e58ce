//! What is shown of a webhook URL outside the hook's own reads (event
//! payloads, the revision log, delivery errors, the server log): the
//! scheme, host and port. Userinfo, the query and the path often carry
//! credentials (`https://user:token@host/hook?key=...`; Slack's and
//! Discord's webhook URLs carry their token in the path), so they are
//! replaced, and a fragment is dropped.

use sluice_proto::admin::v1::{Entity, entity::Spec};

/// What replaces a userinfo or a query.
const REDACTED: &str = "redacted";

/// The URL with its userinfo and query replaced by `redacted` and its
/// fragment removed; text that is not a URL is kept only up to where
/// credentials could start.
pub fn url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (before_query, query) = match rest.split_once('?') {
        Some((before, _)) => (before, true),
        None => (rest, false),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{REDACTED}@{host}"),
        None => authority.to_string(),
    };
    let path = if path.is_empty() || path == "/" {
        path.to_string()
    } else {
        format!("/{REDACTED}")
    };
    let mut out = match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    };
    if query {
        out.push('?');
        out.push_str(REDACTED);
    }
    out
}

/// Redacts what an entity holds that other audiences must not see (an
/// event hook's URL); secrets are already only fingerprints.
pub fn entity(entity: &mut Entity) {
    if let Some(Spec::EventHook(hook)) = entity.spec.as_mut()
        && let Some(config) = hook.config.as_mut()
        && !config.url.is_empty()
    {
        config.url = url(&config.url);
    }
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn credentials_in_urls_are_redacted() {
        for (given, shown) in [
            (
                "https://hooks.example.com/sluice",
                "https://hooks.example.com/redacted",
            ),
            (
                "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
                "https://hooks.slack.com/redacted",
            ),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
            (
                "https://user:s3cret@hooks.example.com:8443/h?token=abc&x=1#frag",
                "https://redacted@hooks.example.com:8443/redacted?redacted",
            ),
            ("https://tok@host", "https://redacted@host"),
            ("https://host?key=abc", "https://host?redacted"),
            ("https://a@b@host/p", "https://redacted@host/redacted"),
            (
                "https://[::1]:9000/p?q",
                "https://[::1]:9000/redacted?redacted",
            ),
            ("https://host/p@q", "https://host/redacted"),
            ("https://host/p#token", "https://host/redacted"),
        ] {
            assert_eq!(url(given), shown, "{given}");
        }
        assert!(!url("https://discord.com/api/webhooks/1/SECRET").contains("SECRET"));
        for secret in ["s3cret", "abc", "token=", "user"] {
            assert!(!url("https://user:s3cret@h/p?token=abc").contains(secret));
        }
    }
}
