"""Reads tables of a chain's outputs (<out>/<table>/mall=<id>/…) as one dataset through the
engines data teams use, and prints, per reader and table, the rows of each mall as JSON:

    python tests/readers_chain.py OUT_DIR TABLE…

Run by tests/suite/readers.rs, which compares the counts with `footfall show --mall`.
"""

import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

out, tables = sys.argv[1], sys.argv[2:]
result = {}


def counts(reader, table, malls):
    result.setdefault(reader, {})[table] = {str(k): int(v) for k, v in malls.items()}


for table in tables:
    path = os.path.join(out, table)
    # pyarrow.dataset: the hive keys typed as strings (mall) and dates (date).
    fields = [("mall", pa.string())]
    if any(d.startswith("date=") for m in os.listdir(path) for d in os.listdir(os.path.join(path, m))):
        fields.append(("date", pa.date32()))
    t = ds.dataset(path, format="parquet", partitioning=ds.partitioning(pa.schema(fields), flavor="hive")).to_table()
    g = t.group_by("mall").aggregate([("mall", "count")]).to_pydict()
    counts("pyarrow.dataset", table, dict(zip(g["mall"], g["mall_count"])))
    df = pd.read_parquet(path)
    counts("pandas", table, df.groupby(df["mall"].astype(str)).size().to_dict())
    rows = duckdb.sql(
        f"SELECT mall, COUNT(*) FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true) GROUP BY mall"
    ).fetchall()
    counts("duckdb", table, dict(rows))
    lf = pl.scan_parquet(path + "/", hive_partitioning=True)
    g = lf.group_by(pl.col("mall").cast(pl.String)).agg(pl.len()).collect()
    counts("polars", table, dict(zip(g["mall"].to_list(), g["len"].to_list())))

from pyspark.sql import SparkSession

# Spark talks to itself over loopback only.
os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
spark = (
    SparkSession.builder.master("local[1]")
    .config("spark.driver.host", "127.0.0.1")
    .config("spark.driver.bindAddress", "127.0.0.1")
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
for table in tables:
    rows = spark.read.parquet(os.path.join(out, table)).groupBy("mall").count().collect()
    counts("spark", table, {r["mall"]: r["count"] for r in rows})
spark.stop()
print(json.dumps(result, sort_keys=True))
