//! The column truth of every table, loaded from `schemas/*.json` (compiled in).
//!
//! Result frames are built by the metric queries with internal types (MACs as `u64`,
//! instants as epoch seconds, dates as days); [`TableSchema::conform`] is the one place that
//! turns them into the published types, checks nullability and sorts by the primary key,
//! so every writer produces byte-identical output for identical input.

use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use polars::prelude::*;
use serde::Deserialize;

use crate::mac::write_mac;

#[derive(Debug, Clone, Deserialize)]
pub struct ColumnSchema {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub nullable: bool,
    pub description: String,
    #[serde(default)]
    pub required: Option<bool>,
    #[serde(default)]
    pub accepted: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TableSchema {
    pub name: String,
    pub kind: String,
    pub original: Option<String>,
    pub description: String,
    pub grain: String,
    pub primary_key: Vec<String>,
    /// `date`, `snapshot` (one file) or `view`: not stored, the rows of the `view_of` tables
    /// by primary key, the first table's row winning.
    pub partitioning: String,
    #[serde(default)]
    pub view_of: Vec<String>,
    pub columns: Vec<ColumnSchema>,
}

/// `(name, JSON)` of every `schemas/*.json`, sorted by name (discovered by build.rs).
const SOURCES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/schemas.rs"));

/// The device column of every table that has one (and of the internal frames).
pub const MAC: &str = "user_device_mac";

/// Every schema, by name.
pub fn all() -> &'static [TableSchema] {
    static ALL: OnceLock<Vec<TableSchema>> = OnceLock::new();
    ALL.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(name, text)| {
                let s: TableSchema =
                    serde_json::from_str(text).unwrap_or_else(|e| panic!("schemas/{name}.json is invalid: {e}"));
                assert_eq!(&s.name, name, "schemas/{name}.json names another table");
                s
            })
            .collect()
    })
}

/// Result tables (what `footfall tables` lists).
pub fn results() -> impl Iterator<Item = &'static TableSchema> {
    all().iter().filter(|s| s.kind == "result")
}

/// Chain tables (`footfall chain`), stored at the chain's root.
pub fn chain_tables() -> impl Iterator<Item = &'static TableSchema> {
    all().iter().filter(|s| s.kind == "chain")
}

/// Looks a table up by name; a usage error lists the known ones.
pub fn get(name: &str) -> Result<&'static TableSchema> {
    all().iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = results().map(|s| s.name.as_str()).collect();
        crate::error::usage(format!("unknown table '{name}'; known tables: {}", names.join(", ")))
    })
}

impl TableSchema {
    pub fn is_snapshot(&self) -> bool {
        self.partitioning == "snapshot"
    }

    /// Not stored: read as its `view_of` tables merged (see [`crate::tables::read_table`]).
    pub fn is_view(&self) -> bool {
        self.partitioning == "view"
    }

    /// Stored in date partitions.
    pub fn is_partitioned(&self) -> bool {
        self.partitioning == "date"
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Polars type of a column in the published table.
    pub fn dtype(&self, col: &ColumnSchema, tz: &str) -> DataType {
        dtype_of(&col.ty, tz)
    }

    /// The published Polars schema.
    pub fn polars_schema(&self, tz: &str) -> Schema {
        self.columns.iter().map(|c| Field::new(c.name.as_str().into(), self.dtype(c, tz))).collect()
    }

    /// An empty frame with the published schema.
    pub fn empty(&self, tz: &str) -> DataFrame {
        DataFrame::empty_with_schema(&self.polars_schema(tz))
    }

    /// Selects the schema's columns in order, converts internal types to published ones,
    /// checks nullability and sorts by the primary key.
    pub fn conform(&self, df: DataFrame, tz: &str) -> Result<DataFrame> {
        self.conform_with(df, tz, None)
    }

    /// [`Self::conform`], rendering `user_device_mac` ids through a pseudonym dictionary when
    /// MACs are pseudonymised.
    pub fn conform_with(&self, df: DataFrame, tz: &str, names: Option<&Pseudonyms>) -> Result<DataFrame> {
        self.convert(self.in_key_order(df)?, tz, names)
    }

    /// `df` sorted by the primary key, unless it is already in that order.
    pub fn in_key_order(&self, df: DataFrame) -> Result<DataFrame> {
        // Sort on the internal types (u64 MACs, epoch seconds, day numbers): their order is
        // the order of the published values, and integer sorts are much cheaper than strings.
        Ok(if self.primary_key.is_empty() || df.height() < 2 || sorted_by(&df, &self.primary_key)? {
            df
        } else {
            let key: Vec<PlSmallStr> = self.primary_key.iter().map(|k| k.as_str().into()).collect();
            df.sort(key, SortMultipleOptions::default().with_maintain_order(true).with_multithreaded(true))?
        })
    }

    /// The schema's columns in order, converted from internal to published types, with
    /// nullability checked (rows stay in their order).
    pub fn convert(&self, df: DataFrame, tz: &str, names: Option<&Pseudonyms>) -> Result<DataFrame> {
        self.convert_keeping_ids(df, tz, names, false)
    }

    /// The published string columns that `df` holds as `u64` ids (MACs, device ids), each
    /// with how it is rendered: a writer may render each distinct id once (a Parquet
    /// dictionary) instead of every row ([`crate::tables::encode_in_slices`]).
    pub fn id_columns<'a>(&self, df: &DataFrame, names: Option<&'a Pseudonyms>) -> Vec<(PlSmallStr, IdText<'a>)> {
        self.columns
            .iter()
            .filter_map(|c| {
                let dtype = df.column(&c.name).ok()?.dtype();
                held_as_id(c, dtype).then(|| (c.name.as_str().into(), IdText::of(&c.name, names)))
            })
            .collect()
    }

