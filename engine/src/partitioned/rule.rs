//! The physical optimizer rule that picks the out-of-core strategy for each operator.
//!
//! It runs after DataFusion's join selection (so build sides are already the smaller input)
//! and before distribution and sort enforcement (so whatever a [`PartitionedExec`] outputs is
//! taken as it is: the usual repartitions and sorts are added above it where needed).
//!
//! For each hash join, holistic aggregate and partitioned window it estimates the bytes of the
//! input that would be held in memory: the join's build side, the aggregate's or window's
//! input. DataFusion's statistics give them (exact for Parquet files and stored partitions;
//! row counts times column widths otherwise). When the estimate is known and a quarter of it is
//! below the memory limit, the operator stays as DataFusion planned it: the fast in-memory path,
//! at no extra cost. When it is larger, or unknown, the operator becomes a
//! [`PartitionedExec`] with enough buckets for each to fit its share of memory.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::joins::{CrossJoinExec, HashJoinExec, NestedLoopJoinExec};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::windows::WindowAggExec;

use super::aggregate::{AggregateOperator, is_holistic};
use super::global_median::GlobalMedianExec;
use super::join::JoinOperator;
use super::nested_loop::{self, ChunkedNestedLoopExec};
use super::whole_window;
use super::window::WindowOperator;
use super::{OutOfCoreContext, PartitionedExec};

/// Buckets used when the input size is unknown.
const DEFAULT_BUCKETS: usize = 32;
/// Most buckets of a first split (deeper splits add more where needed).
const MAX_BUCKETS: usize = 1024;

/// Chooses between DataFusion's in-memory operators and partitioned execution.
#[derive(Debug)]
pub struct OutOfCoreRule {
    ctx: Arc<OutOfCoreContext>,
}

impl OutOfCoreRule {
    /// A rule for a session with these settings.
    pub fn new(ctx: Arc<OutOfCoreContext>) -> Self {
        OutOfCoreRule { ctx }
    }

    /// `Some(buckets)` when an input of `estimate` bytes should be partitioned.
    fn buckets_for(&self, estimate: Option<u64>) -> Option<usize> {
        let parts = self.ctx.target_partitions.max(1);
        match estimate {
            Some(bytes) if !self.ctx.force && bytes.saturating_mul(4) <= self.ctx.memory_limit => {
                None
            }
            Some(bytes) => {
                let per_bucket = (self.ctx.bucket_budget() / 2).max(1);
                let n = bytes.div_ceil(per_bucket).next_power_of_two() as usize;
                Some(n.clamp(parts.max(2), MAX_BUCKETS))
            }
            None => Some(DEFAULT_BUCKETS.max(parts)),
        }
    }

