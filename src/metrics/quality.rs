//! `data_quality`: one row per processed file, partitioned by the file's date (its manifest
//! part, [`crate::state::FileRecord::part_key`]), so an update rewrites only the dates of the
//! files it read and `check` reads only the dates it is asked about.

use std::collections::BTreeMap;

use anyhow::Result;
use polars::prelude::*;

use crate::state::{FileQuality, FileRecord, REASONS};

pub const NAME: &str = "data_quality";

/// One row per file of one date (docs/tables.md, data_quality).
pub fn data_quality(date: chrono::NaiveDate, files: &BTreeMap<String, FileRecord>) -> Result<DataFrame> {
    let n = files.len();
    let mut hour = Vec::with_capacity(n);
    let mut file = Vec::with_capacity(n);
    let mut cols: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for k in ["rows_read", "rows_accepted", "rows_rejected", "randomized_rows", "distinct_devices", "unknown_shop_rows"]
        .into_iter()
        .chain(REASONS)
    {
        cols.insert(k, Vec::with_capacity(n));
    }
    let mut late = Vec::with_capacity(n);
    let mut unknown_aps = Vec::with_capacity(n);
    for (rel, r) in files {
        let q: &FileQuality = &r.quality;
        hour.push(r.part_hour.map(|h| h as i32));
        file.push(rel.clone());
        let rejected: i64 = q.rejected.iter().sum();
        for (k, v) in [
            ("rows_read", q.rows_read),
            ("rows_accepted", q.rows_accepted),
            ("rows_rejected", rejected),
            ("randomized_rows", q.randomized_rows),
            ("distinct_devices", q.distinct_devices),
            ("unknown_shop_rows", q.unknown_shop_rows),
        ] {
            cols.entry(k).or_default().push(v);
        }
        for (i, reason) in REASONS.iter().enumerate() {
            cols.entry(reason).or_default().push(q.rejected[i]);
        }
        late.push(q.late_rows);
        unknown_aps.push(q.unknown_ap_rows);
    }
    let mut columns = vec![
        Column::new("date".into(), vec![crate::timeutil::date_to_days(date); n]).cast(&DataType::Date)?,
        Column::new("hour".into(), hour),
        Column::new("file".into(), file),
        Column::new("late_rows".into(), late),
        Column::new("unknown_ap_rows".into(), unknown_aps),
    ];
    for (k, v) in cols {
        let name = if REASONS.contains(&k) { format!("rejected_{k}") } else { k.to_string() };
        columns.push(Column::new(name.into(), v));
    }
    Ok(DataFrame::new(n, columns)?)
}
