//! SPEC §7: who really came in, for how long, how loyal they are — without staff.
//!
//! Two layers:
//! - per device and day, a small summary kept in the state (first/last second, summed
//!   mall-visit dwell, whether it had a qualifying mall visit);
//! - [`statuses`]: one pass over all those summaries, sorted by (device, day), that decides
//!   staff, visitor-day and loyalty class of every device-day. Staff looks back 6 days and
//!   loyalty 27 days (and "first visitor-day ever" all the way), so these cannot be decided
//!   from one day's data; comparing the statuses with the previous run's tells `update`
//!   exactly which dates must be re-published.
//!
//! The six §7 tables are queries over one day's rollups plus that day's statuses; they are
//! registered in the catalogue ([`super::DAILY`]) like the seed tables.

use anyhow::Result;
use polars::prelude::*;

use super::{DayCtx, MAC};
use crate::config::Settings;
use crate::mac::device_randomized;

/// Loyalty classes as stored in the `loyalty` status column (null = not a visitor that day).
pub const FIRST_TIME: i32 = 1;
pub const DAILY: i32 = 2;
pub const WEEKLY: i32 = 3;
pub const OCCASIONAL: i32 = 4;

/// Dwell buckets of qualifying visits: (column, lower bound, upper bound) in seconds.
const BUCKETS: [(&str, i64, i64); 5] = [
    ("dwell_lt_5m", 0, 300),
    ("dwell_5_20m", 300, 1200),
    ("dwell_20_60m", 1200, 3600),
    ("dwell_1_6h", 3600, 21600),
    ("dwell_6h_plus", 21600, i64::MAX),
];

/// A visit (shop or mall) qualifies: strongest RSSI ≥ `min_rssi` and dwell ≥ `min_dwell`.
pub fn qualifying(s: &Settings) -> Expr {
    col("rssi_max").gt_eq(lit(s.min_rssi)).and(col("dwell").gt_eq(lit(s.min_dwell)))
}

/// A device's summary of one day, from the day's mall visits (kept in the state). Mall
/// visits hold every record, so their first start and last end are the day's first and last
/// sighting.
pub fn day_device_summary(mall: &DataFrame, day: i32, s: &Settings) -> Result<DataFrame> {
    Ok(mall
        .clone()
        .lazy()
        .group_by([col(MAC)])
        .agg([
            col("start").min().alias("first_seen"),
            col("end").max().alias("last_seen"),
            col("dwell").sum().cast(DataType::Int64).alias("mall_dwell"),
            qualifying(s).any(true).alias("mall_qualifying"),
        ])
        .with_column(lit(day).alias("day"))
        .collect()?)
}

/// Staff, visitor and loyalty status of every device-day, from all days' summaries.
///
/// Columns: the summary's (user_device_mac, day, first_seen, last_seen, mall_dwell) plus
/// `days7` (days of D−6..D with at least `min_hours_per_day`), `staff`, `visitor` (a
/// qualifying mall visit and not staff), `loyalty` (class code, null unless visitor) and
/// `randomized`.
pub fn statuses(summaries: Vec<LazyFrame>, s: &Settings) -> Result<DataFrame> {
    if summaries.is_empty() {
        return Ok(df!(MAC => Vec::<u64>::new(), "day" => Vec::<i32>::new(), "first_seen" => Vec::<i64>::new(),
            "last_seen" => Vec::<i64>::new(), "mall_dwell" => Vec::<i64>::new(), "days7" => Vec::<i64>::new(),
            "staff" => Vec::<bool>::new(), "visitor" => Vec::<bool>::new(), "loyalty" => Vec::<Option<i32>>::new(),
            "randomized" => Vec::<bool>::new())?);
    }
    let df = concat(summaries, UnionArgs::default())?
        .select([col(MAC), col("day"), col("first_seen"), col("last_seen"), col("mall_dwell"), col("mall_qualifying")])
        .sort([MAC, "day"], SortMultipleOptions::default())
        .collect()?;
    let macs: Vec<u64> = df.column(MAC)?.u64()?.into_no_null_iter().collect();
    let days: Vec<i32> = df.column("day")?.i32()?.into_no_null_iter().collect();
    let dwell: Vec<i64> = df.column("mall_dwell")?.i64()?.into_no_null_iter().collect();
    let qual: Vec<bool> = df.column("mall_qualifying")?.bool()?.iter().map(|v| v.unwrap_or(false)).collect();
    let st = classify(&macs, &days, &dwell, &qual, s);
    let keyed = s.mac_key.is_some();
    let mut out = df.drop("mall_qualifying")?;
    out.with_column(Column::new("days7".into(), st.days7))?;
    out.with_column(Column::new("staff".into(), st.staff))?;
    out.with_column(Column::new("visitor".into(), st.visitor))?;
    out.with_column(Column::new("loyalty".into(), st.loyalty))?;
    out.with_column(Column::new(
        "randomized".into(),
        macs.iter().map(|m| device_randomized(*m, keyed)).collect::<Vec<bool>>(),
    ))?;
    Ok(out)
}

