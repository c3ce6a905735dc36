//! The published layout, read and written: one object per (table, date) —
//! `<out>/<table>/date=YYYY-MM-DD/part-0.parquet` — or per snapshot table
//! (`<out>/<table>/<table>.parquet`), each written with a single PUT, so readers see the old
//! partition or the new one, never a mix. Reads prune by partition: only the `date=` objects
//! inside the requested range are fetched (show, diff, demo summary, tests).
//!
//! Hive convention: a partition column lives in the path only. A date-partitioned file holds
//! every column but `date` (Spark, pyarrow and Trino refuse or fail to merge a file column
//! that duplicates a partition key); readers here put `date` back from the path.

use std::io::Cursor;

use anyhow::{Context, Result};
use bytes::Bytes;
use chrono::NaiveDate;
use polars::prelude::*;

use crate::schema::TableSchema;
use crate::store::Location;

/// Parquet bytes of a frame (zstd; deterministic for identical input).
pub fn parquet_bytes(df: &mut DataFrame) -> Result<Bytes> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::default())
        .finish(df)?;
    Ok(Bytes::from(buf))
}

/// Reads Parquet bytes.
pub fn read_parquet(bytes: Bytes) -> Result<DataFrame> {
    Ok(ParquetReader::new(Cursor::new(bytes)).finish()?)
}

/// The partition column of date-partitioned tables (in the path, not in the files).
pub const PARTITION: &str = "date";

/// Puts a partition's `date` (held by its path) back as a column, unless the file has one.
pub fn with_partition_date(mut df: DataFrame, date: NaiveDate) -> Result<DataFrame> {
    if df.column(PARTITION).is_err() {
        let days = Series::new(PARTITION.into(), vec![crate::timeutil::date_to_days(date); df.height()]);
        df.with_column(days.cast(&DataType::Date)?.into_column())?;
    }
    Ok(df)
}

/// Relative object name of a table partition.
pub fn partition_rel(table: &str, date: NaiveDate) -> String {
    format!("{table}/date={}/part-0.parquet", date.format("%Y-%m-%d"))
}

/// Relative object name of a snapshot table.
pub fn snapshot_rel(table: &str) -> String {
    format!("{table}/{table}.parquet")
}

/// Publishes one partition (an empty frame publishes an empty partition); `date` is dropped,
/// the path holds it.
pub fn publish_partition(out: &Location, schema: &TableSchema, date: NaiveDate, df: DataFrame) -> Result<()> {
    let rel = partition_rel(&schema.name, date);
    let mut df = if df.column(PARTITION).is_ok() { df.drop(PARTITION)? } else { df };
    let bytes = parquet_bytes(&mut df).with_context(|| format!("cannot encode {}", out.show(&rel)))?;
    out.put(&rel, bytes)
}

/// Publishes a snapshot table.
pub fn publish_snapshot(out: &Location, schema: &TableSchema, mut df: DataFrame) -> Result<()> {
    let rel = snapshot_rel(&schema.name);
    let bytes = parquet_bytes(&mut df).with_context(|| format!("cannot encode {}", out.show(&rel)))?;
    out.put(&rel, bytes)
}

/// Dates that have a published partition of `table`.
pub fn published_dates(out: &Location, table: &str) -> Result<Vec<NaiveDate>> {
    let mut dates: Vec<NaiveDate> = out
        .list_under(table)?
        .iter()
        .filter_map(|e| e.rel.split('/').find_map(|s| s.strip_prefix("date=")))
        .filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .collect();
    dates.sort();
    dates.dedup();
    Ok(dates)
}

/// A table's rows, optionally limited to dates in `[from, to]`; sorted by primary key.
/// A table with no published data yields an empty frame with the schema's columns.
pub fn read_table(
    out: &Location,
    schema: &TableSchema,
    tz: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<DataFrame> {
    // (object, the date its path holds)
    // A snapshot is listed, not fetched, to learn whether it exists: its bytes are read once.
    let rels: Vec<(String, Option<NaiveDate>)> = if schema.is_snapshot() {
        let rel = snapshot_rel(&schema.name);
        out.list_under(&schema.name)?.into_iter().filter(|e| e.rel == rel).map(|e| (e.rel, None)).collect()
    } else {
        out.list_under(&schema.name)?
            .into_iter()
            .filter(|e| e.rel.ends_with(".parquet"))
            .filter_map(|e| {
                let d = e
                    .rel
                    .split('/')
                    .find_map(|s| s.strip_prefix("date="))
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())?;
                (from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t)).then_some((e.rel, Some(d)))
            })
            .collect()
    };
    let frames: Vec<DataFrame> = crate::par::map(&rels, |(rel, date)| {
        let df = read_parquet(out.get(rel)?).with_context(|| format!("cannot read {}", out.show(rel)))?;
        match date {
            Some(d) => with_partition_date(df, *d),
            None => Ok(df),
        }
    })?;
    let mut df: Option<DataFrame> = None;
    for f in frames {
        let f = f.select(schema.columns.iter().map(|c| c.name.as_str()))?;
        match df.as_mut() {
            None => df = Some(f),
            Some(d) => {
                d.vstack_mut_owned(f)?;
            }
        }
    }
    let mut df = df.unwrap_or_else(|| schema.empty(tz));
    df.rechunk_mut();
    if schema.is_snapshot() && (from.is_some() || to.is_some()) && df.column("date").is_ok() {
        let lo = from.map(crate::timeutil::date_to_days).unwrap_or(i32::MIN);
        let hi = to.map(crate::timeutil::date_to_days).unwrap_or(i32::MAX);
        let d = col("date").cast(DataType::Int32);
        df = df.lazy().filter(d.clone().gt_eq(lit(lo)).and(d.lt_eq(lit(hi)))).collect()?;
    }
    Ok(df)
}
