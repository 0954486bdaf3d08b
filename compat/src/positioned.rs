//! The index model's source of row order: a scan that numbers rows in file order.
//!
//! pandas keeps rows in the order they were read. DataFusion scans files in several partitions
//! at once, so the order of rows downstream is not the file's. [`PositionedTable`] wraps any
//! table (a file scan, usually) and plans its scan with one partition, in file order, adding a
//! hidden `__sf_pos` column that counts rows from 0. Every later operation keeps that column, and
//! results are sorted by the frame's order keys (which end with it) when they are produced.

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session as CatalogSession, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use futures::StreamExt;

/// The hidden column that holds a row's position in its source.
pub const POS: &str = "__sf_pos";

/// A table whose scan runs in one partition, in source order, with a `__sf_pos` column added.
#[derive(Debug)]
pub struct PositionedTable {
    inner: Arc<dyn TableProvider>,
    schema: SchemaRef,
}

impl PositionedTable {
    /// Wraps `inner`; its columns come first, then `__sf_pos`.
    pub fn new(inner: Arc<dyn TableProvider>) -> Self {
        let mut fields: Vec<Arc<Field>> = inner.schema().fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(POS, DataType::Int64, false)));
        let schema = Arc::new(Schema::new(fields));
        PositionedTable { inner, schema }
    }
}

#[async_trait]
impl TableProvider for PositionedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        // One partition keeps the source order; the rest of the query still runs in parallel.
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| {
                datafusion::error::DataFusionError::Internal(
                    "PositionedTable needs a DataFusion SessionState".into(),
                )
            })?;
        let config = state.config().clone().with_target_partitions(1);
        let single = SessionStateBuilder::new_from_existing(state.clone())
            .with_config(config)
            .build();
        let n_inner = self.inner.schema().fields().len();
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..=n_inner).collect(),
        };
        let inner_cols: Vec<usize> = wanted.iter().copied().filter(|&i| i < n_inner).collect();
        // Should the scan still have several partitions, `NumberRowsExec` reads them in order.
        let plan = self
            .inner
            .scan(&single, Some(&inner_cols), &[], None)
            .await?;
        let numbered: Arc<dyn ExecutionPlan> = Arc::new(NumberRowsExec::new(plan));
        // Put the columns in the order asked for: inner columns, then the position.
        let numbered_schema = numbered.schema();
        let exprs = wanted
            .iter()
            .map(|&i| {
                let (idx, name) = if i < n_inner {
                    let pos = inner_cols.iter().position(|&c| c == i).unwrap_or(0);
                    (pos, numbered_schema.field(pos).name().clone())
                } else {
                    (inner_cols.len(), POS.to_string())
                };
                let e: Arc<dyn PhysicalExpr> = Arc::new(
                    datafusion::physical_expr::expressions::Column::new(&name, idx),
                );
                (e, name)
            })
            .collect::<Vec<_>>();
        Ok(Arc::new(ProjectionExec::try_new(exprs, numbered)?))
    }
}

/// Appends a running row number (`__sf_pos`, from 0) to a one-partition input.
#[derive(Debug)]
pub struct NumberRowsExec {
    input: Arc<dyn ExecutionPlan>,
    props: Arc<PlanProperties>,
}

impl NumberRowsExec {
    /// Numbers the rows of `input`, reading its partitions one after another.
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let mut fields: Vec<Arc<Field>> = input.schema().fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(POS, DataType::Int64, false)));
        let schema = Arc::new(Schema::new(fields));
        let props = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        NumberRowsExec {
            input,
            props: Arc::new(props),
        }
    }
}

impl DisplayAs for NumberRowsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NumberRowsExec: {POS}")
    }
}

impl ExecutionPlan for NumberRowsExec {
    fn name(&self) -> &str {
        "NumberRowsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::common::Result<TreeNodeRecursion>,
    ) -> datafusion::common::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        // The numbering depends on the input's order, so no sort may be pushed beneath it.
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(NumberRowsExec::new(children.remove(0))))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::common::Result<SendableRecordBatchStream> {
        // DataFusion splits a large file scan into byte ranges (`repartition_file_scans`),
        // whatever the parent asks: the scan planned with one partition may reach here as
        // several. They are contiguous ranges in file order, so they are read one after
        // another. (Reading only the first dropped the rest: a 400,000-row file came back
        // with half its rows.)
        let _ = partition;
        let parts = self.input.output_partitioning().partition_count();
        let source = Arc::clone(&self.input);
        let input = futures::stream::iter(0..parts)
            .map(move |p| match source.execute(p, Arc::clone(&context)) {
                Ok(stream) => stream.boxed(),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            })
            .flatten();
        let schema = self.schema();
        let out_schema = Arc::clone(&schema);
        let mut next: i64 = 0;
        let stream = input.map(move |batch| {
            let batch = batch?;
            let n = batch.num_rows() as i64;
            let pos: ArrayRef = Arc::new(Int64Array::from_iter_values(next..next + n));
            next += n;
            let mut columns = batch.columns().to_vec();
            columns.push(pos);
            Ok(RecordBatch::try_new(Arc::clone(&out_schema), columns)?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}
