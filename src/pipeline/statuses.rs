//! Stage 4, visits → device-day summaries → statuses. Per device and day a small summary is
//! kept in the state (first/last second, summed mall-visit dwell, whether it had a qualifying
//! mall visit); a pass over summaries sorted by (device, day) decides staff, visitor-day and
//! loyalty class of each device-day, and the `customers` snapshot. Staff looks back 6 days
//! and loyalty 27 days (and "first visitor-day ever" all the way), so these cannot be decided
//! from one day's data; comparing with the previous run's statuses and customers tells
//! `update` exactly which dates must be re-published ([`republish_days`]).
//!
//! Why an update stays flat as history grows: a day's statuses depend only on that day and
//! earlier ones, so only the days from the earliest changed one (`since`) are classified
//! again, with the kept statuses of the 27 days before as fixed context and each device's
//! first visitor-day (kept with `customers`) for "ever". `customers` is kept as a *settled*
//! aggregate of the days before the latest one plus the latest days; only a change reaching
//! before the settled boundary (a late file for an old day) re-reads every day's statuses.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;
use polars::prelude::*;

use crate::config::Settings;
use crate::mac::device_randomized;
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
struct Classified {
    days7: Vec<i64>,
    staff: Vec<bool>,
    visitor: Vec<bool>,
    loyalty: Vec<Option<i32>>,
}

/// A device-day's status already decided (context from the kept statuses).
#[derive(Clone, Copy)]
struct Known {
    days7: i64,
    staff: bool,
    visitor: bool,
    loyalty: Option<i32>,
}

/// Applies the §7.2 rules to device-days sorted by (device, day), one row per device-day.
/// Rows with a `known` status keep it (they are context); `earlier[i]`: the device had a
/// visitor-day before the first row given.
fn classify(
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

/// The `customers` snapshot from device-day statuses, sorted by device; with
/// `staff.policy = "exclude"` the days a device was staff do not count. Also each device's
/// first visitor-day (`first_visit`, kept in the state only).
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
            col("day").filter(col("visitor")).min().alias("first_visit"),
        ])
        .sort([MAC], SortMultipleOptions::default())
        .collect()?)
}

/// Customers aggregates of two disjoint sets of days (each sorted by device), combined in
/// one merge pass; the result is sorted by device, the published order. A group-by over
/// both would hash every device ever seen and leave them to be sorted again, each update.
pub fn merge_customers(a: &DataFrame, b: &DataFrame) -> Result<DataFrame> {
    Aggregate::of(a)?.merge(&Aggregate::of(b)?).frame()
}

/// The columns of a customers aggregate, in device order, as plain vectors (the merge
/// touches every device ever seen each update: no per-value `Option`s or iterators).
struct Aggregate {
    mac: Vec<u64>,
    first_seen: Vec<i64>,
    last_seen: Vec<i64>,
    first_date: Vec<i32>,
    last_date: Vec<i32>,
    days_seen: Vec<i64>,
    /// `NO_VISIT` for a device without a visitor-day.
    first_visit: Vec<i32>,
}

const NO_VISIT: i32 = i32::MAX;

impl Aggregate {
    fn with_capacity(n: usize) -> Self {
        Aggregate {
            mac: Vec::with_capacity(n),
            first_seen: Vec::with_capacity(n),
            last_seen: Vec::with_capacity(n),
            first_date: Vec::with_capacity(n),
            last_date: Vec::with_capacity(n),
            days_seen: Vec::with_capacity(n),
            first_visit: Vec::with_capacity(n),
        }
    }

    /// The aggregate's columns, sorted by device if they are not (a state written before
    /// the settled part was kept sorted holds it in hash order).
    fn of(df: &DataFrame) -> Result<Self> {
        let df = if strictly_increasing(df.column(MAC)?.u64()?) {
            df.clone()
        } else {
            df.sort([MAC], SortMultipleOptions::default())?
        };
        fn values<T: PolarsNumericType>(ca: &ChunkedArray<T>) -> Result<Vec<T::Native>> {
            anyhow::ensure!(ca.null_count() == 0, "customers aggregate: nulls in '{}'", ca.name());
            let ca = ca.rechunk();
            Ok(ca.cont_slice().map(<[_]>::to_vec).unwrap_or_else(|_| ca.into_no_null_iter().collect()))
        }
        let fv = df.column("first_visit")?.i32()?;
        Ok(Aggregate {
            mac: values(df.column(MAC)?.u64()?)?,
            first_seen: values(df.column("first_seen")?.i64()?)?,
            last_seen: values(df.column("last_seen")?.i64()?)?,
            first_date: values(df.column("first_date")?.i32()?)?,
            last_date: values(df.column("last_date")?.i32()?)?,
            days_seen: values(df.column("days_seen")?.i64()?)?,
            first_visit: if fv.null_count() == 0 {
                values(fv)?
            } else {
                fv.iter().map(|v| v.unwrap_or(NO_VISIT)).collect()
            },
        })
    }