/// The status columns of [`statuses`], in input order.
struct Classified {
    days7: Vec<i64>,
    staff: Vec<bool>,
    visitor: Vec<bool>,
    loyalty: Vec<Option<i32>>,
}

/// Applies the §7.2 rules to device-days sorted by (device, day), one row per device-day.
fn classify(macs: &[u64], days: &[i32], dwell: &[i64], qualifying: &[bool], s: &Settings) -> Classified {
    let n = macs.len();
    let min_dwell_day = s.staff_min_hours * 3600.0;
    let mut c =
        Classified { days7: vec![0; n], staff: vec![false; n], visitor: vec![false; n], loyalty: vec![None; n] };
    let mut start = 0; // first row of the current device
    for i in 0..n {
        if i > 0 && macs[i] != macs[i - 1] {
            start = i;
        }
        let d = days[i];
        // Rows of this device within D−27..D, newest first (one row per day).
        let window = (start..=i).rev().take_while(|&j| days[j] >= d - 27);
        let mut days7 = 0;
        for j in window.clone() {
            if days[j] >= d - 6 && dwell[j] as f64 >= min_dwell_day {
                days7 += 1;
            }
        }
        c.days7[i] = days7;
        c.staff[i] = days7 >= s.staff_min_days as i64;
        c.visitor[i] = qualifying[i] && !c.staff[i];
        if !c.visitor[i] {
            continue;
        }
        let earlier_visit = (start..i).any(|j| c.visitor[j]);
        let (mut last7, mut blocks) = (0, 0u8);
        for j in window.filter(|&j| c.visitor[j]) {
            let back = d - days[j];
            if back <= 6 {
                last7 += 1;
            }
            blocks |= 1 << (back / 7);
        }
        c.loyalty[i] = Some(if !earlier_visit {
            FIRST_TIME
        } else if last7 >= 5 {
            DAILY
        } else if blocks.count_ones() >= 2 {
            WEEKLY
        } else {
            OCCASIONAL
        });
    }
    c
}

/// Dates from `since` on whose §7 rows change between two status frames (a device-day
/// appearing, disappearing or changing staff/visitor/loyalty status). A day's statuses depend
/// only on that day and earlier ones, so with `since` = the earliest day whose data changed
/// nothing before it can differ.
pub fn changed_status_days(old: &DataFrame, new: &DataFrame, since: i32) -> Result<std::collections::BTreeSet<i32>> {
    let cols = ["staff", "visitor", "loyalty", "days7", "mall_dwell"];
    let pick = |df: &DataFrame, sfx: &str| {
        let mut sel = vec![col(MAC), col("day"), lit(true).alias(format!("present{sfx}"))];
        sel.extend(cols.iter().map(|c| col(*c).alias(format!("{c}{sfx}"))));
        df.clone().lazy().filter(col("day").gt_eq(lit(since))).select(sel)
    };
    let mut differs = col("present_o").neq_missing(col("present_n"));
    for c in cols {
        differs = differs.or(col(format!("{c}_o")).neq_missing(col(format!("{c}_n"))));
    }
    let j = pick(old, "_o")
        .join(
            pick(new, "_n"),
            [col(MAC), col("day")],
            [col(MAC), col("day")],
            JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
        )
        .filter(differs)
        .select([col("day")])
        .unique(None, UniqueKeepStrategy::Any)
        .collect()?;
    Ok(j.column("day")?.i32()?.iter().flatten().collect())
}

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

