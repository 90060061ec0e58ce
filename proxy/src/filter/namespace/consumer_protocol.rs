//! The consumer protocol's bytes inside classic group requests
//! (JoinGroup's subscriptions, SyncGroup's assignments, DescribeGroups'
//! member data): opaque to most brokers, but Kafka 4's coordinator reads
//! them (a classic member joining a consumer-protocol group), so the
//! topic names in them are renamed like any other: inward on the way to
//! the broker, outward (hidden ones dropped) on the way back. Each is a
//! version (`i16`) followed by the message at that version.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName},
    protocol::{Decodable, Encodable, StrBytes},
};

use super::{Namespace, Resource};

/// The protocol type of consumer groups.
pub(super) const CONSUMER: &str = "consumer";

/// Reads a versioned message; `None` when it is not one (or not all of
/// the bytes are).
fn read<T: Decodable>(bytes: &Bytes) -> Option<(i16, T)> {
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    let message = T::decode(&mut buf, version).ok()?;
    (!buf.has_remaining()).then_some((version, message))
}

/// Writes a versioned message; `None` when it cannot be encoded.
fn write<T: Encodable>(version: i16, message: &T) -> Option<Bytes> {
    let mut out = BytesMut::new();
    out.put_i16(version);
    message.encode(&mut out, version).ok()?;
    Some(out.freeze())
}

/// A subscription with its topic names renamed into the namespace; names
/// outside it are dropped. `None` when the bytes are not a subscription.
pub(super) fn subscription_in(ns: &Namespace, bytes: &Bytes) -> Option<Bytes> {
    let (version, mut s) = read::<ConsumerProtocolSubscription>(bytes)?;
    s.topics.retain_mut(|t| topic_in(ns, t));
    s.owned_partitions
        .retain_mut(|p| topic_in(ns, &mut p.topic.0));
    write(version, &s)
}

/// A topic name in consumer-protocol bytes, into the namespace. Aliases
/// are not resolved here: the group's members see each other's names
/// through these bytes, and a member subscribed to an alias must be
/// assigned the alias (its client checks the assignment against its
/// subscription).
fn topic_in(ns: &Namespace, name: &mut StrBytes) -> bool {
    match ns.names().inward_unaliased(Resource::Topic, name) {
        Some(backend) => {
            *name = StrBytes::from_string(backend);
            true
        }
        None => false,
    }
}

/// A subscription with its topic names renamed back; hidden ones are
/// dropped, and bytes that are not a subscription become empty.
pub(super) fn subscription_out(ns: &Namespace, bytes: &Bytes) -> Bytes {
    let Some((version, mut s)) = read::<ConsumerProtocolSubscription>(bytes) else {
        return Bytes::new();
    };
    s.topics.retain_mut(|t| ns.rename_out(Resource::Topic, t));
    s.owned_partitions
        .retain_mut(|p| topic_out(ns, &mut p.topic));
    write(version, &s).unwrap_or_default()
}

/// An assignment with its topic names renamed into the namespace; names
/// outside it are dropped. `None` when the bytes are not an assignment.
pub(super) fn assignment_in(ns: &Namespace, bytes: &Bytes) -> Option<Bytes> {
    let (version, mut a) = read::<ConsumerProtocolAssignment>(bytes)?;
    a.assigned_partitions
        .retain_mut(|p| topic_in(ns, &mut p.topic.0));
    write(version, &a)
}

/// An assignment with its topic names renamed back; hidden ones are
/// dropped, and bytes that are not an assignment become empty.
pub(super) fn assignment_out(ns: &Namespace, bytes: &Bytes) -> Bytes {
    let Some((version, mut a)) = read::<ConsumerProtocolAssignment>(bytes) else {
        return Bytes::new();
    };
    a.assigned_partitions
        .retain_mut(|p| topic_out(ns, &mut p.topic));
    write(version, &a).unwrap_or_default()
}

fn topic_out(ns: &Namespace, topic: &mut TopicName) -> bool {
    ns.rename_out(Resource::Topic, &mut topic.0)
}

/// Whether `protocol_type` is the consumer protocol's.
pub(super) fn is_consumer(protocol_type: &StrBytes) -> bool {
    protocol_type.as_str() == CONSUMER
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;

    use super::*;
    use crate::filter::namespace::Names;

    #[test]
    fn subscriptions_and_assignments_are_renamed_both_ways() {
        let ns = Namespace::new(
            Names::compile(
                Some(&sluice_proto::admin::v1::Namespace {
                    mode: sluice_proto::admin::v1::NamespaceMode::HidePrefix as i32,
                    prefix: "team-a.".into(),
                    additional: None,
                }),
                &[],
            ),
            "consumer-protocol",
            None,
        );
        let subscription = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("orders")]);
        let bytes = write(3, &subscription).unwrap();
        let inward = subscription_in(&ns, &bytes).unwrap();
        let (_, s) = read::<ConsumerProtocolSubscription>(&inward).unwrap();
        assert_eq!(s.topics[0].as_str(), "team-a.orders");
        let (_, s) = read::<ConsumerProtocolSubscription>(&subscription_out(&ns, &inward)).unwrap();
        assert_eq!(s.topics[0].as_str(), "orders");

        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            TopicPartition::default()
                .with_topic(TopicName(StrBytes::from_static_str("team-a.orders")))
                .with_partitions(vec![0]),
            TopicPartition::default()
                .with_topic(TopicName(StrBytes::from_static_str("team-b.secret")))
                .with_partitions(vec![0, 1]),
        ]);
        let out = assignment_out(&ns, &write(1, &assignment).unwrap());
        let (_, a) = read::<ConsumerProtocolAssignment>(&out).unwrap();
        let topics: Vec<&str> = a
            .assigned_partitions
            .iter()
            .map(|p| p.topic.0.as_str())
            .collect();
        assert_eq!(topics, ["orders"], "another tenant's topic is dropped");
        assert!(subscription_in(&ns, &Bytes::from_static(b"\x00\x00garbage")).is_none());
        assert!(subscription_out(&ns, &Bytes::from_static(b"xx")).is_empty());
    }
}
