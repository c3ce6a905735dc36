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

/// Everything a daily query may read (`visits` also carry their `mall_visit`).
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

// Device counts read the day's shop visits, not `pos`: every record lies in exactly one
// shop visit of its device and shop, and there are about a third as many visits as rows.
fn shop_visitors(c: &DayCtx) -> LazyFrame {
    let lf = c
        .visits
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
    c.visits.clone().lazy().select([col(MAC)]).unique(None, UniqueKeepStrategy::Any).left_join(
        c.customers.clone().lazy().select([col(MAC), col("first_date")]),
        col(MAC),
        col(MAC),
    )
}

/// The daily catalogue, in publishing order.
pub const DAILY: &[Metric] = &[
    Metric {
        name: "mall_daily_visitors",
        query: |c| c.visits.clone().lazy().select([col(MAC).n_unique().cast(DataType::Int64).alias("visitors")]),
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

/// A day's shop visits and mall visits (SPEC §2, §7.2). Every shop visit carries
/// `mall_visit`: the id of the mall visit holding its first record.
pub struct DayVisits {
    /// device, shop_code, start, end, dwell, rssi_max, mall_visit.
    pub shop: DataFrame,
    /// device, start, end, dwell, rssi_max, mall_visit.
    pub mall: DataFrame,
}

/// Shop visits, then mall visits.
///
/// With `visit_gap ≤ mall_gap` (the defaults) mall visits are the device's shop visits merged
/// while the next one starts at most `mall_gap` after the furthest end so far: a silence
/// longer than `mall_gap` cannot lie inside a shop visit, so this equals splitting all its
/// records, from ~⅓ of the rows. Otherwise the records are split directly and each shop
/// visit is matched to the mall visit in progress at its start.
pub fn day_visits(pos: &DataFrame, s: &Settings) -> Result<DayVisits> {
    day_visits_by(pos, s, s.visit_gap <= s.mall_gap)
}

fn day_visits_by(pos: &DataFrame, s: &Settings, merge_shop_visits: bool) -> Result<DayVisits> {
    let shop = visits(pos, s.visit_gap)?;
    let prev = |c: &str| col(c).shift(lit(1));
    let number = |new: Expr| new.fill_null(lit(true)).cast(DataType::UInt32).cum_sum(false).alias("mall_visit");
    if merge_shop_visits {
        let shop = shop
            .lazy()
            .sort([MAC, "start"], SortMultipleOptions::default())
            .with_column(col("end").cum_max(false).over([col(MAC)])?.alias("reach"))
            .with_column(number(col(MAC).neq(prev(MAC)).or((col("start") - prev("reach")).gt(lit(s.mall_gap)))))
            .drop(cols(["reach"]))
            .collect()?;
        let mall = shop
            .clone()
            .lazy()
            .group_by([col("mall_visit")])
            .agg([col(MAC).first(), col("start").min(), col("end").max(), col("rssi_max").max()])
            .with_column((col("end") - col("start")).alias("dwell"))
            .collect()?;
        return Ok(DayVisits { shop, mall });
    }
    // Mall visits numbered in (device, start) order, as the running count below numbers them.
    let mall = sessions(pos, &[MAC], s.mall_gap)?
        .lazy()
        .sort([MAC, "start"], SortMultipleOptions::default())
        .with_column(int_range(lit(1u32), len() + lit(1u32), 1, DataType::UInt32).alias("mall_visit"))
        .collect()?;
    let starts = mall.clone().lazy().select([col(MAC), col("start"), lit(0i32).alias("kind")]);
    // Each mall visit sorts before the shop visits starting in it (same second: kind 0
    // first); the running count of mall visits numbers the one in progress.
    let shop = concat(
        [shop.lazy().with_column(lit(1i32).alias("kind")), starts],
        UnionArgs { diagonal: true, ..Default::default() },
    )?
    .sort([MAC, "start", "kind"], SortMultipleOptions::default())
    .with_column(number(col("kind").eq(lit(0i32))))
    .filter(col("kind").eq(lit(1i32)))
    .drop(cols(["kind"]))
    .collect()?;
    Ok(DayVisits { shop, mall })
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
    visits: Option<DayVisits>,
    status: DataFrame,
    sh: &Shared,
) -> Result<Vec<(&'static TableSchema, DataFrame)>> {
    let s = sh.settings;
    let DayVisits { shop, mall } = match visits {
        Some(v) => v,
        None => day_visits(&pos, s)?,
    };
    // A device is staff for the whole day, so dropping its rows equals recomputing without it.
    let (pos, shop) = if s.staff_exclude {
        let staff = status.clone().lazy().filter(col("staff")).select([col(MAC)]);
        let without = |df: DataFrame| df.lazy().anti_join(staff.clone(), col(MAC), col(MAC)).collect();
        (without(pos)?, without(shop)?)
    } else {
        (pos, shop)
    };
    let ctx = DayCtx {
        day,
        pos,
        visits: shop,
        mall,
        status,
        customers: sh.customers,
        dims: sh.dims,
        settings: s,
        names: sh.names,
    };
    compute_day(&ctx)
}

/// Runs every daily metric of one day; frames are conformed to their schemas.
pub fn compute_day(c: &DayCtx) -> Result<Vec<(&'static TableSchema, DataFrame)>> {
    let tz = c.settings.tz_name.as_str();
    let plans: Vec<LazyFrame> =
        DAILY.iter().map(|m| (m.query)(c).with_column(lit(c.day).cast(DataType::Date).alias("date"))).collect();
    let names: Vec<&str> = DAILY.iter().map(|m| m.name).collect();
    let frames = collect_all(plans, &names)?;
    DAILY
        .iter()
        .zip(frames)
        .map(|(m, df)| {
            let s = schema::get(m.name)?;
            Ok((s, s.conform_with(df, tz, c.names)?))
        })
        .collect()
}

/// Collects independent plans concurrently (on [`crate::par`]'s plain threads, see there why).
fn collect_all(plans: Vec<LazyFrame>, names: &[&str]) -> Result<Vec<DataFrame>> {
    let trace = std::env::var("FOOTFALL_TRACE").is_ok_and(|v| v == "1");
    let jobs: Vec<(LazyFrame, &str)> = plans.into_iter().zip(names.iter().copied()).collect();
    crate::par::map_owned(jobs, |(plan, name)| {
        let t0 = std::time::Instant::now();
        let df = plan.collect()?;
        if trace {
            eprintln!("trace:     {name} {:.2}s", t0.elapsed().as_secs_f64());
        }
        Ok(df)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn merging_shop_visits_equals_splitting_records() {
        let s = Settings::default(); // shop gap 600 ≤ mall gap 900
        for seed in 0..20 {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let n = 300;
            let second: Vec<i64> = (0..n).map(|_| rng.gen_range(0..86_000)).collect();
            let mac: Vec<u64> = (0..n).map(|_| rng.gen_range(1..5)).collect();
            let shop: Vec<&str> = (0..n).map(|_| ["S1", "S2", "S3"][rng.gen_range(0..3)]).collect();
            let rssi: Vec<i32> = (0..n).map(|_| rng.gen_range(-90..-30)).collect();
            let pos = df!("second" => second, MAC => mac, "shop_code" => shop, "rssi_max" => rssi).unwrap();
            let sorted = |df: DataFrame, by: &[&str]| df.sort(by.to_vec(), Default::default()).unwrap();
            let a = day_visits_by(&pos, &s, true).unwrap();
            let b = day_visits_by(&pos, &s, false).unwrap();
            assert!(a.mall.height() > 10, "seed {seed}: {} mall visits", a.mall.height());
            assert_eq!(
                sorted(a.shop, &[MAC, "start", "shop_code"]),
                sorted(b.shop, &[MAC, "start", "shop_code"]),
                "seed {seed}"
            );
            let mall = |df: DataFrame| {
                sorted(df.select(["mall_visit", MAC, "start", "end", "dwell", "rssi_max"]).unwrap(), &["mall_visit"])
            };
            assert_eq!(mall(a.mall), mall(b.mall), "seed {seed}");
        }
    }
}