    /// [`Self::convert`]; with `keep_ids`, the columns of [`Self::id_columns`] stay `u64`.
    pub fn convert_keeping_ids(
        &self,
        df: DataFrame,
        tz: &str,
        names: Option<&Pseudonyms>,
        keep_ids: bool,
    ) -> Result<DataFrame> {
        let mut cols = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let src = df
                .column(&c.name)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("table {}: query produced no column '{}'", self.name, c.name))?;
            let s = src.as_materialized_series();
            // MACs and device ids travel as u64 and are rendered here.
            let out = match (held_as_id(c, src.dtype()), keep_ids) {
                (true, true) => Ok(s.clone()),
                (true, false) => IdText::of(&c.name, names).render(s),
                (false, _) => convert(s, &c.ty, tz),
            }
            .with_context(|| format!("table {}: column '{}'", self.name, c.name))?;
            if !c.nullable && out.null_count() > 0 {
                bail!(
                    "table {}: column '{}' is declared non-null but has {} nulls",
                    self.name,
                    c.name,
                    out.null_count()
                );
            }
            cols.push(out.into_column());
        }
        Ok(DataFrame::new(df.height(), cols)?)
    }
}

/// Whether a column published as a string is held as `u64` ids (MACs, device ids).
fn held_as_id(c: &ColumnSchema, dtype: &DataType) -> bool {
    c.ty == "string" && dtype == &DataType::UInt64
}

/// Whether `df` is already in ascending order of `key` (then [`TableSchema::conform`] need not
/// sort: the day's rollup arrives in `customer_positions`' key order). Nulls count as unsorted.
fn sorted_by(df: &DataFrame, key: &[String]) -> Result<bool> {
    let n = df.height();
    let mut ok: Option<BooleanChunked> = None; // rows i, i+1 in order on the keys after this one
    for k in key.iter().rev() {
        let Ok(c) = df.column(k) else { return Ok(false) };
        let c = c.as_materialized_series();
        if c.null_count() > 0 {
            return Ok(false);
        }
        let (a, b) = (c.slice(0, n - 1), c.slice(1, n - 1));
        ok = Some(match ok {
            None => a.lt_eq(&b)?,
            Some(rest) => a.lt(&b)? | (a.equal(&b)? & rest),
        });
    }
    Ok(ok.is_some_and(|ok| ok.all()))
}

/// Internal device id → published pseudonym (see [`crate::mac::MacKey`]).
pub type Pseudonyms = std::collections::HashMap<u64, String>;

/// How a `u64` id column is published as text: a MAC in its canonical form, or, for the
/// device column when MACs are pseudonymised, the device's pseudonym.
#[derive(Clone, Copy)]
pub enum IdText<'a> {
    Mac,
    Pseudonym(&'a Pseudonyms),
}

impl<'a> IdText<'a> {
    fn of(column: &str, names: Option<&'a Pseudonyms>) -> Self {
        match names {
            Some(names) if column == MAC => IdText::Pseudonym(names),
            _ => IdText::Mac,
        }
    }

