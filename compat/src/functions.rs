//! Functions DataFusion lacks that pandas has, and user closures as functions.
//!
//! - [`product_udaf`]: the product of values (pandas' `prod`, `cumprod`);
//! - [`closure_udf`]: a Rust closure over Arrow arrays as a scalar function (`Series::apply`).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Expr, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

/// The product of the present values; 1 when there are none. Integers multiply as int64
/// (wrapping on overflow, as numpy does), everything else as float64.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Product {
    signature: Signature,
}

impl Product {
    fn new() -> Self {
        Product {
            signature: Signature::uniform(
                1,
                vec![DataType::Int64, DataType::Float64],
                Volatility::Immutable,
            ),
        }
    }
}

impl AggregateUDFImpl for Product {
    fn name(&self) -> &str {
        "product"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(match arg_types.first() {
            Some(DataType::Int64) => DataType::Int64,
            _ => DataType::Float64,
        })
    }

    fn accumulator(
        &self,
        acc_args: AccumulatorArgs<'_>,
    ) -> datafusion::common::Result<Box<dyn Accumulator>> {
        let int = acc_args.return_field.data_type() == &DataType::Int64;
        Ok(Box::new(ProductAcc { int, i: 1, f: 1.0 }))
    }
}

#[derive(Debug)]
struct ProductAcc {
    int: bool,
    i: i64,
    f: f64,
}

impl ProductAcc {
    fn add(&mut self, values: &ArrayRef) {
        if self.int {
            let a = values.as_primitive::<Int64Type>();
            for v in a.iter().flatten() {
                self.i = self.i.wrapping_mul(v);
            }
        } else {
            let a = values.as_primitive::<Float64Type>();
            for v in a.iter().flatten() {
                if !v.is_nan() {
                    self.f *= v;
                }
            }
        }
    }
}

impl Accumulator for ProductAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> datafusion::common::Result<()> {
        self.add(&values[0]);
        Ok(())
    }

    fn evaluate(&mut self) -> datafusion::common::Result<ScalarValue> {
        Ok(if self.int {
            ScalarValue::Int64(Some(self.i))
        } else {
            ScalarValue::Float64(Some(self.f))
        })
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }

    fn state(&mut self) -> datafusion::common::Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> datafusion::common::Result<()> {
        self.add(&states[0]);
        Ok(())
    }
}

/// The product aggregate as a DataFusion function.
pub fn product_udaf() -> Arc<AggregateUDF> {
    static UDAF: std::sync::OnceLock<Arc<AggregateUDF>> = std::sync::OnceLock::new();
    Arc::clone(UDAF.get_or_init(|| Arc::new(AggregateUDF::from(Product::new()))))
}

/// `product(value)`.
pub fn product(value: Expr) -> Expr {
    product_udaf().call(vec![value])
}

type ArrayFn = dyn Fn(&ArrayRef) -> Result<ArrayRef, String> + Send + Sync;

/// A Rust closure over Arrow arrays as a scalar function.
pub struct ClosureUdf {
    id: u64,
    name: String,
    output: DataType,
    signature: Signature,
    f: Arc<ArrayFn>,
}

impl fmt::Debug for ClosureUdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClosureUdf({})", self.name)
    }
}

impl PartialEq for ClosureUdf {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for ClosureUdf {}

impl Hash for ClosureUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl ScalarUDFImpl for ClosureUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(self.output.clone())
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        let n = args.number_rows;
        let input = args.args[0].clone().into_array(n)?;
        let f = Arc::clone(&self.f);
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&input)))
            .map_err(|p| {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                DataFusionError::Execution(format!(
                    "apply '{}': the function panicked: {msg}",
                    self.name
                ))
            })?
            .map_err(|e| DataFusionError::Execution(format!("apply '{}': {e}", self.name)))?;
        if out.len() != input.len() || out.data_type() != &self.output {
            return Err(DataFusionError::Execution(format!(
                "apply '{}': the function returned {} values of type {} for {} values; expected \
                 type {}",
                self.name,
                out.len(),
                out.data_type(),
                input.len(),
                self.output
            )));
        }
        Ok(ColumnarValue::Array(out))
    }
}

/// Wraps `f` as a one-argument scalar function returning `output`.
pub fn closure_udf<F>(name: &str, output: DataType, f: F) -> ScalarUDF
where
    F: Fn(&ArrayRef) -> Result<ArrayRef, String> + Send + Sync + 'static,
{
    static NEXT: AtomicU64 = AtomicU64::new(0);
    ScalarUDF::from(ClosureUdf {
        id: NEXT.fetch_add(1, Ordering::Relaxed),
        name: format!("apply_{name}"),
        output,
        signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
        f: Arc::new(f),
    })
}
