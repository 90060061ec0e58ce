//! End-to-end acceptance tests (terraform → provider → server → proxy →
//! broker) live here once the data plane and provider exist.
