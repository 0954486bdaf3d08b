//! `sum` over integers that fails on overflow instead of wrapping around.
//!
//! DataFusion's `sum` of a 64-bit integer column wraps: the sum of `9223372036854775807` and
//! `1` is `-9223372036854775808`. [`CheckedSum`] keeps `sum`'s signature and result type
//! (`Int64` for signed integers, `UInt64` for unsigned ones) but adds in 128 bits, which
//! cannot overflow for fewer than 2^64 rows, and fails when the total does not fit the result
//! type. Partial sums travel between the stages of an aggregation as 128-bit decimals, so
//! the answer does not depend on how rows were split between partitions: a partial sum may
//! pass the 64-bit range as long as the total comes back into it.
//!
//! [`CheckedArithmetic`](crate::checked::CheckedArithmetic) puts it in place of `sum` over
//! integers. `sum(DISTINCT ..)` and the other types (floats, decimals, intervals) are
//! DataFusion's `sum`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Int64Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type, UInt64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_datafusion_err, exec_err};
use datafusion::functions_aggregate::sum::Sum;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, ReversedUDAF, Signature,
};

/// Precision of the 128-bit partial sums.
const STATE_TYPE: DataType = DataType::Decimal128(38, 0);

/// `sum` with overflow checks on integers (see the [module docs](self)).
#[derive(Debug, PartialEq, Eq, Hash, Default)]
pub struct CheckedSum {
    sum: Sum,
}

impl CheckedSum {
    /// The function's name in plans (and on peers, which decode plans by it).
    pub const NAME: &'static str = "checked_sum";
}

/// Whether the checked path handles a `sum` returning `t` (distinct sums stay DataFusion's).
fn checked(t: &DataType, distinct: bool) -> bool {
    !distinct && matches!(t, DataType::Int64 | DataType::UInt64)
}

impl AggregateUDFImpl for CheckedSum {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn signature(&self) -> &Signature {
        self.sum.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.sum.return_type(arg_types)
    }

    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        let t = args.return_field.data_type().clone();
        if !checked(&t, args.is_distinct) {
            return self.sum.accumulator(args);
        }
        Ok(Box::new(Wide::new(t)))
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        if !checked(args.return_type(), args.is_distinct) {
            return self.sum.state_fields(args);
        }
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "sum"),
            STATE_TYPE,
            true,
        ))])
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs<'_>) -> bool {
        self.sum.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs<'_>,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let t = args.return_field.data_type().clone();
        if !checked(&t, args.is_distinct) {
            return self.sum.create_groups_accumulator(args);
        }
        Ok(Box::new(WideGroups::new(t)))
    }

    fn create_sliding_accumulator(
        &self,
        args: AccumulatorArgs<'_>,
    ) -> Result<Box<dyn Accumulator>> {
        let t = args.return_field.data_type().clone();
        if !checked(&t, args.is_distinct) {
            return self.sum.create_sliding_accumulator(args);
        }
        Ok(Box::new(Wide::new(t)))
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
}

/// Adds the valid values of an `Int64` or `UInt64` array (`values`) as `i128`s, passing each
/// with its row to `f`.
fn each_value(values: &dyn Array, mut f: impl FnMut(usize, i128)) -> Result<()> {
    match values.data_type() {
        DataType::Int64 => {
            let a = values.as_primitive::<Int64Type>();
            for (row, v) in a.iter().enumerate() {
                if let Some(v) = v {
                    f(row, i128::from(v));
                }
            }
        }
        DataType::UInt64 => {
            let a = values.as_primitive::<UInt64Type>();
            for (row, v) in a.iter().enumerate() {
                if let Some(v) = v {
                    f(row, i128::from(v));
                }
            }
        }
        DataType::Decimal128(..) => {
            let a = values.as_primitive::<arrow::datatypes::Decimal128Type>();
            for (row, v) in a.iter().enumerate() {
                if let Some(v) = v {
                    f(row, v);
                }
            }
        }
        other => return exec_err!("{}: unexpected input type {other}", CheckedSum::NAME),
    }
    Ok(())
}

