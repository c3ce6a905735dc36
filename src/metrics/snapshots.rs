//! The snapshot tables: one file each, rewritten by every run from the run's context.

use std::collections::BTreeMap;

use anyhow::Result;
use polars::prelude::*;

use crate::config::Settings;
use crate::schema::Pseudonyms;
use crate::state::{FileQuality, Manifest, REASONS};

/// What a snapshot query may read.
pub struct SnapshotCtx<'a> {
    /// First/last sighting of every device (computed with the statuses).
    pub customers: &'a DataFrame,
    /// The manifest being committed: every processed file with its data quality.
    pub manifest: &'a Manifest,
    pub settings: &'a Settings,
    pub names: Option<&'a Pseudonyms>,
}

/// A snapshot result table.
pub struct Snapshot {
    pub name: &'static str,
    pub query: fn(&SnapshotCtx) -> Result<DataFrame>,
}

pub const SNAPSHOTS: &[Snapshot] = &[
    Snapshot { name: "customers", query: |c| Ok(c.customers.clone()) },
    Snapshot { name: "data_quality", query: data_quality },
];

/// One row per processed file (docs/tables.md, data_quality).
fn data_quality(c: &SnapshotCtx) -> Result<DataFrame> {
    let m = c.manifest;
    let n = m.files.len();
    let mut date = Vec::with_capacity(n);
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
    for (rel, r) in &m.files {
        let q: &FileQuality = &r.quality;
        date.push(r.part_date.map(crate::timeutil::date_to_days));
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
        Column::new("date".into(), date),
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
