//! Field-level rules shared by every kind: names, labels, DNS labels, ports,
//! host:port addresses, PEM blocks, URLs and enums.

use std::net::IpAddr;

use crate::error::Violations;

/// Longest entity name.
pub const MAX_NAME: usize = 255;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 512;
/// Most labels on one entity.
pub const MAX_LABELS: usize = 50;
/// Longest policy condition expression.
pub const MAX_CONDITION: usize = 1000;

/// A name: 1..=255 characters, no control characters.
pub fn name(v: &mut Violations, field: &str, value: &str) {
    if value.trim().is_empty() {
        v.add(field, "must not be empty");
    } else if value.chars().count() > MAX_NAME {
        v.add(field, format!("must be at most {MAX_NAME} characters"));
    } else if value.chars().any(char::is_control) {
        v.add(field, "must not contain control characters");
    }
}

/// A string that must be set and at most `max` characters long.
pub fn required(v: &mut Violations, field: &str, value: &str, max: usize) {
    if value.is_empty() {
        v.add(field, "must be set");
    } else {
        max_len(v, field, value, max);
    }
}

/// A string of at most `max` characters.
pub fn max_len(v: &mut Violations, field: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        v.add(field, format!("must be at most {max} characters"));
    }
}

/// Labels: at most 50, keys 1..=63 of `[A-Za-z0-9._/-]`, values ≤ 255.
pub fn labels<'a>(
    v: &mut Violations,
    field: &str,
    labels: impl ExactSizeIterator<Item = (&'a String, &'a String)>,
) {
    if labels.len() > MAX_LABELS {
        v.add(field, format!("at most {MAX_LABELS} labels are allowed"));
    }
    for (key, value) in labels {
        let ok = !key.is_empty()
            && key.len() <= 63
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'));
        if !ok {
            v.add(
                format!("{field}[{key}]"),
                "label keys are 1-63 characters of letters, digits, '.', '_', '/' and '-'",
            );
        }
        max_len(v, &format!("{field}[{key}]"), value, 255);
    }
}

/// An RFC 1035 label: a letter, then letters, digits and hyphens, not
/// ending in a hyphen, 1-63 characters, lower case.
pub fn dns_label(v: &mut Violations, field: &str, value: &str) {
    let bytes = value.as_bytes();
    let ok = (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.last() != Some(&b'-');
    if !ok {
        v.add(
            field,
            format!(
                "{value:?} is not an RFC 1035 label: 1-63 lower-case letters, digits and '-', \
                 starting with a letter and not ending with '-'"
            ),
        );
    }
}

/// A host name (RFC 1123 labels joined by dots) or an IP address.
pub fn is_host(value: &str) -> bool {
    if value.parse::<IpAddr>().is_ok() {
        return true;
    }
    !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A TCP port, 1-65535, from text.
pub fn parse_port(text: &str) -> Option<u16> {
    text.parse::<u16>().ok().filter(|p| *p != 0)
}

/// A port (`"9092"`) or an inclusive range (`"9092-9095"`), as (first, last).
pub fn parse_port_spec(text: &str) -> Option<(u16, u16)> {
    match text.split_once('-') {
        None => parse_port(text.trim()).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (parse_port(a.trim())?, parse_port(b.trim())?);
            (a <= b).then_some((a, b))
        }
    }
}

/// Checks a port or port range.
pub fn port_spec(v: &mut Violations, field: &str, value: &str) {
    if parse_port_spec(value).is_none() {
        v.add(
            field,
            format!("{value:?} is not a port (1-65535) or an ascending range like \"9092-9095\""),
        );
    }
}

/// An address range in CIDR form (`10.0.0.0/8`, `2001:db8::/32`), or a
/// bare IP address for just that address (`/32`, `/128`), as the address
/// and prefix length. Bits below the prefix may be set (`10.1.2.3/8` is
/// `10.0.0.0/8`); the prefix length is at most 32 for IPv4, 128 for IPv6.
pub fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = match text.split_once('/') {
        None => (text, None),
        Some((a, p)) => (a, Some(p)),
    };
    let address: IpAddr = address.parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p)
            if (1..=3).contains(&p.len())
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p == "0" || !p.starts_with('0')) =>
        {
            p.parse::<u8>().ok().filter(|n| *n <= max)?
        }
        Some(_) => return None,
    };
    // An IPv4-mapped IPv6 range (`::ffff:10.0.0.0/104`) is the IPv4 range
    // it maps; one wider than the mapped space is not a range of either.
    if let IpAddr::V6(v6) = address
        && let Some(v4) = v6.to_ipv4_mapped()
    {
        return (prefix >= 96).then(|| (IpAddr::V4(v4), prefix - 96));
    }
    Some((address, prefix))
}

/// Checks an address range in CIDR form or an IP address.
pub fn cidr(v: &mut Violations, field: &str, value: &str) {
    if parse_cidr(value).is_none() {
        v.add(
            field,
            format!(
                "{value:?} is not a CIDR range (\"10.0.0.0/8\", \"2001:db8::/32\"; the prefix \
                 length 0-32 for IPv4, 0-128 for IPv6) or an IP address"
            ),
        );
    }
}

/// Checks a numeric port field.
pub fn port(v: &mut Violations, field: &str, value: u32) {
    if !(1..=65535).contains(&value) {
        v.add(field, format!("{value} is not a port: must be 1-65535"));
    }
}