    fn merge(&self, b: &Aggregate) -> Aggregate {
        let (a, na, nb) = (self, self.mac.len(), b.mac.len());
        let mut out = Aggregate::with_capacity(na + nb);
        let (mut i, mut j) = (0, 0);
        while i < na || j < nb {
            if j == nb || (i < na && a.mac[i] < b.mac[j]) {
                out.push(a, i);
                i += 1;
            } else if i == na || b.mac[j] < a.mac[i] {
                out.push(b, j);
                j += 1;
            } else {
                out.push(a, i);
                let k = out.mac.len() - 1;
                out.first_seen[k] = out.first_seen[k].min(b.first_seen[j]);
                out.last_seen[k] = out.last_seen[k].max(b.last_seen[j]);
                out.first_date[k] = out.first_date[k].min(b.first_date[j]);
                out.last_date[k] = out.last_date[k].max(b.last_date[j]);
                out.days_seen[k] += b.days_seen[j];
                out.first_visit[k] = out.first_visit[k].min(b.first_visit[j]);
                (i, j) = (i + 1, j + 1);
            }
        }
        out
    }

    /// A device's row.
    fn find(&self, mac: u64) -> Option<usize> {
        self.mac.binary_search(&mac).ok()
    }

    fn push(&mut self, from: &Aggregate, i: usize) {
        self.mac.push(from.mac[i]);
        self.first_seen.push(from.first_seen[i]);
        self.last_seen.push(from.last_seen[i]);
        self.first_date.push(from.first_date[i]);
        self.last_date.push(from.last_date[i]);
        self.days_seen.push(from.days_seen[i]);
        self.first_visit.push(from.first_visit[i]);
    }

    fn frame(self) -> Result<DataFrame> {
        let n = self.mac.len();
        let first_visit = Int32Chunked::from_iter_options(
            "first_visit".into(),
            self.first_visit.iter().map(|d| (*d != NO_VISIT).then_some(*d)),
        );
        Ok(DataFrame::new(
            n,
            vec![
                UInt64Chunked::from_vec(MAC.into(), self.mac).into_column(),
                Int64Chunked::from_vec("first_seen".into(), self.first_seen).into_column(),
                Int64Chunked::from_vec("last_seen".into(), self.last_seen).into_column(),
                Int32Chunked::from_vec("first_date".into(), self.first_date).into_column(),
                Int32Chunked::from_vec("last_date".into(), self.last_date).into_column(),
                Int64Chunked::from_vec("days_seen".into(), self.days_seen).into_column(),
                first_visit.into_column(),
            ],
        )?)
    }
}

/// What the statuses pass decides.
pub struct Statuses {
    /// Statuses of the days from `since` on (the only ones that can have changed).
    pub recent: DataFrame,
    pub since: Option<i32>,
    pub customers: DataFrame,
    /// The boundary of the settled customers aggregate kept for the next update.
    pub settled_before: Option<i32>,
    /// The settled aggregate with its boundary and the context of the days before it, when
    /// they differ from the ones kept (to write).
    pub settled_new: Option<(i32, DataFrame, DataFrame)>,
    /// Changed days without data any more (their kept statuses go).
    pub gone: Vec<i32>,
    /// Against the previous run's customers: the old and new first day of every device whose
    /// first day moved (their new-customer figures change).
    pub moved_first_days: BTreeSet<i32>,
}

/// Decides statuses a day at a time, in day order from the earliest changed day (`since`)
/// on: each day's from its device summary and the 27 days before it (kept statuses before
/// `since`, decided ones after), plus each device's first visitor-day so far for "ever". A
/// day's statuses and its devices' first days depend on no later day, so they are final as
/// soon as the day is decided: a changed day's tables are published right then, and each
/// rollup is built once (see `publish::walk_days`).
pub struct Classifier<'a> {
    state: &'a State<'a>,
    s: &'a Settings,
    since: Option<i32>,
    /// Statuses of the days decided of the last 27, by day.
    window: BTreeMap<i32, DataFrame>,
    /// The days before `since` that the next 27 days look back on.
    kept: Option<Context>,
    /// First day (a non-staff day with `staff.policy = "exclude"`) and first visitor-day of
    /// the devices whose first one is a day decided here; earlier ones are the previous run's.
    first_date: PlHashMap<u64, i32>,
    first_visit: PlHashMap<u64, i32>,
    /// Statuses of the days decided, in day order.
    decided: Vec<DataFrame>,
    /// The previous run's customers: its settled aggregate (with its boundary) and the
    /// aggregate of its days from that boundary on (usually one day).
    prior_settled: Option<(i32, Aggregate)>,
    prior_recent: Option<Aggregate>,
}

