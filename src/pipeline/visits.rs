//! Stage 3, a day's rollup → its visits (SPEC §2, §7.2): shop visits (a device's records at
//! one shop, split where consecutive records are more than `visit_gap` apart) and mall visits
//! (all its records, split at `mall_gap`). Computed once per day and shared by every query
//! that needs them; a day's rollup never crosses local midnight, so neither do visits.

use anyhow::Result;
use polars::prelude::*;

use crate::config::Settings;
pub use crate::rules::qualifying;
use crate::schema::MAC;

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