pub fn shop_daily_engagement(c: &DayCtx) -> LazyFrame {
    let lf = engagement(non_staff(c.visits.clone().lazy(), c), &["shop_code"], c.settings, vec![]);
    super::with_shop_names(lf, c.dims)
}

pub fn mall_daily_engagement(c: &DayCtx) -> LazyFrame {
    let flags = c.status.clone().lazy().select([col(MAC), col("randomized")]);
    let mall = non_staff(c.mall.clone().lazy(), c).left_join(flags, col(MAC), col(MAC));
    let randomized = col(MAC).filter(col("randomized")).n_unique().cast(DataType::Int64).alias("randomized_devices");
    let staff = c.status.clone().lazy().select([col("staff").cast(DataType::Int64).sum().alias("staff")]);
    engagement(mall, &[], c.settings, vec![randomized])
        .cross_join(staff, None)
        .with_column(ratio(col("randomized_devices"), col("detected")).alias("randomized_share"))
}

pub fn mall_daily_loyalty(c: &DayCtx) -> LazyFrame {
    let is = |class: i32| col("loyalty").eq(lit(class)).fill_null(lit(false)).cast(DataType::Int64).sum();
    c.status
        .clone()
        .lazy()
        .select([
            col("visitor").cast(DataType::Int64).sum().alias("visitors"),
            is(FIRST_TIME).alias("first_time"),
            is(DAILY).alias("daily"),
            is(WEEKLY).alias("weekly"),
            is(OCCASIONAL).alias("occasional"),
        ])
        .with_column((col("visitors") - col("first_time")).alias("returning"))
}

pub fn staff_devices_daily(c: &DayCtx) -> LazyFrame {
    c.status.clone().lazy().filter(col("staff")).select([
        col(MAC),
        (col("mall_dwell").cast(DataType::Float64) / lit(3600.0)).alias("hours_present"),
        col("days7").alias("days_present_last_7"),
    ])
}

/// Consecutive qualifying shop visits within one mall visit (each shop visit carries the
/// mall visit holding its first record), ordered by start then shop_code.
pub fn shop_transitions_daily(c: &DayCtx) -> LazyFrame {
    let same = |c: &str| col(c).eq(col(c).shift(lit(1)));
    non_staff(c.visits.clone().lazy(), c)
        .filter(qualifying(c.settings))
        .select([col(MAC), col("mall_visit"), col("start"), col("shop_code")])
        .sort(["mall_visit", "start", "shop_code"], SortMultipleOptions::default())
        .with_column(col("shop_code").shift(lit(1)).alias("from_shop"))
        .filter(same("mall_visit").and(col("from_shop").neq(col("shop_code"))))
        .group_by([col("from_shop"), col("shop_code").alias("to_shop")])
        .agg([
            len().cast(DataType::Int64).alias("transitions"),
            col(MAC).n_unique().cast(DataType::Int64).alias("devices"),
        ])
}