impl<'a> Classifier<'a> {
    /// Reads what deciding the days from the earliest changed one needs: the kept statuses
    /// of the 27 days before it and, for an update, the previous customers (first days).
    pub fn start(
        state: &'a State<'a>,
        prior: Option<Prior>,
        all_days: &BTreeSet<i32>,
        changed: &BTreeSet<i32>,
        s: &'a Settings,
    ) -> Result<Self> {
        let since = changed.first().copied();
        let mut c = Classifier {
            state,
            s,
            since,
            window: BTreeMap::new(),
            kept: None,
            first_date: PlHashMap::new(),
            first_visit: PlHashMap::new(),
            decided: Vec::new(),
            prior_settled: None,
            prior_recent: None,
        };
        let mut context = None;
        if let Some(p) = prior {
            (c.prior_settled, c.prior_recent, context) = (p.settled, Some(p.recent), p.context);
        }
        let Some(since) = since else { return Ok(c) };
        c.kept = Some(Context::before(state, context, all_days, since, s)?);
        Ok(c)
    }

    /// A device's first day (`visit`: first visitor-day) so far: the previous run's when
    /// before `since` (those days did not change, so what they decided stands), else one
    /// decided here.
    fn first_of(&self, mac: u64, visit: bool) -> Option<i32> {
        let since = self.since.unwrap_or(i32::MAX);
        self.prior_first(mac, visit)
            .filter(|d| *d < since)
            .or_else(|| if visit { self.first_visit.get(&mac) } else { self.first_date.get(&mac) }.copied())
    }

    /// A device's first day (`visit`: first visitor-day) in the previous run's customers.
    fn prior_first(&self, mac: u64, visit: bool) -> Option<i32> {
        let pick = |a: &Aggregate| a.find(mac).map(|i| if visit { a.first_visit[i] } else { a.first_date[i] });
        let settled = self.prior_settled.as_ref().and_then(|(_, a)| pick(a));
        let d = match (settled, self.prior_recent.as_ref().and_then(pick)) {
            (Some(x), Some(y)) => x.min(y),
            (x, y) => x.or(y)?,
        };
        (d != NO_VISIT).then_some(d)
    }

    /// The statuses of `day` (the next day from `since` on, in order) from its summary.
    pub fn decide(&mut self, day: i32, summary: DataFrame) -> Result<DataFrame> {
        let lo = day - WINDOW;
        self.window = self.window.split_off(&lo);
        let mut context: Vec<DataFrame> = self.window.values().cloned().collect();
        if let Some(kept) = self.kept.as_ref().filter(|k| k.before > lo) {
            context.push(kept.rows(summary.column(MAC)?.u64()?, lo, self.s));
        }
        let context = if context.is_empty() { None } else { Some(concat_frames(context)?) };
        let st = statuses(vec![summary.lazy()], context, &|m| self.first_of(m, true).is_some_and(|d| d < lo), self.s)?;
        let macs = st.column(MAC)?.u64()?;
        let (staff, visitor) = (st.column("staff")?.bool()?, st.column("visitor")?.bool()?);
        for ((m, st), v) in macs.iter().zip(staff.iter()).zip(visitor.iter()) {
            let Some(m) = m else { continue };
            if !(self.s.staff_exclude && st == Some(true)) && self.first_of(m, false).is_none() {
                self.first_date.insert(m, day);
            }
            if v == Some(true) && self.first_of(m, true).is_none() {
                self.first_visit.insert(m, day);
            }
        }
        self.window.insert(day, st.clone());
        self.decided.push(st.clone());
        Ok(st)
    }

    /// Each device of a decided day's statuses with its first day (final once the day is).
    pub fn first_dates(&self, status: &DataFrame) -> Result<DataFrame> {
        let macs = status.column(MAC)?.u64()?;
        let first: Int32Chunked = macs.iter().map(|m| m.and_then(|m| self.first_of(m, false))).collect();
        Ok(DataFrame::new(
            macs.len(),
            vec![macs.clone().into_column(), first.with_name("first_date".into()).into_column()],
        )?)
    }