/// `total` as a value of `t`, or the overflow error.
fn narrow(total: i128, t: &DataType) -> Result<ScalarValue> {
    let fits = match t {
        DataType::Int64 => i64::try_from(total)
            .ok()
            .map(|v| ScalarValue::Int64(Some(v))),
        _ => u64::try_from(total)
            .ok()
            .map(|v| ScalarValue::UInt64(Some(v))),
    };
    fits.ok_or_else(|| overflow(total, t))
}

/// The error of a sum whose `total` does not fit its result type `t`.
fn overflow(total: i128, t: &DataType) -> DataFusionError {
    exec_datafusion_err!(
        "integer overflow in sum: the total {total} does not fit in {t}; cast the column to \
         a decimal (CAST(x AS DECIMAL(38, 0))) or a float before summing"
    )
}

/// One group's checked sum, in 128 bits. Also the sliding form for window frames: `count`
/// says when a frame holds no value (the sum is then null).
#[derive(Debug)]
struct Wide {
    t: DataType,
    total: i128,
    count: u64,
}

impl Wide {
    fn new(t: DataType) -> Self {
        Wide {
            t,
            total: 0,
            count: 0,
        }
    }
}

impl Accumulator for Wide {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (total, count) = (&mut self.total, &mut self.count);
        each_value(values[0].as_ref(), |_, v| {
            *total += v;
            *count += 1;
        })
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (total, count) = (&mut self.total, &mut self.count);
        each_value(values[0].as_ref(), |_, v| {
            *total -= v;
            *count -= 1;
        })
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (total, count) = (&mut self.total, &mut self.count);
        each_value(states[0].as_ref(), |_, v| {
            *total += v;
            *count += 1;
        })
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let v = (self.count > 0).then_some(self.total);
        Ok(vec![ScalarValue::Decimal128(v, 38, 0)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.count == 0 {
            return ScalarValue::try_from(&self.t);
        }
        narrow(self.total, &self.t)
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }
}

/// The checked sums of many groups, for hash aggregation, in little more memory than
/// DataFusion's wrapping sums: each group keeps a 64-bit sum that wraps, and the few groups
/// whose sum has wrapped keep the count of wraps (`carries`, signed) beside it, so that the
/// exact total is `carry * 2^64 + sum`. (A 128-bit sum per group doubled the final
/// aggregate's memory, and sums by key then failed at random under the corpus's 4 MiB limit.)
#[derive(Debug)]
struct WideGroups {
    t: DataType,
    sums: Vec<i64>,
    carries: std::collections::HashMap<usize, i128>,
    seen: Vec<bool>,
}

impl WideGroups {
    fn new(t: DataType) -> Self {
        WideGroups {
            t,
            sums: Vec::new(),
            carries: Default::default(),
            seen: Vec::new(),
        }
    }

    fn add(
        &mut self,
        values: &dyn Array,
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.sums.resize(total_num_groups, 0);
        self.seen.resize(total_num_groups, false);
        let (sums, carries, seen) = (&mut self.sums, &mut self.carries, &mut self.seen);
        // The common case, a 64-bit column without nulls or filter, in a tight loop.
        if let Some(a) = values.as_primitive_opt::<Int64Type>()
            && a.null_count() == 0
            && filter.is_none()
        {
            for (&v, &g) in a.values().iter().zip(groups) {
                let (sum, wrapped) = sums[g].overflowing_add(v);
                sums[g] = sum;
                seen[g] = true;
                if wrapped {
                    *carries.entry(g).or_insert(0) += if v < 0 { -1 } else { 1 };
                }
            }
            return Ok(());
        }
        // Partial states (128-bit) without nulls.
        if let Some(a) = values.as_primitive_opt::<arrow::datatypes::Decimal128Type>()
            && a.null_count() == 0
            && filter.is_none()
        {
            for (&v, &g) in a.values().iter().zip(groups) {
                seen[g] = true;
                add_wide(&mut sums[g], carries, g, v);
            }
            return Ok(());
        }
        each_value(values, |row, v| {
            if filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                return;
            }
            let g = groups[row];
            seen[g] = true;
            add_wide(&mut sums[g], carries, g, v);
        })
    }

