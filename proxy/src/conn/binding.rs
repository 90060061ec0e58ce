//! A connection's hold on its route. The route is looked up again only
//! when the node's configuration changed (one pointer comparison per
//! frame otherwise), so a policy change applies from the next request
//! without dropping the connection. A connection is tied to the broker it
//! dialled: once its port leads to another backend or broker (or refuses
//! the way the client connected, plaintext on a listener that now
//! requires TLS, say), the route counts as gone and the connection
//! drains.

use std::sync::Arc;

use crate::{
    config::{Config, ConfigStore},
    listener::{
        handshake::Hello,
        routes::{Key, Role, Route},
    },
};

/// The route of one connection's port, kept current.
#[derive(Clone)]
pub(crate) struct Binding {
    store: Arc<ConfigStore>,
    key: Key,
    hello: Arc<Hello>,
    seen: Arc<Config>,
    /// The route in `seen`, if the port still leads where it did.
    current: Option<Arc<Route>>,
    /// The backend and broker the connection's upstream was dialled to.
    dialled: (String, Role),
}

impl Binding {
    /// The binding of a connection on `key` that said `hello` and was
    /// routed to `route` by the configuration now.
    pub(crate) fn new(store: Arc<ConfigStore>, key: Key, hello: Hello, route: Arc<Route>) -> Self {
        let seen = store.current();
        Self {
            store,
            key,
            hello: Arc::new(hello),
            seen,
            dialled: (route.virtual_cluster.backend.id.clone(), route.role),
            current: Some(route),
        }
    }

    /// The route now, or `None` once the port is no longer routed or
    /// leads to another backend or broker than the one dialled.
    pub(crate) fn current(&mut self) -> Option<&Arc<Route>> {
        let now = self.store.peek();
        if !Arc::ptr_eq(&now, &self.seen) {
            self.seen = arc_swap::Guard::into_inner(now);
            self.current = self
                .seen
                .compiled()
                .ports
                .get(&self.key)
                .and_then(|port| port.resolve(&self.hello).ok())
                .filter(|r| {
                    (&r.virtual_cluster.backend.id, r.role) == (&self.dialled.0, self.dialled.1)
                });
        }
        self.current.as_ref()
    }

    /// The backend the connection's upstream was dialled to.
    pub(crate) fn dialled_backend(&self) -> &str {
        &self.dialled.0
    }
}