    /// Days whose new-customer figures change: for every device whose first day moved
    /// against the previous run's customers, its old and new first day. Days before `since`
    /// did not change, so only first days from `since` on can differ (and those decided
    /// here are all in `first_date`).
    fn moved_first_days(&self, since: i32) -> BTreeSet<i32> {
        let mut out = BTreeSet::new();
        // The previous first days from `since` on: in its latest days' aggregate, or in the
        // settled one only when its boundary is after `since` (a late file).
        let mut was: PlHashMap<u64, i32> = PlHashMap::new();
        let settled = self.prior_settled.as_ref().filter(|(b, _)| *b > since).map(|(_, a)| a);
        for a in self.prior_recent.iter().chain(settled) {
            for m in &a.mac {
                if let Some(d) = self.prior_first(*m, false).filter(|d| *d >= since) {
                    was.insert(*m, d);
                }
            }
        }
        for (m, d) in &was {
            let new = self.first_date.get(m);
            if new != Some(d) {
                out.insert(*d);
                out.extend(new);
            }
        }
        for (m, d) in &self.first_date {
            let old = was.get(m);
            if old != Some(d) {
                out.insert(*d);
                out.extend(old);
            }
        }
        out
    }

    /// The customers snapshot (and its settled part) once every day from `since` is decided.
    pub fn finish(&mut self, all_days: &BTreeSet<i32>, changed: &BTreeSet<i32>) -> Result<Statuses> {
        let (state, s) = (self.state, self.s);
        let empty = || -> Result<DataFrame> { statuses(vec![], None, &|_| false, s) };
        let of = |statuses: &DataFrame| Aggregate::of(&customers(statuses, s)?);
        let (Some(since), Some(&latest)) = (self.since, all_days.last()) else {
            // Nothing changed (the kept customers stand), or no data is left at all.
            let kept = match (self.prior_recent.take(), self.prior_settled.take()) {
                (Some(recent), settled) if changed.is_empty() => match settled {
                    Some((b, settled)) => Some((settled.merge(&recent).frame()?, Some(b))),
                    None => Some((recent.frame()?, None)),
                },
                _ => None,
            };
            let (customers, settled_before) = match kept {
                Some(k) => k,
                None => (customers(&empty()?, s)?, None),
            };
            return Ok(Statuses {
                recent: empty()?,
                since: None,
                customers,
                settled_before,
                settled_new: None,
                gone: changed.iter().copied().collect(),
                moved_first_days: BTreeSet::new(),
            });
        };
        let recent = match std::mem::take(&mut self.decided) {
            d if d.is_empty() => empty()?,
            d => concat_frames(d)?,
        };
        // customers = settled (days before the boundary) + the days from the boundary on.
        let (settled, at_latest) = match self.prior_settled.take() {
            Some((boundary, old)) if since >= boundary => {
                let between: Vec<i32> = all_days.range(boundary..since).copied().collect();
                let kept = crate::par::map(&between, |d| state.get_day_statuses(*d))?;
                let mut live: Vec<DataFrame> = kept.into_iter().flatten().collect();
                live.push(recent.clone());
                let live = concat_frames(live)?;
                let settled = if latest > boundary {
                    let before_latest = live.clone().lazy().filter(col("day").lt(lit(latest))).collect()?;
                    (old.merge(&of(&before_latest)?), true)
                } else {
                    (old, false)
                };
                (settled, live.lazy().filter(col("day").gt_eq(lit(latest))).collect()?)
            }
            _ => {
                // Every day's statuses: the kept ones before `since`, the new ones after.
                let older: Vec<i32> = all_days.range(..since).copied().collect();
                let kept = crate::par::map(&older, |d| state.get_day_statuses(*d))?;
                let mut all: Vec<DataFrame> = kept.into_iter().flatten().collect();
                all.push(recent.clone());
                let all = concat_frames(all)?;
                let settled = of(&all.clone().lazy().filter(col("day").lt(lit(latest))).collect()?)?;
                ((settled, true), all.lazy().filter(col("day").gt_eq(lit(latest))).collect()?)
            }
        };
        let ((settled, settled_new), gone) =
            (settled, changed.iter().filter(|d| !all_days.contains(d)).copied().collect());
        let customers = settled.merge(&of(&at_latest)?).frame()?;
        let settled_new = match settled_new {
            false => None,
            true => {
                let mut bits = PlHashMap::new();
                if let Some(kept) = &self.kept {
                    kept.shift_into(latest, &mut bits);
                }
                Context::add(&mut bits, latest, &recent, s)?;
                Some((latest, settled.frame()?, Context::from_bits(latest, bits).frame()))
            }
        };
        Ok(Statuses {
            customers,
            settled_new,
            settled_before: Some(latest),
            recent,
            since: Some(since),
            gone,
            moved_first_days: self.moved_first_days(since),
        })
    }
}

