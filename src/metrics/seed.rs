//! The seed tables (SPEC §3): the original Flink jobs' metrics, with their defects fixed.
//! Device counts read the day's shop visits, not `pos`: every record lies in exactly one shop
//! visit of its device and shop, and there are about a third as many visits as rows.

use polars::prelude::*;

use super::context::{with_place, with_shop_names, DayCtx};
use crate::schema::MAC;

fn desc(cols: &[bool]) -> SortMultipleOptions {
    SortMultipleOptions::default().with_order_descending_multi(cols.to_vec()).with_maintain_order(true)
}

pub fn mall_daily_visitors(c: &DayCtx) -> PolarsResult<LazyFrame> {
    Ok(c.visits.clone().lazy().select([col(MAC).n_unique().cast(DataType::Int64).alias("visitors")]))
}

pub fn shop_daily_visitors(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let lf = c
        .visits
        .clone()
        .lazy()
        .group_by([col("shop_code")])
        .agg([col(MAC).n_unique().cast(DataType::Int64).alias("visitors")]);
    Ok(with_shop_names(lf, c.dims))
}

pub fn mall_hourly_visitors(c: &DayCtx) -> PolarsResult<LazyFrame> {
    Ok(c.pos
        .clone()
        .lazy()
        .group_by([col("hour")])
        .agg([col(MAC).n_unique().cast(DataType::Int64).alias("visitors")])
        .select([col("hour").alias("hour_start"), col("visitors")]))
}

pub fn peak_hour_daily(c: &DayCtx) -> PolarsResult<LazyFrame> {
    Ok(mall_hourly_visitors(c)?.sort(["visitors", "hour_start"], desc(&[true, false])).limit(1))
}

pub fn top_shops_daily(c: &DayCtx) -> PolarsResult<LazyFrame> {
    Ok(shop_daily_visitors(c)?
        .sort(["visitors", "shop_code"], desc(&[true, false]))
        .limit(c.settings.top_shops)
        .with_column(int_range(lit(1), len() + lit(1), 1, DataType::Int32).alias("rank")))
}

/// Devices seen that day with their first day ever.
fn day_devices(c: &DayCtx) -> LazyFrame {
    c.visits.clone().lazy().select([col(MAC)]).unique(None, UniqueKeepStrategy::Any).left_join(
        c.customers.clone().lazy().select([col(MAC), col("first_date")]),
        col(MAC),
        col(MAC),
    )
}

pub fn mall_daily_new_customers(c: &DayCtx) -> PolarsResult<LazyFrame> {
    Ok(day_devices(c)
        .select([
            len().cast(DataType::Int64).alias("visitors"),
            col("first_date").eq(lit(c.day)).cast(DataType::Int64).sum().alias("new_customers"),
        ])
        .with_columns([
            (col("visitors") - col("new_customers")).alias("returning_customers"),
            (col("new_customers").cast(DataType::Float64) / col("visitors").cast(DataType::Float64)).alias("new_ratio"),
        ]))
}

pub fn customer_positions(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let firsts = c.customers.clone().lazy().select([col(MAC), col("first_date")]);
    Ok(with_place(c.pos.clone().lazy(), c.dims)
        .left_join(firsts, col(MAC), col(MAC))
        .with_column(col("first_date").eq(lit(c.day)).fill_null(lit(false)).alias("is_new_customer")))
}

pub fn latest_positions(c: &DayCtx) -> PolarsResult<LazyFrame> {
    // Only the rows of each device's last second are ranked (not the whole day).
    let pos = c.pos.clone().lazy();
    let last_second = pos.clone().group_by([col(MAC)]).agg([col("second").max()]);
    let last = pos
        .join(last_second, [col(MAC), col("second")], [col(MAC), col("second")], JoinArgs::new(JoinType::Inner))
        .sort([MAC, "rssi_max", "ap_mac", "shop_code"], desc(&[false, true, false, false]))
        .unique_stable_generic(Some(vec![col(MAC)]), UniqueKeepStrategy::First);
    Ok(with_place(last, c.dims))
}

/// Visits per (device, shop) that day with their summed dwell.
fn visits_per_shop(c: &DayCtx) -> LazyFrame {
    c.visits.clone().lazy().group_by([col(MAC), col("shop_code")]).agg([
        len().cast(DataType::Int64).alias("visits"),
        col("dwell").sum().cast(DataType::Int64).alias("dwell_seconds"),
    ])
}

pub fn favorite_shop_daily(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let best = visits_per_shop(c)
        .sort([MAC, "visits", "dwell_seconds", "shop_code"], desc(&[false, true, true, false]))
        .unique_stable_generic(Some(vec![col(MAC)]), UniqueKeepStrategy::First);
    Ok(with_shop_names(best, c.dims))
}

pub fn repeat_shop_visits_daily(c: &DayCtx) -> PolarsResult<LazyFrame> {
    Ok(with_shop_names(visits_per_shop(c).filter(col("visits").gt_eq(lit(2i64))), c.dims))
}