    fn rewrite(&self, plan: Arc<dyn ExecutionPlan>) -> Result<Transformed<Arc<dyn ExecutionPlan>>> {
        // An unbounded input (a stream) is left as DataFusion planned it: a partitioned
        // operator reads its whole input before answering, so it would buffer for ever, and
        // it would hide from DataFusion's sanity check the pipeline breakers it refuses.
        if plan
            .children()
            .iter()
            .any(|c| c.properties().boundedness.is_unbounded())
        {
            return Ok(Transformed::no(plan));
        }
        if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
            if join.null_aware {
                // NOT IN semantics depend on NULLs anywhere in the build side.
                return Ok(Transformed::no(plan));
            }
            let Some(buckets) = self.buckets_for(estimate_bytes(join.left())) else {
                return Ok(Transformed::no(plan));
            };
            let keys = vec![
                join.on().iter().map(|(l, _)| Arc::clone(l)).collect(),
                join.on().iter().map(|(_, r)| Arc::clone(r)).collect(),
            ];
            let exec = PartitionedExec::new(
                vec![Arc::clone(join.left()), Arc::clone(join.right())],
                keys,
                Arc::new(JoinOperator::new(join)?),
                buckets,
                Arc::clone(&self.ctx),
            );
            tracing::debug!(buckets, "hash join runs partitioned");
            return Ok(Transformed::yes(Arc::new(exec)));
        }
        if let Some(join) = plan.downcast_ref::<NestedLoopJoinExec>() {
            if self.buckets_for(estimate_bytes(join.left())).is_none() {
                return Ok(Transformed::no(plan));
            }
            tracing::debug!(join_type = %join.join_type(), "nested-loop join runs chunked");
            return Ok(Transformed::yes(nested_loop::plan(&plan, join, &self.ctx)?));
        }
        if let Some(join) = plan.downcast_ref::<CrossJoinExec>() {
            if self.buckets_for(estimate_bytes(join.left())).is_none() {
                return Ok(Transformed::no(plan));
            }
            tracing::debug!("cross join runs chunked");
            return Ok(Transformed::yes(Arc::new(ChunkedNestedLoopExec::new(
                Arc::clone(&plan),
                &self.ctx,
            )?)));
        }
        if let Some(agg) = plan.downcast_ref::<AggregateExec>() {
            return Ok(match self.rewrite_aggregate(agg) {
                Some(exec) => Transformed::yes(exec),
                None => Transformed::no(plan),
            });
        }
        if plan.is::<WindowAggExec>()
            && self
                .buckets_for(estimate_bytes(plan.children()[0]))
                .is_some()
            && let Some(streaming) = whole_window::rewrite(&plan)?
        {
            tracing::debug!("window over the whole input runs as aggregate and cross join");
            return Ok(Transformed::yes(streaming));
        }
        if let Some(window) = WindowOperator::new(&plan) {
            let input = window.input();
            // A window over a partitioned window with the same keys joins its chain: the
            // bucket is then sorted and windowed once per step, with no second partitioning.
            let mut between = Vec::new();
            let mut below_plan = Arc::clone(&input);
            while below_plan.is::<ProjectionExec>() {
                between.push(Arc::clone(&below_plan));
                below_plan = Arc::clone(below_plan.children()[0]);
            }
            between.reverse();
            if let Some(below) = below_plan.downcast_ref::<PartitionedExec>()
                && let Some(chain) = below
                    .operator()
                    .as_window()
                    .and_then(|w| w.then(&between, &window))
            {
                let exec = PartitionedExec::new(
                    below.inputs().to_vec(),
                    below.keys().to_vec(),
                    Arc::new(chain),
                    below.buckets(),
                    Arc::clone(&self.ctx),
                );
                return Ok(Transformed::yes(Arc::new(exec)));
            }
            let Some(buckets) = self.buckets_for(estimate_bytes(&input)) else {
                return Ok(Transformed::no(plan));
            };
            let keys = vec![window.keys()];
            let exec = PartitionedExec::new(
                vec![input],
                keys,
                Arc::new(window),
                buckets,
                Arc::clone(&self.ctx),
            );
            tracing::debug!(buckets, "window runs partitioned");
            return Ok(Transformed::yes(Arc::new(exec)));
        }
        Ok(Transformed::no(plan))
    }

    fn rewrite_aggregate(&self, agg: &AggregateExec) -> Option<Arc<dyn ExecutionPlan>> {
        // The final stage of a two-stage aggregate, or a single-stage one.
        let first: &AggregateExec = match agg.mode() {
            AggregateMode::Final | AggregateMode::FinalPartitioned => {
                let mut child = agg.input();
                loop {
                    if let Some(r) = child.downcast_ref::<RepartitionExec>() {
                        child = r.input();
                    } else if let Some(c) = child.downcast_ref::<CoalescePartitionsExec>() {
                        child = c.input();
                    } else {
                        break;
                    }
                }
                let partial = child.downcast_ref::<AggregateExec>()?;
                if *partial.mode() != AggregateMode::Partial {
                    return None;
                }
                partial
            }
            AggregateMode::Single | AggregateMode::SinglePartitioned => agg,
            _ => return None,
        };
        let group_by = first.group_expr();
        if group_by.has_grouping_set() {
            return None;
        }
        if group_by.expr().is_empty() {
            // One group: a median picks its middle values from a sorted column.
            self.buckets_for(estimate_bytes(first.input()))?;
            let exec = GlobalMedianExec::try_new(
                Arc::clone(first.input()),
                first.aggr_expr().to_vec(),
                first.filter_expr(),
                agg.schema(),
                &self.ctx,
            )?;
            tracing::debug!("median with no group keys runs over a sorted column");
            return Some(Arc::new(exec));
        }
        if !first.aggr_expr().iter().any(|a| is_holistic(a)) {
            return None;
        }
        let buckets = self.buckets_for(estimate_bytes(first.input()))?;
        let operator = AggregateOperator::from_first_stage(first, &agg.schema())?;
        let keys = vec![operator.keys()];
        tracing::debug!(buckets, "holistic aggregate runs partitioned");
        Some(Arc::new(PartitionedExec::new(
            vec![Arc::clone(first.input())],
            keys,
            Arc::new(operator),
            buckets,
            Arc::clone(&self.ctx),
        )))
    }
}

