"""The h2o db-benchmark questions, as SQL both engines accept.

Groupby q1-q10 read table `x` of `spillframe gen h2o-groupby`; join j1-j5 read tables
`x`, `small`, `medium` and `big` of `spillframe gen h2o-join`. The SQL follows the
db-benchmark's own DuckDB/ClickHouse solutions (github.com/duckdblabs/db-benchmark).
"""

GROUPBY = {
    "q1": "SELECT id1, sum(v1) AS v1 FROM x GROUP BY id1",
    "q2": "SELECT id1, id2, sum(v1) AS v1 FROM x GROUP BY id1, id2",
    "q3": "SELECT id3, sum(v1) AS v1, avg(v3) AS v3 FROM x GROUP BY id3",
    "q4": "SELECT id4, avg(v1) AS v1, avg(v2) AS v2, avg(v3) AS v3 FROM x GROUP BY id4",
    "q5": "SELECT id6, sum(v1) AS v1, sum(v2) AS v2, sum(v3) AS v3 FROM x GROUP BY id6",
    "q6": "SELECT id4, id5, median(v3) AS median_v3, stddev(v3) AS sd_v3 "
    "FROM x GROUP BY id4, id5",
    "q7": "SELECT id3, max(v1) - min(v2) AS range_v1_v2 FROM x GROUP BY id3",
    "q8": "SELECT id6, v3 AS largest2_v3 FROM (SELECT id6, v3, row_number() OVER "
    "(PARTITION BY id6 ORDER BY v3 DESC) AS order_v3 FROM x WHERE v3 IS NOT NULL) s "
    "WHERE order_v3 <= 2",
    "q9": "SELECT id2, id4, power(corr(v1, v2), 2) AS r2 FROM x GROUP BY id2, id4",
    "q10": "SELECT id1, id2, id3, id4, id5, id6, sum(v3) AS v3, count(*) AS count "
    "FROM x GROUP BY id1, id2, id3, id4, id5, id6",
}

JOIN = {
    "j1": "SELECT x.*, small.id4 AS small_id4, small.v2 FROM x JOIN small USING (id1)",
    "j2": "SELECT x.*, medium.id1 AS medium_id1, medium.id4 AS medium_id4, "
    "medium.id5 AS medium_id5, medium.v2 FROM x JOIN medium USING (id2)",
    "j3": "SELECT x.*, medium.id1 AS medium_id1, medium.id4 AS medium_id4, "
    "medium.id5 AS medium_id5, medium.v2 FROM x LEFT JOIN medium USING (id2)",
    "j4": "SELECT x.*, medium.id1 AS medium_id1, medium.id2 AS medium_id2, "
    "medium.id4 AS medium_id4, medium.v2 FROM x JOIN medium USING (id5)",
    "j5": "SELECT x.*, big.id1 AS big_id1, big.id2 AS big_id2, big.id4 AS big_id4, "
    "big.id5 AS big_id5, big.id6 AS big_id6, big.v2 FROM x JOIN big USING (id3)",
}


# The same questions in Polars (lazy, scanning Parquet) and pandas, written as a user of each
# would: the columns and their order match the SQL, so answers can be compared column by
# column. `t` maps table names to Parquet paths.


def polars_query(q, t):
    import polars as pl

    if q in GROUPBY:
        x = pl.scan_parquet(t["x"])
        g = {
            "q1": lambda: x.group_by("id1").agg(pl.col("v1").sum()),
            "q2": lambda: x.group_by("id1", "id2").agg(pl.col("v1").sum()),
            "q3": lambda: x.group_by("id3").agg(pl.col("v1").sum(), pl.col("v3").mean()),
            "q4": lambda: x.group_by("id4").agg(pl.col("v1", "v2", "v3").mean()),
            "q5": lambda: x.group_by("id6").agg(pl.col("v1", "v2", "v3").sum()),
            "q6": lambda: x.group_by("id4", "id5").agg(
                pl.col("v3").median().alias("median_v3"), pl.col("v3").std().alias("sd_v3")
            ),
            "q7": lambda: x.group_by("id3").agg(
                (pl.col("v1").max() - pl.col("v2").min()).alias("range_v1_v2")
            ),
            "q8": lambda: x.drop_nulls("v3")
            .group_by("id6")
            .agg(pl.col("v3").top_k(2).alias("largest2_v3"))
            .explode("largest2_v3"),
            "q9": lambda: x.group_by("id2", "id4").agg(
                (pl.corr("v1", "v2") ** 2).alias("r2")
            ),
            "q10": lambda: x.group_by("id1", "id2", "id3", "id4", "id5", "id6").agg(
                pl.col("v3").sum(), pl.len().alias("count")
            ),
        }
        return g[q]()
    x, small, medium, big = (pl.scan_parquet(t[n]) for n in ["x", "small", "medium", "big"])

    def renamed(frame, prefix, cols):
        return frame.rename({f"{c}_right": f"{prefix}_{c}" for c in cols})

    j = {
        "j1": lambda: renamed(x.join(small, on="id1"), "small", ["id4"]),
        "j2": lambda: renamed(x.join(medium, on="id2"), "medium", ["id1", "id4", "id5"]),
        "j3": lambda: renamed(
            x.join(medium, on="id2", how="left"), "medium", ["id1", "id4", "id5"]
        ),
        "j4": lambda: renamed(x.join(medium, on="id5"), "medium", ["id1", "id2", "id4"]),
        "j5": lambda: renamed(
            x.join(big, on="id3"), "big", ["id1", "id2", "id4", "id5", "id6"]
        ),
    }
    return j[q]()


