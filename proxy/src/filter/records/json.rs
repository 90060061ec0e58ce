//! A record's value read as JSON, strictly: a document that names an
//! object member twice is not JSON here. Parsers disagree on which of the
//! two counts (serde_json keeps the last, others the first), so checking
//! or encrypting one reading while consumers see the other would let a
//! producer slip a value past a schema or keep a field in plaintext.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// `bytes` as a JSON document; an error when it is not JSON or repeats a
/// member of an object.
pub(super) fn parse(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice::<Strict>(bytes)
        .map(|s| s.0)
        .map_err(|e| format!("value is not JSON: {}", what(&e)))
}

/// What is wrong with a document and where, without its content (serde
/// errors quote what they read, e.g. an unknown variant).
fn what(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let kind = match e.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "a syntax error",
        Category::Data if e.to_string().contains("repeated") => "an object member repeated",
        Category::Data => "an unexpected value",
        Category::Eof => "cut short",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

/// A JSON value whose objects never repeat a member.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if out.contains_key(&key) {
                // Not named: it is the record's content.
                return Err(de::Error::custom("an object member repeated"));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_members_are_not_json_here() {
        assert_eq!(
            parse(br#"{"a":[1,{"b":null}],"c":-2.5,"d":"x"}"#).unwrap(),
            serde_json::json!({"a":[1,{"b":null}],"c":-2.5,"d":"x"})
        );
        let err = parse(br#"{"card":{"number":"4111"},"card":{}}"#).unwrap_err();
        assert!(err.contains("repeated"), "{err}");
        assert!(parse(br#"{"a":{"x":1,"x":2}}"#).is_err());
        assert!(parse(b"not json").is_err());
    }
}
