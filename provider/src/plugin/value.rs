//! Terraform values on the wire: msgpack (what Terraform sends and what we
//! answer) and JSON (stored state), decoded against a type because msgpack
//! alone cannot tell an object from a map.

use std::collections::BTreeMap;

use anyhow::{Context, anyhow, bail};

/// A Terraform type (the subset provider schemas use).
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// `"string"`
    String,
    /// `"number"`
    Number,
    /// `"bool"`
    Bool,
    /// `["list", T]`
    List(Box<Type>),
    /// `["map", T]`
    Map(Box<Type>),
    /// `["object", {...}]`
    Object(BTreeMap<String, Type>),
}

impl Type {
    /// The JSON type constraint Terraform reads from a schema.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Type::String => json!("string"),
            Type::Number => json!("number"),
            Type::Bool => json!("bool"),
            Type::List(t) => json!(["list", t.to_json()]),
            Type::Map(t) => json!(["map", t.to_json()]),
            Type::Object(attrs) => {
                let fields: serde_json::Map<String, serde_json::Value> = attrs
                    .iter()
                    .map(|(k, t)| (k.clone(), t.to_json()))
                    .collect();
                json!(["object", fields])
            }
        }
    }
}

/// A Terraform value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// null
    Null,
    /// Not known until apply.
    Unknown,
    /// A string.
    String(String),
    /// A number.
    Number(f64),
    /// A bool.
    Bool(bool),
    /// A list.
    List(Vec<Value>),
    /// A map or an object.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// Whether the value and everything in it is known.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(items) => items.iter().all(Value::is_wholly_known),
            Value::Map(m) => m.values().all(Value::is_wholly_known),
            _ => true,
        }
    }

    /// An attribute of an object value (Null when absent or not an object).
    pub fn get(&self, name: &str) -> &Value {
        match self {
            Value::Map(m) => m.get(name).unwrap_or(&Value::Null),
            _ => &Value::Null,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// Decodes msgpack bytes as a value of type `ty`.
pub fn from_msgpack(bytes: &[u8], ty: &Type) -> anyhow::Result<Value> {
    let raw = rmpv::decode::read_value(&mut &bytes[..]).context("not msgpack")?;
    from_rmpv(&raw, ty)
}

fn from_rmpv(raw: &rmpv::Value, ty: &Type) -> anyhow::Result<Value> {
    use rmpv::Value as R;
    match (raw, ty) {
        (R::Nil, _) => Ok(Value::Null),
        // Any extension is an unknown (refinements are ignored).
        (R::Ext(_, _), _) => Ok(Value::Unknown),
        (R::String(s), Type::String) => Ok(Value::String(
            s.as_str().context("string is not UTF-8")?.to_string(),
        )),
        (R::Integer(i), Type::Number) => Ok(Value::Number(
            i.as_i64()
                .map(|v| v as f64)
                .or(i.as_u64().map(|v| v as f64))
                .unwrap_or_default(),
        )),
        (R::F64(f), Type::Number) => Ok(Value::Number(*f)),
        (R::F32(f), Type::Number) => Ok(Value::Number(f64::from(*f))),
        (R::String(s), Type::Number) => Ok(Value::Number(
            s.as_str()
                .and_then(|t| t.parse().ok())
                .context("number string is not a number")?,
        )),
        (R::Boolean(b), Type::Bool) => Ok(Value::Bool(*b)),
        (R::Array(items), Type::List(t)) => Ok(Value::List(
            items
                .iter()
                .map(|i| from_rmpv(i, t))
                .collect::<Result<_, _>>()?,
        )),
        (R::Map(entries), Type::Map(t)) => {
            let mut out = BTreeMap::new();
            for (k, v) in entries {
                let key = k.as_str().context("map key is not a string")?;
                out.insert(key.to_string(), from_rmpv(v, t)?);
            }
            Ok(Value::Map(out))
        }
        (R::Map(entries), Type::Object(attrs)) => {
            let mut out: BTreeMap<String, Value> =
                attrs.keys().map(|k| (k.clone(), Value::Null)).collect();
            for (k, v) in entries {
                let key = k.as_str().context("attribute name is not a string")?;
                let t = attrs
                    .get(key)
                    .with_context(|| format!("unsupported attribute {key:?}"))?;
                out.insert(key.to_string(), from_rmpv(v, t)?);
            }
            Ok(Value::Map(out))
        }
        (other, ty) => bail!("msgpack {other:?} is not a {ty:?}"),
    }
}

/// Encodes a value of type `ty` as msgpack (every object attribute present).
pub fn to_msgpack(value: &Value, ty: &Type) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &to_rmpv(value, ty)?)?;
    Ok(out)
}