GROUPBY_COLUMNS = {
    "q1": ["id1", "v1"],
    "q2": ["id1", "id2", "v1"],
    "q3": ["id3", "v1", "v3"],
    "q4": ["id4", "v1", "v2", "v3"],
    "q5": ["id6", "v1", "v2", "v3"],
    "q6": ["id4", "id5", "v3"],
    "q7": ["id3", "v1", "v2"],
    "q8": ["id6", "v3"],
    "q9": ["id2", "id4", "v1", "v2"],
    "q10": ["id1", "id2", "id3", "id4", "id5", "id6", "v3"],
}


def pandas_query(q, t):
    import numpy as np
    import pandas as pd

    if q in GROUPBY:
        x = pd.read_parquet(t["x"], columns=GROUPBY_COLUMNS[q])

        def by(*keys):
            return x.groupby(list(keys), sort=False, observed=True, dropna=False)

        if q == "q1":
            return by("id1").agg(v1=("v1", "sum")).reset_index()
        if q == "q2":
            return by("id1", "id2").agg(v1=("v1", "sum")).reset_index()
        if q == "q3":
            return by("id3").agg(v1=("v1", "sum"), v3=("v3", "mean")).reset_index()
        if q == "q4":
            return by("id4").agg(v1=("v1", "mean"), v2=("v2", "mean"), v3=("v3", "mean")).reset_index()
        if q == "q5":
            return by("id6").agg(v1=("v1", "sum"), v2=("v2", "sum"), v3=("v3", "sum")).reset_index()
        if q == "q6":
            return by("id4", "id5").agg(median_v3=("v3", "median"), sd_v3=("v3", "std")).reset_index()
        if q == "q7":
            r = by("id3").agg(hi=("v1", "max"), lo=("v2", "min")).reset_index()
            return pd.DataFrame({"id3": r["id3"], "range_v1_v2": r["hi"] - r["lo"]})
        if q == "q8":
            r = x[x["v3"].notna()].sort_values("v3", ascending=False).groupby("id6", sort=False).head(2)
            return r.rename(columns={"v3": "largest2_v3"}).reset_index(drop=True)
        if q == "q9":
            # Pearson's r from per-group sums, vectorised (a per-group apply of DataFrame.corr
            # is the textbook spelling, and far slower).
            d = x.assign(
                v1=x["v1"].astype("float64"),
                v2=x["v2"].astype("float64"),
                xx=x["v1"].astype("float64") ** 2,
                yy=x["v2"].astype("float64") ** 2,
                xy=x["v1"].astype("float64") * x["v2"].astype("float64"),
            )
            s = d.groupby(["id2", "id4"], sort=False, observed=True, dropna=False).agg(
                n=("v1", "count"), sx=("v1", "sum"), sy=("v2", "sum"),
                sxx=("xx", "sum"), syy=("yy", "sum"), sxy=("xy", "sum"),
            )
            cov = s["n"] * s["sxy"] - s["sx"] * s["sy"]
            var = (s["n"] * s["sxx"] - s["sx"] ** 2) * (s["n"] * s["syy"] - s["sy"] ** 2)
            return (cov**2 / var).replace([np.inf, -np.inf], np.nan).rename("r2").reset_index()
        if q == "q10":
            return by("id1", "id2", "id3", "id4", "id5", "id6").agg(
                v3=("v3", "sum"), count=("v3", "size")
            ).reset_index()
        raise KeyError(q)
    x = pd.read_parquet(t["x"])
    small = pd.read_parquet(t["small"])
    medium = pd.read_parquet(t["medium"])
    big = pd.read_parquet(t["big"])

    def join(right, on, prefix, cols, how="inner"):
        r = x.merge(right, on=on, how=how, suffixes=("", "_right"))
        return r.rename(columns={f"{c}_right": f"{prefix}_{c}" for c in cols})

    if q == "j1":
        return join(small, "id1", "small", ["id4"])
    if q == "j2":
        return join(medium, "id2", "medium", ["id1", "id4", "id5"])
    if q == "j3":
        return join(medium, "id2", "medium", ["id1", "id4", "id5"], how="left")
    if q == "j4":
        return join(medium, "id5", "medium", ["id1", "id2", "id4"])
    if q == "j5":
        return join(big, "id3", "big", ["id1", "id2", "id4", "id5", "id6"])
    raise KeyError(q)


def tables(data, q):
    """The tables question `q` reads from `data`, a directory made by `spillframe gen
    h2o-groupby` (x.parquet) or `spillframe gen h2o-join` (x, small, medium, big)."""
    import os

    names = ["x"] if q in GROUPBY else ["x", "small", "medium", "big"]
    return {n: os.path.join(data, f"{n}.parquet") for n in names}
