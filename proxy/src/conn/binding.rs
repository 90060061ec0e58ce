//! A connection's hold on its route. The route is looked up again only
//! when the node's configuration changed (one pointer comparison per
//! frame otherwise), so a policy change applies from the next request
//! without dropping the connection. A connection is tied to how it was
//! let in and to the broker it dialled: once its port leads to another
//! backend or broker, its backend's TLS or SASL settings change, the
//! listener refuses the way the client connected (plaintext on a
//! listener that now requires TLS, say), or the listener's client
//! authentication changed and the client's certificate no longer passes
//! it, or the rule that authenticated the client no longer admits it the
//! same way (its password changed, say), the route counts as gone and the
//! connection drains.

use std::sync::Arc;

use crate::{
    auth::{Live, Session},
    backend::Backend,
    config::{Config, ConfigStore},
    listener::{
        handshake::Hello,
        routes::{Key, Port, Role, Route},
    },
    tls::server::ClientTrust,
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
    /// The backend (with its TLS and SASL settings) and broker the
    /// connection's upstream was dialled to.
    dialled: (Arc<Backend>, Role),
    /// The client-certificate check the client last passed.
    trust: Option<Arc<ClientTrust>>,
    /// How the client was authenticated, as it goes on.
    live: Live,
}

impl Binding {
    /// The binding of a connection on `key` that said `hello` and was
    /// routed to `route` by the configuration `seen` (the snapshot the
    /// route was resolved from, so a revision that arrived during the
    /// handshake is applied on the first request).
    pub(crate) fn new(
        store: Arc<ConfigStore>,
        seen: Arc<Config>,
        key: Key,
        hello: Hello,
        route: Arc<Route>,
        session: Session,
    ) -> Self {
        let live = Live::new(session, &route.virtual_cluster.auth);
        let trust = seen
            .compiled()
            .ports
            .get(&key)
            .and_then(|port| client_trust(port));
        Self {
            store,
            key,
            hello: Arc::new(hello),
            seen,
            dialled: (route.virtual_cluster.backend.clone(), route.role),
            current: Some(route),
            trust,
            live,
        }
    }

    /// What the client presented before its first request.
    pub(crate) fn hello(&self) -> &Hello {
        &self.hello
    }

    /// How the client was authenticated, as it goes on.
    pub(crate) fn live(&self) -> &Live {
        &self.live
    }

    /// The same, to renew (re-authentication).
    pub(crate) fn live_mut(&mut self) -> &mut Live {
        &mut self.live
    }

    /// The route now, or `None` once the connection may no longer use it.
    pub(crate) fn current(&mut self) -> Option<&Arc<Route>> {
        let now = self.store.peek();
        if !Arc::ptr_eq(&now, &self.seen) {
            self.seen = arc_swap::Guard::into_inner(now);
            self.current = self.resolve_again();
        }
        self.current.as_ref()
    }

    /// The route under the configuration just seen, if the connection may
    /// keep using it.
    fn resolve_again(&mut self) -> Option<Arc<Route>> {
        let port = self.seen.compiled().ports.get(&self.key).cloned()?;
        let route = port.resolve(&self.hello).ok()?;
        let (backend, role) = &self.dialled;
        if !(route.virtual_cluster.backend.dials_like(backend) && route.role == *role) {
            return None;
        }
        if !self.still_trusted(&port) {
            return None;
        }
        let before = self.live.admitted_by.as_ref()?;
        let Some(now) =
            route
                .virtual_cluster
                .auth
                .still_admit(&self.live.session, &self.hello, before)
        else {
            tracing::info!(
                virtual_cluster = route.virtual_cluster.id,
                principal = %self.live.session.principal,
                mechanism = self.live.session.mechanism,
                "the rule that admitted this client changed; the connection drains"
            );
            return None;
        };
        self.live.admitted_by = Some(now);
        Some(route)
    }

    /// Whether the client still passes the port's client authentication:
    /// checked again (as a new handshake would) only when it changed.
    fn still_trusted(&mut self, port: &Port) -> bool {
        let Some(now) = client_trust(port) else {
            return true;
        };
        if !self.hello.tls || self.trust.as_ref().is_some_and(|had| had.same_as(&now)) {
            return true;
        }
        match now.accepts(&self.hello.chain) {
            Ok(()) => {
                self.trust = Some(now);
                true
            }
            Err(reason) => {
                tracing::info!(
                    listener = port.listener_id,
                    client = %self.hello.address,
                    "{reason}; the connection drains"
                );
                false
            }
        }
    }

    /// The backend the connection's upstream was dialled to.
    pub(crate) fn dialled_backend(&self) -> &str {
        &self.dialled.0.id
    }
}

/// A port's client-certificate check, if it has one.
fn client_trust(port: &Port) -> Option<Arc<ClientTrust>> {
    port.tls.as_ref()?.client_trust.clone()
}
