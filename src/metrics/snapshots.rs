//! The snapshot tables, one file each: the two stored parts of the `customers` view. An
//! hourly update rewrites `customers_recent` (the newest day's devices) and leaves
//! `customers_settled` (every device before the newest day) until the day moves on, so what
//! an update writes does not grow with the number of devices ever seen.

use anyhow::Result;
use polars::prelude::*;

use crate::config::Settings;
use crate::schema::Pseudonyms;

/// What a snapshot query may read.
pub struct SnapshotCtx<'a> {
    /// The newest day's devices with their totals over all days, when they changed.
    pub customers_recent: Option<&'a DataFrame>,
    /// Every device seen before the newest day, when that part changed.
    pub customers_settled: Option<&'a DataFrame>,
    pub settings: &'a Settings,
    pub names: Option<&'a Pseudonyms>,
}

/// A snapshot result table.
pub struct Snapshot {
    pub name: &'static str,
    /// Its new rows, or `None` when the published file stands.
    pub query: fn(&SnapshotCtx) -> Result<Option<DataFrame>>,
}

pub const SNAPSHOTS: &[Snapshot] = &[
    Snapshot { name: "customers_recent", query: |c| Ok(c.customers_recent.cloned()) },
    Snapshot { name: "customers_settled", query: |c| Ok(c.customers_settled.cloned()) },
];
