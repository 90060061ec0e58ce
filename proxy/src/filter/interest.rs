//! Which API keys and versions a filter wants decoded, as bit masks so
//! "does anyone want this frame?" is one array index and one bit test.

use std::ops::{Bound, RangeBounds};

use kafka_protocol::messages::ApiKey;

/// API keys covered by the masks (Kafka's keys are far below this).
const KEYS: usize = 128;
/// Versions at or above this share the last bit.
const TOP: i16 = 63;

/// A set of (API key, version) pairs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Mask(Box<[u64; KEYS]>);

impl Default for Mask {
    fn default() -> Self {
        Self(Box::new([0; KEYS]))
    }
}

impl Mask {
    /// Adds `versions` of `key`.
    fn add(&mut self, key: ApiKey, versions: impl RangeBounds<i16>) {
        let from = match versions.start_bound() {
            Bound::Included(v) => *v,
            Bound::Excluded(v) => v.saturating_add(1),
            Bound::Unbounded => 0,
        }
        .clamp(0, TOP);
        let to = match versions.end_bound() {
            Bound::Included(v) => *v,
            Bound::Excluded(v) => v.saturating_sub(1),
            Bound::Unbounded => TOP,
        }
        .clamp(0, TOP);
        if let Some(slot) = self.0.get_mut(key as i16 as usize) {
            for v in from..=to {
                *slot |= 1 << v;
            }
        }
    }

    /// Adds every pair of `other`.
    pub(crate) fn union(&mut self, other: &Mask) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
    }

    /// Whether `key` at `version` is in the set.
    #[inline]
    pub(crate) fn contains(&self, key: i16, version: i16) -> bool {
        if key < 0 || version < 0 {
            return false;
        }
        self.0
            .get(key as usize)
            .is_some_and(|bits| bits & (1 << version.min(TOP)) != 0)
    }
}

/// What a filter intercepts: requests and responses, by API key and
/// version range.
#[derive(Clone, Default)]
pub struct Interest {
    pub(crate) requests: Mask,
    pub(crate) responses: Mask,
}

impl Interest {
    /// Nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also intercept requests of `key` at `versions`.
    pub fn requests(mut self, key: ApiKey, versions: impl RangeBounds<i16>) -> Self {
        self.requests.add(key, versions);
        self
    }

    /// Also intercept responses of `key` at `versions`.
    pub fn responses(mut self, key: ApiKey, versions: impl RangeBounds<i16>) -> Self {
        self.responses.add(key, versions);
        self
    }

    /// Whether requests of `key` at `version` are intercepted.
    pub fn wants_request(&self, key: i16, version: i16) -> bool {
        self.requests.contains(key, version)
    }

    /// Whether responses of `key` at `version` are intercepted.
    pub fn wants_response(&self, key: i16, version: i16) -> bool {
        self.responses.contains(key, version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_exactly_their_versions() {
        let i = Interest::new()
            .responses(ApiKey::Produce, 10..)
            .responses(ApiKey::Metadata, ..)
            .requests(ApiKey::Fetch, 4..=6);
        assert!(!i.wants_response(ApiKey::Produce as i16, 9));
        assert!(i.wants_response(ApiKey::Produce as i16, 10));
        assert!(i.wants_response(ApiKey::Produce as i16, 200), "open range");
        assert!(i.wants_response(ApiKey::Metadata as i16, 0));
        assert!(!i.wants_request(ApiKey::Metadata as i16, 0), "direction");
        assert!(!i.wants_request(ApiKey::Fetch as i16, 3));
        assert!(i.wants_request(ApiKey::Fetch as i16, 6));
        assert!(!i.wants_request(ApiKey::Fetch as i16, 7));
        assert!(!i.wants_response(-1, 0) && !i.wants_response(999, 1));
        assert!(!i.wants_response(ApiKey::Metadata as i16, -3));
    }
}