/// Splits `host:port` or `[v6]:port`.
pub fn parse_host_port(value: &str) -> Option<(&str, u16)> {
    if let Some(rest) = value.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        return Some((host, parse_port(port)?));
    }
    let (host, port) = value.rsplit_once(':')?;
    if host.contains(':') || !is_host(host) {
        return None;
    }
    Some((host, parse_port(port)?))
}

/// Checks a `host:port` or `[v6]:port` address.
pub fn host_port(v: &mut Violations, field: &str, value: &str) {
    if parse_host_port(value).is_none() {
        v.add(
            field,
            format!("{value:?} is not host:port or [ipv6]:port with a port of 1-65535"),
        );
    }
}

/// Checks that an enum field holds a known, specified value.
pub fn enum_set<E: TryFrom<i32>>(v: &mut Violations, field: &str, value: i32, allowed: &str) {
    if value == 0 || E::try_from(value).is_err() {
        v.add(field, format!("must be one of {allowed}"));
    }
}

/// Checks that an enum value is one of the `allowed` ones for this field.
pub fn enum_in(v: &mut Violations, field: &str, value: i32, allowed: &[(i32, &str)]) {
    if !allowed.iter().any(|(n, _)| *n == value) {
        let names: Vec<_> = allowed.iter().map(|(_, s)| *s).collect();
        v.add(field, format!("must be one of {}", names.join(", ")));
    }
}

/// Checks a PEM text holding at least one block with the given label
/// (`CERTIFICATE`).
pub fn pem(v: &mut Violations, field: &str, value: &str, label: &str) {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    if value.trim().is_empty() {
        v.add(field, "must be set");
    } else if !(value.contains(&begin) && value.contains(&end)) {
        v.add(
            field,
            format!("must be PEM with at least one {label} block"),
        );
    }
}

/// Checks an http(s) URL with a host.
pub fn url(v: &mut Violations, field: &str, value: &str) {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let authority = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    let ok = match authority {
        Some(a) if !a.is_empty() => {
            parse_host_port(a).is_some() || is_host(a.trim_start_matches('[').trim_end_matches(']'))
        }
        _ => false,
    };
    if !ok {
        v.add(
            field,
            format!("{value:?} is not an http:// or https:// URL"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(check: impl FnOnce(&mut Violations)) -> bool {
        let mut v = Violations::default();
        check(&mut v);
        !v.is_empty()
    }

    #[test]
    fn dns_labels() {
        for good in ["a", "team-a", "a1", &"a".repeat(63)] {
            assert!(!fails(|v| dns_label(v, "f", good)), "{good}");
        }
        for bad in ["", "1a", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(fails(|v| dns_label(v, "f", bad)), "{bad}");
        }
    }

    #[test]
    fn ports_and_ranges() {
        assert_eq!(parse_port_spec("9092"), Some((9092, 9092)));
        assert_eq!(parse_port_spec("9092-9095"), Some((9092, 9095)));
        for bad in ["0", "65536", "9095-9092", "a", "1-", "-5", ""] {
            assert_eq!(parse_port_spec(bad), None, "{bad}");
        }
    }

    #[test]
    fn host_ports() {
        for good in [
            "127.0.0.1:9092",
            "broker-1.example:9092",
            "[::1]:9092",
            "localhost:1",
        ] {
            assert!(parse_host_port(good).is_some(), "{good}");
        }
        for bad in [
            "127.0.0.1",
            "::1:9092",
            "[::1]",
            "host:0",
            "host:99999",
            "bad host:1",
            ":9092",
        ] {
            assert!(parse_host_port(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn cidr_ranges() {
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(parse_cidr("10.0.0.0/8"), Some((v4("10.0.0.0"), 8)));
        assert_eq!(parse_cidr("10.1.2.3/8"), Some((v4("10.1.2.3"), 8)));
        assert_eq!(parse_cidr("0.0.0.0/0"), Some((v4("0.0.0.0"), 0)));
        assert_eq!(parse_cidr("192.0.2.7"), Some((v4("192.0.2.7"), 32)));
        assert_eq!(parse_cidr("::1"), Some((v4("::1"), 128)));
        assert_eq!(parse_cidr("2001:db8::/32"), Some((v4("2001:db8::"), 32)));
        assert_eq!(parse_cidr("::/0"), Some((v4("::"), 0)));
        assert_eq!(parse_cidr("fe80::1/128"), Some((v4("fe80::1"), 128)));
        // IPv4-mapped ranges are the IPv4 ranges they map.
        assert_eq!(parse_cidr("::ffff:10.0.0.0/104"), Some((v4("10.0.0.0"), 8)));
        assert_eq!(parse_cidr("::ffff:0.0.0.0/96"), Some((v4("0.0.0.0"), 0)));
        assert_eq!(parse_cidr("::ffff:10.0.0.0/95"), None);
        for bad in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0.0/8/8",
            "10.0.0/8",
            " 10.0.0.0/8",
            "10.0.0.0/ 8",
            "::/129",
            "::/0128",
            "10.0.0.0/08",
            "[::1]/128",
            "fe80::1%eth0/64",
            "localhost",
            "localhost/32",
        ] {
            assert_eq!(parse_cidr(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn urls() {
        assert!(!fails(|v| url(v, "f", "http://127.0.0.1:8080/hook")));
        assert!(!fails(|v| url(v, "f", "https://hooks.example/x?y=1")));
        assert!(fails(|v| url(v, "f", "ftp://x")));
        assert!(fails(|v| url(v, "f", "http://")));
    }
}