    /// One id's text (`buf` holds a MAC's).
    pub fn text<'b>(&'b self, id: u64, buf: &'b mut [u8; 17]) -> Result<&'b str> {
        match self {
            IdText::Mac => Ok(write_mac(id, buf)),
            IdText::Pseudonym(names) => names
                .get(&id)
                .map(String::as_str)
                .ok_or_else(|| anyhow::anyhow!("no pseudonym for device id {id:016x} in the state")),
        }
    }

    /// A column of ids rendered row by row.
    pub fn render(&self, s: &Series) -> Result<Series> {
        let mut out = StringChunkedBuilder::new(s.name().clone(), s.len());
        let mut buf = [0u8; 17];
        for v in s.u64()?.iter() {
            match v {
                None => out.append_null(),
                Some(v) => out.append_value(self.text(v, &mut buf)?),
            }
        }
        Ok(out.finish().into_series())
    }
}

/// (precision, scale) of `decimal` columns: money, exact to the cent.
pub const DECIMAL: (usize, usize) = (18, 2);

/// Maps a schema type name to a Polars type. `timestamp` is microseconds in the mall's zone.
pub fn dtype_of(ty: &str, tz: &str) -> DataType {
    match ty {
        "string" => DataType::String,
        "int64" => DataType::Int64,
        "int32" => DataType::Int32,
        "float64" => DataType::Float64,
        "boolean" => DataType::Boolean,
        "date" => DataType::Date,
        "timestamp" => DataType::Datetime(TimeUnit::Microseconds, TimeZone::opt_try_new(Some(tz)).ok().flatten()),
        "decimal" => DataType::Decimal(DECIMAL.0, DECIMAL.1),
        other => panic!("schemas/: unknown type '{other}'"),
    }
}

fn convert(s: &Series, ty: &str, tz: &str) -> Result<Series> {
    let target = dtype_of(ty, tz);
    Ok(match (ty, s.dtype()) {
        // Instants travel as epoch seconds.
        ("timestamp", dt) if dt.is_integer() => {
            let us = s.cast(&DataType::Int64)? * 1_000_000i64;
            us.cast(&DataType::Datetime(TimeUnit::Microseconds, None))?.cast(&target)?
        }
        ("date", DataType::Int32) => s.cast(&DataType::Date)?,
        // Money travels as integer cents.
        ("decimal", dt) if dt.is_integer() => s.cast(&DataType::Int128)?.into_decimal(DECIMAL.0, DECIMAL.1)?,
        _ => s.strict_cast(&target)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_loads_and_keys_exist() {
        for s in all() {
            for k in &s.primary_key {
                assert!(s.column(k).is_some(), "{}: key {k} is not a column", s.name);
            }
            for c in &s.columns {
                let _ = dtype_of(&c.ty, "UTC");
            }
        }
        assert!(get("nope").is_err());
    }

    #[test]
    fn sorted_by_compares_rows_on_every_key_in_turn() {
        let key = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let df = df!("a" => [1, 1, 2, 2], "b" => ["x", "y", "a", "a"], "c" => [5, 1, 3, 3]).unwrap();
        assert!(sorted_by(&df, &key(&["a", "b", "c"])).unwrap());
        assert!(sorted_by(&df, &key(&["a"])).unwrap());
        assert!(!sorted_by(&df, &key(&["c"])).unwrap());
        assert!(!sorted_by(&df, &key(&["b"])).unwrap());
        let tie = df!("a" => [1, 1], "b" => ["y", "x"]).unwrap();
        assert!(!sorted_by(&tie, &key(&["a", "b"])).unwrap(), "equal first key, second descending");
        let nulls = df!("a" => [Some(1), None]).unwrap();
        assert!(!sorted_by(&nulls, &key(&["a"])).unwrap(), "nulls: sort anyway");
        // conform sorts what is not in key order, and leaves what is.
        let s = get("mall_hourly_visitors").unwrap();
        let t = |h: [i64; 3]| df!("date" => [20_000i32; 3], "hour_start" => h, "visitors" => [1i64, 2, 3]).unwrap();
        let out = s.conform(t([7200, 0, 3600]), "UTC").unwrap();
        let v: Vec<i64> = out.column("visitors").unwrap().i64().unwrap().into_no_null_iter().collect();
        assert_eq!(v, [2, 3, 1]);
        let out = s.conform(t([0, 3600, 7200]), "UTC").unwrap();
        let v: Vec<i64> = out.column("visitors").unwrap().i64().unwrap().into_no_null_iter().collect();
        assert_eq!(v, [1, 2, 3]);
    }
}
