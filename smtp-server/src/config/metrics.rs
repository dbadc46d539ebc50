//! `[metrics]`: where the Prometheus endpoint listens (off by default).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The metrics endpoint (`GET /metrics`, Prometheus text format; docs/OPERATIONS.md lists
/// every metric).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// The address to serve `GET /metrics` on, for example `"127.0.0.1:9725"`. Absent: no
    /// endpoint (the server still counts; an embedder may serve the registry itself).
    pub listen: Option<SocketAddr>,
}
