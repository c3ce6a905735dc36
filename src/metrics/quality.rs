//! `data_quality`: one row per processed file, partitioned by the file's date (its manifest
//! part, [`crate::state::FileRecord::part_key`]), so an update rewrites only the dates of the
//! files it read and `check` reads only the dates it is asked about.

use std::collections::BTreeMap;

use anyhow::Result;
use polars::prelude::*;

use crate::state::{FileQuality, FileRecord, REASONS};

pub const NAME: &str = "data_quality";

/// A sales file's row of `data_quality`: its path, partition hour and counts.
pub struct SalesRow<'a> {
    pub file: &'a str,
    pub hour: Option<u32>,
    pub quality: &'a crate::sales::SalesQuality,
}

/// One row per file of one date (docs/tables.md, data_quality): the probe files, then the
/// sales files (`source`), each with 0 in the other source's counts.
pub fn data_quality(
    date: chrono::NaiveDate,
    files: &BTreeMap<String, FileRecord>,
    sales: &[SalesRow],
) -> Result<DataFrame> {
    let n = files.len() + sales.len();
    let mut hour = Vec::with_capacity(n);
    let mut file = Vec::with_capacity(n);
    let mut source = Vec::with_capacity(n);
    let mut cols: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let counts =
        ["rows_read", "rows_accepted", "rows_rejected", "randomized_rows", "distinct_devices", "unknown_shop_rows"];
    // One column per reason of either source (`shop_code_missing` is both's).
    let mut reasons: Vec<String> = Vec::new();
    for r in REASONS.iter().chain(crate::sales::REASONS.iter()).map(|r| format!("rejected_{r}")) {
        if !reasons.contains(&r) {
            reasons.push(r);
        }
    }
    for k in counts.iter().map(|k| k.to_string()).chain(reasons.iter().cloned()) {
        cols.insert(k, Vec::with_capacity(n));
    }
    let mut late = Vec::with_capacity(n);
    let mut unknown_aps = Vec::with_capacity(n);
    let mut push = |values: &[(&str, i64)], names: &[&str], rejected: &[i64]| {
        for (k, v) in values {
            cols.get_mut(*k).expect("a count column").push(*v);
        }
        for k in &reasons {
            let v = names.iter().zip(rejected).find(|(n, _)| format!("rejected_{n}") == *k).map_or(0, |(_, v)| *v);
            cols.get_mut(k).expect("a reason column").push(v);
        }
    };
    for (rel, r) in files {
        let q: &FileQuality = &r.quality;
        hour.push(r.part_hour.map(|h| h as i32));
        file.push(rel.clone());
        source.push("probes");
        let rejected: i64 = q.rejected.iter().sum();
        let values = [
            ("rows_read", q.rows_read),
            ("rows_accepted", q.rows_accepted),
            ("rows_rejected", rejected),
            ("randomized_rows", q.randomized_rows),
            ("distinct_devices", q.distinct_devices),
            ("unknown_shop_rows", q.unknown_shop_rows),
        ];
        push(&values, &REASONS, &q.rejected);
        late.push(q.late_rows);
        unknown_aps.push(q.unknown_ap_rows);
    }
    for r in sales {
        let q = r.quality;
        hour.push(r.hour.map(|h| h as i32));
        file.push(r.file.to_string());
        source.push("sales");
        let values = [
            ("rows_read", q.rows_read),
            ("rows_accepted", q.rows_accepted),
            ("rows_rejected", q.rows_read - q.rows_accepted),
            ("randomized_rows", 0),
            ("distinct_devices", 0),
            ("unknown_shop_rows", 0),
        ];
        push(&values, &crate::sales::REASONS, &q.rejected);
        late.push(None);
        unknown_aps.push(None);
    }
    let mut columns = vec![
        Column::new("date".into(), vec![crate::timeutil::date_to_days(date); n]).cast(&DataType::Date)?,
        Column::new("source".into(), source),
        Column::new("hour".into(), hour),
        Column::new("file".into(), file),
        Column::new("late_rows".into(), late),
        Column::new("unknown_ap_rows".into(), unknown_aps),
    ];
    for (k, v) in cols {
        columns.push(Column::new(k.into(), v));
    }
    Ok(DataFrame::new(n, columns)?)
}
