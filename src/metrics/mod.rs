//! The catalogue: every date-partitioned result table as one declarative Polars query over
//! the day's rollups. A table's columns, types and key live in `schemas/<name>.json`; its
//! rule lives here, once. Adding a metric = one schema file + one entry in [`DAILY`].
//!
//! Inputs of a day ([`DayCtx`]):
//! - `pos`: one row per (second, device, AP, shop) with RSSI min/max: the day's
//!   duplicate-free rollup of accepted probe records (`hour` = local hour start);
//! - `visits`: the day's shop visits, computed once from `pos` and shared;
//! - `customers`: first/last sighting of every device over all days;
//! - the dimensions and settings.

use anyhow::Result;
use polars::prelude::*;

use crate::config::Settings;
use crate::dims::Dims;
use crate::schema::{self, TableSchema};

/// Everything a daily query may read.
pub struct DayCtx<'a> {
    pub day: i32,
    pub pos: DataFrame,
    pub visits: DataFrame,
    pub customers: &'a DataFrame,
    pub dims: &'a Dims,
    pub settings: &'a Settings,
}

/// A date-partitioned result table.
pub struct Metric {
    pub name: &'static str,
    /// Rows of one day, without the `date` column (added by [`compute_day`]).
    pub query: fn(&DayCtx) -> LazyFrame,
}

const MAC: &str = "user_device_mac";

fn desc(cols: &[bool]) -> SortMultipleOptions {
    SortMultipleOptions::default().with_order_descending_multi(cols.to_vec()).with_maintain_order(true)
}

fn with_shop_names(lf: LazyFrame, dims: &Dims) -> LazyFrame {
    lf.left_join(dims.shops.clone().lazy(), col("shop_code"), col("shop_code"))
}

fn with_place(lf: LazyFrame, dims: &Dims) -> LazyFrame {
    lf.left_join(dims.places.clone().lazy(), col(MAC), col(MAC))
}

fn shop_visitors(c: &DayCtx) -> LazyFrame {
    let lf = c
        .pos
        .clone()
        .lazy()
        .group_by([col("shop_code")])
        .agg([col(MAC).n_unique().cast(DataType::Int64).alias("visitors")]);
    with_shop_names(lf, c.dims)
}

fn hourly_visitors(c: &DayCtx) -> LazyFrame {
    c.pos
        .clone()
        .lazy()
        .group_by([col("hour")])
        .agg([col(MAC).n_unique().cast(DataType::Int64).alias("visitors")])
        .select([col("hour").alias("hour_start"), col("visitors")])
}

/// Visits per (device, shop) that day with their summed dwell.
fn visits_per_shop(c: &DayCtx) -> LazyFrame {
    c.visits.clone().lazy().group_by([col(MAC), col("shop_code")]).agg([
        len().cast(DataType::Int64).alias("visits"),
        col("dwell").sum().cast(DataType::Int64).alias("dwell_seconds"),
    ])
}

/// Devices seen that day with their first day ever.
fn day_devices(c: &DayCtx) -> LazyFrame {
    c.pos.clone().lazy().select([col(MAC)]).unique(None, UniqueKeepStrategy::Any).left_join(
        c.customers.clone().lazy().select([col(MAC), col("first_date")]),
        col(MAC),
        col(MAC),
    )
}

/// The daily catalogue, in publishing order.
pub const DAILY: &[Metric] = &[
    Metric {
        name: "mall_daily_visitors",
        query: |c| c.pos.clone().lazy().select([col(MAC).n_unique().cast(DataType::Int64).alias("visitors")]),
    },
    Metric { name: "shop_daily_visitors", query: shop_visitors },
    Metric { name: "mall_hourly_visitors", query: hourly_visitors },
    Metric {
        name: "peak_hour_daily",
        query: |c| hourly_visitors(c).sort(["visitors", "hour_start"], desc(&[true, false])).limit(1),
    },
    Metric {
        name: "top_shops_daily",
        query: |c| {
            shop_visitors(c)
                .sort(["visitors", "shop_code"], desc(&[true, false]))
                .limit(c.settings.top_shops)
                .with_column(int_range(lit(1), len() + lit(1), 1, DataType::Int32).alias("rank"))
        },
    },
    Metric {
        name: "mall_daily_new_customers",
        query: |c| {
            day_devices(c)
                .select([
                    len().cast(DataType::Int64).alias("visitors"),
                    col("first_date").eq(lit(c.day)).cast(DataType::Int64).sum().alias("new_customers"),
                ])
                .with_columns([
                    (col("visitors") - col("new_customers")).alias("returning_customers"),
                    (col("new_customers").cast(DataType::Float64) / col("visitors").cast(DataType::Float64))
                        .alias("new_ratio"),
                ])
        },
    },
    Metric {
        name: "customer_positions",
        query: |c| {
            let firsts = c.customers.clone().lazy().select([col(MAC), col("first_date")]);
            with_place(c.pos.clone().lazy(), c.dims)
                .left_join(firsts, col(MAC), col(MAC))
                .with_column(col("first_date").eq(lit(c.day)).fill_null(lit(false)).alias("is_new_customer"))
        },
    },
    Metric {
        name: "latest_positions",
        query: |c| {
            // Only the rows of each device's last second are ranked (not the whole day).
            let pos = c.pos.clone().lazy();
            let last_second = pos.clone().group_by([col(MAC)]).agg([col("second").max()]);
            let last = pos
                .join(last_second, [col(MAC), col("second")], [col(MAC), col("second")], JoinArgs::new(JoinType::Inner))
                .sort([MAC, "rssi_max", "ap_mac", "shop_code"], desc(&[false, true, false, false]))
                .unique_stable_generic(Some(vec![col(MAC)]), UniqueKeepStrategy::First);
            with_place(last, c.dims)
        },
    },
    Metric {
        name: "favorite_shop_daily",
        query: |c| {
            let best = visits_per_shop(c)
                .sort([MAC, "visits", "dwell_seconds", "shop_code"], desc(&[false, true, true, false]))
                .unique_stable_generic(Some(vec![col(MAC)]), UniqueKeepStrategy::First);
            with_shop_names(best, c.dims)
        },
    },
    Metric {
        name: "repeat_shop_visits_daily",
        query: |c| with_shop_names(visits_per_shop(c).filter(col("visits").gt_eq(lit(2i64))), c.dims),
    },
];

