//! Writing result tables: one object per (table, date) — or per snapshot table — written with
//! a single PUT, so readers see the old partition or the new one, never a mix.

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

/// Relative object name of a table partition.
pub fn partition_rel(table: &str, date: NaiveDate) -> String {
    format!("{table}/date={}/part-0.parquet", date.format("%Y-%m-%d"))
}

/// Relative object name of a snapshot table.
pub fn snapshot_rel(table: &str) -> String {
    format!("{table}/{table}.parquet")
}

/// Publishes one partition (an empty frame publishes an empty partition).
pub fn publish_partition(out: &Location, schema: &TableSchema, date: NaiveDate, mut df: DataFrame) -> Result<()> {
    let rel = partition_rel(&schema.name, date);
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
