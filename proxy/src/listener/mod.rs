//! The listener hop: which virtual cluster and broker a port serves.

pub mod routes;
