//! The presence tables (docs/tables.md): who really came in, for how long, how loyal they are — without staff. Queries over
//! one day's visits and that day's statuses (staff, visitor, loyalty: decided by the
//! pipeline's statuses stage).

use polars::prelude::*;

use super::context::{coordinates, rows, with_shop_names, DayCtx, Rows};
use crate::config::Settings;
use crate::rules::{qualifying, DAILY, FIRST_TIME, OCCASIONAL, WEEKLY};
use crate::schema::MAC;

/// Dwell buckets of qualifying visits: (column, lower bound, upper bound) in seconds.
const BUCKETS: [(&str, i64, i64); 5] = [
    ("dwell_lt_5m", 0, 300),
    ("dwell_5_20m", 300, 1200),
    ("dwell_20_60m", 1200, 3600),
    ("dwell_1_6h", 3600, 21600),
    ("dwell_6h_plus", 21600, i64::MAX),
];

fn staff_of_day(c: &DayCtx) -> LazyFrame {
    c.status.clone().lazy().filter(col("staff")).select([col(MAC)])
}

/// `lf` without the day's staff devices.
fn non_staff(lf: LazyFrame, c: &DayCtx) -> LazyFrame {
    lf.anti_join(staff_of_day(c), col(MAC), col(MAC))
}

/// detected, visitors, passersby, capture_rate, visits, dwell statistics and buckets over
/// a frame of visits (one row per visit).
fn engagement(lf: LazyFrame, by: &[&str], s: &Settings, extra: Vec<Expr>) -> LazyFrame {
    let q = qualifying(s);
    let dwell = col("dwell").filter(q.clone()).cast(DataType::Float64);
    let mut aggs = vec![
        col(MAC).n_unique().cast(DataType::Int64).alias("detected"),
        col(MAC).filter(q.clone()).n_unique().cast(DataType::Int64).alias("visitors"),
        q.clone().cast(DataType::Int64).sum().alias("visits"),
        dwell.clone().mean().alias("avg_dwell_seconds"),
        dwell.median().alias("median_dwell_seconds"),
    ];
    for (name, lo, hi) in BUCKETS {
        let inside = col("dwell").gt_eq(lit(lo)).and(col("dwell").lt(lit(hi)));
        aggs.push(q.clone().and(inside).cast(DataType::Int64).sum().alias(name));
    }
    aggs.extend(extra);
    let grouped = if by.is_empty() {
        lf.select(aggs)
    } else {
        lf.group_by(by.iter().map(|c| col(*c)).collect::<Vec<_>>()).agg(aggs)
    };
    grouped.with_columns([
        (col("detected") - col("visitors")).alias("passersby"),
        ratio(col("visitors"), col("detected")).alias("capture_rate"),
    ])
}

/// a / b as a float, null where b = 0.
fn ratio(a: Expr, b: Expr) -> Expr {
    when(b.clone().gt(lit(0i64)))
        .then(a.cast(DataType::Float64) / b.cast(DataType::Float64))
        .otherwise(lit(NULL).cast(DataType::Float64))
}

pub fn shop_daily_engagement(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let lf = engagement(non_staff(c.visits.clone().lazy(), c), &["shop_code"], c.settings, vec![]);
    Ok(with_shop_names(lf, c.dims))
}

pub fn mall_daily_engagement(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let flags = c.status.clone().lazy().select([col(MAC), col("randomized")]);
    let mall = non_staff(c.mall.clone().lazy(), c).left_join(flags, col(MAC), col(MAC));
    let randomized = col(MAC).filter(col("randomized")).n_unique().cast(DataType::Int64).alias("randomized_devices");
    let staff = c.status.clone().lazy().select([col("staff").cast(DataType::Int64).sum().alias("staff")]);
    Ok(engagement(mall, &[], c.settings, vec![randomized])
        .cross_join(staff, None)
        .with_column(ratio(col("randomized_devices"), col("detected")).alias("randomized_share")))
}

pub fn mall_daily_loyalty(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let is = |class: i32| col("loyalty").eq(lit(class)).fill_null(lit(false)).cast(DataType::Int64).sum();
    Ok(c.status
        .clone()
        .lazy()
        .select([
            col("visitor").cast(DataType::Int64).sum().alias("visitors"),
            is(FIRST_TIME).alias("first_time"),
            is(DAILY).alias("daily"),
            is(WEEKLY).alias("weekly"),
            is(OCCASIONAL).alias("occasional"),
        ])
        .with_column((col("visitors") - col("first_time")).alias("returning")))
}

pub fn staff_devices_daily(c: &DayCtx) -> PolarsResult<LazyFrame> {
    Ok(c.status.clone().lazy().filter(col("staff")).select([
        col(MAC),
        (col("mall_dwell").cast(DataType::Float64) / lit(3600.0)).alias("hours_present"),
        col("days7").alias("days_present_last_7"),
    ]))
}

