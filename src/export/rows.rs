//! A published frame as typed columns in schema order, read a cell at a time by both
//! database writers (PostgreSQL's binary COPY and MySQL's parameterised INSERT).

use anyhow::{bail, Result};
use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;

use crate::schema::TableSchema;

/// One column, in the form the writers read.
enum Col {
    Bool(BooleanChunked),
    I32(Int32Chunked),
    I64(Int64Chunked),
    F64(Float64Chunked),
    Str(StringChunked),
    /// Days since 1970-01-01.
    Date(Int32Chunked),
    /// Microseconds since the epoch (UTC).
    Ts(Int64Chunked),
    /// Cents (the schema's `decimal`, scale 2).
    Dec(Int64Chunked),
}

/// One value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    I32(i32),
    I64(i64),
    F64(f64),
    Str(&'a str),
    Date(NaiveDate),
    Ts(DateTime<Utc>),
    /// Cents: an exact decimal with 2 places.
    Cents(i64),
}

/// A frame's rows, columns in the schema's order.
pub struct Rows {
    cols: Vec<Col>,
    pub height: usize,
}

impl Rows {
    /// Takes the schema's columns from `df` (which must have them all).
    pub fn new(t: &TableSchema, df: &DataFrame) -> Result<Rows> {
        let mut cols = Vec::with_capacity(t.columns.len());
        for c in &t.columns {
            let s = df.column(&c.name)?.as_materialized_series().rechunk();
            let col = match c.ty.as_str() {
                "boolean" => Col::Bool(s.bool()?.clone()),
                "int32" => Col::I32(s.cast(&DataType::Int32)?.i32()?.clone()),
                "int64" => Col::I64(s.cast(&DataType::Int64)?.i64()?.clone()),
                "float64" => Col::F64(s.cast(&DataType::Float64)?.f64()?.clone()),
                "string" => Col::Str(s.str()?.clone()),
                "date" => Col::Date(s.cast(&DataType::Date)?.to_physical_repr().i32()?.clone()),
                "timestamp" => {
                    let per_us = match s.dtype() {
                        DataType::Datetime(TimeUnit::Milliseconds, _) => 1_000,
                        DataType::Datetime(TimeUnit::Microseconds, _) => 1,
                        DataType::Datetime(TimeUnit::Nanoseconds, _) => -1_000,
                        d => bail!("{}.{}: expected a timestamp, found {d}", t.name, c.name),
                    };
                    // The physical value of a zoned datetime is the UTC instant.
                    let raw = s.to_physical_repr().i64()?.clone();
                    let us: Int64Chunked = raw.apply_values(|v| if per_us > 0 { v * per_us } else { v / -per_us });
                    Col::Ts(us)
                }
                "decimal" => {
                    let scale = match s.dtype() {
                        DataType::Decimal(_, scale) => *scale as u32,
                        d => bail!("{}.{}: expected a decimal, found {d}", t.name, c.name),
                    };
                    // Exact: the physical value is the unscaled integer.
                    let raw = s.to_physical_repr();
                    let cents: Int64Chunked =
                        raw.i128()?.iter().map(|v| v.and_then(|v| i64::try_from(rescale(v, scale)?).ok())).collect();
                    Col::Dec(cents)
                }
                ty => bail!("{}.{}: cannot export type {ty}", t.name, c.name),
            };
            cols.push(col);
        }
        Ok(Rows { cols, height: df.height() })
    }

    pub fn width(&self) -> usize {
        self.cols.len()
    }

    /// The value at row `i`, column `j`.
    pub fn cell(&self, i: usize, j: usize) -> Cell<'_> {
        let v = match &self.cols[j] {
            Col::Bool(a) => a.get(i).map(Cell::Bool),
            Col::I32(a) => a.get(i).map(Cell::I32),
            Col::I64(a) => a.get(i).map(Cell::I64),
            Col::F64(a) => a.get(i).map(Cell::F64),
            Col::Str(a) => a.get(i).map(Cell::Str),
            Col::Date(a) => a.get(i).map(|d| Cell::Date(crate::timeutil::days_to_date(d))),
            Col::Ts(a) => a.get(i).and_then(DateTime::from_timestamp_micros).map(Cell::Ts),
            Col::Dec(a) => a.get(i).map(Cell::Cents),
        };
        v.unwrap_or(Cell::Null)
    }
}

/// An unscaled decimal of `scale` places as cents (`None` if it has finer digits).
fn rescale(v: i128, scale: u32) -> Option<i128> {
    if scale <= 2 {
        v.checked_mul(10i128.pow(2 - scale))
    } else {
        let d = 10i128.pow(scale - 2);
        (v % d == 0).then(|| v / d)
    }
}

/// Cents as decimal text: `-12.05`.
pub fn cents_text(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    let a = c.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_follow_schema_order_and_types() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let tz = "Europe/Berlin";
        for t in crate::schema::results().filter(|t| t.is_partitioned()) {
            // One row, `date` left to the path; a null in every nullable string column.
            let mut cols = Vec::new();
            for c in t.columns.iter().filter(|c| c.name != "date") {
                let name = c.name.as_str().into();
                let s = match c.ty.as_str() {
                    "int64" => Series::new(name, [7i64]),
                    "decimal" => Series::new(name, [-1205i128]).into_decimal(18, 2).unwrap(),
                    "int32" => Series::new(name, [7i32]),
                    "float64" => Series::new(name, [0.5f64]),
                    "boolean" => Series::new(name, [true]),
                    "string" if c.nullable => Series::new_null(name, 1).cast(&DataType::String).unwrap(),
                    "string" => Series::new(name, ["s"]),
                    _ => Series::new_null(name, 1).cast(&t.dtype(c, tz)).unwrap(),
                };
                cols.push(s.into_column());
            }
            let df = crate::tables::with_partition_date(DataFrame::new(1, cols).unwrap(), date).unwrap();
            let rows = Rows::new(t, &df).unwrap();
            assert_eq!((rows.height, rows.width()), (1, t.columns.len()), "{}", t.name);
            for (j, c) in t.columns.iter().enumerate() {
                let want = match c.ty.as_str() {
                    "date" => Cell::Date(date),
                    "int64" => Cell::I64(7),
                    "decimal" => Cell::Cents(-1205),
                    "int32" => Cell::I32(7),
                    "float64" => Cell::F64(0.5),
                    "boolean" => Cell::Bool(true),
                    "string" if !c.nullable => Cell::Str("s"),
                    _ => Cell::Null,
                };
                assert_eq!(rows.cell(0, j), want, "{}.{}", t.name, c.name);
            }
        }
    }

    #[test]
    fn zoned_timestamps_are_utc_instants() {
        let t = crate::schema::get("customers").unwrap();
        let tz = "Asia/Shanghai";
        let mut cols = Vec::new();
        for c in &t.columns {
            let dt = t.dtype(c, tz);
            let s = match c.ty.as_str() {
                // 2026-01-01T08:00:00+08:00 = 2026-01-01T00:00:00Z
                "timestamp" => Series::new(c.name.as_str().into(), [1_767_225_600_000_000i64])
                    .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                    .unwrap()
                    .cast(&dt)
                    .unwrap(),
                _ => Series::new_null(c.name.as_str().into(), 1).cast(&dt).unwrap(),
            };
            cols.push(s.into_column());
        }
        let df = DataFrame::new(1, cols).unwrap();
        let rows = Rows::new(t, &df).unwrap();
        let j = t.columns.iter().position(|c| c.ty == "timestamp").unwrap();
        let want = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(rows.cell(0, j), Cell::Ts(want));
    }
}
