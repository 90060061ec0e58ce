//! How configured name patterns match: the `*` globs of
//! `namespace.additional` and of ACL `resource_names`, read the same way
//! by the server (validation) and the proxy (enforcement).

/// Whether `name` matches `pattern`, where `*` stands for any run of
/// characters (possibly empty) and everything else for itself.
pub fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == name;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_runs_of_any_characters() {
        for (p, n) in [
            ("*", ""),
            ("*", "x"),
            ("a*", "a"),
            ("a*c", "abc"),
            ("*b*", "abc"),
            ("a**", "ab"),
            ("exact", "exact"),
        ] {
            assert!(glob(p, n), "{p} {n}");
        }
        for (p, n) in [("a", "ab"), ("a*c", "ab"), ("ab*ba", "aba"), ("x*", "y")] {
            assert!(!glob(p, n), "{p} {n}");
        }
    }
}