/// Consecutive qualifying shop visits within one mall visit (each shop visit carries the
/// mall visit holding its first record), ordered by start then shop_code.
pub fn shop_transitions_daily(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let same = |c: &str| col(c).eq(col(c).shift(lit(1)));
    Ok(non_staff(c.visits.clone().lazy(), c)
        .filter(qualifying(c.settings))
        .select([col(MAC), col("mall_visit"), col("start"), col("shop_code")])
        .sort(["mall_visit", "start", "shop_code"], SortMultipleOptions::default())
        .with_column(col("shop_code").shift(lit(1)).alias("from_shop"))
        .filter(same("mall_visit").and(col("from_shop").neq(col("shop_code"))))
        .group_by([col("from_shop"), col("shop_code").alias("to_shop")])
        .agg([
            len().cast(DataType::Int64).alias("transitions"),
            col(MAC).n_unique().cast(DataType::Int64).alias("devices"),
        ]))
}

/// Distinct devices per (density slot, grid cell): each non-staff device's position in each
/// second it was heard (docs/tables.md, "Position") — place_info where known, else the RSSI-power-weighted
/// centroid of the hearing APs that ap_info places, each AP once with its strongest RSSI —
/// binned into slots starting on the local clock and `density_cell` cells.
///
/// One pass over `pos` in its (second, device, AP, shop) order: a device-second's rows are
/// consecutive, and so are an AP's rows within it. (As a Polars query this was a join and a
/// group-by over every device-second, the day's most expensive table.)
pub fn density_grid(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let s = c.settings;
    let staff: PlHashSet<u64> = staff_of_day(c).collect()?.column(MAC)?.u64()?.into_no_null_iter().collect();
    let located = |df: &DataFrame, key: &str| -> PolarsResult<PlHashMap<u64, (f64, f64)>> {
        Ok(coordinates(df, key)?.into_iter().filter_map(|(k, xy)| Some((k, (xy.0?, xy.1?)))).collect())
    };
    let (places, aps) = (located(&c.dims.places, MAC)?, located(&c.dims.aps, "ap_mac")?);
    let Rows { second, mac, ap, hour, rssi_max: rssi } = rows(&c.pos)?;
    let n = second.len();
    let mut clock = crate::timeutil::LocalClock::new(s.tz);
    let day_start = clock.day_start(c.day);
    // 10^(rssi/10) of the usual RSSIs computed once, not per row (the same values).
    const LOW: i32 = -128;
    let powers: Vec<f64> = (LOW..128).map(|r| 10f64.powf(r as f64 / 10.0)).collect();
    let power = |r: i32| match r.checked_sub(LOW).and_then(|i| powers.get(i as usize)) {
        Some(&p) => p,
        None => 10f64.powf(r as f64 / 10.0),
    };
    let cell = |v: f64| {
        let r = (v * 1000.0).round() / 1000.0;
        ((if r.is_finite() { r } else { v }) / s.density_cell).floor() as i64
    };
    // Distinct (cell, device) of each slot still open. A slot starting at `s` only takes
    // seconds in [s, s + slot), so it is counted and dropped once the rows reach s + slot:
    // the sets hold one slot's devices, not the day's.
    type Open = Vec<(i64, PlHashSet<(i64, i64, u64)>)>;
    let mut open: Open = Vec::new();
    let mut counts: PlHashMap<(i64, i64, i64), i64> = PlHashMap::new();
    let close = |open: &mut Open, counts: &mut PlHashMap<_, i64>, until: i64| {
        open.retain(|(start, set)| {
            if start + s.density_slot > until {
                return true;
            }
            for &(x, y, _) in set {
                *counts.entry((*start, x, y)).or_default() += 1;
            }
            false
        });
    };
    let mut i = 0;
    while i < n {
        let (t, m) = (second[i], mac[i]);
        if i == 0 || t != second[i - 1] {
            close(&mut open, &mut counts, t);
        }
        let mut j = i + 1;
        while j < n && second[j] == t && mac[j] == m {
            if ap[j] < ap[j - 1] {
                polars_bail!(ComputeError: "a day's rollup is not in (second, device, AP) order");
            }
            j += 1;
        }
        if j < n && (second[j], mac[j]) < (t, m) {
            polars_bail!(ComputeError: "a day's rollup is not in (second, device, AP) order");
        }
        let at = if staff.contains(&m) {
            None
        } else if let Some(&xy) = places.get(&m) {
            Some(xy)
        } else {
            let (mut w, mut wx, mut wy) = (0.0, 0.0, 0.0);
            let mut k = i;
            while k < j {
                let mut best = rssi[k];
                let mut e = k + 1;
                while e < j && ap[e] == ap[k] {
                    best = best.max(rssi[e]);
                    e += 1;
                }
                if let Some(&(x, y)) = aps.get(&ap[k]) {
                    let p = power(best);
                    (w, wx, wy) = (w + p, wx + p * x, wy + p * y);
                }
                k = e;
            }
            (w > 0.0).then(|| (wx / w, wy / w))
        };
        if let Some((x, y)) = at {
            // The UTC offset is constant within a local hour (as for hour_start).
            let start = t - (t + clock.offset(hour[i])).rem_euclid(s.density_slot);
            // A slot longer than an hour may reach back before a DST day's first instant.
            let start = start.max(day_start);
            let k = match open.iter().position(|(s, _)| *s == start) {
                Some(k) => k,
                None => {
                    open.push((start, PlHashSet::new()));
                    open.len() - 1
                }
            };
            open[k].1.insert((cell(x), cell(y), m));
        }
        i = j;
    }
    close(&mut open, &mut counts, i64::MAX);
    let (mut slot, mut cx, mut cy, mut devices) = (vec![], vec![], vec![], vec![]);
    for ((t, x, y), n) in counts {
        slot.push(t);
        cx.push(x);
        cy.push(y);
        devices.push(n);
    }
    Ok(df!("slot_start" => slot, "cell_x" => cx, "cell_y" => cy, "devices" => devices)?.lazy())
}

