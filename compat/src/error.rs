//! The error type of the compat crate.

use datafusion::error::DataFusionError;

/// Everything that can go wrong in a pandas-style operation. Variants name the operation,
/// column or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error from the engine (reading files, running the query, the memory limit).
    #[error(transparent)]
    Engine(#[from] spillframe_engine::Error),
    /// An error from DataFusion while building a plan (a type mismatch, a bad expression).
    #[error("{0}")]
    DataFusion(DataFusionError),
    /// An error from Arrow.
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A column that the frame does not have.
    #[error("{op}: column '{column}' not found; available columns: {available}")]
    ColumnNotFound {
        /// The operation.
        op: &'static str,
        /// The missing column.
        column: String,
        /// The columns that do exist.
        available: String,
    },
    /// An argument that pandas would also reject, or one outside what spillframe supports.
    #[error("{op}: {message}")]
    InvalidArgument {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A column whose type the operation does not accept.
    #[error("{op}: column '{column}' has type {dtype}, which this operation does not accept")]
    UnsupportedType {
        /// The operation.
        op: &'static str,
        /// The column.
        column: String,
        /// Its pandas dtype name.
        dtype: String,
    },
    /// A user function (a closure given to `apply` or `map_partitions`) failed.
    #[error("{op}: the user function failed: {message}")]
    UserFunction {
        /// The operation.
        op: &'static str,
        /// The function's own error, or the panic message.
        message: String,
    },
}

/// The result type of the compat crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for an [`Error::InvalidArgument`].
impl From<DataFusionError> for Error {
    /// A refused memory reservation is the engine's `MemoryExhausted` (which names
    /// spillframe's settings, not DataFusion's); anything else stays DataFusion's.
    fn from(e: DataFusionError) -> Self {
        if matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)) {
            Error::Engine(spillframe_engine::Error::from(e))
        } else {
            Error::DataFusion(e)
        }
    }
}

pub(crate) fn invalid(op: &'static str, message: impl Into<String>) -> Error {
    Error::InvalidArgument {
        op,
        message: message.into(),
    }
}
