//! `median` with no group keys, over more values than fit in memory.
//!
//! DataFusion's median keeps every value of its group; with no GROUP BY that is a whole column.
//! [`GlobalMedianExec`] needs only the one or two middle values: it sorts the column (DataFusion's
//! sort spills) into the partition store, counting the non-null values `n` as they pass, then
//! reads back the values at positions `(n - 1) / 2` and `n / 2` and gives them to DataFusion's
//! own median accumulator. The median of those two values is the median of the column, with
//! DataFusion's exact semantics (types, rounding, nulls). The query's other aggregates (which
//! must not be holistic) run as an ordinary aggregate over a second run of the input.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, UInt64Array};
use arrow::compute::{SortOptions, concat, take};
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType, reset_plan_states};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, SendableRecordBatchStream, collect,
};
use futures::StreamExt;

use super::aggregate::is_holistic;
use super::{OutOfCoreContext, external};

/// True for a plain `median(x)` (not DISTINCT, no ORDER BY, no FILTER).
pub(crate) fn is_plain_median(expr: &AggregateFunctionExpr) -> bool {
    expr.fun().name().eq_ignore_ascii_case("median")
        && !expr.is_distinct()
        && expr.order_bys().is_empty()
        && expr.expressions().len() == 1
}

/// An aggregate with no group keys whose holistic functions are all plain medians. See the
/// [module documentation](self).
#[derive(Debug, Clone)]
pub(crate) struct GlobalMedianExec {
    input: Arc<dyn ExecutionPlan>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    schema: SchemaRef,
    ctx: Arc<OutOfCoreContext>,
    props: Arc<PlanProperties>,
}

impl GlobalMedianExec {
    /// For `aggregates` (in output order) over `input`, giving one row of `schema`; `None` when
    /// another holistic aggregate or a FILTER clause is present.
    pub(crate) fn try_new(
        input: Arc<dyn ExecutionPlan>,
        aggregates: Vec<Arc<AggregateFunctionExpr>>,
        filters: &[Option<Arc<dyn PhysicalExpr>>],
        schema: SchemaRef,
        ctx: &Arc<OutOfCoreContext>,
    ) -> Option<Self> {
        if filters.iter().any(Option::is_some)
            || !aggregates.iter().any(|a| is_plain_median(a))
            || aggregates
                .iter()
                .any(|a| !is_plain_median(a) && is_holistic(a))
            || schema.fields().len() != aggregates.len()
        {
            return None;
        }
        let props = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Some(GlobalMedianExec {
            input,
            aggregates,
            schema,
            ctx: Arc::clone(ctx),
            props: Arc::new(props),
        })
    }
}

impl DisplayAs for GlobalMedianExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.aggregates.iter().map(|a| a.name()).collect();
        write!(f, "GlobalMedianExec: aggr=[{}]", names.join(", "))
    }
}

impl ExecutionPlan for GlobalMedianExec {
    fn name(&self) -> &str {
        "GlobalMedianExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for a in &self.aggregates {
            for e in a.expressions() {
                if f(&e)? == TreeNodeRecursion::Stop {
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.pop().ok_or_else(|| {
            DataFusionError::Internal("GlobalMedianExec has one input".to_string())
        })?;
        Ok(Arc::new(GlobalMedianExec {
            input,
            ..self.as_ref().clone()
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "GlobalMedianExec has one output partition, not {partition}"
            )));
        }
        let run = MedianRun {
            exec: self.clone(),
            task: context,
        };
        let stream = futures::stream::once(async move { run.run().await });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }
}

/// One execution: the operator and the task it runs in.
struct MedianRun {
    exec: GlobalMedianExec,
    task: Arc<TaskContext>,
}

impl MedianRun {
    /// A fresh copy of the input, as one partition.
    fn input(&self) -> Result<Arc<dyn ExecutionPlan>> {
        let copy = reset_plan_states(Arc::clone(&self.exec.input))?;
        Ok(if copy.output_partitioning().partition_count() > 1 {
            Arc::new(CoalescePartitionsExec::new(copy))
        } else {
            copy
        })
    }