/// Days a status looks back on (D−27..D−1).
const WINDOW: i32 = 27;

/// What classifying the days from `before` on needs of the 27 days before it, per device as
/// bits (bit k = day `before − 1 − k`): whether the day's mall dwell reached the staff
/// threshold (`long`) and whether it was a visitor-day (`visit`); nothing else of those days
/// enters a later day's status. Kept in the state beside the settled customers (same
/// boundary), so an update reads one object instead of the 27 days' statuses.
pub struct Context {
    before: i32,
    /// Sorted.
    mac: Vec<u64>,
    long: Vec<u32>,
    visit: Vec<u32>,
}

impl Context {
    /// The context of the days before `since`: the one kept with the settled part (shifted,
    /// with the kept statuses of any days between its boundary and `since`), else from the
    /// kept statuses of the 27 days (a state without one, a `run`, a late file).
    fn before(
        state: &State,
        kept: Option<Context>,
        all_days: &BTreeSet<i32>,
        since: i32,
        s: &Settings,
    ) -> Result<Self> {
        let kept = kept.filter(|k| k.before <= since);
        if let Some(k) = &kept {
            if k.before == since {
                return Ok(kept.expect("checked"));
            }
        }
        let from = kept.as_ref().map_or(since - WINDOW, |k| k.before.max(since - WINDOW));
        let days: Vec<i32> = all_days.range(from..since).copied().collect();
        let frames = crate::par::map(&days, |d| {
            state.get_day_statuses(*d)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "state is missing the statuses of {}; run `footfall run` to rebuild",
                    crate::state::day_str(*d)
                )
            })
        })?;
        let mut bits = PlHashMap::new();
        if let Some(k) = &kept {
            k.shift_into(since, &mut bits);
        }
        for f in &frames {
            Context::add(&mut bits, since, f, s)?;
        }
        Ok(Context::from_bits(since, bits))
    }

    /// Adds the days of `statuses` within the 27 before `before`.
    fn add(bits: &mut PlHashMap<u64, (u32, u32)>, before: i32, statuses: &DataFrame, s: &Settings) -> Result<()> {
        let min_dwell = s.staff_min_hours * 3600.0;
        let macs = statuses.column(MAC)?.u64()?;
        let days = statuses.column("day")?.i32()?;
        let dwell = statuses.column("mall_dwell")?.i64()?;
        let visitor = statuses.column("visitor")?.bool()?;
        for (((m, d), w), v) in macs.iter().zip(days.iter()).zip(dwell.iter()).zip(visitor.iter()) {
            let (Some(m), Some(d)) = (m, d) else { continue };
            let k = before - 1 - d;
            if !(0..WINDOW).contains(&k) {
                continue;
            }
            let (long, visit) = (w.is_some_and(|w| w as f64 >= min_dwell), v == Some(true));
            if long || visit {
                let e = bits.entry(m).or_insert((0, 0));
                e.0 |= (long as u32) << k;
                e.1 |= (visit as u32) << k;
            }
        }
        Ok(())
    }

    /// Adds these bits moved to a later boundary (days falling out of its window dropped).
    fn shift_into(&self, before: i32, bits: &mut PlHashMap<u64, (u32, u32)>) {
        let by = (before - self.before) as u32;
        if by >= WINDOW as u32 {
            return;
        }
        let mask = (1u32 << WINDOW) - 1;
        for i in 0..self.mac.len() {
            let (long, visit) = ((self.long[i] << by) & mask, (self.visit[i] << by) & mask);
            if long | visit != 0 {
                let e = bits.entry(self.mac[i]).or_insert((0, 0));
                e.0 |= long;
                e.1 |= visit;
            }
        }
    }

    fn from_bits(before: i32, bits: PlHashMap<u64, (u32, u32)>) -> Self {
        let mut rows: Vec<(u64, (u32, u32))> = bits.into_iter().collect();
        rows.sort_unstable_by_key(|r| r.0);
        Context {
            before,
            mac: rows.iter().map(|r| r.0).collect(),
            long: rows.iter().map(|r| r.1 .0).collect(),
            visit: rows.iter().map(|r| r.1 .1).collect(),
        }
    }

    /// Status rows standing for the kept days from `lo` on of the devices `macs`, for
    /// [`statuses`]' context: only their day, whether the dwell reached the threshold and
    /// whether they were visitor-days are read (a context row's own status is not output).
    fn rows(&self, macs: &UInt64Chunked, lo: i32, s: &Settings) -> DataFrame {
        let long_dwell = (s.staff_min_hours * 3600.0).ceil().max(0.0) as i64;
        let (mut mac, mut day, mut dwell, mut visitor) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for m in macs.into_no_null_iter() {
            let Ok(i) = self.mac.binary_search(&m) else { continue };
            let (long, visit) = (self.long[i], self.visit[i]);
            for k in 0..WINDOW {
                let d = self.before - 1 - k;
                if d >= lo && (long | visit) >> k & 1 == 1 {
                    mac.push(m);
                    day.push(d);
                    dwell.push(if long >> k & 1 == 1 { long_dwell } else { 0 });
                    visitor.push(visit >> k & 1 == 1);
                }
            }
        }
        let n = mac.len();
        df!(MAC => mac, "day" => day, "first_seen" => vec![0i64; n], "last_seen" => vec![0i64; n],
            "mall_dwell" => dwell, "days7" => vec![0i64; n], "staff" => vec![false; n], "visitor" => visitor,
            "loyalty" => vec![None::<i32>; n], "randomized" => vec![false; n])
        .expect("columns of equal length")
    }

    fn frame(&self) -> DataFrame {
        df!(MAC => &self.mac, "long" => &self.long, "visit" => &self.visit).expect("columns of equal length")
    }

    fn of(df: &DataFrame, before: i32) -> Result<Self> {
        let macs = df.column(MAC)?.u64()?;
        let (long, visit) = (df.column("long")?.u32()?, df.column("visit")?.u32()?);
        if long.null_count() == 0 && visit.null_count() == 0 && strictly_increasing(macs) {
            return Ok(Context {
                before,
                mac: macs.into_no_null_iter().collect(),
                long: long.into_no_null_iter().collect(),
                visit: visit.into_no_null_iter().collect(),
            });
        }
        let mut bits = PlHashMap::with_capacity(df.height());
        for ((m, l), v) in macs.iter().zip(long.iter()).zip(visit.iter()) {
            if let Some(m) = m {
                bits.insert(m, (l.unwrap_or(0), v.unwrap_or(0)));
            }
        }
        Ok(Context::from_bits(before, bits))
    }
}

