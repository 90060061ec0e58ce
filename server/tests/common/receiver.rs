//! The webhook receiver every end-to-end test shares (a real hyper server
//! on loopback; see `sluice_acceptance::webhook`).

// Not every test binary that includes `common` takes a webhook.
#[allow(unused_imports)]
pub(crate) use sluice_acceptance::webhook::{Behaviour, Received, Receiver};
