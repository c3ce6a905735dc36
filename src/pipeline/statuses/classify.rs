//! The status rules of one device-day (staff, visitor-day, loyalty class), applied to
//! device-day summaries sorted by (device, day), and the comparison of two status frames.

use anyhow::Result;
use polars::prelude::*;

use crate::config::Settings;
use crate::mac::device_randomized;
use crate::rules::qualifying;
pub use crate::rules::{DAILY, FIRST_TIME, OCCASIONAL, WEEKLY};
use crate::schema::MAC;

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

/// Staff, visitor and loyalty status of every device-day of `summaries`.
///
/// Columns: the summary's (user_device_mac, day, first_seen, last_seen, mall_dwell) plus
/// `days7` (days of D−6..D with at least `min_hours_per_day`), `staff`, `visitor` (a
/// qualifying mall visit and not staff), `loyalty` (class code, null unless visitor) and
/// `randomized`. `context`: kept statuses of the days just before (decided already, not
/// returned); `earlier`: whether a device had a visitor-day before those.
pub fn statuses(
    summaries: Vec<LazyFrame>,
    context: Option<DataFrame>,
    earlier: &dyn Fn(u64) -> bool,
    s: &Settings,
) -> Result<DataFrame> {
    if summaries.is_empty() {
        return Ok(df!(MAC => Vec::<u64>::new(), "day" => Vec::<i32>::new(), "first_seen" => Vec::<i64>::new(),
            "last_seen" => Vec::<i64>::new(), "mall_dwell" => Vec::<i64>::new(), "days7" => Vec::<i64>::new(),
            "staff" => Vec::<bool>::new(), "visitor" => Vec::<bool>::new(), "loyalty" => Vec::<Option<i32>>::new(),
            "randomized" => Vec::<bool>::new())?);
    }
    let base = [col(MAC), col("day"), col("first_seen"), col("last_seen"), col("mall_dwell")];
    let mut fresh = base.to_vec();
    fresh.extend([col("mall_qualifying"), lit(false).alias("known")]);
    fresh.extend([
        lit(NULL).cast(DataType::Int64).alias("days7"),
        lit(NULL).cast(DataType::Boolean).alias("staff"),
        lit(NULL).cast(DataType::Boolean).alias("visitor"),
        lit(NULL).cast(DataType::Int32).alias("loyalty"),
    ]);
    let new = concat(summaries, UnionArgs::default())?.select(fresh);
    let mut parts = vec![new.clone()];
    if let Some(ctx) = context {
        // Only devices seen on the new days need their context.
        let mut kept = base.to_vec();
        kept.extend([lit(false).alias("mall_qualifying"), lit(true).alias("known")]);
        kept.extend([col("days7"), col("staff"), col("visitor"), col("loyalty")]);
        parts.push(ctx.lazy().semi_join(new.select([col(MAC)]), col(MAC), col(MAC)).select(kept));
    }
    let df = concat(parts, UnionArgs::default())?.sort([MAC, "day"], SortMultipleOptions::default()).collect()?;
    let macs: Vec<u64> = df.column(MAC)?.u64()?.into_no_null_iter().collect();
    let days: Vec<i32> = df.column("day")?.i32()?.into_no_null_iter().collect();
    let dwell: Vec<i64> = df.column("mall_dwell")?.i64()?.into_no_null_iter().collect();
    let qual: Vec<bool> = df.column("mall_qualifying")?.bool()?.iter().map(|v| v.unwrap_or(false)).collect();
    let is_known = df.column("known")?.bool()?;
    let (k7, ks, kv, kl) = (
        df.column("days7")?.i64()?,
        df.column("staff")?.bool()?,
        df.column("visitor")?.bool()?,
        df.column("loyalty")?.i32()?,
    );
    let known: Vec<Option<Known>> = (0..df.height())
        .map(|i| {
            is_known.get(i).unwrap_or(false).then(|| Known {
                days7: k7.get(i).unwrap_or(0),
                staff: ks.get(i).unwrap_or(false),
                visitor: kv.get(i).unwrap_or(false),
                loyalty: kl.get(i),
            })
        })
        .collect();
    let before: Vec<bool> = macs.iter().map(|m| earlier(*m)).collect();
    let st = classify(&macs, &days, &dwell, &qual, &known, &before, s);
    let keyed = s.mac_key.is_some();
    let mut out = df.select(["user_device_mac", "day", "first_seen", "last_seen", "mall_dwell"])?;
    out.with_column(Column::new("days7".into(), st.days7))?;
    out.with_column(Column::new("staff".into(), st.staff))?;
    out.with_column(Column::new("visitor".into(), st.visitor))?;
    out.with_column(Column::new("loyalty".into(), st.loyalty))?;
    out.with_column(Column::new(
        "randomized".into(),
        macs.iter().map(|m| device_randomized(*m, keyed)).collect::<Vec<bool>>(),
    ))?;
    out.with_column(Column::new("known".into(), known.iter().map(Option::is_some).collect::<Vec<bool>>()))?;
    Ok(out.lazy().filter(col("known").not()).drop(cols(["known"])).collect()?)
}

/// The status columns of [`statuses`], in input order.
pub(super) struct Classified {
    pub(super) days7: Vec<i64>,
    pub(super) staff: Vec<bool>,
    pub(super) visitor: Vec<bool>,
    pub(super) loyalty: Vec<Option<i32>>,
}

/// A device-day's status already decided (context from the kept statuses).
#[derive(Clone, Copy)]
pub(super) struct Known {
    pub(super) days7: i64,
    pub(super) staff: bool,
    pub(super) visitor: bool,
    pub(super) loyalty: Option<i32>,
}

/// Applies the §7.2 rules to device-days sorted by (device, day), one row per device-day.
/// Rows with a `known` status keep it (they are context); `earlier[i]`: the device had a
/// visitor-day before the first row given.
pub(super) fn classify(
    macs: &[u64],
    days: &[i32],
    dwell: &[i64],
    qualifying: &[bool],
    known: &[Option<Known>],
    earlier: &[bool],
    s: &Settings,
) -> Classified {
    let n = macs.len();
    let min_dwell_day = s.staff_min_hours * 3600.0;
    let mut c =
        Classified { days7: vec![0; n], staff: vec![false; n], visitor: vec![false; n], loyalty: vec![None; n] };
    let mut start = 0; // first row of the current device
    for i in 0..n {
        if i > 0 && macs[i] != macs[i - 1] {
            start = i;
        }
        if let Some(k) = known[i] {
            (c.days7[i], c.staff[i], c.visitor[i], c.loyalty[i]) = (k.days7, k.staff, k.visitor, k.loyalty);
            continue;
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
        let earlier_visit = earlier[i] || (start..i).any(|j| c.visitor[j]);
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
