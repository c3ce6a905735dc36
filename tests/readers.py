"""Reads every published result table through the engines data teams use and checks it
against schemas/: row count (as footfall counts it), column names, column types, and
`date` as a date. Run by tests/suite/readers.rs:

    python tests/readers.py OUT_DIR SCHEMAS_DIR EXPECTED_JSON

EXPECTED_JSON maps each table to its row count. Prints one line per reader and table;
exits 1 listing every mismatch.
"""

import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")

out, schemas_dir, expected_path = sys.argv[1:4]
expected = json.load(open(expected_path))
schemas = {}
for name in sorted(os.listdir(schemas_dir)):
    s = json.load(open(os.path.join(schemas_dir, name)))
    if s["kind"] == "result":
        schemas[s["name"]] = s
assert set(schemas) == set(expected), (sorted(schemas), sorted(expected))

failures = []


def check(reader, table, rows, columns):
    """columns: [(name, type as this reader names it)]; compared with schemas/."""
    s = schemas[table]
    want_names = sorted(c["name"] for c in s["columns"])
    got_names = sorted(n for n, _ in columns)
    problems = []
    if rows != expected[table]:
        problems.append(f"{rows} rows, footfall has {expected[table]}")
    if got_names != want_names:
        problems.append(f"columns {got_names} != schema {want_names}")
    types = dict(columns)
    for c in s["columns"]:
        t = types.get(c["name"])
        if t is not None and not type_ok(reader, c["type"], t):
            problems.append(f"{c['name']}: {t} is not a {c['type']}")
    print(f"{reader:16} {table:26} {rows:7} rows  {'ok' if not problems else '; '.join(problems)}")
    if problems:
        failures.append(f"{reader} {table}: {'; '.join(problems)}")


TYPES = {
    "pyarrow": {
        "date": "date32[day]",
        "timestamp": "timestamp[us, tz={tz}]",
        "int64": "int64",
        "int32": "int32",
        "float64": "double",
        "decimal": "decimal128(18, 2)",
        "string": "string",
        "boolean": "bool",
    },
    "duckdb": {
        "date": "DATE",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
        "int64": "BIGINT",
        "int32": "INTEGER",
        "float64": "DOUBLE",
        "decimal": "DECIMAL(18,2)",
        "string": "VARCHAR",
        "boolean": "BOOLEAN",
    },
    "polars": {
        "date": "Date",
        "timestamp": "Datetime(time_unit='us', time_zone='{tz}')",
        "int64": "Int64",
        "int32": "Int32",
        "float64": "Float64",
        "decimal": "Decimal(precision=18, scale=2)",
        "string": "String",
        "boolean": "Boolean",
    },
    "spark": {
        "date": "DateType()",
        # Parquet instants (isAdjustedToUTC) are Spark's TIMESTAMP (rendered in the session zone).
        "timestamp": "TimestampType()",
        "int64": "LongType()",
        "int32": "IntegerType()",
        "float64": "DoubleType()",
        "decimal": "DecimalType(18,2)",
        "string": "StringType()",
        "boolean": "BooleanType()",
    },
}
TYPES["pyarrow.dataset"] = TYPES["pyarrow"]
TZ = os.environ.get("FOOTFALL_TZ", "UTC")


def type_ok(reader, schema_type, got):
    return got == TYPES[reader][schema_type].format(tz=TZ)


import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

def view_parts(s):
    """A view (customers): its stored tables, the first one's rows winning by key."""
    assert s["partitioning"] == "view" and len(s["view_of"]) == 2 and len(s["primary_key"]) == 1, s["name"]
    recent, settled = (os.path.join(out, t) for t in s["view_of"])
    return recent, settled, s["primary_key"][0]


def plain(t):
    """Polars-written strings arrive as string_view, which pyarrow's filter kernels lack."""
    fields = [pa.field(f.name, pa.string() if f.type == pa.string_view() else f.type) for f in t.schema]
    return t.cast(pa.schema(fields))


# The merge queries README.md documents for `customers`, one per reader.
def view_pyarrow(s):
    import pyarrow.compute as pc

    recent, settled, key = view_parts(s)
    r, t = plain(pq.read_table(recent)), plain(pq.read_table(settled))
    return pa.concat_tables([r, t.filter(pc.invert(pc.is_in(t[key], value_set=r[key])))])


def view_pyarrow_dataset(s):
    import pyarrow.compute as pc

    recent, settled, key = view_parts(s)
    r, t = plain(ds.dataset(recent).to_table()), plain(ds.dataset(settled).to_table())
    return pa.concat_tables([r, t.filter(pc.invert(pc.is_in(t[key], value_set=r[key])))])


def view_pandas(s):
    recent, settled, key = view_parts(s)
    r, t = pd.read_parquet(recent), pd.read_parquet(settled)
    return pd.concat([r, t[~t[key].isin(r[key])]], ignore_index=True)


def view_duckdb(con, s):
    recent, settled, key = view_parts(s)
    return con.sql(
        f"SELECT * FROM read_parquet('{recent}/*.parquet') "
        f"UNION ALL SELECT s.* FROM read_parquet('{settled}/*.parquet') s "
        f"ANTI JOIN read_parquet('{recent}/*.parquet') r USING ({key})"
    )


def view_polars(s):
    recent, settled, key = view_parts(s)
    r, t = pl.scan_parquet(recent + "/"), pl.scan_parquet(settled + "/")
    return pl.concat([r, t.join(r, on=key, how="anti")])


