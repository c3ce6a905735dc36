//! The catalogue: every result table as one declarative unit — its name (the schema in
//! `schemas/<name>.json` gives columns, types and key) and its query. A daily table's query
//! reads one day's context ([`DayCtx`]); a snapshot's reads the run's ([`SnapshotCtx`]);
//! `data_quality` ([`quality`]) is a date of the manifest's file list.
//! Adding a daily table = one schema file + one entry in [`DAILY`].
//!
//! A day's context:
//! - `pos`: one row per (second, device, AP, shop) with RSSI min/max: the day's
//!   duplicate-free rollup of accepted probe records (`hour` = local hour start);
//! - `visits`: the day's shop visits (each with its `mall_visit`), `mall`: its mall visits;
//! - `status`: staff/visitor/loyalty status of each device seen that day;
//! - `first_dates`: each device of the day with its first day ever;
//! - the dimensions and settings.

mod context;
pub mod presence;
pub mod quality;
pub mod seed;
pub mod snapshots;

use anyhow::Result;
use polars::prelude::*;

pub use context::DayCtx;
pub use snapshots::SnapshotCtx;

use crate::schema::{self, TableSchema};

/// A date-partitioned result table.
pub struct Metric {
    pub name: &'static str,
    /// Rows of one day, without the `date` column (added by [`compute`]).
    pub query: fn(&DayCtx) -> PolarsResult<LazyFrame>,
    /// What its work grows with: a day's tables start largest first ([`by_size`]).
    pub size: Size,
}

/// What a daily query's computing and writing grow with, smallest first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Size {
    /// Aggregates of visits or devices: a few to a few hundred rows.
    Small,
    /// A row per device (or device and shop) of the day.
    Devices,
    /// A scan of every rollup row.
    Scan,
    /// A row per rollup row: the day's largest table to compute and to write.
    Rollup,
}

/// The daily catalogue.
pub const DAILY: &[Metric] = &[
    Metric { name: "mall_daily_visitors", query: seed::mall_daily_visitors, size: Size::Small },
    Metric { name: "shop_daily_visitors", query: seed::shop_daily_visitors, size: Size::Small },
    Metric { name: "mall_hourly_visitors", query: seed::mall_hourly_visitors, size: Size::Small },
    Metric { name: "peak_hour_daily", query: seed::peak_hour_daily, size: Size::Small },
    Metric { name: "top_shops_daily", query: seed::top_shops_daily, size: Size::Small },
    Metric { name: "mall_daily_new_customers", query: seed::mall_daily_new_customers, size: Size::Small },
    Metric { name: "customer_positions", query: seed::customer_positions, size: Size::Rollup },
    Metric { name: "latest_positions", query: seed::latest_positions, size: Size::Scan },
    Metric { name: "favorite_shop_daily", query: seed::favorite_shop_daily, size: Size::Devices },
    Metric { name: "repeat_shop_visits_daily", query: seed::repeat_shop_visits_daily, size: Size::Devices },
    // docs/tables.md: staff are never counted here (staff_devices_daily lists them).
    Metric { name: "shop_daily_engagement", query: presence::shop_daily_engagement, size: Size::Small },
    Metric { name: "mall_daily_engagement", query: presence::mall_daily_engagement, size: Size::Small },
    Metric { name: "mall_daily_loyalty", query: presence::mall_daily_loyalty, size: Size::Small },
    Metric { name: "staff_devices_daily", query: presence::staff_devices_daily, size: Size::Small },
    Metric { name: "shop_transitions_daily", query: presence::shop_transitions_daily, size: Size::Small },
    Metric { name: "density_grid", query: presence::density_grid, size: Size::Scan },
    Metric { name: "occupancy_5min", query: presence::occupancy_5min, size: Size::Small },
];

/// The daily catalogue, largest first (catalogue order among equals): a day's tables are
/// computed and written by two workers taking the next one as they finish, so the long ones
/// (`customer_positions`: at 50 M records 0.15 s to compute and 0.45 s to write a day;
/// `density_grid`: 0.24 s) start at once and the short ones fill the other core around them.
/// In catalogue order the day's scans came last and left a core idle at the end.
pub fn by_size() -> Vec<&'static Metric> {
    let mut all: Vec<&Metric> = DAILY.iter().collect();
    all.sort_by_key(|m| std::cmp::Reverse(m.size));
    all
}

/// One daily metric of one day, with its `date` column, in internal types (the writer sorts
/// and converts it, see [`crate::tables::publish_partition`]). Called on [`crate::par`]'s
/// plain threads (see there why); a hand-written scan runs while its plan is built.
pub fn compute(m: &Metric, c: &DayCtx) -> Result<(&'static TableSchema, DataFrame)> {
    let t0 = std::time::Instant::now();
    let df = (m.query)(c)?.with_column(lit(c.day).cast(DataType::Date).alias("date")).collect()?;
    if std::env::var("FOOTFALL_TRACE").is_ok_and(|v| v == "1") {
        eprintln!("trace:     {} {:.2}s", m.name, t0.elapsed().as_secs_f64());
    }
    Ok((schema::get(m.name)?, df))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_size_is_the_catalogue_largest_first() {
        let order = by_size();
        let mut names: Vec<&str> = order.iter().map(|m| m.name).collect();
        assert_eq!(names[..2], ["customer_positions", "latest_positions"]);
        assert!(order.windows(2).all(|w| w[0].size >= w[1].size));
        // Catalogue order among equals.
        let small: Vec<&str> = order.iter().filter(|m| m.size == Size::Small).map(|m| m.name).collect();
        assert_eq!(small[..2], ["mall_daily_visitors", "shop_daily_visitors"]);
        names.sort_unstable();
        let mut all: Vec<&str> = DAILY.iter().map(|m| m.name).collect();
        all.sort_unstable();
        assert_eq!(names, all);
    }
}
