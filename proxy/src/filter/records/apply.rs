//! One record through a phase's policies, in order: each runs where its
//! conditions hold (parents' first), acts on the record, and says what
//! happened to it in the tally. A shadow policy decides and is counted
//! but changes nothing.

use bytes::Bytes;
use kafka_protocol::{protocol::StrBytes, records::Record};
use sluice_proto::{
    admin::v1::FailureMode,
    condition::{self, Condition, Value},
};

use super::{
    crypto::{self, Key},
    json,
    outcomes::{Outcome, Tally},
    policies::{Action, HeaderOp, Phase, Policy, Target},
};

/// The header a `mark` failure mode adds, saying why.
pub(super) const MARK_HEADER: &str = "sluice-validation-error";

/// What is the same for every record of a partition.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scope<'a> {
    /// `Produce` or `Fetch`.
    pub(super) api: &'static str,
    /// The principal (`User:alice`).
    pub(super) principal: &'a str,
    /// The client's client id.
    pub(super) client_id: &'a str,
    /// The virtual cluster's id.
    pub(super) virtual_cluster: &'a str,
    /// The listener's id.
    pub(super) listener: &'a str,
    /// The topic as the client names it.
    pub(super) topic: &'a str,
    /// The partition.
    pub(super) partition: i32,
    /// Produce or consume.
    pub(super) phase: Phase,
}

/// What becomes of a record.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Fate {
    /// It goes on (`true`: changed).
    Keep(bool),
    /// It is left out of the answer (consume).
    Drop,
    /// Its batch is refused (produce) or its partition answered with an
    /// error (consume), for this reason.
    Refuse(String),
}

/// Where a record is, for messages: its index in the batch on produce
/// (what a Produce answer's record errors name), its offset on consume.
struct Place<'a, 's>(&'a Scope<'s>, usize, i64);

impl std::fmt::Display for Place<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.phase {
            Phase::Produce => write!(f, "record {}", self.1),
            Phase::Consume => write!(f, "offset {}", self.2),
        }
    }
}

/// A condition's verdict for one record.
pub(super) type Held = Result<bool, String>;

