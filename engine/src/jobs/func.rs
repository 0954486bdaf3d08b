//! User functions: what `map_partitions` and `map_batches` call, and the per-worker state
//! that expensive set-up (a loaded model, a connection) lives in.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::ThreadId;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parking_lot::Mutex;

use crate::table::Table;

/// The error a user function returns: any error type.
pub type FnError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One partition handed to a `map_partitions` function: its index and its batches, in order.
///
/// Batches that the partition store had spilled are mapped from their files, not copied into
/// memory; [`concat`](Self::concat) makes one batch of them when that is more convenient.
#[derive(Debug, Clone)]
pub struct Partition {
    index: usize,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl Partition {
    /// A partition (for calling a function directly, in tests or a single-threaded loop).
    pub fn new(index: usize, schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Partition {
            index,
            schema,
            batches,
        }
    }

    /// The partition's index, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The schema of its batches.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The batches.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// The batches, owned.
    pub fn into_batches(self) -> Vec<RecordBatch> {
        self.batches
    }

    /// Rows in the partition.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The partition as one batch.
    pub fn concat(&self) -> Result<RecordBatch, arrow::error::ArrowError> {
        arrow::compute::concat_batches(&self.schema, &self.batches)
    }

    /// Arrow memory size of the batches.
    pub(crate) fn bytes(&self) -> u64 {
        batches_bytes(&self.batches)
    }
}

/// Arrow memory size of `batches`.
pub(crate) fn batches_bytes(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .map(|b| b.get_array_memory_size() as u64)
        .sum()
}

/// What a partition function may return: one batch, several, or a [`Table`].
pub trait IntoBatches {
    /// The batches.
    fn into_batches(self) -> Vec<RecordBatch>;
}

impl IntoBatches for RecordBatch {
    fn into_batches(self) -> Vec<RecordBatch> {
        vec![self]
    }
}

impl IntoBatches for Vec<RecordBatch> {
    fn into_batches(self) -> Vec<RecordBatch> {
        self
    }
}

impl IntoBatches for Table {
    fn into_batches(self) -> Vec<RecordBatch> {
        Table::into_batches(self)
    }
}

/// A function over whole partitions. Closures `Fn(Partition) -> Result<R, E>` implement it,
/// where `R` is a batch, a `Vec` of batches or a [`Table`], and `E` any error type.
pub trait PartitionFn: Send + Sync + 'static {
    /// Transforms one partition.
    fn call(&self, partition: Partition) -> Result<Vec<RecordBatch>, FnError>;
}

impl<F, R, E> PartitionFn for F
where
    F: Fn(Partition) -> Result<R, E> + Send + Sync + 'static,
    R: IntoBatches,
    E: Into<FnError>,
{
    fn call(&self, partition: Partition) -> Result<Vec<RecordBatch>, FnError> {
        self(partition)
            .map(IntoBatches::into_batches)
            .map_err(Into::into)
    }
}

/// A function over batches. Closures `Fn(RecordBatch) -> Result<RecordBatch, E>` implement it.
pub trait BatchFn: Send + Sync + 'static {
    /// Transforms one batch.
    fn call(&self, batch: RecordBatch) -> Result<RecordBatch, FnError>;
}

impl<F, E> BatchFn for F
where
    F: Fn(RecordBatch) -> Result<RecordBatch, E> + Send + Sync + 'static,
    E: Into<FnError>,
{
    fn call(&self, batch: RecordBatch) -> Result<RecordBatch, FnError> {
        self(batch).map_err(Into::into)
    }
}

/// A function with state built once per worker thread, like Ray's predictor classes: `init`
/// runs the first time a worker calls the function, and the worker keeps the state for every
/// later call. Workers never share a state, so it needs `Send` but not `Sync`.
///
/// ```
/// use spillframe_engine::jobs::{BatchFn, Stateful};
/// # use arrow::array::RecordBatch;
/// struct Model { scale: f64 }
/// let f = Stateful::batches(
///     || Ok::<_, std::io::Error>(Model { scale: 2.0 }), // e.g. load weights from disk
///     |model: &mut Model, batch: RecordBatch| Ok::<_, std::io::Error>(batch),
/// );
/// # fn takes(_: impl BatchFn) {}
/// # takes(f);
/// ```
pub struct Stateful<S, I, F> {
    init: I,
    f: F,
    states: Mutex<HashMap<ThreadId, Arc<Mutex<S>>>>,
}

impl<S, I, F> Stateful<S, I, F> {
    fn new(init: I, f: F) -> Self {
        Stateful {
            init,
            f,
            states: Mutex::new(HashMap::new()),
        }
    }

    /// Workers that have built a state so far.
    pub fn workers(&self) -> usize {
        self.states.lock().len()
    }