def view_spark(spark, s):
    recent, settled, key = view_parts(s)
    r, t = spark.read.parquet(recent), spark.read.parquet(settled)
    return r.unionByName(t.join(r, on=key, how="left_anti"))


for table, s in schemas.items():
    path = os.path.join(out, table)
    partitioned = s["partitioning"] == "date"
    if s["partitioning"] == "view":
        t = view_pyarrow(s)
        check("pyarrow", table, t.num_rows, [(f.name, "string" if str(f.type) in ("large_string", "string_view") else str(f.type)) for f in t.schema])
        t = view_pyarrow_dataset(s)
        check("pyarrow.dataset", table, t.num_rows, [(f.name, "string" if str(f.type) in ("large_string", "string_view") else str(f.type)) for f in t.schema])
        df = view_pandas(s)
        ok_pd = sorted(c["name"] for c in s["columns"]) == sorted(df.columns) and len(df) == expected[table]
        ok_pd = ok_pd and not df[s["primary_key"][0]].duplicated().any()
        print(f"{'pandas':16} {table:26} {len(df):7} rows  {'ok' if ok_pd else 'mismatch'}")
        if not ok_pd:
            failures.append(f"pandas {table}: {len(df)} rows, columns {sorted(df.columns)}")
        con = duckdb.connect()
        rel = view_duckdb(con, s)
        n = rel.count("*").fetchall()[0][0]
        check("duckdb", table, n, list(zip(rel.columns, [str(t) for t in rel.types])))
        lf = view_polars(s)
        schema = lf.collect_schema()
        n = lf.select(pl.len()).collect().item()
        check("polars", table, n, [(k, repr(v) if isinstance(v, pl.Datetime) else str(v)) for k, v in schema.items()])
        continue

    # pyarrow.parquet.read_table: pyarrow infers hive keys as (dictionary) strings, never as
    # dates, so here `date` must be exactly that and hold its partitions' dates; every other
    # column is checked against the schema. pyarrow.dataset below types it as a date.
    t = pq.read_table(path)
    cols = [(f.name, str(f.type)) for f in t.schema if not (partitioned and f.name == "date")]
    cols = [(n, "string" if ty in ("large_string", "string_view") else ty) for n, ty in cols]
    if partitioned:
        ty = str(t.schema.field("date").type)
        if ty not in ("dictionary<values=string, indices=int32, ordered=0>", "string"):
            failures.append(f"pyarrow read_table {table}: date is {ty}, not the inferred partition string")
        got = sorted({str(v) for v in t.column("date").to_pylist()})
        dirs = sorted(d[5:] for d in os.listdir(path) if d.startswith("date="))
        # Every row's date is its partition's (a date can have an empty partition).
        if not set(got) <= set(dirs):
            failures.append(f"pyarrow read_table {table}: date values {got[:3]} not among partitions {dirs[:3]}")
        cols.append(("date", "date32[day]"))  # checked just above, as a partition string
    check("pyarrow", table, t.num_rows, cols)

    # pyarrow.dataset with hive partitioning, date typed as the schema says.
    part = ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive") if partitioned else None
    t = ds.dataset(path, format="parquet", partitioning=part).to_table()
    cols = [(f.name, "string" if str(f.type) in ("large_string", "string_view") else str(f.type)) for f in t.schema]
    check("pyarrow.dataset", table, t.num_rows, cols)

    # pandas on the folder: names and rows (pandas maps Arrow types to its own).
    df = pd.read_parquet(path)
    problem = None
    if sorted(c["name"] for c in s["columns"]) != sorted(df.columns) or len(df) != expected[table]:
        problem = f"{len(df)} rows, columns {sorted(df.columns)}"
    elif partitioned and len(df) and pd.to_datetime(df["date"].astype(str), format="%Y-%m-%d").isna().any():
        problem = "date values are not dates"
    print(f"{'pandas':16} {table:26} {len(df):7} rows  {problem or 'ok'}")
    if problem:
        failures.append(f"pandas {table}: {problem}")

    # DuckDB with hive partitioning.
    glob = os.path.join(path, "**", "*.parquet") if partitioned else os.path.join(path, "*.parquet")
    con = duckdb.connect()
    rel = con.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
    n = con.sql(f"SELECT COUNT(*) FROM read_parquet('{glob}', hive_partitioning = true)").fetchall()[0][0]
    check("duckdb", table, n, list(zip(rel.columns, [str(t) for t in rel.types])))

    # Polars with hive partitioning.
    lf = pl.scan_parquet(path + "/", hive_partitioning=partitioned)
    schema = lf.collect_schema()
    n = lf.select(pl.len()).collect().item()
    check("polars", table, n, [(k, repr(v) if isinstance(v, pl.Datetime) else str(v)) for k, v in schema.items()])

from pyspark.sql import SparkSession

# Spark talks to itself over loopback only.
os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
spark = (
    SparkSession.builder.master("local[1]")
    .appName("footfall-readers")
    .config("spark.driver.host", "127.0.0.1")
    .config("spark.driver.bindAddress", "127.0.0.1")
    .config("spark.ui.enabled", "false")
    .config("spark.sql.session.timeZone", "UTC")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
for table, s in schemas.items():
    df = view_spark(spark, s) if s["partitioning"] == "view" else spark.read.parquet(os.path.join(out, table))
    check("spark", table, df.count(), [(f.name, repr(f.dataType)) for f in df.schema.fields])
spark.stop()

if failures:
    print("\n".join(["FAILURES:"] + failures))
    sys.exit(1)
print(f"all {len(schemas)} tables read by pyarrow, pyarrow.dataset, pandas, duckdb, polars and spark")
