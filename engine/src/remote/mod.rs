//! The engine's side of a cluster: what runs on peers, and how a session finds its cluster.
//!
//! The engine knows nothing of QUIC. It sees the cluster as the partition store's
//! [`RemoteTier`](spillframe_spill::RemoteTier), which `spillframe-net` implements:
//!
//! - [`fragment`]: a physical optimizer rule that finds the partition-local work over stored
//!   partitions (filter, projection, partial aggregation) and wraps it in a
//!   [`FragmentExec`](fragment::FragmentExec). For each stored partition that lives wholly on
//!   a peer, the fragment is sent there and only its (reduced) output comes back; partitions in
//!   local memory or on local disk run the same fragment here. Final stages run on the driver.
//! - [`codec`]: fragments travel as datafusion-proto physical plans. The scan at a fragment's
//!   leaf is encoded as "the partition this request names", which the peer resolves in its
//!   own store ([`codec::run_fragment`]).
//! - [`function`]: a peer's half of map jobs: it runs a function registered by name over a
//!   partition it holds ([`function::run_function_blocking`]).
//! - [`ClusterConnector`]: turns a `cluster.toml` (from
//!   [`SessionBuilder::cluster`](crate::SessionBuilder::cluster), `SPILLFRAME_CLUSTER` or the
//!   `cluster` key of `spillframe.toml`) into a remote tier. The cluster crate provides it;
//!   programs install it once with `spillframe::enable_cluster()`.

pub mod codec;
pub mod fragment;
pub mod function;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use spillframe_spill::RemoteTier;

/// Connects a session to the cluster described by a `cluster.toml`.
pub trait ClusterConnector: Send + Sync {
    /// The remote tier for the cluster at `path`, or why there is none.
    fn connect(&self, path: &Path) -> Result<Arc<dyn RemoteTier>, String>;
}

static CONNECTOR: OnceLock<Arc<dyn ClusterConnector>> = OnceLock::new();

/// Installs the connector sessions use when a cluster is configured. The first call wins;
/// later calls return `false`.
pub fn install_connector(connector: Arc<dyn ClusterConnector>) -> bool {
    CONNECTOR.set(connector).is_ok()
}

/// The installed connector, if any.
pub(crate) fn connector() -> Option<&'static Arc<dyn ClusterConnector>> {
    CONNECTOR.get()
}