/// What an update reads of the previous run's state before deciding anything: its
/// customers as the settled aggregate and the aggregate of its kept statuses from that
/// boundary on (usually the latest day only: the state keeps no second copy of every device
/// to read and rewrite each update), and the context kept with the settled part. None of it
/// depends on the new files, so it is read while they are ingested.
pub struct Prior {
    settled: Option<(i32, Aggregate)>,
    recent: Aggregate,
    context: Option<Context>,
}

impl Prior {
    /// `days`: the days the previous run had.
    pub fn read(p: &State, boundary: Option<i32>, days: &BTreeSet<i32>, s: &Settings) -> Result<Prior> {
        let (settled, context) = match boundary {
            None => (None, None),
            Some(b) => {
                let df = p.get_settled(b)?.ok_or_else(|| {
                    anyhow::anyhow!("state is missing its settled customers; run `footfall run` to rebuild")
                })?;
                let context = p.get_context(b)?.map(|df| Context::of(&df, b)).transpose()?;
                (Some((b, Aggregate::of(&df)?)), context)
            }
        };
        let from: Vec<i32> = days.range(boundary.unwrap_or(i32::MIN)..).copied().collect();
        let kept: Vec<DataFrame> = crate::par::map(&from, |d| p.get_day_statuses(*d))?.into_iter().flatten().collect();
        let recent = if kept.is_empty() { statuses(vec![], None, &|_| false, s)? } else { concat_frames(kept)? };
        Ok(Prior { settled, recent: Aggregate::of(&customers(&recent, s)?)?, context })
    }
}

/// No nulls and each device once, in order: a kept object written by this version (an older
/// one may hold devices in hash order).
fn strictly_increasing(macs: &UInt64Chunked) -> bool {
    macs.null_count() == 0 && macs.into_no_null_iter().zip(macs.into_no_null_iter().skip(1)).all(|(x, y)| x < y)
}