    async fn run(self) -> Result<RecordBatch> {
        let mut values: Vec<Option<ScalarValue>> = vec![None; self.exec.aggregates.len()];
        // The other aggregates, in one ordinary pass.
        let others: Vec<usize> = (0..self.exec.aggregates.len())
            .filter(|&i| !is_plain_median(&self.exec.aggregates[i]))
            .collect();
        if !others.is_empty() {
            let input = self.input()?;
            let exprs = others
                .iter()
                .map(|&i| Arc::clone(&self.exec.aggregates[i]))
                .collect::<Vec<_>>();
            let filters = vec![None; exprs.len()];
            let agg: Arc<dyn ExecutionPlan> = Arc::new(AggregateExec::try_new(
                AggregateMode::Single,
                PhysicalGroupBy::new_single(vec![]),
                exprs,
                filters,
                Arc::clone(&input),
                input.schema(),
            )?);
            let batches = collect(agg, Arc::clone(&self.task)).await?;
            let row = batches
                .iter()
                .find(|b| b.num_rows() > 0)
                .ok_or_else(|| DataFusionError::Internal("an aggregate gave no row".into()))?;
            for (k, &i) in others.iter().enumerate() {
                values[i] = Some(ScalarValue::try_from_array(row.column(k), 0)?);
            }
        }
        for (value, agg) in values.iter_mut().zip(&self.exec.aggregates) {
            if value.is_none() {
                *value = Some(self.median(agg).await?);
            }
        }
        let columns = values
            .into_iter()
            .zip(self.exec.schema.fields())
            .map(|(v, f)| {
                let v = v.unwrap_or(ScalarValue::try_from(f.data_type())?);
                let v = if v.data_type() == *f.data_type() {
                    v
                } else {
                    v.cast_to(f.data_type())?
                };
                v.to_array_of_size(1)
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        Ok(RecordBatch::try_new(
            Arc::clone(&self.exec.schema),
            columns,
        )?)
    }

    /// One median: sort its argument into the store, then pick the middle values.
    async fn median(&self, agg: &AggregateFunctionExpr) -> Result<ScalarValue> {
        let input = reset_plan_states(Arc::clone(&self.exec.input))?;
        let arg = agg.expressions().remove(0);
        let projected: Arc<dyn ExecutionPlan> = Arc::new(ProjectionExec::try_new(
            vec![ProjectionExpr::new(arg, "v".to_string())],
            input,
        )?);
        let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new("v", 0));
        let options = SortOptions {
            descending: false,
            nulls_first: false,
        };
        let ordering = LexOrdering::new([PhysicalSortExpr::new(Arc::clone(&column), options)])
            .ok_or_else(|| DataFusionError::Internal("empty sort ordering".into()))?;
        let sorted: Arc<dyn ExecutionPlan> =
            Arc::new(SortExec::new(ordering.clone(), projected).with_preserve_partitioning(true));
        let merged: Arc<dyn ExecutionPlan> =
            Arc::new(SortPreservingMergeExec::new(ordering, sorted));
        let store = &self.exec.ctx.store;
        let id = store.create(
            merged.schema(),
            Some(format!("sorted values of {}", agg.name())),
        );
        let result = async {
            let mut stream = merged.execute(0, Arc::clone(&self.task))?;
            let mut n = 0u64;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let column = batch.column(0);
                n += (column.len() - column.null_count()) as u64;
                store.append(id, batch).map_err(external)?;
            }
            // Non-null values come first; the middle ones are at (n - 1) / 2 and n / 2.
            let middle: Vec<u64> = match n {
                0 => Vec::new(),
                _ if n % 2 == 1 => vec![(n - 1) / 2],
                _ => vec![n / 2 - 1, n / 2],
            };
            let mut picked: Vec<ArrayRef> = Vec::new();
            let mut offset = 0u64;
            for batch in store.read(id).map_err(external)? {
                let rows = batch.num_rows() as u64;
                let here: Vec<u64> = middle
                    .iter()
                    .filter(|&&p| p >= offset && p < offset + rows)
                    .map(|&p| p - offset)
                    .collect();
                if !here.is_empty() {
                    picked.push(take(batch.column(0), &UInt64Array::from(here), None)?);
                }
                offset += rows;
            }
            let mut acc = agg.create_accumulator()?;
            if !picked.is_empty() {
                let refs: Vec<&dyn Array> = picked.iter().map(|a| a.as_ref()).collect();
                acc.update_batch(&[concat(&refs)?])?;
            }
            acc.evaluate()
        }
        .await;
        store.remove(id);
        result
    }
}
