//! A connection's hold on its route. The route is looked up again only
//! when the node's configuration changed (one pointer comparison per
//! frame otherwise), so a policy change applies from the next request
//! without dropping the connection.

use std::sync::Arc;

use crate::{
    config::{Config, ConfigStore},
    listener::routes::{Key, Route},
};

/// The route of one connection's port, kept current.
#[derive(Clone)]
pub(crate) struct Binding {
    store: Arc<ConfigStore>,
    key: Key,
    seen: Arc<Config>,
    /// The route in `seen`, if the port is still routed there.
    current: Option<Arc<Route>>,
    /// The newest route the port had (answers in flight after the port
    /// was removed are still rewritten with it).
    last: Arc<Route>,
}

impl Binding {
    /// The binding of `key`, if the configuration routes it now.
    pub(crate) fn new(store: Arc<ConfigStore>, key: Key) -> Option<Self> {
        let seen = store.current();
        let route = seen.compiled().routes.get(&key).cloned()?;
        Some(Self {
            store,
            key,
            seen,
            current: Some(route.clone()),
            last: route,
        })
    }

    fn refresh(&mut self) {
        let now = self.store.peek();
        if Arc::ptr_eq(&now, &self.seen) {
            return;
        }
        self.seen = arc_swap::Guard::into_inner(now);
        self.current = self.seen.compiled().routes.get(&self.key).cloned();
        if let Some(route) = &self.current {
            self.last = route.clone();
        }
    }

    /// The route now, or `None` once the port is no longer routed.
    pub(crate) fn current(&mut self) -> Option<&Arc<Route>> {
        self.refresh();
        self.current.as_ref()
    }

    /// The route now, or the last one the port had.
    pub(crate) fn latest(&mut self) -> &Arc<Route> {
        self.refresh();
        &self.last
    }
}
