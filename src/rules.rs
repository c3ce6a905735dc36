//! Definitions (docs/tables.md) that more than one stage applies: what makes a visit qualifying
//! (§7.2), and the loyalty classes as the statuses store them and the catalogue counts them.

use polars::prelude::*;

use crate::config::Settings;

/// A visit (shop or mall) qualifies: strongest RSSI ≥ `min_rssi` and dwell ≥ `min_dwell`.
pub fn qualifying(s: &Settings) -> Expr {
    col("rssi_max").gt_eq(lit(s.min_rssi)).and(col("dwell").gt_eq(lit(s.min_dwell)))
}

/// Loyalty classes as stored in the `loyalty` status column (null = not a visitor that day).
pub const FIRST_TIME: i32 = 1;
pub const DAILY: i32 = 2;
pub const WEEKLY: i32 = 3;
pub const OCCASIONAL: i32 = 4;
