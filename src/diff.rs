//! Row-by-row comparison of one table in two output locations (used by `footfall diff`
//! and the golden tests). Rows are compared as their CSV rendering, so a difference is
//! shown exactly as a user would see it; order is irrelevant, multiplicity is not.

use std::collections::BTreeMap;

use anyhow::Result;
use polars::prelude::*;

use crate::schema::TableSchema;
use crate::store::Location;

pub struct TableDiff {
    pub left_rows: usize,
    pub right_rows: usize,
    pub header: String,
    pub header_mismatch: Option<String>,
    pub only_left: Vec<String>,
    pub only_right: Vec<String>,
}

impl TableDiff {
    pub fn is_equal(&self) -> bool {
        self.header_mismatch.is_none() && self.only_left.is_empty() && self.only_right.is_empty()
    }
}

/// CSV lines of a frame: header, rows.
pub fn csv_lines(df: &mut DataFrame) -> Result<(String, Vec<String>)> {
    let mut buf = Vec::new();
    CsvWriter::new(&mut buf).include_header(true).finish(df)?;
    let text = String::from_utf8(buf)?;
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().unwrap_or_default();
    Ok((header, lines.collect()))
}

pub fn diff_table(left: &Location, right: &Location, t: &TableSchema) -> Result<TableDiff> {
    let mut l = crate::tables::read_table(left, t, "UTC", None, None)?;
    let mut r = crate::tables::read_table(right, t, "UTC", None, None)?;
    let (lh, ll) = csv_lines(&mut l)?;
    let (rh, rl) = csv_lines(&mut r)?;
    let header_mismatch = (l.schema() != r.schema()).then(|| format!("{:?} vs {:?}", l.schema(), r.schema()));
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for x in &ll {
        *counts.entry(x).or_default() += 1;
    }
    for x in &rl {
        *counts.entry(x).or_default() -= 1;
    }
    let mut only_left = Vec::new();
    let mut only_right = Vec::new();
    for (row, n) in counts {
        for _ in 0..n.max(0) {
            only_left.push(row.to_string());
        }
        for _ in 0..(-n).max(0) {
            only_right.push(row.to_string());
        }
    }
    let _ = rh;
    Ok(TableDiff { left_rows: l.height(), right_rows: r.height(), header: lh, header_mismatch, only_left, only_right })
}