    /// The exact totals (or `None` for groups without a value) of the groups `emit_to` takes.
    fn take(&mut self, emit_to: EmitTo) -> Vec<Option<i128>> {
        let n = match emit_to {
            EmitTo::All => self.sums.len(),
            EmitTo::First(n) => n,
        };
        let sums = emit_to.take_needed(&mut self.sums);
        let seen = emit_to.take_needed(&mut self.seen);
        let carries = std::mem::take(&mut self.carries);
        let mut totals: Vec<Option<i128>> = sums
            .iter()
            .zip(&seen)
            .map(|(s, seen)| seen.then_some(i128::from(*s)))
            .collect();
        for (g, carry) in carries {
            if g < n {
                if let Some(t) = totals[g].as_mut() {
                    *t = t.saturating_add(carry.saturating_mul(1 << 64));
                }
            } else {
                // Groups after the emitted ones move down by `n`.
                self.carries.insert(g - n, carry);
            }
        }
        totals
    }
}

/// Adds `v` (any 128-bit value: an input or a partial state) to group `g`'s wrapping sum
/// `sum`, counting wraps in `carries`: `v = high * 2^64 + low`, with `low` a wrapping 64-bit
/// value.
fn add_wide(
    sum: &mut i64,
    carries: &mut std::collections::HashMap<usize, i128>,
    g: usize,
    v: i128,
) {
    let low = v as i64;
    let mut high = (v - i128::from(low)) >> 64;
    let (next, wrapped) = sum.overflowing_add(low);
    if wrapped {
        high += if low < 0 { -1 } else { 1 };
    }
    *sum = next;
    if high != 0 {
        *carries.entry(g).or_insert(0) += high;
    }
}

impl GroupsAccumulator for WideGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.add(
            values[0].as_ref(),
            group_indices,
            opt_filter,
            total_num_groups,
        )
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.add(values[0].as_ref(), group_indices, None, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let totals = self.take(emit_to);
        let t = &self.t;
        Ok(match t {
            DataType::Int64 => Arc::new(
                totals
                    .into_iter()
                    .map(|v| {
                        v.map(|t| i64::try_from(t).map_err(|_| overflow(t, &DataType::Int64)))
                            .transpose()
                    })
                    .collect::<Result<Int64Array>>()?,
            ),
            _ => Arc::new(
                totals
                    .into_iter()
                    .map(|v| {
                        v.map(|t| u64::try_from(t).map_err(|_| overflow(t, &DataType::UInt64)))
                            .transpose()
                    })
                    .collect::<Result<UInt64Array>>()?,
            ),
        })
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let state: Decimal128Array = self.take(emit_to).into_iter().collect();
        Ok(vec![Arc::new(state.with_data_type(STATE_TYPE))])
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // Each row as its own partial sum (DataFusion skips the partial aggregation when it
        // does not reduce the rows): the column cast to the state's type, filtered rows null.
        let state = arrow::compute::cast(values[0].as_ref(), &STATE_TYPE)?;
        let state = match opt_filter {
            Some(f) => {
                let dropped = arrow::compute::not(&arrow::compute::prep_null_mask_filter(f))?;
                arrow::compute::nullif(state.as_ref(), &dropped)?
            }
            None => state,
        };
        Ok(vec![state])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * size_of::<i64>()
            + self.seen.capacity()
            + self.carries.capacity() * (size_of::<usize>() + size_of::<i128>())
    }
}
