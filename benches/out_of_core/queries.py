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
