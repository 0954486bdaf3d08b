//! Integer `+`, `-` and `*` fail on overflow instead of wrapping around.
//!
//! DataFusion's arithmetic on integers wraps: `SELECT 9223372036854775807 + 1` gives
//! `-9223372036854775808`. DuckDB, PostgreSQL and pandas' nullable integers raise an error.
//! [`CheckedArithmetic`] is an analyzer rule (run before type coercion; it keeps each
//! expression's name): a `+`, `-` or `*` whose two sides are
//! integers becomes a call of [`CheckedOp`], which runs Arrow's checked kernels. Constant
//! folding cannot hide an overflow either: when folding a constant fails, DataFusion keeps
//! the expression and the error comes when the query runs.
//!
//! `sum` over integers, as an aggregate or a window, becomes [`CheckedSum`](crate::checked_sum::CheckedSum)
//! the same way, which fails on overflow too.

use std::sync::Arc;

use arrow::array::{ArrayRef, Datum};
use arrow::compute::kernels::numeric;
use arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::{FunctionRewrite, NamePreserver};
use datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    AggregateUDF, BinaryExpr, ColumnarValue, Expr, ExprSchemable, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility, WindowFunctionDefinition,
};
use datafusion::optimizer::AnalyzerRule;

/// One checked integer operation: `checked_add`, `checked_sub` or `checked_mul`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CheckedOp {
    op: Operator,
    name: &'static str,
    signature: Signature,
}

