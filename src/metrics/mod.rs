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
    /// Rows of one day, without the `date` column (added by [`compute_day`]).
    pub query: fn(&DayCtx) -> PolarsResult<LazyFrame>,
}

/// The daily catalogue, in publishing order.
pub const DAILY: &[Metric] = &[
    Metric { name: "mall_daily_visitors", query: seed::mall_daily_visitors },
    Metric { name: "shop_daily_visitors", query: seed::shop_daily_visitors },
    Metric { name: "mall_hourly_visitors", query: seed::mall_hourly_visitors },
    Metric { name: "peak_hour_daily", query: seed::peak_hour_daily },
    Metric { name: "top_shops_daily", query: seed::top_shops_daily },
    Metric { name: "mall_daily_new_customers", query: seed::mall_daily_new_customers },
    Metric { name: "customer_positions", query: seed::customer_positions },
    Metric { name: "latest_positions", query: seed::latest_positions },
    Metric { name: "favorite_shop_daily", query: seed::favorite_shop_daily },
    Metric { name: "repeat_shop_visits_daily", query: seed::repeat_shop_visits_daily },
    // docs/tables.md: staff are never counted here (staff_devices_daily lists them).
    Metric { name: "shop_daily_engagement", query: presence::shop_daily_engagement },
    Metric { name: "mall_daily_engagement", query: presence::mall_daily_engagement },
    Metric { name: "mall_daily_loyalty", query: presence::mall_daily_loyalty },
    Metric { name: "staff_devices_daily", query: presence::staff_devices_daily },
    Metric { name: "shop_transitions_daily", query: presence::shop_transitions_daily },
    Metric { name: "density_grid", query: presence::density_grid },
    Metric { name: "occupancy_5min", query: presence::occupancy_5min },
];

/// Runs every daily metric of one day; frames are in internal types (the writer sorts and
/// converts them, see [`crate::tables::publish_partition`]). Each metric's plan is built
/// (a hand-written scan runs while its plan is built) and collected on [`crate::par`]'s
/// plain threads (see there why), two metrics at a time: built one after another, the scans
/// (`customer_positions`, `density_grid`: about 0.5 s each a day at 50 M records) left a
/// core idle.
pub fn compute_day(c: &DayCtx) -> Result<Vec<(&'static TableSchema, DataFrame)>> {
    let trace = std::env::var("FOOTFALL_TRACE").is_ok_and(|v| v == "1");
    let frames = crate::par::map(DAILY, |m| {
        let t0 = std::time::Instant::now();
        let df = (m.query)(c)?.with_column(lit(c.day).cast(DataType::Date).alias("date")).collect()?;
        if trace {
            eprintln!("trace:     {} {:.2}s", m.name, t0.elapsed().as_secs_f64());
        }
        Ok(df)
    })?;
    DAILY.iter().zip(frames).map(|(m, df)| Ok((schema::get(m.name)?, df))).collect()
}