/// Length of an `occupancy_5min` slot (seconds): slots start on the local clock.
pub const OCCUPANCY_SLOT: i64 = 300;

/// Qualifying non-staff visitors present in each 5-minute local slot, per shop (from qualifying
/// shop visits) and for the whole mall (`shop_code` "*", from qualifying mall visits): a
/// device is present in every slot its visit [start, end] overlaps, counted once per slot.
/// The day's last slot is the mall's "occupancy now". Slots without a visitor have no row.
///
/// A device's visits to one shop (and its mall visits) come in start order and never overlap,
/// so "once per slot" needs only the last slot counted for each (device, shop): a visit counts
/// the slots after it. Counts go to a dense (slot, shop) array, a lookup per visit instead of a
/// hash-set insert per (visit, slot).
pub fn occupancy_5min(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let q = qualifying(c.settings);
    let pick = [col(MAC), col("shop_code"), col("start"), col("end")];
    let shops = non_staff(c.visits.clone().lazy(), c).filter(q.clone()).select(pick.clone());
    let mall = non_staff(c.mall.clone().lazy(), c).filter(q).with_column(lit("*").alias("shop_code")).select(pick);
    let visits = concat([shops, mall], UnionArgs::default())?.collect()?;
    let (mac, shop) = (visits.column(MAC)?.u64()?, visits.column("shop_code")?.str()?);
    let (start, end) = (visits.column("start")?.i64()?, visits.column("end")?.i64()?);
    if [mac.null_count(), shop.null_count(), start.null_count(), end.null_count()].iter().any(|n| *n > 0) {
        polars_bail!(ComputeError: "a day's visits have null keys");
    }
    let mut dict = crate::pipeline::rollup::Dict::default();
    let shop_id = dict.ids_of(shop);
    let codes = dict.names();
    let mut clock = crate::timeutil::LocalClock::new(c.settings.tz);
    // Zone offsets are whole multiples of 5 minutes, so local slots are UTC-aligned steps.
    let first_slot: Vec<i64> =
        start.into_no_null_iter().map(|a| a - (a + clock.offset(a)).rem_euclid(OCCUPANCY_SLOT)).collect();
    let base = first_slot.iter().copied().min().unwrap_or(0);
    let slots = end.into_no_null_iter().max().map_or(0, |b| ((b - base) / OCCUPANCY_SLOT + 1) as usize);
    let mut counts = vec![0i64; slots * codes.len()];
    // (device, shop) → (start of its last visit, index of the last slot counted).
    let mut last: PlHashMap<(u64, u32), (i64, i64)> = PlHashMap::new();
    let rows = mac
        .into_no_null_iter()
        .zip(shop_id.iter().copied())
        .zip(start.into_no_null_iter().zip(end.into_no_null_iter()));
    for (((m, s), (a, b)), from) in rows.zip(first_slot) {
        let mut slot = (from - base) / OCCUPANCY_SLOT;
        let until = (b - base).div_euclid(OCCUPANCY_SLOT);
        if (from - base) % OCCUPANCY_SLOT != 0 {
            polars_bail!(ComputeError: "the zone's UTC offsets are not whole multiples of 5 minutes");
        }
        match last.get_mut(&(m, s)) {
            Some(e) => {
                let (prev_start, counted) = *e;
                if a < prev_start {
                    polars_bail!(ComputeError: "a device's visits to a shop are not in start order");
                }
                slot = slot.max(counted + 1);
                *e = (a, until.max(counted));
            }
            None => {
                last.insert((m, s), (a, until));
            }
        }
        while slot <= until {
            counts[slot as usize * codes.len() + s as usize] += 1;
            slot += 1;
        }
    }
    let (mut slot, mut code, mut visitors) = (vec![], vec![], vec![]);
    for (i, &n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
        slot.push(base + (i / codes.len()) as i64 * OCCUPANCY_SLOT);
        code.push(codes[i % codes.len()].as_str());
        visitors.push(n);
    }
    Ok(df!("slot_start" => slot, "shop_code" => code, "visitors" => visitors)?.lazy())
}