    fn with_state<T, E>(&self, run: impl FnOnce(&mut S) -> Result<T, FnError>) -> Result<T, FnError>
    where
        I: Fn() -> Result<S, E>,
        E: Into<FnError>,
    {
        let me = std::thread::current().id();
        let existing = self.states.lock().get(&me).cloned();
        let state = match existing {
            Some(s) => s,
            None => {
                // Built outside the map's lock: other workers go on while this one loads.
                let s = Arc::new(Mutex::new((self.init)().map_err(Into::into)?));
                self.states.lock().insert(me, Arc::clone(&s));
                s
            }
        };
        let mut guard = state.lock();
        run(&mut guard)
    }
}

impl<S, I, F> Stateful<S, I, PartitionsWith<F>> {
    /// A partition function whose state is built by `init` once per worker.
    pub fn partitions<E, R, E2>(init: I, f: F) -> Self
    where
        I: Fn() -> Result<S, E>,
        F: Fn(&mut S, Partition) -> Result<R, E2>,
    {
        Stateful::new(init, PartitionsWith(f))
    }
}

impl<S, I, F> Stateful<S, I, BatchesWith<F>> {
    /// A batch function whose state is built by `init` once per worker.
    pub fn batches<E, E2>(init: I, f: F) -> Self
    where
        I: Fn() -> Result<S, E>,
        F: Fn(&mut S, RecordBatch) -> Result<RecordBatch, E2>,
    {
        Stateful::new(init, BatchesWith(f))
    }
}

/// The function of a [`Stateful`] partition function.
pub struct PartitionsWith<F>(F);
/// The function of a [`Stateful`] batch function.
pub struct BatchesWith<F>(F);

impl<S, I, E, F, R, E2> PartitionFn for Stateful<S, I, PartitionsWith<F>>
where
    S: Send + 'static,
    I: Fn() -> Result<S, E> + Send + Sync + 'static,
    E: Into<FnError>,
    F: Fn(&mut S, Partition) -> Result<R, E2> + Send + Sync + 'static,
    R: IntoBatches,
    E2: Into<FnError>,
{
    fn call(&self, partition: Partition) -> Result<Vec<RecordBatch>, FnError> {
        self.with_state(|s| {
            (self.f.0)(s, partition)
                .map(IntoBatches::into_batches)
                .map_err(Into::into)
        })
    }
}

impl<S, I, E, F, E2> BatchFn for Stateful<S, I, BatchesWith<F>>
where
    S: Send + 'static,
    I: Fn() -> Result<S, E> + Send + Sync + 'static,
    E: Into<FnError>,
    F: Fn(&mut S, RecordBatch) -> Result<RecordBatch, E2> + Send + Sync + 'static,
    E2: Into<FnError>,
{
    fn call(&self, batch: RecordBatch) -> Result<RecordBatch, FnError> {
        self.with_state(|s| (self.f.0)(s, batch).map_err(Into::into))
    }
}

impl<F: PartitionFn + ?Sized> PartitionFn for Arc<F> {
    fn call(&self, partition: Partition) -> Result<Vec<RecordBatch>, FnError> {
        (**self).call(partition)
    }
}

impl<F: BatchFn + ?Sized> BatchFn for Arc<F> {
    fn call(&self, batch: RecordBatch) -> Result<RecordBatch, FnError> {
        (**self).call(batch)
    }
}

/// `batch` with columns that hold far more memory than their rows need (slices of a larger
/// batch, filtered string views that keep every original string) copied into their own
/// buffers. Memory accounting counts an array's whole buffers, so without this a piece of a
/// partition would be charged, and spilled, as if it were the whole partition.
pub(crate) fn compact(batch: RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    use arrow::array::{Array, ArrayRef, AsArray};
    use arrow::datatypes::DataType;
    let mut changed = false;
    let columns = batch
        .columns()
        .iter()
        .map(|a| -> Result<ArrayRef, arrow::error::ArrowError> {
            let held = a.get_array_memory_size();
            let needed = a.to_data().get_slice_memory_size()?;
            if held <= 2 * needed.max(4096) {
                return Ok(Arc::clone(a));
            }
            changed = true;
            Ok(match a.data_type() {
                DataType::Utf8View => Arc::new(a.as_string_view().gc()),
                DataType::BinaryView => Arc::new(a.as_binary_view().gc()),
                _ => {
                    let all = arrow::array::UInt32Array::from_iter_values(0..a.len() as u32);
                    arrow::compute::take(a.as_ref(), &all, None)?
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !changed {
        return Ok(batch);
    }
    RecordBatch::try_new(batch.schema(), columns)
}

/// Runs `f`, turning a panic into an error carrying the panic's message.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, FnError>) -> Result<T, FnError> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => Err(format!("panicked: {}", panic_message(&panic)).into()),
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".into()
    }
}
