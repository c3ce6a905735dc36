//! The snapshot table `customers`: one file, rewritten by every run from the run's context.

use anyhow::Result;
use polars::prelude::*;

use crate::config::Settings;
use crate::schema::Pseudonyms;

/// What a snapshot query may read.
pub struct SnapshotCtx<'a> {
    /// First/last sighting of every device (computed with the statuses).
    pub customers: &'a DataFrame,
    pub settings: &'a Settings,
    pub names: Option<&'a Pseudonyms>,
}

/// A snapshot result table.
pub struct Snapshot {
    pub name: &'static str,
    pub query: fn(&SnapshotCtx) -> Result<DataFrame>,
}

pub const SNAPSHOTS: &[Snapshot] = &[Snapshot { name: "customers", query: |c| Ok(c.customers.clone()) }];