impl PhysicalOptimizerRule for OutOfCoreRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Buckets share the limit with the plan's other memory-holding operators.
        let sharers = memory_holders(&plan).clamp(1, MAX_SHARERS);
        let rule = OutOfCoreRule {
            ctx: Arc::new(OutOfCoreContext {
                sharers,
                ..(*self.ctx).clone()
            }),
        };
        plan.transform_up(|node| rule.rewrite(node)).data()
    }

    fn name(&self) -> &str {
        "spillframe_out_of_core"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Operators of `plan` that hold a good part of their input in memory while the rest of the
/// plan runs: full sorts (not top-k), hash joins' build sides, grouped aggregates' final
/// stages and windows over whole partitions.
fn memory_holders(plan: &Arc<dyn ExecutionPlan>) -> usize {
    use datafusion::physical_plan::sorts::sort::SortExec;
    let own = if let Some(sort) = plan.downcast_ref::<SortExec>() {
        usize::from(sort.fetch().is_none())
    } else if let Some(agg) = plan.downcast_ref::<AggregateExec>() {
        usize::from(!agg.group_expr().expr().is_empty() && *agg.mode() != AggregateMode::Partial)
    } else {
        usize::from(plan.is::<HashJoinExec>() || plan.is::<WindowAggExec>())
    };
    own + plan
        .children()
        .into_iter()
        .map(memory_holders)
        .sum::<usize>()
}

/// The most operators a bucket's budget is divided among: more would make buckets too small to
/// pay for themselves, in plans with many joins whose tables are not all held at once.
const MAX_SHARERS: usize = 4;

/// Estimated bytes of `plan`'s whole output, from DataFusion's statistics: the total when
/// known, else each column's byte size (Parquet metadata gives the uncompressed size of string
/// columns), else rows times a typical width.
pub(crate) fn estimate_bytes(plan: &Arc<dyn ExecutionPlan>) -> Option<u64> {
    from_statistics(plan).or_else(|| from_files(plan))
}

/// In-memory bytes per byte of a file without statistics (CSV, JSON: text becomes Arrow
/// arrays with offsets and validity, and numbers often widen).
const TEXT_EXPANSION: u64 = 2;

/// Without statistics (CSV and JSON files have none until read), an upper bound from the
/// sizes of the files scanned below `plan`: every leaf must be a file scan, or have
/// statistics of its own. Filters and projections only shrink the input and a union adds its
/// inputs, so the sum holds for them; any other operator with several inputs is a join, which
/// can grow them, so a plan with one gives `None`.
fn from_files(plan: &Arc<dyn ExecutionPlan>) -> Option<u64> {
    let children = plan.children();
    if children.len() > 1 && !plan.is::<UnionExec>() {
        return None;
    }
    if children.is_empty() {
        if let Some(scan) = plan.downcast_ref::<DataSourceExec>()
            && let Some(files) = scan.data_source().downcast_ref::<FileScanConfig>()
        {
            let bytes: u64 = files
                .file_groups
                .iter()
                .flat_map(|g| g.iter())
                .map(|f| f.object_meta.size)
                .sum();
            return Some(bytes.saturating_mul(TEXT_EXPANSION));
        }
        return from_statistics(plan);
    }
    children
        .into_iter()
        .map(from_files)
        .try_fold(0u64, |sum, c| c.map(|c| sum.saturating_add(c)))
}

fn from_statistics(plan: &Arc<dyn ExecutionPlan>) -> Option<u64> {
    let stats = StatisticsContext::new()
        .compute(plan.as_ref(), &StatisticsArgs::new())
        .ok()?;
    if let Some(bytes) = precision_value(&stats.total_byte_size) {
        return Some(bytes as u64);
    }
    let rows = precision_value(&stats.num_rows)? as u64;
    let schema = plan.schema();
    let bytes = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            stats
                .column_statistics
                .get(i)
                .and_then(|c| precision_value(&c.byte_size))
                .map(|b| b as u64)
                .unwrap_or_else(|| rows.saturating_mul(type_width(f.data_type())))
        })
        .fold(0u64, u64::saturating_add);
    Some(bytes.max(rows))
}

fn precision_value(p: &Precision<usize>) -> Option<usize> {
    match p {
        Precision::Exact(v) | Precision::Inexact(v) => Some(*v),
        Precision::Absent => None,
    }
}

/// Bytes a value of `t` takes in memory, roughly (variable-length types get a typical size).
fn type_width(t: &DataType) -> u64 {
    t.primitive_width().map_or(24, |w| w as u64 + 1)
}