fn concat_frames(frames: Vec<DataFrame>) -> Result<DataFrame> {
    let lfs: Vec<LazyFrame> = frames.into_iter().map(|d| d.lazy()).collect();
    Ok(concat(lfs, UnionArgs::default())?.collect()?)
}

/// The dates to re-publish: the days whose data changed, plus — against the previous run's
/// state — the old and new first days of devices whose first day moved (new-customer
/// figures), and the days from the earliest changed day on whose statuses moved.
pub fn republish_days(prior: Option<&State>, changed: &BTreeSet<i32>, st: &Statuses) -> Result<BTreeSet<i32>> {
    let mut days = changed.clone();
    let Some(prior) = prior else { return Ok(days) };
    days.extend(&st.moved_first_days);
    if let Some(since) = st.since {
        // The kept statuses of every day from `since` on that has or had data.
        let mut look: BTreeSet<i32> = st.recent.column("day")?.i32()?.into_no_null_iter().collect();
        look.extend(changed.range(since..));
        let look: Vec<i32> = look.into_iter().collect();
        let old: Vec<DataFrame> =
            crate::par::map(&look, |d| prior.get_day_statuses(*d))?.into_iter().flatten().collect();
        let old = if old.is_empty() { st.recent.clear() } else { concat_frames(old)? };
        days.extend(changed_status_days(&old, &st.recent, since)?);
    }
    Ok(days)
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
        let c = classify(&macs, &days, &dwell, &q, &vec![None; rows.len()], &vec![false; rows.len()], &s);
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
    fn classifying_from_a_later_day_with_context_equals_classifying_every_day() {
        // Pseudo-random device-days (xorshift), sorted by (device, day) by construction.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut rows = Vec::new();
        for mac in 0..60u64 {
            for day in 0..90 {
                if rnd() % 3 == 0 {
                    rows.push((mac, day, (rnd() % 9) as i64 * 3600, rnd() % 3 != 0));
                }
            }
        }
        let s = Settings::default();
        let col4 = |rows: &[(u64, i32, i64, bool)]| {
            (
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )
        };
        let n = rows.len();
        let (m, d, w, q) = col4(&rows);
        let full = classify(&m, &d, &w, &q, &vec![None; n], &vec![false; n], &s);
        assert!(full.staff.iter().any(|v| *v) && full.loyalty.contains(&Some(WEEKLY)));
        for since in [1, 7, 27, 28, 29, 45, 89] {
            let idx: Vec<usize> = (0..n).filter(|&i| rows[i].1 >= since - 27).collect();
            let sub: Vec<_> = idx.iter().map(|&i| rows[i]).collect();
            let known: Vec<Option<Known>> = idx
                .iter()
                .map(|&i| {
                    (rows[i].1 < since).then(|| Known {
                        days7: full.days7[i],
                        staff: full.staff[i],
                        visitor: full.visitor[i],
                        loyalty: full.loyalty[i],
                    })
                })
                .collect();
            let earlier: Vec<bool> = idx
                .iter()
                .map(|&i| (0..n).any(|j| rows[j].0 == rows[i].0 && rows[j].1 < since - 27 && full.visitor[j]))
                .collect();
            let (m, d, w, q) = col4(&sub);
            let part = classify(&m, &d, &w, &q, &known, &earlier, &s);
            for (k, &i) in idx.iter().enumerate().filter(|(_, &i)| rows[i].1 >= since) {
                assert_eq!(
                    (part.days7[k], part.staff[k], part.visitor[k], part.loyalty[k]),
                    (full.days7[i], full.staff[i], full.visitor[i], full.loyalty[i]),
                    "since {since}, row {:?}",
                    rows[i]
                );
            }
        }
    }

    #[test]
    fn merging_sorted_customers_equals_a_group_by_over_both() {
        // Two aggregates over disjoint days with overlapping devices, one side in hash order.
        let part = |macs: &[u64], day: i32| {
            let n = macs.len();
            let fv: Vec<Option<i32>> = macs.iter().map(|m| (m % 3 != 0).then_some(day + (*m % 2) as i32)).collect();
            df!(MAC => macs, "first_seen" => macs.iter().map(|m| (day as i64) * 86_400 + *m as i64).collect::<Vec<_>>(),
                "last_seen" => macs.iter().map(|m| (day as i64) * 86_400 + 50_000 - *m as i64).collect::<Vec<_>>(),
                "first_date" => vec![day; n], "last_date" => vec![day + 1; n],
                "days_seen" => macs.iter().map(|m| 1 + (*m % 4) as i64).collect::<Vec<_>>(), "first_visit" => fv)
            .unwrap()
        };
        let a = part(&[9, 2, 7, 4, 11, 1], 10);
        let b = part(&[1, 3, 4, 12, 20], 12);
        let got = merge_customers(&a, &b).unwrap();
        let want = concat([a.lazy(), b.lazy()], UnionArgs::default())
            .unwrap()
            .group_by([col(MAC)])
            .agg([
                col("first_seen").min(),
                col("last_seen").max(),
                col("first_date").min(),
                col("last_date").max(),
                col("days_seen").sum(),
                col("first_visit").min(),
            ])
            .sort([MAC], SortMultipleOptions::default())
            .collect()
            .unwrap();
        assert_eq!(
            got.column(MAC).unwrap().u64().unwrap().into_no_null_iter().collect::<Vec<_>>(),
            [1, 2, 3, 4, 7, 9, 11, 12, 20]
        );
        assert!(got.equals_missing(&want), "{got}\n{want}");
    }

    #[test]
    fn a_kept_context_moved_to_a_later_boundary_equals_one_built_there() {
        // Status rows (device, day, mall dwell, visitor) over days 0..40.
        let s = Settings::default();
        let h6 = (s.staff_min_hours * 3600.0) as i64;
        let rows: Vec<(u64, i32, i64, bool)> = (0..40)
            .flat_map(|d| {
                (0..6u64)
                    .filter(move |m| (d as u64 + m) % 3 != 0)
                    .map(move |m| (m, d, (m as i64 % 3) * h6 / 2, (d + m as i32) % 2 == 0))
            })
            .collect();
        let frame = |keep: &dyn Fn(i32) -> bool| {
            let r: Vec<_> = rows.iter().filter(|r| keep(r.1)).collect();
            df!(MAC => r.iter().map(|r| r.0).collect::<Vec<_>>(), "day" => r.iter().map(|r| r.1).collect::<Vec<_>>(),
                "mall_dwell" => r.iter().map(|r| r.2).collect::<Vec<_>>(), "visitor" => r.iter().map(|r| r.3).collect::<Vec<_>>())
            .unwrap()
        };
        let built = |before: i32| {
            let mut bits = PlHashMap::new();
            Context::add(&mut bits, before, &frame(&|_| true), &s).unwrap();
            Context::from_bits(before, bits)
        };
        let (old, new) = (built(30), built(33));
        let mut bits = PlHashMap::new();
        old.shift_into(33, &mut bits);
        Context::add(&mut bits, 33, &frame(&|d| d >= 30), &s).unwrap();
        let moved = Context::from_bits(33, bits);
        assert_eq!((&moved.mac, &moved.long, &moved.visit), (&new.mac, &new.long, &new.visit));
        assert!(new.long.iter().any(|l| *l != 0) && new.visit.iter().any(|v| *v != 0));
        // Bit k is day 32 − k: device 1 on day 31 has dwell h6/2 (short) and is a visitor,
        // device 2 on day 32 has h6 and is one too; device 1 has no row on day 32.
        let (i, j) = (new.mac.binary_search(&1).unwrap(), new.mac.binary_search(&2).unwrap());
        assert_eq!((new.long[i] >> 1 & 1, new.visit[i] >> 1 & 1, new.long[i] & 1, new.visit[i] & 1), (0, 1, 0, 0));
        assert_eq!((new.long[j] & 1, new.visit[j] & 1), (1, 1));
        // The rows it stands for: exactly the long or visitor days from `lo` on.
        let macs = UInt64Chunked::from_vec("m".into(), vec![1, 2, 9]);
        let got = new.rows(&macs, 20, &s);
        let want =
            rows.iter().filter(|r| [1, 2].contains(&r.0) && (20..33).contains(&r.1) && (r.2 >= h6 || r.3)).count();
        assert_eq!(got.height(), want);
        let visitor = got.column("visitor").unwrap().bool().unwrap();
        let dwell = got.column("mall_dwell").unwrap().i64().unwrap();
        let (macs, days) = (got.column(MAC).unwrap().u64().unwrap(), got.column("day").unwrap().i32().unwrap());
        for i in 0..got.height() {
            let r = rows.iter().find(|r| Some(r.0) == macs.get(i) && Some(r.1) == days.get(i)).unwrap();
            assert_eq!((visitor.get(i), dwell.get(i).unwrap() >= h6), (Some(r.3), r.2 >= h6));
        }
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
