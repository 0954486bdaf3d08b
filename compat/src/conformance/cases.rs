//! The conformance cases: spillframe spellings of the pandas calls in
//! `fixtures/compat/make_cases.py`, case for case, with the registry entries each proves.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::datatypes::DataType;
use datafusion::scalar::ScalarValue;

use super::{Case, frame, row, scalar, series};
use crate::frame::{DataFrame, How, Keep, NaPosition};
use crate::reshape::{MergeHow, MergeOptions, concat};
use crate::series::Inclusive;
use crate::window::RankMethod;

fn sv<T: Into<ScalarValue>>(v: T) -> ScalarValue {
    v.into()
}

fn int(v: usize) -> ScalarValue {
    ScalarValue::Int64(Some(v as i64))
}

const NUM: [&str; 3] = ["x", "y", "n"];

/// A function for `map_partitions`: the rows with `y > 50`, with `z = 2x` added.
fn big_y_doubled_x(
    b: arrow::array::RecordBatch,
) -> Result<arrow::array::RecordBatch, arrow::error::ArrowError> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Field, Float64Type, Schema};
    let y = b
        .column(b.schema().index_of("y")?)
        .as_primitive::<Float64Type>()
        .clone();
    let keep = arrow::compute::kernels::cmp::gt(&y, &Float64Array::new_scalar(50.0))?;
    let x = b
        .column(b.schema().index_of("x")?)
        .as_primitive::<Float64Type>()
        .clone();
    let z: Float64Array = x.iter().map(|v| v.map(|v| v * 2.0)).collect();
    let mut fields: Vec<_> = b.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new("z", DataType::Float64, true)));
    let mut cols = b.columns().to_vec();
    cols.push(Arc::new(z) as ArrayRef);
    let out = arrow::array::RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
    arrow::compute::filter_record_batch(&out, &keep)
}

macro_rules! cases {
    ($( $id:literal [$($cov:literal),*] => $body:expr ;)*) => {
        /// Every case, in the order of the pandas script.
        pub static CASES: &[Case] = &[ $( Case { id: $id, covers: &[$($cov),*], run: $body } ),* ];
    };
}