impl CheckedOp {
    fn new(op: Operator, name: &'static str) -> Self {
        CheckedOp {
            op,
            name,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn udf(op: Operator, name: &'static str) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(CheckedOp::new(op, name)))
}

fn datum(v: &ColumnarValue) -> Result<Box<dyn Datum>> {
    Ok(match v {
        ColumnarValue::Array(a) => Box::new(Arc::clone(a)),
        ColumnarValue::Scalar(s) => Box::new(s.to_scalar()?),
    })
}

impl ScalarUDFImpl for CheckedOp {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [l, r] => {
                let (l, r) = BinaryTypeCoercer::new(l, &self.op, r).get_input_types()?;
                Ok(vec![l, r])
            }
            _ => datafusion::common::plan_err!("{} takes two arguments", self.name),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [l, r] => BinaryTypeCoercer::new(l, &self.op, r).get_result_type(),
            _ => datafusion::common::plan_err!("{} takes two arguments", self.name),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [l, r] = args.args.as_slice() else {
            return datafusion::common::exec_err!("{} takes two arguments", self.name);
        };
        let (a, b) = (datum(l)?, datum(r)?);
        let out: ArrayRef = match self.op {
            Operator::Plus => numeric::add(a.as_ref(), b.as_ref())?,
            Operator::Minus => numeric::sub(a.as_ref(), b.as_ref())?,
            _ => numeric::mul(a.as_ref(), b.as_ref())?,
        };
        if matches!((l, r), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_))) {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// Rewrites integer `+`, `-` and `*` into [`CheckedOp`] calls, and `sum` over integers into
/// [`CheckedSum`](crate::checked_sum::CheckedSum).
#[derive(Debug)]
pub struct CheckedArithmetic {
    add: Arc<ScalarUDF>,
    sub: Arc<ScalarUDF>,
    mul: Arc<ScalarUDF>,
    sum: Arc<AggregateUDF>,
}

impl CheckedArithmetic {
    /// The rewrite and its three functions (`checked_add`, `checked_sub`, `checked_mul`).
    pub fn new() -> Self {
        CheckedArithmetic {
            add: udf(Operator::Plus, "checked_add"),
            sub: udf(Operator::Minus, "checked_sub"),
            mul: udf(Operator::Multiply, "checked_mul"),
            sum: Arc::new(AggregateUDF::new_from_impl(
                crate::checked_sum::CheckedSum::default(),
            )),
        }
    }

    /// The scalar functions the rewrite calls, to register in the session beside it.
    pub fn functions(&self) -> [&Arc<ScalarUDF>; 3] {
        [&self.add, &self.sub, &self.mul]
    }

    /// The aggregate function the rewrite calls (`checked_sum`), to register beside it.
    pub fn aggregate(&self) -> &Arc<AggregateUDF> {
        &self.sum
    }

    /// `sum` over an integer argument (not DISTINCT) as `checked_sum`.
    fn rewrite_sum(&self, expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
        let integer =
            |args: &[Expr]| matches!(args, [a] if a.get_type(schema).is_ok_and(|t| t.is_integer()));
        match expr {
            Expr::AggregateFunction(mut f)
                if f.func.name() == "sum" && !f.params.distinct && integer(&f.params.args) =>
            {
                f.func = Arc::clone(&self.sum);
                Transformed::yes(Expr::AggregateFunction(f))
            }
            Expr::WindowFunction(mut w)
                if matches!(&w.fun, WindowFunctionDefinition::AggregateUDF(f) if f.name() == "sum")
                    && !w.params.distinct
                    && integer(&w.params.args) =>
            {
                w.fun = WindowFunctionDefinition::AggregateUDF(Arc::clone(&self.sum));
                Transformed::yes(Expr::WindowFunction(w))
            }
            other => Transformed::no(other),
        }
    }
}

impl Default for CheckedArithmetic {
    fn default() -> Self {
        Self::new()
    }
}

/// The rewrite runs as an analyzer rule of its own rather than through DataFusion's function
/// rewrites, for one case: DataFusion 55 keeps a rewritten expression's name by aliasing it,
/// and an aggregate's `GROUPING SETS` (or `ROLLUP`, `CUBE`) aliased as a whole is no longer
/// seen as grouping sets, so `grouping(...)` fails to resolve. An aggregate with grouping sets
/// keeps DataFusion's (wrapping) arithmetic; every other plan node is rewritten the way
/// DataFusion applies function rewrites.
impl AnalyzerRule for CheckedArithmetic {
    fn name(&self) -> &str {
        "checked_integer_arithmetic"
    }

    fn analyze(&self, plan: LogicalPlan, options: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            if let LogicalPlan::Aggregate(agg) = &plan
                && agg
                    .group_expr
                    .iter()
                    .any(|e| matches!(e, Expr::GroupingSet(_)))
            {
                return Ok(Transformed::no(plan));
            }
            let mut schema = merge_schema(&plan.inputs());
            if let LogicalPlan::TableScan(scan) = &plan {
                schema.merge(&DFSchema::try_from_qualified_schema(
                    scan.table_name.clone(),
                    &scan.source.schema(),
                )?);
            }
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let name = names.save(&expr);
                let rewritten =
                    expr.transform_up(|e| FunctionRewrite::rewrite(self, e, &schema, options))?;
                Ok(rewritten.update_data(|e| name.restore(e)))
            })
        })
        .map(|t| t.data)
    }
}

impl FunctionRewrite for CheckedArithmetic {
    fn name(&self) -> &str {
        "checked_integer_arithmetic"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
            return Ok(self.rewrite_sum(expr, schema));
        };
        let f = match op {
            Operator::Plus => &self.add,
            Operator::Minus => &self.sub,
            Operator::Multiply => &self.mul,
            _ => return Ok(Transformed::no(expr)),
        };
        // Integers on both sides, and still integers once coerced to a common type (an
        // unsigned and a signed 64-bit integer meet as a decimal, which does not wrap).
        let (Ok(lt), Ok(rt)) = (left.get_type(schema), right.get_type(schema)) else {
            return Ok(Transformed::no(expr));
        };
        let common = BinaryTypeCoercer::new(&lt, op, &rt).get_input_types();
        let integers = lt.is_integer()
            && rt.is_integer()
            && common.is_ok_and(|(l, r)| l.is_integer() && r.is_integer());
        if !integers {
            return Ok(Transformed::no(expr));
        }
        Ok(Transformed::yes(Expr::ScalarFunction(
            ScalarFunction::new_udf(
                Arc::clone(f),
                vec![left.as_ref().clone(), right.as_ref().clone()],
            ),
        )))
    }
}