impl Scope<'_> {
    /// Whether `conditions` hold, reading only the partition's values.
    pub(super) fn holds(&self, conditions: &[std::sync::Arc<Condition>]) -> Held {
        for c in conditions {
            if !c.holds_for(self.values(c, None))? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether `conditions` hold for `record`.
    fn holds_for_record(&self, conditions: &[std::sync::Arc<Condition>], record: &Record) -> Held {
        for c in conditions {
            if !c.holds_for(self.values(c, Some(record)))? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The values `c` reads (only those: a record's JSON is parsed only
    /// for a condition that reads `value`).
    fn values(&self, c: &Condition, record: Option<&Record>) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        for &name in condition::RECORD_VARIABLES {
            if !c.reads(name) {
                continue;
            }
            let text = |b: &Option<Bytes>| {
                Value::from(
                    b.as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default()
                        .into_owned(),
                )
            };
            let value = match (name, record) {
                ("api", _) => Value::from(self.api),
                ("principal", _) => Value::from(self.principal),
                ("client_id", _) => Value::from(self.client_id),
                ("virtual_cluster", _) => Value::from(self.virtual_cluster),
                ("listener", _) => Value::from(self.listener),
                ("topic", _) => Value::from(self.topic),
                ("partition", _) => Value::Int(i64::from(self.partition)),
                ("offset", Some(r)) => Value::Int(match self.phase {
                    Phase::Produce => -1,
                    Phase::Consume => r.offset,
                }),
                ("timestamp", Some(r)) => Value::Int(r.timestamp),
                ("key", Some(r)) => text(&r.key),
                ("value_text", Some(r)) => text(&r.value),
                ("value", Some(r)) => json_of(r)
                    .map(|j| condition::json_value(&j))
                    .unwrap_or(Value::Null),
                ("headers", Some(r)) => {
                    let map: std::collections::HashMap<String, String> = r
                        .headers
                        .iter()
                        .map(|(k, v)| {
                            let v = v
                                .as_deref()
                                .map(String::from_utf8_lossy)
                                .unwrap_or_default();
                            (k.to_string(), v.into_owned())
                        })
                        .collect();
                    condition::text_map(map)
                }
                _ => continue,
            };
            out.push((name, value));
        }
        out
    }
}

/// Why `record`'s value fails `schema`, if it does. The reason names
/// where and which schema rule, never the record's content (it goes into
/// headers, counts and events).
fn invalid(schema: &jsonschema::Validator, record: &Record) -> Option<String> {
    let value = record.value.as_deref()?;
    match json::parse(value) {
        Err(e) => Some(cut(&e, 120)),
        Ok(json) => schema.validate(&json).err().map(|e| {
            let path = e.instance_path().to_string();
            let path = if path.is_empty() { "/".into() } else { path };
            format!(
                "{}: fails the schema at {}",
                cut(&path, 120),
                cut(e.schema_path().as_str(), 120)
            )
        }),
    }
}

/// A header name as the record's header map keys it.
fn header_name(name: &str) -> StrBytes {
    StrBytes::from_string(name.to_string())
}

/// The record's value as JSON, when it is JSON (strictly: see `json.rs`).
fn json_of(record: &Record) -> Option<serde_json::Value> {
    json::parse(record.value.as_deref()?).ok()
}

/// `text` cut to at most `max` characters.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Runs `policies` over `record`; `held[i]` is policy i's verdict when it
/// depends on the partition only.
pub(super) fn run(
    policies: &[Policy],
    held: &[Option<Held>],
    scope: &Scope<'_>,
    record: &mut Record,
    index: usize,
    tally: &mut Tally,
) -> Fate {
    let mut changed = false;
    for (i, policy) in policies.iter().enumerate() {
        let verdict = match &held[i] {
            Some(v) => v.clone(),
            None => scope.holds_for_record(&policy.conditions, record),
        };
        match verdict {
            Ok(true) => {}
            Ok(false) => {
                tally.count(i, Outcome::Skipped, None);
                continue;
            }
            Err(e) => {
                // A condition that cannot be evaluated for this record (a
                // JSON member it lacks, say): counted as failed; a policy
                // that protects (encrypt, validate) applies anyway, the
                // others do not (no record is dropped or refused for it).
                let why = format!("{}: condition: {e}", Place(scope, index, record.offset));
                tally.count(i, Outcome::Failed, Some(&why));
                match &policy.action {
                    // Encrypted all the same (what it would protect never
                    // goes out in plaintext for a condition's mistake).
                    Action::Encrypt { .. } => {}
                    // Validated all the same, but an invalid record is only
                    // counted: never refused or dropped for it.
                    Action::Validate { schema, .. } => {
                        if let Some(problem) = invalid(schema, record) {
                            let why = format!("{}: {problem}", Place(scope, index, record.offset));
                            tally.count(i, Outcome::Failed, Some(&why));
                        }
                        continue;
                    }
                    _ => continue,
                }
            }
        }
        match act(policy, i, scope, record, index, tally) {
            Fate::Keep(c) => changed |= c,
            other => return other,
        }
    }
    Fate::Keep(changed)
}

/// What a validate, encrypt or decrypt policy's failure on one record
/// means, by its failure mode: `None` to go on.
fn fail(policy: &Policy, i: usize, why: &str, tally: &mut Tally) -> Option<Fate> {
    let mode = match &policy.action {
        Action::Validate { on_invalid, .. } => *on_invalid,
        Action::Encrypt { on_failure, .. } | Action::Decrypt { on_failure, .. } => *on_failure,
        Action::Headers(_) | Action::Skip(_) => FailureMode::Passthrough,
    };
    let refuses = matches!(
        mode,
        FailureMode::Reject | FailureMode::Error | FailureMode::Skip
    );
    tally.count(
        i,
        if refuses {
            Outcome::Rejected
        } else {
            Outcome::Failed
        },
        Some(why),
    );
    if policy.shadow || !refuses {
        return None;
    }
    Some(match mode {
        FailureMode::Skip => Fate::Drop,
        _ => Fate::Refuse(why.to_string()),
    })
}

/// Applies one policy whose conditions hold.
fn act(
    policy: &Policy,
    i: usize,
    scope: &Scope<'_>,
    record: &mut Record,
    index: usize,
    tally: &mut Tally,
) -> Fate {
    let shadow = policy.shadow;
    match &policy.action {
        Action::Headers(ops) => {
            if !shadow {
                for op in ops {
                    match op {
                        HeaderOp::Set(k, v) => {
                            record.headers.insert(
                                StrBytes::from_string(k.clone()),
                                Some(Bytes::from(v.clone())),
                            );
                        }
                        HeaderOp::Remove(k) => {
                            record.headers.shift_remove(&header_name(k));
                        }
                    }
                }
            }
            tally.count(i, Outcome::Applied, None);
            Fate::Keep(!shadow)
        }
        Action::Skip(c) => match scope.holds_for_record(std::slice::from_ref(c), record) {
            Ok(true) => {
                tally.count(i, Outcome::Applied, None);
                if shadow {
                    Fate::Keep(false)
                } else {
                    Fate::Drop
                }
            }
            Ok(false) => {
                tally.count(i, Outcome::Skipped, None);
                Fate::Keep(false)
            }
            Err(e) => {
                // Undecidable: the record is kept (never dropped for it).
                let why = format!(
                    "{}: skip_condition: {e}",
                    Place(scope, index, record.offset)
                );
                tally.count(i, Outcome::Failed, Some(&why));
                Fate::Keep(false)
            }
        },
        Action::Validate { schema, on_invalid } => {
            if record.value.is_none() {
                tally.count(i, Outcome::Skipped, None); // a tombstone
                return Fate::Keep(false);
            }
            let problem = invalid(schema, record);
            let Some(problem) = problem else {
                tally.count(i, Outcome::Applied, None);
                return Fate::Keep(false);
            };
            let why = format!("{}: {problem}", Place(scope, index, record.offset));
            if *on_invalid == FailureMode::Mark {
                tally.count(i, Outcome::Failed, Some(&why));
                if !shadow {
                    record.headers.insert(
                        StrBytes::from_static_str(MARK_HEADER),
                        Some(Bytes::from(problem)),
                    );
                }
                return Fate::Keep(!shadow);
            }
            fail(policy, i, &why, tally).unwrap_or(Fate::Keep(false))
        }
        Action::Encrypt { key, target, .. } => {
            let change = |r: &mut Record| encrypt(key, target, r);
            transform(policy, i, scope, record, index, tally, change)
        }
        Action::Decrypt { keys, target, .. } => {
            let change = |r: &mut Record| decrypt(keys, target, r);
            transform(policy, i, scope, record, index, tally, change)
        }
    }
}

/// Runs an encrypt or decrypt `change` on `record` (on a copy for a shadow
/// policy, which changes nothing): counted applied, or skipped when there
/// was nothing to do; a failure goes by the policy's failure mode.
fn transform(
    policy: &Policy,
    i: usize,
    scope: &Scope<'_>,
    record: &mut Record,
    index: usize,
    tally: &mut Tally,
    change: impl FnOnce(&mut Record) -> Result<bool, String>,
) -> Fate {
    let offset = record.offset;
    let outcome = if policy.shadow {
        change(&mut record.clone())
    } else {
        change(record)
    };
    match outcome {
        Ok(done) => {
            let counted = if done {
                Outcome::Applied
            } else {
                Outcome::Skipped
            };
            tally.count(i, counted, None);
            Fate::Keep(done && !policy.shadow)
        }
        Err(e) => {
            let why = format!("{}: {e}", Place(scope, index, offset));
            fail(policy, i, &why, tally).unwrap_or(Fate::Keep(false))
        }
    }
}

/// Encrypts the target of `record`; whether there was anything to.
fn encrypt(key: &Key, target: &Target, record: &mut Record) -> Result<bool, String> {
    match target {
        Target::Parts { key: k, value: v } => {
            let mut sealed = [false; 2];
            for (done, (wanted, label, slot)) in sealed.iter_mut().zip([
                (*k, "key", &mut record.key),
                (*v, "value", &mut record.value),
            ]) {
                if let (true, Some(plain)) = (wanted, slot.as_ref()) {
                    *slot = Some(Bytes::from(key.seal(label, plain)?));
                    *done = true;
                }
            }
            let parts: &'static [u8] = match sealed {
                [true, true] => b"key,value",
                [true, false] => b"key",
                [false, true] => b"value",
                [false, false] => return Ok(false),
            };
            record.headers.insert(
                StrBytes::from_static_str(crypto::KEY_ID_HEADER),
                Some(key.id_header.clone()),
            );
            record.headers.insert(
                StrBytes::from_static_str(crypto::PARTS_HEADER),
                Some(Bytes::from_static(parts)),
            );
            Ok(true)
        }
        Target::Fields(paths) => {
            let Some(mut json) = value_json(record)? else {
                return Ok(false);
            };
            let mut done = false;
            for path in paths {
                let label = label(path);
                if let Some(member) = member_mut(&mut json, path) {
                    let text = serde_json::to_vec(member).map_err(|e| e.to_string())?;
                    *member = serde_json::Value::String(key.seal_field(&label, &text)?);
                    done = true;
                }
            }
            if done {
                record.value = Some(Bytes::from(
                    serde_json::to_vec(&json).map_err(|e| e.to_string())?,
                ));
            }
            Ok(done)
        }
    }
}

/// Decrypts the target of `record`; whether there was anything to.
fn decrypt(
    keys: &[std::sync::Arc<Key>],
    target: &Target,
    record: &mut Record,
) -> Result<bool, String> {
    let find = |id: &str| {
        keys.iter().find(|k| k.id == id).ok_or_else(|| {
            let id: String = id.chars().take(64).collect();
            format!("encrypted with static_key {id}, which is not among this policy's key_sources")
        })
    };
    match target {
        Target::Parts { key: k, value: v } => {
            let header = |name: &str| {
                record
                    .headers
                    .get(&header_name(name))
                    .map(|h| String::from_utf8_lossy(h.as_deref().unwrap_or_default()).into_owned())
            };
            let Some(parts) = header(crypto::PARTS_HEADER) else {
                return Ok(false); // not encrypted
            };
            let id = header(crypto::KEY_ID_HEADER).ok_or_else(|| {
                format!("{} without {}", crypto::PARTS_HEADER, crypto::KEY_ID_HEADER)
            })?;
            let key = find(&id)?;
            let listed: Vec<&str> = parts.split(',').collect();
            for (wanted, label) in [(*k, "key"), (*v, "value")] {
                if !listed.contains(&label) {
                    continue;
                }
                if !wanted {
                    return Err(format!("{label} is encrypted but not in part_of_record"));
                }
                let slot = if label == "key" {
                    &mut record.key
                } else {
                    &mut record.value
                };
                if let Some(sealed) = slot.as_ref() {
                    *slot = Some(Bytes::from(key.open(label, sealed)?));
                }
            }
            record
                .headers
                .shift_remove(&header_name(crypto::PARTS_HEADER));
            record
                .headers
                .shift_remove(&header_name(crypto::KEY_ID_HEADER));
            Ok(true)
        }
        Target::Fields(paths) => {
            let Some(mut json) = value_json(record)? else {
                return Ok(false);
            };
            let mut done = false;
            for path in paths {
                let label = label(path);
                let Some(member) = member_mut(&mut json, path) else {
                    continue;
                };
                let Some(text) = member.as_str() else {
                    continue;
                };
                let Some(envelope) = crypto::envelope(text) else {
                    continue; // not encrypted
                };
                let (id, sealed) = envelope.map_err(|e| format!("{label}: {e}"))?;
                let plain = find(id)?.open(&label, &sealed)?;
                *member = serde_json::from_slice(&plain)
                    .map_err(|e| format!("{label}: decrypted to something not JSON: {e}"))?;
                done = true;
            }
            if done {
                record.value = Some(Bytes::from(
                    serde_json::to_vec(&json).map_err(|e| e.to_string())?,
                ));
            }
            Ok(done)
        }
    }
}

/// The value as a JSON document (`None` for a tombstone); an error when
/// it is not JSON.
fn value_json(record: &Record) -> Result<Option<serde_json::Value>, String> {
    record.value.as_deref().map(json::parse).transpose()
}

/// The path as written (`$.card.number`), the associated data of its
/// ciphertext.
fn label(path: &[String]) -> String {
    format!("$.{}", path.join("."))
}

fn member_mut<'j>(
    json: &'j mut serde_json::Value,
    path: &[String],
) -> Option<&'j mut serde_json::Value> {
    path.iter()
        .try_fold(json, |at, name| at.as_object_mut()?.get_mut(name.as_str()))
}
