"""The benchmark suites: for each, its questions, their SQL, the tables each reads, and the
Polars and pandas versions where they exist."""

import h2o


class H2o:
    """h2o db-benchmark groupby (q1-q10) or join (j1-j5), over `spillframe gen` data."""

    def __init__(self, questions, data_dir):
        self.questions = list(questions)
        # The data of size S is in DATA/<data_dir>-S (benches/run.sh makes it).
        self.data_dir = data_dir

    def sql(self, q):
        return h2o.GROUPBY.get(q) or h2o.JOIN[q]

    def tables(self, data, q):
        return h2o.tables(data, q)

    def polars_query(self, q, tables):
        return h2o.polars_query(q, tables)

    def pandas_query(self, q, tables):
        return h2o.pandas_query(q, tables)


SUITES = {
    "h2o-groupby": H2o(h2o.GROUPBY, "h2o-groupby"),
    "h2o-join": H2o(h2o.JOIN, "h2o-join"),
}