/// Position of each non-staff device in each second it was heard (SPEC §7.2), with the
/// second's local hour start: place_info where known, else the RSSI-power-weighted centroid
/// of the hearing APs that ap_info places.
fn positions(c: &DayCtx) -> LazyFrame {
    let pos = non_staff(c.pos.clone().lazy(), c);
    let places = c.dims.places.clone().lazy().filter(col("x").is_not_null().and(col("y").is_not_null()));
    // Join first: only place_info's devices go through the group-by.
    let placed = pos.clone().inner_join(places.clone(), col(MAC), col(MAC)).group_by([col(MAC), col("second")]).agg([
        col("hour").first(),
        col("x").first(),
        col("y").first(),
    ]);
    let aps = c.dims.aps.clone().lazy().filter(col("x").is_not_null().and(col("y").is_not_null()));
    let w = || lit(10.0f64).pow(col("rssi_max").cast(DataType::Float64) / lit(10.0));
    let mut heard = pos.anti_join(places, col(MAC), col(MAC));
    // "Each AP once with its strongest RSSI": only needed when an AP reported under several
    // shop codes that day; otherwise (second, device, AP) is already unique in `pos`.
    if !one_shop_per_ap(&c.pos) {
        heard =
            heard.group_by([col(MAC), col("second"), col("ap_mac")]).agg([col("rssi_max").max(), col("hour").first()]);
    }
    let heard = heard.inner_join(aps, col("ap_mac"), col("ap_mac")).group_by([col(MAC), col("second")]).agg([
        col("hour").first(),
        ((w() * col("x")).sum() / w().sum()).alias("x"),
        ((w() * col("y")).sum() / w().sum()).alias("y"),
    ]);
    concat([placed.select([col(MAC), col("second"), col("hour"), col("x"), col("y")]), heard], UnionArgs::default())
        .unwrap_or_else(|e| panic!("union of position frames with equal schemas: {e}"))
}

/// Whether every AP reported under a single shop code in this rollup.
fn one_shop_per_ap(pos: &DataFrame) -> bool {
    let most = pos
        .clone()
        .lazy()
        .group_by([col("ap_mac")])
        .agg([col("shop_code").n_unique().alias("shops")])
        .select([col("shops").max()])
        .collect();
    match most.as_ref().ok().and_then(|df| df.column("shops").ok()?.get(0).ok()?.extract::<u32>()) {
        Some(n) => n <= 1,
        None => pos.height() == 0,
    }
}

pub fn density_grid(c: &DayCtx) -> LazyFrame {
    let s = c.settings;
    let cell =
        |v: &str| (col(v).round(3, RoundMode::HalfAwayFromZero) / lit(s.density_cell)).floor().cast(DataType::Int64);
    // Slot starts per local hour: the offset is constant within an hour (as for hour_start).
    let hours = slot_offsets(c);
    let start = col("second") - (col("second") + col("offset")) % lit(s.density_slot);
    positions(c)
        .inner_join(hours, col("hour"), col("hour"))
        .select([
            col(MAC),
            // A slot longer than an hour may reach back before a DST day's first instant.
            when(start.clone().lt(col("day_start"))).then(col("day_start")).otherwise(start).alias("slot_start"),
            cell("x").alias("cell_x"),
            cell("y").alias("cell_y"),
        ])
        .unique(None, UniqueKeepStrategy::Any)
        .group_by([col("slot_start"), col("cell_x"), col("cell_y")])
        .agg([len().cast(DataType::Int64).alias("devices")])
}