cases! {
    // ---- construction and I/O ---------------------------------------------------------------
    "read_parquet" ["pandas.read_parquet"] => |t| frame(crate::io::read_parquet(&t.session, t.dir.join("sales.parquet"))?);
    "read_csv" ["pandas.read_csv"] => |t| frame(crate::io::read_csv(&t.session, t.dir.join("small.csv"))?);
    "from_columns" ["pandas.DataFrame"] => |t| frame(DataFrame::from_columns(&t.session, vec![
        ("a", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
        ("b", Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])) as ArrayRef),
        ("c", Arc::new(Float64Array::from(vec![Some(0.5), None, Some(2.5)])) as ArrayRef),
    ])?);
    "to_parquet_roundtrip" ["DataFrame.to_parquet"] => |t| {
        let path = t.session.spill_dir().join("compat-roundtrip.parquet");
        t.sales.select(&["id", "key", "x"])?.to_parquet(&path)?;
        let out = crate::io::read_parquet(&t.session, &path)?.to_table();
        let _ = std::fs::remove_file(&path);
        out
    };
    "to_csv_roundtrip" ["DataFrame.to_csv"] => |t| {
        let path = t.session.spill_dir().join("compat-roundtrip.csv");
        t.small.to_csv(&path)?;
        let out = crate::io::read_csv(&t.session, &path)?.to_table();
        let _ = std::fs::remove_file(&path);
        out
    };
    // ---- selection and shape ------------------------------------------------------------------
    "head" ["DataFrame.head"] => |t| frame(t.sales.head(7)?);
    "tail" ["DataFrame.tail"] => |t| frame(t.sales.tail(6)?);
    "shape" ["DataFrame.shape"] => |t| { let (r, c) = t.sales.shape()?; row(vec![("rows", int(r)), ("cols", int(c))]) };
    "columns" ["DataFrame.columns"] => |t| {
        let a: ArrayRef = Arc::new(StringArray::from_iter_values(t.sales.columns()));
        Ok(spillframe_engine::Table::from_columns(vec![("value".into(), a)])?)
    };
    "dtypes" ["DataFrame.dtypes"] => |t| {
        let d = t.sales.dtypes();
        let n: ArrayRef = Arc::new(StringArray::from_iter_values(d.iter().map(|x| x.0.clone())));
        let k: ArrayRef = Arc::new(StringArray::from_iter_values(d.iter().map(|x| x.1.clone())));
        Ok(spillframe_engine::Table::from_columns(vec![("column".into(), n), ("dtype".into(), k)])?)
    };
    "size" ["DataFrame.size"] => |t| scalar(int(t.sales.size()?));
    "ndim" ["DataFrame.ndim"] => |t| scalar(int(t.sales.ndim()));
    "empty" ["DataFrame.empty"] => |t| scalar(sv(t.sales.loc(&t.sales.col("n")?.gt(1000i64)?)?.empty()?));
    "empty_false" ["DataFrame.empty"] => |t| scalar(sv(t.sales.empty()?));
    "series_ndim" ["Series.ndim"] => |t| scalar(int(t.sales.col("x")?.ndim()));
    "select_columns" ["DataFrame.__getitem__"] => |t| frame(t.sales.select(&["key", "x"])?);
    "get_column" ["DataFrame.get"] => |t| series(t.sales.get("y")?);
    "loc_mask" ["DataFrame.loc"] => |t| frame(t.sales.loc_columns(&t.sales.col("x")?.gt(5.0)?, &["id", "x"])?);
    "filter_items" ["DataFrame.filter"] => |t| frame(t.sales.filter_items(&["n", "grp"])?);
    "query" ["DataFrame.query"] => |t| frame(t.sales.query("n > 10 and key == 'b'")?.select(&["id", "n"])?);
    "isin_frame" ["DataFrame.isin"] => |t| frame(t.sales.select(&["key", "grp"])?.isin(&[sv("a"), sv(3i64), sv("c")])?);
    "isin_series" ["Series.isin"] => |t| series(t.sales.col("grp")?.isin(&[sv(1i64), sv(2i64), sv(5i64)])?);
    "between" ["Series.between"] => |t| series(t.sales.col("y")?.between(10i64, 20i64, Inclusive::Both)?);
    "between_neither" ["Series.between"] => |t| series(t.sales.col("n")?.between(-10i64, 10i64, Inclusive::Neither)?);
    "where_frame" ["DataFrame.where"] => |t| frame(t.sales.select(&["x", "n"])?.where_(&t.sales.col("n")?.gt(0i64)?, Some(sv(0i64)))?);
    "mask_frame" ["DataFrame.mask"] => |t| frame(t.sales.select(&["x", "y"])?.mask(&t.sales.col("flag")?, None)?);
    "where_series" ["Series.where"] => |t| { let x = t.sales.col("x")?; series(x.where_(&x.gt(0i64)?, Some(sv(-1.0)))?) };
    "mask_series" ["Series.mask"] => |t| { let n = t.sales.col("n")?; series(n.mask(&n.lt(0i64)?, Some(sv(0i64)))?) };
    "drop_columns" ["DataFrame.drop"] => |t| frame(t.sales.drop(&["ts", "name", "flag"])?);
    "rename" ["DataFrame.rename"] => |t| frame(t.sales.select(&["id", "key"])?.rename(&[("key", "k"), ("id", "ident")])?);
    "series_rename" ["Series.rename"] => |t| series(t.sales.col("x")?.rename("xx"));
    "assign" ["DataFrame.assign"] => |t| {
        let (x, y) = (t.sales.col("x")?, t.sales.col("y")?);
        frame(t.sales.select(&["x", "y"])?.assign(vec![("z", x.add(&y)?), ("w", y.mul(2i64)?)])?)
    };
    "astype" ["DataFrame.astype"] => |t| frame(t.sales.select(&["n", "grp"])?.astype(&[("n", "float64"), ("grp", "str")])?);
    "series_astype" ["Series.astype"] => |t| series(t.sales.col("y")?.astype("int64")?);
    "add_prefix" ["DataFrame.add_prefix"] => |t| frame(t.sales.select(&["x", "y"])?.add_prefix("p_")?);
    "add_prefix_small" ["DataFrame.add_prefix"] => |t| frame(t.small.add_prefix("q_")?);
    "add_suffix" ["DataFrame.add_suffix"] => |t| frame(t.sales.select(&["x", "y"])?.add_suffix("_s")?);
    "add_suffix_small" ["DataFrame.add_suffix"] => |t| frame(t.small.add_suffix("_t")?);
    "select_dtypes" ["DataFrame.select_dtypes"] => |t| frame(t.sales.select_dtypes(&["number"])?);
    "insert" ["DataFrame.insert"] => |t| { let f = t.sales.select(&["id", "x"])?; frame(f.insert(1, "twice", &f.col("x")?.mul(2i64)?)?) };
    "pop" ["DataFrame.pop"] => |t| { let mut f = t.sales.select(&["id", "x", "y"])?; f.pop("x")?; frame(f) };
    "to_frame" ["Series.to_frame"] => |t| frame(t.sales.col("key")?.to_frame()?);
    "series_name" ["Series.name"] => |t| scalar(sv(t.sales.col("grp")?.name()));
    "series_dtype" ["Series.dtype"] => |t| scalar(sv(t.sales.col("x")?.dtype()?));
    "series_head" ["Series.head"] => |t| series(t.sales.col("name")?.head(4)?);
    "series_tail" ["Series.tail"] => |t| series(t.sales.col("name")?.tail(3)?);
    "series_shape" ["Series.shape"] => |t| row(vec![("rows", int(t.sales.col("x")?.shape()?.0))]);
    "series_size" ["Series.size"] => |t| scalar(int(t.sales.col("x")?.size()?));
    "series_tolist" ["Series.tolist"] => |t| {
        let v = t.sales.col("n")?.head(5)?.tolist()?;
        Ok(spillframe_engine::Table::from_columns(vec![("value".into(), ScalarValue::iter_to_array(v)?)])?)
    };
    // ---- missing data ---------------------------------------------------------------------------
    "isna_frame" ["DataFrame.isna"] => |t| frame(t.small.isna()?);
    "isnull_frame" ["DataFrame.isnull"] => |t| frame(t.small.isnull()?);
    "notna_frame" ["DataFrame.notna"] => |t| frame(t.small.notna()?);
    "notnull_frame" ["DataFrame.notnull"] => |t| frame(t.small.notnull()?);
    "isna_series" ["Series.isna"] => |t| series(t.sales.col("x")?.isna()?);
    "notna_series" ["Series.notna"] => |t| series(t.sales.col("name")?.notna()?);
    "isnull_series" ["Series.isnull"] => |t| series(t.sales.col("key")?.isnull()?);
    "notnull_series" ["Series.notnull"] => |t| series(t.sales.col("ts")?.notnull()?);
    "pd_isna" ["pandas.isna"] => |t| series(t.sales.col("x")?.isna()?);
    "pd_notna" ["pandas.notna"] => |t| series(t.sales.col("key")?.notna()?);
    "dropna_any" ["DataFrame.dropna"] => |t| frame(t.small.dropna(How::Any, None)?);
    "dropna_all_subset" ["DataFrame.dropna"] => |t| frame(t.small.dropna(How::All, Some(&["a", "b"]))?);
    "series_dropna" ["Series.dropna"] => |t| series(t.sales.col("x")?.dropna()?);
    "fillna_scalar" ["DataFrame.fillna"] => |t| frame(t.small.select(&["a", "b"])?.fillna(sv(0.0))?);
    "fillna_per_column" ["DataFrame.fillna"] => |t| frame(t.small.fillna_map(&[("a", sv(-1.0)), ("c", sv("zz"))])?);
    "series_fillna" ["Series.fillna"] => |t| series(t.sales.col("key")?.fillna("none")?);
    "ffill" ["DataFrame.ffill"] => |t| frame(t.small.ffill()?);
    "ffill_sales" ["DataFrame.ffill"] => |t| frame(t.sales.select(&["key", "x", "ts"])?.ffill()?);
    "bfill" ["DataFrame.bfill"] => |t| frame(t.small.bfill()?);
    "bfill_sales" ["DataFrame.bfill"] => |t| frame(t.sales.select(&["key", "x", "ts"])?.bfill()?);
    "series_ffill" ["Series.ffill"] => |t| series(t.sales.col("x")?.ffill()?);
    "series_bfill" ["Series.bfill"] => |t| series(t.sales.col("x")?.bfill()?);
    // ---- sorting and ranking --------------------------------------------------------------------
    "sort_values" ["DataFrame.sort_values"] => |t| frame(t.sales.sort_values(&["x"], &[true])?.select(&["id", "x"])?);
    "sort_values_multi" ["DataFrame.sort_values"] => |t| frame(t.sales.sort_values(&["key", "n"], &[true, false])?.select(&["id", "key", "n"])?);
    "sort_values_na_first" ["DataFrame.sort_values"] => |t| frame(t.sales.sort_values_with(&["x"], &[true], NaPosition::First)?.select(&["id", "x"])?);
    "series_sort_values" ["Series.sort_values"] => |t| series(t.sales.col("y")?.sort_values(false)?);
    "nlargest" ["DataFrame.nlargest"] => |t| frame(t.sales.nlargest(5, &["y"])?.select(&["id", "y"])?);
    "nsmallest" ["DataFrame.nsmallest"] => |t| frame(t.sales.nsmallest(4, &["n", "id"])?.select(&["id", "n"])?);
    "series_nlargest" ["Series.nlargest"] => |t| series(t.sales.col("y")?.nlargest(3)?);
    "series_nsmallest" ["Series.nsmallest"] => |t| series(t.sales.col("n")?.nsmallest(3)?);
    "rank_average" ["Series.rank"] => |t| series(t.sales.col("x")?.rank(RankMethod::Average, true)?);
    "rank_min" ["Series.rank"] => |t| series(t.sales.col("x")?.rank(RankMethod::Min, true)?);
    "rank_max" ["Series.rank"] => |t| series(t.sales.col("n")?.rank(RankMethod::Max, false)?);
    "rank_first" ["Series.rank"] => |t| series(t.sales.col("n")?.rank(RankMethod::First, true)?);
    "rank_dense" ["Series.rank"] => |t| series(t.sales.col("grp")?.rank(RankMethod::Dense, true)?);
    "frame_rank" ["DataFrame.rank"] => |t| frame(t.sales.select(&["n", "y"])?.rank(RankMethod::Average, true)?);
    // ---- deduplication and counting -------------------------------------------------------------
    "drop_duplicates" ["DataFrame.drop_duplicates"] => |t| frame(t.sales.select(&["key", "grp"])?.drop_duplicates(None, Keep::First)?);
    "drop_duplicates_last" ["DataFrame.drop_duplicates"] => |t| frame(t.sales.drop_duplicates(Some(&["key"]), Keep::Last)?.select(&["id", "key"])?);
    "drop_duplicates_none" ["DataFrame.drop_duplicates"] => |t| frame(t.sales.drop_duplicates(Some(&["grp", "n"]), Keep::None)?.select(&["id", "grp", "n"])?);
    "series_drop_duplicates" ["Series.drop_duplicates"] => |t| series(t.sales.col("grp")?.drop_duplicates(Keep::First)?);
    "duplicated" ["DataFrame.duplicated"] => |t| series(t.sales.duplicated(Some(&["key", "grp"]), Keep::First)?);
    "series_duplicated" ["Series.duplicated"] => |t| series(t.sales.col("key")?.duplicated(Keep::Last)?.rename("key"));
    "unique" ["Series.unique"] => |t| series(t.sales.col("key")?.unique()?);
    "pd_unique" ["pandas.unique"] => |t| series(t.sales.col("grp")?.unique()?);
    "nunique_series" ["Series.nunique"] => |t| scalar(t.sales.col("key")?.nunique()?);
    "nunique_series_x" ["Series.nunique"] => |t| scalar(t.sales.col("x")?.nunique()?);
    "nunique_frame" ["DataFrame.nunique"] => |t| frame(t.small.nunique()?);
    "nunique_sales" ["DataFrame.nunique"] => |t| frame(t.sales.select(&["key", "grp", "x", "flag"])?.nunique()?);
    "value_counts" ["Series.value_counts"] => |t| frame(t.sales.col("key")?.value_counts(false, true, false, true)?);
    "value_counts_normalize" ["Series.value_counts"] => |t| frame(t.sales.col("grp")?.value_counts(true, true, false, true)?);
    "value_counts_nosort" ["Series.value_counts"] => |t| frame(t.sales.col("key")?.value_counts(false, false, false, false)?);
    "frame_value_counts" ["DataFrame.value_counts"] => |t| frame(t.sales.select(&["key", "flag"])?.value_counts(&[])?);
    // ---- reductions -----------------------------------------------------------------------------
    "series_sum" ["Series.sum"] => |t| scalar(t.sales.col("x")?.sum()?);
    "series_mean" ["Series.mean"] => |t| scalar(t.sales.col("x")?.mean()?);
    "series_mean_n" ["Series.mean"] => |t| scalar(t.sales.col("n")?.mean()?);
    "series_median" ["Series.median"] => |t| scalar(t.sales.col("y")?.median()?);
    "series_median_x" ["Series.median"] => |t| scalar(t.sales.col("x")?.median()?);
    "series_min" ["Series.min"] => |t| scalar(t.sales.col("n")?.min()?);
    "series_min_x" ["Series.min"] => |t| scalar(t.sales.col("x")?.min()?);
    "series_max" ["Series.max"] => |t| scalar(t.sales.col("x")?.max()?);
    "series_max_n" ["Series.max"] => |t| scalar(t.sales.col("n")?.max()?);
    "series_count" ["Series.count"] => |t| scalar(t.sales.col("x")?.count()?);
    "series_std" ["Series.std"] => |t| scalar(t.sales.col("x")?.std(1)?);
    "series_std_ddof0" ["Series.std"] => |t| scalar(t.sales.col("y")?.std(0)?);
    "series_var" ["Series.var"] => |t| scalar(t.sales.col("n")?.var(1)?);
    "series_prod" ["Series.prod"] => |t| scalar(t.small.col("a")?.prod()?);
    "series_abs" ["Series.abs"] => |t| series(t.sales.col("n")?.abs()?);
    "series_round" ["Series.round"] => |t| series(t.sales.col("y")?.round(1)?);
    "series_clip" ["Series.clip"] => |t| series(t.sales.col("n")?.clip(Some(sv(-10i64)), Some(sv(10i64)))?);
    "series_all" ["Series.all"] => |t| scalar(t.sales.col("flag")?.all()?);
    "series_any" ["Series.any"] => |t| scalar(t.sales.col("flag")?.any()?);
    "series_all_true" ["Series.all"] => |t| scalar(t.sales.loc(&t.sales.col("flag")?)?.col("flag")?.all()?);
    "series_any_false" ["Series.any"] => |t| scalar(t.sales.loc(&t.sales.col("n")?.gt(1000i64)?)?.col("flag")?.any()?);
    "series_idxmax" ["Series.idxmax"] => |t| scalar(t.sales.col("y")?.idxmax()?);
    "series_idxmin" ["Series.idxmin"] => |t| scalar(t.sales.col("x")?.idxmin()?);
    "series_quantile" ["Series.quantile"] => |t| scalar(t.sales.col("y")?.quantile(0.3)?);
    "frame_sum" ["DataFrame.agg"] => |t| frame(t.sales.select(&NUM)?.agg(&["sum"])?);
    "frame_mean" ["DataFrame.agg", "DataFrame.aggregate"] => |t| frame(t.sales.select(&NUM)?.agg(&["mean"])?);
    "frame_agg" ["DataFrame.agg"] => |t| frame(t.sales.select(&NUM)?.agg(&["min", "max", "count"])?);
    "frame_sum_method" ["DataFrame.sum"] => |t| frame(t.sales.select(&NUM)?.sum()?);
    "frame_mean_method" ["DataFrame.mean"] => |t| frame(t.sales.select(&NUM)?.mean()?);
    "frame_median" ["DataFrame.median"] => |t| frame(t.sales.select(&NUM)?.median()?);
    "frame_median_small" ["DataFrame.median"] => |t| frame(t.small.select(&["a", "b", "d"])?.median()?);
    "frame_min" ["DataFrame.min"] => |t| frame(t.sales.select(&NUM)?.min()?);
    "frame_min_small" ["DataFrame.min"] => |t| frame(t.small.select(&["a", "b", "d"])?.min()?);
    "frame_max" ["DataFrame.max"] => |t| frame(t.sales.select(&NUM)?.max()?);
    "frame_max_small" ["DataFrame.max"] => |t| frame(t.small.select(&["a", "b", "d"])?.max()?);
    "frame_count" ["DataFrame.count"] => |t| frame(t.sales.count()?);
    "frame_count_small" ["DataFrame.count"] => |t| frame(t.small.count()?);
    "frame_std" ["DataFrame.std"] => |t| frame(t.sales.select(&NUM)?.std(1)?);
    "frame_var" ["DataFrame.var"] => |t| frame(t.sales.select(&NUM)?.var(0)?);
    "frame_abs" ["DataFrame.abs"] => |t| frame(t.sales.select(&["n", "x"])?.abs()?);
    "frame_round" ["DataFrame.round"] => |t| frame(t.sales.select(&["x", "y"])?.round(1)?);
    "frame_clip" ["DataFrame.clip"] => |t| frame(t.sales.select(&["n"])?.clip(Some(sv(-5i64)), None)?);
    "describe" ["DataFrame.describe"] => |t| frame(t.sales.select(&NUM)?.describe()?);
    "series_describe" ["Series.describe"] => |t| frame(t.sales.col("x")?.describe()?);
    "frame_quantile" ["DataFrame.quantile"] => |t| frame(t.sales.select(&NUM)?.quantile(0.75)?);
    "corr" ["DataFrame.corr"] => |t| frame(t.sales.select(&NUM)?.corr()?);
    "cov" ["DataFrame.cov"] => |t| frame(t.sales.select(&NUM)?.cov()?);
    "series_corr" ["Series.corr"] => |t| scalar(t.sales.col("x")?.corr(&t.sales.col("y")?)?);
    "series_cov" ["Series.cov"] => |t| scalar(t.sales.col("x")?.cov(&t.sales.col("n")?)?);
    // ---- arithmetic and comparison ----------------------------------------------------------
    "series_add" ["Series.add"] => |t| series(t.sales.col("x")?.add(&t.sales.col("y")?)?);
    "series_sub" ["Series.sub"] => |t| series(t.sales.col("y")?.sub(1.5)?);
    "series_mul" ["Series.mul"] => |t| series(t.sales.col("n")?.mul(3i64)?);
    "series_truediv" ["Series.truediv"] => |t| series(t.sales.col("n")?.truediv(4i64)?);
    "series_div" ["Series.div"] => |t| { let y = t.sales.col("y")?; series(y.div(&y.add(1i64)?)?) };
    "series_floordiv" ["Series.floordiv"] => |t| series(t.sales.col("n")?.floordiv(7i64)?);
    "series_mod" ["Series.mod"] => |t| series(t.sales.col("n")?.r#mod(7i64)?);
    "series_pow" ["Series.pow"] => |t| series(t.sales.col("grp")?.pow(2i64)?);
    "series_eq" ["Series.eq"] => |t| series(t.sales.col("grp")?.eq(3i64)?);
    "series_ne" ["Series.ne"] => |t| series(t.sales.col("key")?.ne("a")?);
    "series_lt" ["Series.lt"] => |t| series(t.sales.col("x")?.lt(0i64)?);
    "series_le" ["Series.le"] => |t| series(t.sales.col("n")?.le(0i64)?);
    "series_gt" ["Series.gt"] => |t| series(t.sales.col("y")?.gt(50i64)?);
    "series_ge" ["Series.ge"] => |t| series(t.sales.col("n")?.ge(&t.sales.col("grp")?)?);
    "frame_add" ["DataFrame.add"] => |t| frame(t.sales.select(&["n", "grp"])?.add(10i64)?);
    "frame_mul" ["DataFrame.mul"] => |t| frame(t.sales.select(&["x", "y"])?.mul(2i64)?);
    "series_map_dict" ["Series.map"] => |t| series(t.sales.col("key")?.map(&[(sv("a"), sv("A")), (sv("b"), sv("B"))])?);
    "series_replace" ["Series.replace"] => |t| series(t.sales.col("grp")?.replace(3i64, 30i64)?);
    "frame_replace" ["DataFrame.replace"] => |t| frame(t.small.replace(&[(sv("u"), sv("U")), (sv(1.5), sv(15.0))])?);
    "series_apply" ["Series.apply"] => |t| series(t.sales.col("y")?.apply(DataType::Float64, |a| {
        let v = a.as_any().downcast_ref::<Float64Array>().ok_or("expected float64")?;
        Ok(Arc::new(v.iter().map(|x| x.map(|x| x * 2.0 + 1.0)).collect::<Float64Array>()) as ArrayRef)
    })?);
    "pipe_head" ["DataFrame.pipe"] => |t| frame(t.sales.pipe(|d| d.head(7))?);
    "map_partitions_rowwise" ["DataFrame.pipe"] => |t| frame(t.sales.pipe(|d| d.map_partitions(4, big_y_doubled_x))?);
    // ---- window-style -------------------------------------------------------------------------
    "cumsum" ["Series.cumsum"] => |t| series(t.sales.col("x")?.cumsum()?);
    "cumsum_n" ["Series.cumsum"] => |t| series(t.sales.col("n")?.cumsum()?);
    "cumprod" ["Series.cumprod"] => |t| series(t.small.col("a")?.cumprod()?);
    "cummax" ["Series.cummax"] => |t| series(t.sales.col("x")?.cummax()?);
    "cummax_n" ["Series.cummax"] => |t| series(t.sales.col("n")?.cummax()?);
    "cummin" ["Series.cummin"] => |t| series(t.sales.col("n")?.cummin()?);
    "cummin_x" ["Series.cummin"] => |t| series(t.sales.col("x")?.cummin()?);
    "frame_cumsum" ["DataFrame.cumsum"] => |t| frame(t.small.select(&["a", "b"])?.cumsum()?);
    "frame_cumsum_sales" ["DataFrame.cumsum"] => |t| frame(t.sales.select(&["x", "n"])?.cumsum()?);
    "frame_cummax" ["DataFrame.cummax"] => |t| frame(t.small.select(&["a", "d"])?.cummax()?);
    "frame_cummax_sales" ["DataFrame.cummax"] => |t| frame(t.sales.select(&["x", "n"])?.cummax()?);
    "frame_cummin" ["DataFrame.cummin"] => |t| frame(t.small.select(&["b", "d"])?.cummin()?);
    "frame_cummin_sales" ["DataFrame.cummin"] => |t| frame(t.sales.select(&["x", "n"])?.cummin()?);
    "frame_cumprod" ["DataFrame.cumprod"] => |t| frame(t.small.select(&["a", "d"])?.cumprod()?);
    "shift" ["Series.shift"] => |t| series(t.sales.col("n")?.shift(2)?);
    "shift_negative" ["Series.shift"] => |t| series(t.sales.col("x")?.shift(-1)?);
    "frame_shift" ["DataFrame.shift"] => |t| frame(t.small.select(&["a", "c"])?.shift(1)?);
    "diff" ["Series.diff"] => |t| series(t.sales.col("n")?.diff(1)?);
    "diff_2" ["Series.diff"] => |t| series(t.sales.col("y")?.diff(2)?);
    "frame_diff" ["DataFrame.diff"] => |t| frame(t.small.select(&["a", "d"])?.diff(1)?);
    "pct_change" ["Series.pct_change"] => |t| series(t.sales.col("y")?.pct_change(1)?);
    "rolling_mean" ["Series.rolling"] => |t| series(t.sales.col("y")?.rolling(3).mean()?);
    "rolling_sum" ["Series.rolling"] => |t| series(t.sales.col("x")?.rolling(4).sum()?);
    "rolling_min" ["Series.rolling"] => |t| series(t.sales.col("n")?.rolling(5).min()?);
    "rolling_max" ["Series.rolling"] => |t| series(t.sales.col("n")?.rolling(2).max()?);
    "rolling_std" ["Series.rolling"] => |t| series(t.sales.col("y")?.rolling(4).std()?);
    "rolling_min_periods" ["Series.rolling"] => |t| series(t.sales.col("x")?.rolling(3).min_periods(1).mean()?);
    "frame_rolling" ["DataFrame.rolling"] => |t| frame(t.small.select(&["a", "d"])?.rolling_sum(2)?);
    // ---- strings ------------------------------------------------------------------------------
    "str_contains" ["Series.str.contains"] => |t| series(t.sales.col("name")?.str().contains("o'n|Lee", true)?);
    "str_contains_literal" ["Series.str.contains"] => |t| series(t.sales.col("name")?.str().contains("bob", false)?);
    "str_startswith" ["Series.str.startswith"] => |t| series(t.sales.col("name")?.str().startswith("Ann")?);
    "str_endswith" ["Series.str.endswith"] => |t| series(t.sales.col("name")?.str().endswith("smith")?);
    "str_lower" ["Series.str.lower"] => |t| series(t.sales.col("name")?.str().lower()?);
    "str_upper" ["Series.str.upper"] => |t| series(t.sales.col("name")?.str().upper()?);
    "str_len" ["Series.str.len"] => |t| series(t.sales.col("name")?.str().len()?);
    "str_strip" ["Series.str.strip"] => |t| series(t.sales.col("name")?.str().strip()?);
    "str_lstrip" ["Series.str.lstrip"] => |t| series(t.sales.col("name")?.str().lstrip()?);
    "str_rstrip" ["Series.str.rstrip"] => |t| series(t.sales.col("name")?.str().rstrip()?);
    "str_replace" ["Series.str.replace"] => |t| series(t.sales.col("name")?.str().replace("o", "0")?);
    "str_slice" ["Series.str.slice"] => |t| series(t.sales.col("name")?.str().slice(1, 4)?);
    "str_split" ["Series.str.split", "Series.str.get"] => |t| series(t.sales.col("name")?.str().strip()?.str().split_get(" ", 1)?);
    "str_get" ["Series.str.get"] => |t| series(t.sales.col("key")?.str().get(0)?);
    "str_title" ["Series.str.title"] => |t| series(t.sales.col("name")?.str().title()?);
    "str_capitalize" ["Series.str.capitalize"] => |t| series(t.sales.col("key")?.str().capitalize()?);
    "str_zfill" ["Series.str.zfill"] => |t| series(t.sales.col("grp")?.astype("str")?.str().zfill(3)?);
    "str_pad" ["Series.str.pad"] => |t| series(t.sales.col("key")?.str().pad(3, '*')?);
    "str_repeat" ["Series.str.repeat"] => |t| series(t.sales.col("key")?.str().repeat(2)?);
    "str_find" ["Series.str.find"] => |t| series(t.sales.col("name")?.str().find("e")?);
    // ---- datetimes ----------------------------------------------------------------------------
    "dt_year" ["Series.dt.year"] => |t| series(t.sales.col("ts")?.dt_accessor().year()?);
    "dt_month" ["Series.dt.month"] => |t| series(t.sales.col("ts")?.dt_accessor().month()?);
    "dt_day" ["Series.dt.day"] => |t| series(t.sales.col("ts")?.dt_accessor().day()?);
    "dt_hour" ["Series.dt.hour"] => |t| series(t.sales.col("ts")?.dt_accessor().hour()?);
    "dt_minute" ["Series.dt.minute"] => |t| series(t.sales.col("ts")?.dt_accessor().minute()?);
    "dt_second" ["Series.dt.second"] => |t| series(t.sales.col("ts")?.dt_accessor().second()?);
    "dt_dayofweek" ["Series.dt.dayofweek"] => |t| series(t.sales.col("ts")?.dt_accessor().dayofweek()?);
    "dt_day_of_week" ["Series.dt.day_of_week"] => |t| series(t.sales.col("ts")?.dt_accessor().day_of_week()?);
    "dt_weekday" ["Series.dt.weekday"] => |t| series(t.sales.col("ts")?.dt_accessor().weekday()?);
    "dt_dayofyear" ["Series.dt.dayofyear"] => |t| series(t.sales.col("ts")?.dt_accessor().dayofyear()?);
    "dt_day_of_year" ["Series.dt.day_of_year"] => |t| series(t.sales.col("ts")?.dt_accessor().day_of_year()?);
    "dt_quarter" ["Series.dt.quarter"] => |t| series(t.sales.col("ts")?.dt_accessor().quarter()?);
    "dt_floor" ["Series.dt.floor"] => |t| series(t.sales.col("ts")?.dt_accessor().floor("h")?);
    "dt_floor_day" ["Series.dt.floor"] => |t| series(t.sales.col("ts")?.dt_accessor().floor("D")?);
    "dt_normalize" ["Series.dt.normalize"] => |t| series(t.sales.col("ts")?.dt_accessor().normalize()?);
    "dt_strftime" ["Series.dt.strftime"] => |t| series(t.sales.col("ts")?.dt_accessor().strftime("%Y-%m-%d %H:%M")?);
    "dt_is_month_start" ["Series.dt.is_month_start"] => |t| series(t.sales.col("ts")?.dt_accessor().is_month_start()?);
    // ---- groupby ------------------------------------------------------------------------------
    "groupby_agg_named" ["DataFrame.groupby", "DataFrameGroupBy.agg", "DataFrameGroupBy.aggregate"] => |t| frame(t.sales.groupby(&["key"])?.agg(&[("total", "x", "sum"), ("avg", "y", "mean"), ("rows", "n", "size")])?);
    "groupby_sum" ["DataFrameGroupBy.sum"] => |t| frame(t.sales.groupby(&["key"])?.select(&NUM)?.sum()?);
    "groupby_mean" ["DataFrameGroupBy.mean"] => |t| frame(t.sales.groupby(&["key", "grp"])?.select(&["x", "y"])?.mean()?);
    "groupby_mean_small" ["DataFrameGroupBy.mean"] => |t| frame(t.small.groupby(&["c"])?.select(&["a", "b"])?.mean()?);
    "groupby_median" ["DataFrameGroupBy.median"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["x", "n"])?.median()?);
    "groupby_median_key" ["DataFrameGroupBy.median"] => |t| frame(t.sales.groupby(&["key"])?.select(&["y"])?.median()?);
    "groupby_min" ["DataFrameGroupBy.min"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["x", "n"])?.min()?);
    "groupby_min_key" ["DataFrameGroupBy.min"] => |t| frame(t.sales.groupby(&["key"])?.select(&["x", "n"])?.min()?);
    "groupby_max" ["DataFrameGroupBy.max"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["x", "ts"])?.max()?);
    "groupby_max_key" ["DataFrameGroupBy.max"] => |t| frame(t.sales.groupby(&["key"])?.select(&["n", "y"])?.max()?);
    "groupby_count" ["DataFrameGroupBy.count"] => |t| frame(t.sales.groupby(&["key"])?.select(&["x", "name"])?.count()?);
    "groupby_size" ["DataFrameGroupBy.size"] => |t| frame(t.sales.groupby(&["key"])?.size()?);
    "groupby_std" ["DataFrameGroupBy.std"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["x", "y"])?.std(1)?);
    "groupby_var_ddof0" ["DataFrameGroupBy.var"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["y"])?.var(0)?);
    "groupby_first" ["DataFrameGroupBy.first"] => |t| frame(t.sales.groupby(&["key"])?.select(&["x", "name"])?.first()?);
    "groupby_first_grp" ["DataFrameGroupBy.first"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["n", "ts"])?.first()?);
    "groupby_last" ["DataFrameGroupBy.last"] => |t| frame(t.sales.groupby(&["key"])?.select(&["x", "name"])?.last()?);
    "groupby_last_grp" ["DataFrameGroupBy.last"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["n", "ts"])?.last()?);
    "groupby_nunique" ["DataFrameGroupBy.nunique"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["key", "n"])?.nunique()?);
    "groupby_nunique_key" ["DataFrameGroupBy.nunique"] => |t| frame(t.sales.groupby(&["key"])?.select(&["x", "flag"])?.nunique()?);
    "groupby_quantile" ["DataFrameGroupBy.quantile"] => |t| frame(t.sales.groupby(&["key"])?.select(&["y"])?.quantile(0.25)?);
    "groupby_prod" ["DataFrameGroupBy.prod"] => |t| frame(t.small.groupby(&["c"])?.select(&["d"])?.prod()?);
    "groupby_nosort" ["DataFrame.groupby"] => |t| frame(t.sales.groupby_with(&["key"], false, true)?.agg(&[("m", "y", "max")])?);
    "groupby_keep_na" ["DataFrame.groupby"] => |t| frame(t.sales.groupby_with(&["key"], true, false)?.agg(&[("c", "n", "count")])?);
    "groupby_transform" ["DataFrameGroupBy.transform"] => |t| frame(t.sales.groupby(&["key"])?.select(&["y"])?.transform("mean")?);
    "groupby_cumsum" ["DataFrameGroupBy.cumsum"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["x"])?.cumsum()?);
    "groupby_cumsum_key" ["DataFrameGroupBy.cumsum"] => |t| frame(t.sales.groupby(&["key"])?.select(&["n"])?.cumsum()?);
    "groupby_cummax" ["DataFrameGroupBy.cummax"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["n"])?.cummax()?);
    "groupby_cummax_key" ["DataFrameGroupBy.cummax"] => |t| frame(t.sales.groupby(&["key"])?.select(&["x"])?.cummax()?);
    "groupby_cummin" ["DataFrameGroupBy.cummin"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["n"])?.cummin()?);
    "groupby_cummin_key" ["DataFrameGroupBy.cummin"] => |t| frame(t.sales.groupby(&["key"])?.select(&["x"])?.cummin()?);
    "groupby_cumcount" ["DataFrameGroupBy.cumcount"] => |t| series(t.sales.groupby(&["key"])?.cumcount()?);
    "groupby_cumcount_grp" ["DataFrameGroupBy.cumcount"] => |t| series(t.sales.groupby(&["grp"])?.cumcount()?);
    "groupby_rank" ["DataFrameGroupBy.rank"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["y"])?.rank(RankMethod::Average, true)?);
    "groupby_shift" ["DataFrameGroupBy.shift"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["n"])?.shift(1)?);
    "groupby_diff" ["DataFrameGroupBy.diff"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["n"])?.diff(1)?);
    "groupby_head" ["DataFrameGroupBy.head"] => |t| frame(t.sales.groupby(&["key"])?.head(2)?.select(&["id", "key"])?);
    "groupby_tail" ["DataFrameGroupBy.tail"] => |t| frame(t.sales.groupby(&["key"])?.tail(1)?.select(&["id", "key"])?);
    "groupby_ngroup" ["DataFrameGroupBy.ngroup"] => |t| series(t.sales.groupby(&["grp"])?.ngroup()?);
    "groupby_any" ["DataFrameGroupBy.any"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["flag"])?.any()?);
    "groupby_all" ["DataFrameGroupBy.all"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["flag"])?.all()?);
    "head_zero" ["DataFrame.head"] => |t| frame(t.sales.head(0)?);
    "tail_large" ["DataFrame.tail"] => |t| frame(t.small.tail(20)?);
    "frame_diff_2" ["DataFrame.diff"] => |t| frame(t.sales.select(&["x", "n"])?.diff(2)?);
    "duplicated_last_all" ["DataFrame.duplicated"] => |t| series(t.small.duplicated(None, Keep::Last)?);
    "frame_std_ddof0" ["DataFrame.std"] => |t| frame(t.sales.select(&NUM)?.std(0)?);
    "frame_var_ddof1" ["DataFrame.var"] => |t| frame(t.sales.select(&NUM)?.var(1)?);
    "series_head_large" ["Series.head"] => |t| series(t.small.col("c")?.head(100)?);
    "series_tail_zero" ["Series.tail"] => |t| series(t.sales.col("x")?.tail(0)?);
    "series_round_0" ["Series.round"] => |t| series(t.sales.col("x")?.round(0)?);
    "str_repeat_0" ["Series.str.repeat"] => |t| series(t.sales.col("key")?.str().repeat(0)?);
    "str_zfill_5" ["Series.str.zfill"] => |t| series(t.small.col("c")?.str().zfill(5)?);
    "str_startswith_space" ["Series.str.startswith"] => |t| series(t.sales.col("name")?.str().startswith(" ")?);
    "str_endswith_lee" ["Series.str.endswith"] => |t| series(t.sales.col("name")?.str().endswith("LEE ")?);
    "groupby_head_3" ["DataFrameGroupBy.head"] => |t| frame(t.sales.groupby(&["grp"])?.head(3)?.select(&["id", "grp"])?);
    "groupby_tail_3" ["DataFrameGroupBy.tail"] => |t| frame(t.sales.groupby(&["grp"])?.tail(3)?.select(&["id", "grp"])?);
    "groupby_diff_minus1" ["DataFrameGroupBy.diff"] => |t| frame(t.sales.groupby(&["key"])?.select(&["y"])?.diff(-1)?);
    "groupby_quantile_90" ["DataFrameGroupBy.quantile"] => |t| frame(t.sales.groupby(&["grp"])?.select(&["x"])?.quantile(0.9)?);
    "groupby_std_ddof0" ["DataFrameGroupBy.std"] => |t| frame(t.sales.groupby(&["key"])?.select(&["n"])?.std(0)?);
    "groupby_var_ddof1" ["DataFrameGroupBy.var"] => |t| frame(t.sales.groupby(&["key"])?.select(&["x"])?.var(1)?);
    "series_var_ddof0" ["Series.var"] => |t| scalar(t.small.col("a")?.var(0)?);
    "dt_strftime_date" ["Series.dt.strftime"] => |t| series(t.sales.col("ts")?.dt_accessor().strftime("%d/%m/%y")?);
    "series_drop_duplicates_last" ["Series.drop_duplicates"] => |t| series(t.sales.col("key")?.drop_duplicates(Keep::Last)?);
    "series_duplicated_first" ["Series.duplicated"] => |t| series(t.small.col("a")?.duplicated(Keep::First)?.rename("a"));
    "series_rename_c2" ["Series.rename"] => |t| series(t.small.col("c")?.rename("c2"));
    "isin_series_str" ["Series.isin"] => |t| series(t.sales.col("key")?.isin(&[sv("a"), sv("e")])?);
    "groupby_any_mixed" ["DataFrameGroupBy.any"] => |t| frame(t.sales.groupby(&["id"])?.select(&["flag"])?.any()?);
    "groupby_all_mixed" ["DataFrameGroupBy.all"] => |t| frame(t.sales.groupby(&["id"])?.select(&["flag"])?.all()?);
    "groupby_nth" ["DataFrameGroupBy.nth"] => |t| frame(t.sales.groupby(&["key"])?.nth(1)?.select(&["id", "key"])?);
    // ---- combining and reshaping --------------------------------------------------------------
    "merge_inner" ["DataFrame.merge"] => |t| frame(t.left.merge(&t.right, &MergeOptions::on(MergeHow::Inner, &["k"]))?);
    "merge_left" ["DataFrame.merge"] => |t| frame(t.left.merge(&t.right, &MergeOptions::on(MergeHow::Left, &["k", "k2"]))?);
    "merge_right" ["DataFrame.merge"] => |t| frame(t.left.merge(&t.right, &MergeOptions::on(MergeHow::Right, &["k"]).suffixes("_l", "_r"))?);
    "merge_outer" ["DataFrame.merge"] => |t| frame(t.left.merge(&t.right, &MergeOptions::on(MergeHow::Outer, &["k"]).indicator(true))?);
    "merge_left_on" ["DataFrame.merge"] => |t| frame(t.left.merge(&t.right.rename(&[("k", "rk")])?, &MergeOptions::left_right(MergeHow::Inner, &["k"], &["rk"]))?);
    "pd_merge" ["pandas.merge"] => |t| frame(t.left.merge(&t.right, &MergeOptions::on(MergeHow::Inner, &["k2"]))?.select(&["k_x", "k2", "k_y"])?.head(40)?);
    "concat_rows" ["pandas.concat"] => |t| frame(concat(&[t.left.clone(), t.right.clone()])?);
    "pivot_table" ["DataFrame.pivot_table", "pandas.pivot_table"] => |t| frame(t.sales.pivot_table("y", &["key"], "grp", "sum", None)?);
    "pivot_table_fill" ["DataFrame.pivot_table"] => |t| frame(t.sales.pivot_table("n", &["key"], "flag", "count", Some(sv(0i64)))?);
    "melt" ["DataFrame.melt"] => |t| frame(t.left.melt(&["k"], &["lv", "v"], None, None)?);
    "pd_melt" ["pandas.melt"] => |t| frame(t.small.melt(&["c"], &["a", "b"], Some("col"), Some("val"))?);
    "join" ["DataFrame.join"] => |t| frame(t.left.join(&t.right.select(&["k", "rv"])?, "k", "k", MergeHow::Inner)?);
}