/// Folds per-file segments of one day into the day's `pos` rollup.
pub fn merge_pos(parts: Vec<LazyFrame>) -> Result<DataFrame> {
    let all = concat(parts, UnionArgs::default())?;
    Ok(all
        .group_by([col("second"), col(MAC), col("ap_mac"), col("shop_code")])
        .agg([col("hour").first(), col("rssi_min").min(), col("rssi_max").max()])
        .collect()?)
}

/// Reduces parsed events to the segment grain (the same as `pos`).
pub fn events_to_segment(events: DataFrame) -> Result<DataFrame> {
    Ok(events
        .lazy()
        .group_by([col("second"), col(MAC), col("ap_mac"), col("shop_code")])
        .agg([col("hour").first(), col("rssi").min().alias("rssi_min"), col("rssi").max().alias("rssi_max")])
        .collect()?)
}

/// Shop visits of a day: records of one device at one shop, split where consecutive
/// seconds are more than `gap` apart. Columns: device, shop, start, end, dwell, rssi_max.
pub fn visits(pos: &DataFrame, gap: i64) -> Result<DataFrame> {
    let prev = |c: &str| col(c).shift(lit(1));
    Ok(pos
        .clone()
        .lazy()
        .group_by([col(MAC), col("shop_code"), col("second")])
        .agg([col("rssi_max").max()])
        .sort([MAC, "shop_code", "second"], SortMultipleOptions::default())
        .with_column(
            (col(MAC)
                .neq(prev(MAC))
                .or(col("shop_code").neq(prev("shop_code")))
                .or((col("second") - prev("second")).gt(lit(gap))))
            .fill_null(lit(true))
            .cast(DataType::UInt32)
            .cum_sum(false)
            .alias("visit"),
        )
        .group_by([col("visit")])
        .agg([
            col(MAC).first(),
            col("shop_code").first(),
            col("second").min().alias("start"),
            col("second").max().alias("end"),
            col("rssi_max").max(),
        ])
        .with_column((col("end") - col("start")).alias("dwell"))
        .drop(cols(["visit"]))
        .collect()?)
}

/// A device's first and last second of a day (kept per day in the state).
pub fn day_device_summary(pos: &DataFrame, day: i32) -> Result<DataFrame> {
    Ok(pos
        .clone()
        .lazy()
        .group_by([col(MAC)])
        .agg([col("second").min().alias("first_seen"), col("second").max().alias("last_seen")])
        .with_column(lit(day).alias("day"))
        .collect()?)
}

/// The `customers` snapshot from all days' device summaries.
pub fn customers(day_summaries: Vec<LazyFrame>) -> Result<DataFrame> {
    if day_summaries.is_empty() {
        return Ok(df!(MAC => Vec::<u64>::new(), "first_seen" => Vec::<i64>::new(), "last_seen" => Vec::<i64>::new(),
            "first_date" => Vec::<i32>::new(), "last_date" => Vec::<i32>::new(), "days_seen" => Vec::<i64>::new())?);
    }
    Ok(concat(day_summaries, UnionArgs::default())?
        .group_by([col(MAC)])
        .agg([
            col("first_seen").min(),
            col("last_seen").max(),
            col("day").min().alias("first_date"),
            col("day").max().alias("last_date"),
            col("day").n_unique().cast(DataType::Int64).alias("days_seen"),
        ])
        .collect()?)
}

/// Runs every daily metric of one day; frames are conformed to their schemas.
pub fn compute_day(c: &DayCtx) -> Result<Vec<(&'static TableSchema, DataFrame)>> {
    let tz = c.settings.tz_name.as_str();
    let plans: Vec<LazyFrame> =
        DAILY.iter().map(|m| (m.query)(c).with_column(lit(c.day).cast(DataType::Date).alias("date"))).collect();
    let frames = collect_all(plans)?;
    DAILY
        .iter()
        .zip(frames)
        .map(|(m, df)| {
            let s = schema::get(m.name)?;
            Ok((s, s.conform(df, tz)?))
        })
        .collect()
}

fn collect_all(plans: Vec<LazyFrame>) -> Result<Vec<DataFrame>> {
    use rayon::prelude::*;
    plans.into_par_iter().map(|p| p.collect().map_err(anyhow::Error::from)).collect()
}