fn to_rmpv(value: &Value, ty: &Type) -> anyhow::Result<rmpv::Value> {
    use rmpv::Value as R;
    Ok(match (value, ty) {
        (Value::Null, _) => R::Nil,
        (Value::Unknown, _) => R::Ext(0, vec![0]),
        (Value::String(s), Type::String) => R::from(s.as_str()),
        (Value::Number(n), Type::Number) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                R::from(*n as i64)
            } else {
                R::F64(*n)
            }
        }
        (Value::Bool(b), Type::Bool) => R::Boolean(*b),
        (Value::List(items), Type::List(t)) => R::Array(
            items
                .iter()
                .map(|i| to_rmpv(i, t))
                .collect::<Result<_, _>>()?,
        ),
        (Value::Map(m), Type::Map(t)) => R::Map(
            m.iter()
                .map(|(k, v)| Ok((R::from(k.as_str()), to_rmpv(v, t)?)))
                .collect::<anyhow::Result<_>>()?,
        ),
        (Value::Map(m), Type::Object(attrs)) => R::Map(
            attrs
                .iter()
                .map(|(k, t)| {
                    Ok((
                        R::from(k.as_str()),
                        to_rmpv(m.get(k).unwrap_or(&Value::Null), t)?,
                    ))
                })
                .collect::<anyhow::Result<_>>()?,
        ),
        (v, t) => bail!("value {v:?} is not a {t:?}"),
    })
}

/// Decodes JSON (stored state) as a value of type `ty`; attributes the type
/// no longer has are dropped.
pub fn from_json(json: &serde_json::Value, ty: &Type) -> anyhow::Result<Value> {
    use serde_json::Value as J;
    match (json, ty) {
        (J::Null, _) => Ok(Value::Null),
        (J::String(s), Type::String) => Ok(Value::String(s.clone())),
        (J::Number(n), Type::Number) => Ok(Value::Number(n.as_f64().unwrap_or_default())),
        (J::String(s), Type::Number) => Ok(Value::Number(
            s.parse().map_err(|_| anyhow!("not a number: {s}"))?,
        )),
        (J::Bool(b), Type::Bool) => Ok(Value::Bool(*b)),
        (J::Array(items), Type::List(t)) => Ok(Value::List(
            items
                .iter()
                .map(|i| from_json(i, t))
                .collect::<Result<_, _>>()?,
        )),
        (J::Object(m), Type::Map(t)) => Ok(Value::Map(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), from_json(v, t)?)))
                .collect::<anyhow::Result<_>>()?,
        )),
        (J::Object(m), Type::Object(attrs)) => Ok(Value::Map(
            attrs
                .iter()
                .map(|(k, t)| {
                    Ok((
                        k.clone(),
                        m.get(k).map_or(Ok(Value::Null), |v| from_json(v, t))?,
                    ))
                })
                .collect::<anyhow::Result<_>>()?,
        )),
        (other, ty) => bail!("JSON {other} is not a {ty:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty() -> Type {
        Type::Object(BTreeMap::from([
            ("name".to_string(), Type::String),
            ("ports".to_string(), Type::List(Box::new(Type::String))),
            ("labels".to_string(), Type::Map(Box::new(Type::String))),
            ("count".to_string(), Type::Number),
            ("on".to_string(), Type::Bool),
        ]))
    }

    #[test]
    fn round_trips_with_nulls_and_unknowns() {
        let v = Value::Map(BTreeMap::from([
            ("name".to_string(), Value::String("x".into())),
            (
                "ports".to_string(),
                Value::List(vec![Value::String("9092".into()), Value::Unknown]),
            ),
            ("labels".to_string(), Value::Null),
            ("count".to_string(), Value::Number(60.0)),
            ("on".to_string(), Value::Unknown),
        ]));
        let bytes = to_msgpack(&v, &ty()).unwrap();
        assert_eq!(from_msgpack(&bytes, &ty()).unwrap(), v);
    }

    #[test]
    fn accepts_terraform_unknown_encodings_and_fills_missing_attributes() {
        // fixext1 type 0 (plain unknown) and ext type 12 (refined unknown).
        assert_eq!(
            from_msgpack(&[0xd4, 0x00, 0x00], &Type::String).unwrap(),
            Value::Unknown
        );
        assert_eq!(
            from_msgpack(&[0xd5, 0x0c, 0x81, 0x01], &Type::String).unwrap(),
            Value::Unknown
        );
        let partial = from_json(&serde_json::json!({"name": "a", "gone": 1}), &ty()).unwrap();
        assert_eq!(partial.get("name"), &Value::String("a".into()));
        assert_eq!(partial.get("count"), &Value::Null);
    }

    #[test]
    fn refuses_bytes_of_the_wrong_shape() {
        assert!(from_msgpack(&[0xc3], &Type::String).is_err());
        assert!(from_msgpack(&[0x81, 0xa1, b'z', 0x01], &ty()).is_err());
        assert!(from_msgpack(&[], &ty()).is_err());
    }
}
