//! The catalogue: every date-partitioned result table as one declarative Polars query over
//! the day's rollups. A table's columns, types and key live in `schemas/<name>.json`; its
//! rule lives here, once. Adding a metric = one schema file + one entry in [`DAILY`].
//!
//! Inputs of a day ([`DayCtx`]):
//! - `pos`: one row per (second, device, AP, shop) with RSSI min/max: the day's
//!   duplicate-free rollup of accepted probe records (`hour` = local hour start);
//! - `visits`: the day's shop visits, computed once from `pos` and shared;
//! - `mall`: the day's mall visits (SPEC §7), computed once from `pos`;
//! - `status`: staff/visitor/loyalty status of each device seen that day ([`presence::statuses`]);
//! - `customers`: first/last sighting of every device over all days;
//! - the dimensions and settings.

pub mod presence;

use anyhow::Result;
use polars::prelude::*;

use crate::config::Settings;
use crate::dims::Dims;
use crate::schema::{self, Pseudonyms, TableSchema};

/// Everything a daily query may read.
pub struct DayCtx<'a> {
    pub day: i32,
    pub pos: DataFrame,
    pub visits: DataFrame,
    pub mall: DataFrame,
    pub status: DataFrame,
    pub customers: &'a DataFrame,
    pub dims: &'a Dims,
    pub settings: &'a Settings,
    /// Pseudonyms of device ids when MACs are pseudonymised.
    pub names: Option<&'a Pseudonyms>,
}

/// A date-partitioned result table.
pub struct Metric {
    pub name: &'static str,
    /// Rows of one day, without the `date` column (added by [`compute_day`]).
    pub query: fn(&DayCtx) -> LazyFrame,
}

pub(crate) const MAC: &str = "user_device_mac";

fn desc(cols: &[bool]) -> SortMultipleOptions {
    SortMultipleOptions::default().with_order_descending_multi(cols.to_vec()).with_maintain_order(true)
}

pub(crate) fn with_shop_names(lf: LazyFrame, dims: &Dims) -> LazyFrame {
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
    // SPEC §7: staff are never counted here (staff_devices_daily lists them).
    Metric { name: "shop_daily_engagement", query: presence::shop_daily_engagement },
    Metric { name: "mall_daily_engagement", query: presence::mall_daily_engagement },
    Metric { name: "mall_daily_loyalty", query: presence::mall_daily_loyalty },
    Metric { name: "staff_devices_daily", query: presence::staff_devices_daily },
    Metric { name: "shop_transitions_daily", query: presence::shop_transitions_daily },
    Metric { name: "density_grid", query: presence::density_grid },
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
    sessions(pos, &[MAC, "shop_code"], gap)
}

/// Mall visits of a day (SPEC §7.2): a device's records anywhere in the mall, split where
/// consecutive seconds are more than `gap` apart. Columns: device, start, end, dwell, rssi_max.
pub fn mall_visits(pos: &DataFrame, gap: i64) -> Result<DataFrame> {
    sessions(pos, &[MAC], gap)
}

/// Gap-split sessions of `pos` per `keys` (a day's rollup never crosses local midnight).
fn sessions(pos: &DataFrame, keys: &[&str], gap: i64) -> Result<DataFrame> {
    let prev = |c: &str| col(c).shift(lit(1));
    let mut new = (col("second") - prev("second")).gt(lit(gap));
    for k in keys {
        new = col(*k).neq(prev(k)).or(new);
    }
    let mut by: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    by.push(col("second"));
    let mut order: Vec<&str> = keys.to_vec();
    order.push("second");
    let mut aggs: Vec<Expr> = keys.iter().map(|k| col(*k).first()).collect();
    aggs.extend([col("second").min().alias("start"), col("second").max().alias("end"), col("rssi_max").max()]);
    Ok(pos
        .clone()
        .lazy()
        .group_by(by)
        .agg([col("rssi_max").max()])
        .sort(order, SortMultipleOptions::default())
        .with_column(new.fill_null(lit(true)).cast(DataType::UInt32).cum_sum(false).alias("visit"))
        .group_by([col("visit")])
        .agg(aggs)
        .with_column((col("end") - col("start")).alias("dwell"))
        .drop(cols(["visit"]))
        .collect()?)
}

/// The `customers` snapshot from all device-day statuses; with `staff.policy = "exclude"`
/// the days a device was staff do not count.
pub fn customers(statuses: &DataFrame, s: &Settings) -> Result<DataFrame> {
    let mut lf = statuses.clone().lazy();
    if s.staff_exclude {
        lf = lf.filter(col("staff").not());
    }
    Ok(lf
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

/// What every date of a run shares.
pub struct Shared<'a> {
    pub customers: &'a DataFrame,
    pub dims: &'a Dims,
    pub settings: &'a Settings,
    pub names: Option<&'a Pseudonyms>,
}

/// Every table of one date from its rollup (`mall` visits if already computed) and its
/// statuses: applies `staff.policy = "exclude"`, derives the shop visits, runs the catalogue.
pub fn tables_of_day(
    day: i32,
    pos: DataFrame,
    mall: Option<DataFrame>,
    status: DataFrame,
    sh: &Shared,
) -> Result<Vec<(&'static TableSchema, DataFrame)>> {
    let s = sh.settings;
    let mall = match mall {
        Some(m) => m,
        None => mall_visits(&pos, s.mall_gap)?,
    };
    let pos = if s.staff_exclude {
        let staff = status.clone().lazy().filter(col("staff")).select([col(MAC)]);
        pos.lazy().anti_join(staff, col(MAC), col(MAC)).collect()?
    } else {
        pos
    };
    let visits = visits(&pos, s.visit_gap)?;
    let ctx =
        DayCtx { day, pos, visits, mall, status, customers: sh.customers, dims: sh.dims, settings: s, names: sh.names };
    compute_day(&ctx)
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
            Ok((s, s.conform_with(df, tz, c.names)?))
        })
        .collect()
}

/// Collects independent plans concurrently on plain threads. Not on rayon: a rayon worker
/// waiting for Polars' own pool steals further jobs, so each collect could nest inside
/// another on one stack (seen as a rare stack overflow).
fn collect_all(plans: Vec<LazyFrame>) -> Result<Vec<DataFrame>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let n = plans.len();
    let jobs: Vec<Mutex<Option<LazyFrame>>> = plans.into_iter().map(|p| Mutex::new(Some(p))).collect();
    let results: Vec<Mutex<Option<Result<DataFrame>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |p| p.get()).min(n);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            std::thread::Builder::new()
                .name("footfall-query".into())
                .spawn_scoped(scope, || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let plan = jobs[i].lock().unwrap().take().expect("each plan is taken once");
                    *results[i].lock().unwrap() = Some(plan.collect().map_err(anyhow::Error::from));
                })
                .expect("cannot start a query thread");
        }
    });
    results.into_iter().map(|r| r.into_inner().unwrap().expect("every plan ran")).collect()
}