/// hour → UTC offset at that hour, and the day's first instant.
fn slot_offsets(c: &DayCtx) -> LazyFrame {
    let mut clock = crate::timeutil::LocalClock::new(c.settings.tz);
    let hours: Vec<i64> = match c.pos.column("hour").and_then(|h| h.unique()) {
        Ok(h) => h.i64().map(|ca| ca.into_no_null_iter().collect()).unwrap_or_default(),
        Err(_) => vec![],
    };
    let offsets: Vec<i64> = hours.iter().map(|h| clock.offset(*h)).collect();
    let day_start = clock.day_start(c.day);
    df!("hour" => hours, "offset" => offsets)
        .expect("equal lengths")
        .lazy()
        .with_column(lit(day_start).alias("day_start"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows (device, day, mall dwell seconds, qualifying) → (days7, staff, loyalty) per row.
    fn run(rows: &[(u64, i32, i64, bool)]) -> Vec<(i64, bool, Option<i32>)> {
        let s = Settings::default(); // staff: ≥ 6 h on ≥ 3 of the last 7 days
        let macs: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let days: Vec<i32> = rows.iter().map(|r| r.1).collect();
        let dwell: Vec<i64> = rows.iter().map(|r| r.2).collect();
        let q: Vec<bool> = rows.iter().map(|r| r.3).collect();
        let c = classify(&macs, &days, &dwell, &q, &s);
        for (i, qualifies) in q.iter().enumerate() {
            assert_eq!(c.visitor[i], *qualifies && !c.staff[i], "visitor = qualifying and not staff");
            assert_eq!(c.loyalty[i].is_some(), c.visitor[i], "a class exactly for visitors");
        }
        (0..rows.len()).map(|i| (c.days7[i], c.staff[i], c.loyalty[i])).collect()
    }

    const H6: i64 = 6 * 3600;

    #[test]
    fn staff_needs_min_days_of_min_hours_in_the_last_seven() {
        let got = run(&[
            (1, 1, H6, false),     // exactly 6 h: counts
            (1, 2, H6, false),     // 2 days: one short of min_days
            (1, 3, H6, false),     // 3 days: staff
            (1, 4, 0, false),      // still 3 days in 4−6..4: staff without being there long
            (1, 9, H6 - 1, false), // one second short; window 3..9 holds day 3 only
            (1, 10, 0, false),     // window 4..10: nothing left
        ]);
        let days7: Vec<i64> = got.iter().map(|g| g.0).collect();
        let staff: Vec<bool> = got.iter().map(|g| g.1).collect();
        assert_eq!(days7, [1, 2, 3, 3, 1, 0]);
        assert_eq!(staff, [false, false, true, true, false, false]);
    }

    #[test]
    fn loyalty_classes_precedence_and_block_boundaries() {
        let v = |mac, day| (mac, day, 0, true);
        let got = run(&[
            // Device 2.
            v(2, 1),  // first visitor-day ever
            v(2, 2),  // 2 of the last 7, one block → occasional
            v(2, 3),  // occasional
            v(2, 4),  // 4 of the last 7 → occasional
            v(2, 5),  // exactly 5 of the last 7 → daily
            v(2, 12), // day 5 is 7 back: block 1 → weekly
            v(2, 40), // day 12 is 28 back: outside the four blocks → occasional
            // Device 3: daily and weekly both hold on day 12 → daily wins.
            v(3, 1),
            v(3, 8), // day 1 is 7 back: not in the last 7, but block 1 → weekly
            v(3, 9),
            v(3, 10),
            v(3, 11),
            v(3, 12), // 8..12 = 5 of the last 7 → daily
            // Devices 4 and 5: 27 back is block 3, 28 back is outside.
            v(4, 1),
            v(4, 28),
            v(5, 1),
            v(5, 29),
        ]);
        let classes: Vec<Option<i32>> = got.iter().map(|g| g.2).collect();
        let (f, d, w, o) = (Some(FIRST_TIME), Some(DAILY), Some(WEEKLY), Some(OCCASIONAL));
        assert_eq!(classes, [f, o, o, o, d, w, o, f, w, w, w, w, d, f, w, f, o]);
    }

    #[test]
    fn staff_days_are_not_visitor_days() {
        // Qualifying every day and 6 h a day: staff from day 3 on, so no visitor-day then.
        let got = run(&[(6, 1, H6, true), (6, 2, H6, true), (6, 3, H6, true), (6, 4, H6, true)]);
        assert_eq!(got, [(1, false, Some(FIRST_TIME)), (2, false, Some(OCCASIONAL)), (3, true, None), (4, true, None)]);
        // Staff on its first qualifying days: its first visitor-day comes later and is first_time.
        let got = run(&[(7, 1, H6, false), (7, 2, H6, false), (7, 3, H6, true), (7, 20, 60, true)]);
        assert_eq!(got[2], (3, true, None));
        assert_eq!(got[3], (0, false, Some(FIRST_TIME)));
    }
}
