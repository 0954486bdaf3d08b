//! Functions registered by name. Rust cannot ship a closure to another process, so a job that
//! runs where the data lives names its function, and every process that may run it (the
//! driver, and each peer started with `spillframe::peer::serve(registry, config)`) registers
//! the same name. On a cluster, a job made with [`LazyFrame::map_partitions_named`],
//! [`LazyFrame::parallelize_named`] or [`LazyFrame::map_batches_named`] runs the function on
//! the peer holding each partition; partitions held here run it here.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;

use super::func::{BatchFn, PartitionFn};
use super::map::MapJob;
use crate::error::{Error, Result};
use crate::frame::LazyFrame;

/// A function in the registry.
#[derive(Clone)]
pub enum Registered {
    /// A partition function (for `map_partitions` and `parallelize`).
    Partitions(Arc<dyn PartitionFn>),
    /// A batch function (for `map_batches`).
    Batches(Arc<dyn BatchFn>),
}

impl Registered {
    fn kind(&self) -> &'static str {
        match self {
            Registered::Partitions(_) => "a partition function",
            Registered::Batches(_) => "a batch function",
        }
    }
}

/// Named functions. Cheap to clone; clones share the table. Each session has one
/// ([`Session::functions`](crate::Session::functions)).
#[derive(Clone, Default)]
pub struct FunctionRegistry {
    functions: Arc<RwLock<BTreeMap<String, Registered>>>,
}

impl fmt::Debug for FunctionRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionRegistry")
            .field("names", &self.names())
            .finish()
    }
}

impl FunctionRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        FunctionRegistry::default()
    }

    /// Registers a partition function under `name`, replacing any function of that name.
    pub fn register_partitions(&self, name: impl Into<String>, f: impl PartitionFn) -> &Self {
        self.functions
            .write()
            .insert(name.into(), Registered::Partitions(Arc::new(f)));
        self
    }

    /// Registers a batch function under `name`, replacing any function of that name.
    pub fn register_batches(&self, name: impl Into<String>, f: impl BatchFn) -> &Self {
        self.functions
            .write()
            .insert(name.into(), Registered::Batches(Arc::new(f)));
        self
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.functions.read().keys().cloned().collect()
    }

    /// The function called `name`.
    pub fn get(&self, name: &str) -> Result<Registered> {
        self.functions
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownFunction {
                name: name.to_string(),
                registered: match self.names() {
                    names if names.is_empty() => "none".to_string(),
                    names => names.join(", "),
                },
            })
    }

    /// The partition function called `name`.
    pub fn partitions(&self, name: &str) -> Result<Arc<dyn PartitionFn>> {
        match self.get(name)? {
            Registered::Partitions(f) => Ok(f),
            other => Err(wrong_kind(name, &other, "a partition function")),
        }
    }

    /// The batch function called `name`.
    pub fn batches(&self, name: &str) -> Result<Arc<dyn BatchFn>> {
        match self.get(name)? {
            Registered::Batches(f) => Ok(f),
            other => Err(wrong_kind(name, &other, "a batch function")),
        }
    }
}

fn wrong_kind(name: &str, got: &Registered, wanted: &str) -> Error {
    Error::InvalidArgument(format!(
        "function '{name}' is registered as {}, but {wanted} was asked for",
        got.kind()
    ))
}

impl LazyFrame {
    /// [`map_partitions`](LazyFrame::map_partitions) with the session's registered function
    /// `name`; the job is named after it.
    pub fn map_partitions_named(&self, name: &str) -> Result<MapJob> {
        let f = self.session().functions().partitions(name)?;
        Ok(self.map_partitions_shared(f, name).registered(name))
    }

    /// [`parallelize`](LazyFrame::parallelize) with the session's registered function `name`.
    pub fn parallelize_named(&self, name: &str, n_partitions: usize) -> Result<MapJob> {
        Ok(self.map_partitions_named(name)?.partitions(n_partitions))
    }

    /// [`map_batches`](LazyFrame::map_batches) with the session's registered function `name`.
    pub fn map_batches_named(
        &self,
        name: &str,
        batch_size: usize,
        concurrency: usize,
    ) -> Result<MapJob> {
        let f = self.session().functions().batches(name)?;
        Ok(self
            .map_batches_shared(f, batch_size, concurrency, name)
            .registered(name))
    }
}
