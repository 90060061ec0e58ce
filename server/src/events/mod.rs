//! Event hooks: what happened (configuration changes, data-plane events),
//! as JSON payloads queued in the outbox and delivered by the dispatcher.

pub mod dispatch;
pub mod redact;
pub mod sign;
pub mod snooze;

use prost::Message;
use prost_reflect::{DynamicMessage, SerializeOptions};
use serde_json::{Value, json};
use sluice_proto::admin::v1::{
    Entity, EventDescription, EventSourceDescription, Kind, entity::Spec,
};

use crate::validate::spec::DATAPLANE_EVENTS;

/// Fields every payload carries.
pub const PAYLOAD_FIELDS: &[&str] = &[
    "id",
    "source",
    "event",
    "operation",
    "gateway_id",
    "revision",
    "entity",
    "old_entity",
    "timestamp",
];

/// An event about to be queued.
#[derive(Debug, Clone)]
pub struct Event {
    /// crud | dataplane | ping | test
    pub source: &'static str,
    /// Entity kind or data-plane event name.
    pub event: String,
    /// The payload, `id` included.
    pub payload: Value,
    /// The event's id (shared by every hook it goes to).
    pub id: String,
    /// Snooze key for data-plane events (None: never snoozed).
    pub snooze_key: Option<String>,
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// An entity as payload JSON (field names as in the proto; secrets appear
/// only as fingerprints because stored entities hold no secret values, and
/// a webhook URL without its userinfo and query).
pub fn entity_json(entity: &Entity) -> Value {
    let pool = sluice_proto::descriptor_pool();
    let Some(descriptor) = pool.get_message_by_name("sluice.admin.v1.Entity") else {
        return Value::Null;
    };
    let mut entity = entity.clone();
    redact::entity(&mut entity);
    let Ok(message) = DynamicMessage::decode(descriptor, entity.encode_to_vec().as_slice()) else {
        return Value::Null;
    };
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(true);
    message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .unwrap_or(Value::Null)
}

impl Event {
    fn new(
        source: &'static str,
        event: &str,
        operation: &str,
        gateway_id: &str,
        revision: i64,
    ) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        let payload = json!({
            "id": id,
            "source": source,
            "event": event,
            "operation": operation,
            "gateway_id": gateway_id,
            "revision": revision,
            "entity": Value::Null,
            "old_entity": Value::Null,
            "timestamp": now_rfc3339(),
        });
        Self {
            source,
            event: event.to_string(),
            payload,
            id,
            snooze_key: None,
        }
    }

    /// A configuration change (`old` and `new` as stored: no secrets).
    pub fn crud(
        operation: &str,
        gateway_id: &str,
        revision: i64,
        old: Option<&Entity>,
        new: Option<&Entity>,
    ) -> Self {
        let kind = new.or(old).map_or(Kind::Unspecified, Entity::kind);
        let mut e = Self::new("crud", kind.slug(), operation, gateway_id, revision);
        e.payload["entity"] = new.map_or(Value::Null, entity_json);
        e.payload["old_entity"] = old.map_or(Value::Null, entity_json);
        e
    }

    /// The `ping` sent when a hook is created or asked to ping.
    pub fn ping(hook: &Entity) -> Self {
        let mut e = Self::new("ping", "ping", "ping", &hook.gateway_id, hook.revision);
        e.payload["entity"] = entity_json(hook);
        e
    }

    /// A `test` event carrying a caller's sample.
    pub fn test(hook: &Entity, sample: Value) -> Self {
        let mut e = Self::new("test", "test", "test", &hook.gateway_id, hook.revision);
        e.payload["entity"] = sample;
        e
    }

    /// A data-plane event from (or about) a node.
    pub fn dataplane(
        gateway_id: &str,
        node_id: &str,
        event: &str,
        key: &str,
        details: Value,
    ) -> Self {
        let mut e = Self::new("dataplane", event, event, gateway_id, 0);
        e.payload["node_id"] = json!(node_id);
        e.payload["entity"] = details;
        e.snooze_key = Some(format!("{event}/{node_id}/{key}"));
        e
    }

    /// Whether a hook listens to this event.
    pub fn matches(&self, hook: &sluice_proto::admin::v1::EventHook) -> bool {
        use sluice_proto::admin::v1::EventSource;
        let source = match self.source {
            "crud" => EventSource::Crud as i32,
            "dataplane" => EventSource::Dataplane as i32,
            // ping and test go to the hook they name, whatever it listens to.
            _ => return true,
        };
        hook.source == source && (hook.event.is_empty() || hook.event == self.event)
    }
}

/// The hook spec of an event_hook entity.
pub fn hook_spec(entity: &Entity) -> Option<&sluice_proto::admin::v1::EventHook> {
    match &entity.spec {
        Some(Spec::EventHook(h)) => Some(h),
        _ => None,
    }
}

fn describe(name: &str, description: &str) -> EventDescription {
    EventDescription {
        name: name.into(),
        description: description.into(),
    }
}

/// Every source, its events and payload fields.
pub fn sources() -> Vec<EventSourceDescription> {
    let crud = sluice_proto::entity::ALL_KINDS
        .iter()
        .map(|k| {
            describe(
                k.slug(),
                &format!("a {} was created, updated or deleted", k.slug()),
            )
        })
        .collect();
    let dataplane = DATAPLANE_EVENTS
        .iter()
        .map(|e| {
            describe(
                e,
                match *e {
                    "acl_denied" => "a node denied a request by ACL (sampled per key and snooze window, with a count)",
                    "auth_failed" => "a client failed authentication at a node (sampled, with a count)",
                    "node_connected" => "a node opened its sync stream",
                    "node_disconnected" => "a node's sync stream ended",
                    "config_rejected" => "a node refused a configuration update (NACK)",
                    _ => "",
                },
            )
        })
        .collect();
    let mut dataplane_fields: Vec<String> = PAYLOAD_FIELDS.iter().map(|f| f.to_string()).collect();
    dataplane_fields.push("node_id".into());
    vec![
        EventSourceDescription {
            name: "crud".into(),
            events: crud,
            payload_fields: PAYLOAD_FIELDS.iter().map(|f| f.to_string()).collect(),
        },
        EventSourceDescription {
            name: "dataplane".into(),
            events: dataplane,
            payload_fields: dataplane_fields,
        },
    ]
}
