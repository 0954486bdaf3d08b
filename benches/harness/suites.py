"""The benchmark suites: for each, its questions, their SQL, the tables each reads, the
Polars and pandas versions where they exist, and the engines that have no version of it (with
the reason, recorded as "not run")."""

import h2o
import tpch


class H2o:
    """h2o db-benchmark groupby (q1-q10) or join (j1-j5), over `spillframe gen` data."""

    not_run = {}

    def __init__(self, questions, data_dir):
        self.questions = list(questions)
        # The data of size S is in DATA/<data_dir>-S (benches/run.sh makes it).
        self.data_dir = data_dir

    def sql(self, q, size):
        return h2o.GROUPBY.get(q) or h2o.JOIN[q]

    def tables(self, data, q):
        return h2o.tables(data, q)

    def polars_query(self, q, size, tables):
        return h2o.polars_query(q, tables)

    def pandas_query(self, q, size, tables):
        return h2o.pandas_query(q, tables)


class Tpch:
    """TPC-H, the 22 queries, over `spillframe gen tpch` data (sizes sf1, sf10, ...)."""

    questions = list(tpch.QUERIES)
    data_dir = "tpch"
    not_run = {"pandas": "no pandas version of the 22 TPC-H queries has been written"}

    def sql(self, q, size):
        return tpch.sql(q, size)

    def tables(self, data, q):
        return tpch.tables(data)

    def polars_query(self, q, size, tables):
        return tpch.polars_query(q, size, tables)

    def pandas_query(self, q, size, tables):
        return None


SUITES = {
    "h2o-groupby": H2o(h2o.GROUPBY, "h2o-groupby"),
    "h2o-join": H2o(h2o.JOIN, "h2o-join"),
    "tpch": Tpch(),
}
