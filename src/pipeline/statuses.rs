//! Stage 4, visits → device-day summaries → statuses. Per device and day a small summary is
//! kept in the state (first/last second, summed mall-visit dwell, whether it had a qualifying
//! mall visit); one pass over all summaries, sorted by (device, day), then decides staff,
//! visitor-day and loyalty class of every device-day, and the `customers` snapshot. Staff
//! looks back 6 days and loyalty 27 days (and "first visitor-day ever" all the way), so these
//! cannot be decided from one day's data; comparing with the previous run's statuses and
//! customers tells `update` exactly which dates must be re-published ([`republish_days`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;
use polars::prelude::*;

use super::rollup::load_day;
use super::visits::{day_visits, DayVisits};
use crate::config::Settings;
use crate::mac::device_randomized;
use crate::progress::Progress;
use crate::rules::qualifying;
pub use crate::rules::{DAILY, FIRST_TIME, OCCASIONAL, WEEKLY};
use crate::schema::MAC;
use crate::state::State;

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

/// A day's rollup and visits, kept from the summary pass for the publish pass.
pub type DayCache = HashMap<i32, (DataFrame, DayVisits)>;

/// Rows of `pos` kept in memory between the two passes (beyond it, days are re-read from
/// their segments): trades peak memory for re-reads. `FOOTFALL_POS_CACHE_ROWS` overrides it.
fn pos_cache_rows() -> usize {
    std::env::var("FOOTFALL_POS_CACHE_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000_000)
}

/// Summary pass over the days whose data changed: each day's rollup → visits → its device
/// summary in the state (a day without data any more loses its summary).
pub fn summarize_days(
    state: &State,
    by_day: &BTreeMap<i32, Vec<&str>>,
    changed: &BTreeSet<i32>,
    s: &Settings,
    progress: Progress,
) -> Result<DayCache> {
    let bar = progress.bar(changed.len() as u64, "rollups");
    let mut cache = DayCache::new();
    let (mut cached_rows, budget) = (0usize, pos_cache_rows());
    for &day in changed {
        if !by_day.contains_key(&day) {
            state.delete_summary(day)?;
            continue;
        }
        let pos = load_day(state, by_day, day)?;
        let visits = day_visits(&pos, s)?;
        state.put_summary(day, &mut day_device_summary(&visits.mall, day, s)?)?;
        if cached_rows + pos.height() <= budget {
            cached_rows += pos.height();
            cache.insert(day, (pos, visits));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(cache)
}

/// Statuses of every device-day and the customers snapshot, from every day's summary.
pub fn all_statuses(state: &State, days: &BTreeSet<i32>, s: &Settings) -> Result<(DataFrame, DataFrame)> {
    let days: Vec<i32> = days.iter().copied().collect();
    let summaries = crate::par::map(&days, |d| Ok(state.get_summary(*d)?.lazy()))?;
    let statuses = statuses(summaries, s)?;
    let customers = customers(&statuses, s)?;
    Ok((statuses, customers))
}

/// The dates to re-publish: the days whose data changed, plus — against the previous run's
/// state — the old and new first days of devices whose first day moved (new-customer
/// figures), and the days from the earliest changed day on whose statuses moved.
pub fn republish_days(
    prior: Option<&State>,
    changed: &BTreeSet<i32>,
    statuses: &DataFrame,
    customers: &DataFrame,
) -> Result<BTreeSet<i32>> {
    let mut days = changed.clone();
    let Some(prior) = prior else { return Ok(days) };
    if let Some(old) = prior.get_customers()? {
        days.extend(moved_first_days(&old, customers)?);
    }
    if let (Some(old), Some(&since)) = (prior.get_statuses()?, changed.first()) {
        days.extend(changed_status_days(&old, statuses, since)?);
    }
    Ok(days)
}

/// Days whose new-customer figures change: for every device whose first day moved, its old
/// and new first day.
fn moved_first_days(old: &DataFrame, new: &DataFrame) -> Result<BTreeSet<i32>> {
    let key = MAC;
    let joined = old
        .clone()
        .lazy()
        .select([col(key), col("first_date").alias("old_first")])
        .join(
            new.clone().lazy().select([col(key), col("first_date").alias("new_first")]),
            [col(key)],
            [col(key)],
            JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
        )
        .filter(col("old_first").neq_missing(col("new_first")))
        .collect()?;
    let mut out = BTreeSet::new();
    for c in ["old_first", "new_first"] {
        out.extend(joined.column(c)?.i32()?.iter().flatten());
    }
    Ok(out)
}

/// For each of `days`, the statuses of the devices seen that day.
pub fn split_statuses(statuses: &DataFrame, days: &BTreeSet<i32>) -> Result<HashMap<i32, DataFrame>> {
    let mut out = HashMap::new();
    let wanted = Series::new("days".into(), days.iter().copied().collect::<Vec<i32>>());
    let statuses = statuses.clone().lazy().filter(col("day").is_in(lit(wanted).implode(false), false)).collect()?;
    if statuses.height() == 0 {
        return Ok(out);
    }
    for part in statuses.partition_by(["day"], true)? {
        let day = part.column("day")?.i32()?.get(0).expect("non-empty partition");
        out.insert(day, part);
    }
    Ok(out)
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
