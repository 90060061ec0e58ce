//! What the server and the nodes must read the same way in a record
//! policy: static key values and the JSON paths of field-level
//! encryption.

use base64::Engine;

/// The most fields one encrypt or decrypt policy may name.
pub const MAX_FIELDS: usize = 32;

/// The deepest a field path may reach.
const MAX_PATH_DEPTH: usize = 16;

/// A 32-byte key from its base64 or hex text.
pub fn decode_key(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    let bytes = hex::decode(text)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())?;
    (bytes.len() == 32).then_some(bytes)
}

/// The member names along a field path: `$.card.number` is
/// `["card", "number"]`. Only object members from the root are paths
/// (no array indexes, wildcards or filters); a member name with a `.`
/// cannot be named.
pub fn field_path(path: &str) -> Result<Vec<String>, String> {
    let rest = path
        .strip_prefix("$.")
        .ok_or("must start with `$.` (e.g. `$.card.number`)")?;
    let members: Vec<String> = rest.split('.').map(str::to_string).collect();
    if members.iter().any(String::is_empty) {
        return Err("has an empty member name (`..` or a trailing `.`)".into());
    }
    if members
        .iter()
        .any(|m| m.contains(['[', ']', '*', '?', '@', '(', ')']))
    {
        return Err(
            "names object members only: array indexes, wildcards and filters are not supported"
                .into(),
        );
    }
    if members.len() > MAX_PATH_DEPTH {
        return Err(format!("is deeper than {MAX_PATH_DEPTH} members"));
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_keys() {
        assert_eq!(field_path("$.card.number").unwrap(), ["card", "number"]);
        assert!(field_path("card.number").is_err());
        assert!(field_path("$.a..b").is_err());
        assert!(field_path("$.items[0]").is_err());
        assert!(field_path("$.").is_err());
        assert!(decode_key(&"ab".repeat(32)).is_some());
        assert!(decode_key("c2hvcnQ=").is_none());
    }
}
