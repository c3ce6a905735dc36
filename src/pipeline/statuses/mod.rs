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
//!
//! One file per concept: [`classify`] (the rules of one device-day), [`context`] (the 27 days
//! before, as bits), [`customers`] (the snapshot and its mergeable aggregate), [`prior`] (the
//! previous run's state and what to republish against it); the [`Classifier`] here walks the
//! days with them.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use polars::prelude::*;

use crate::config::Settings;
use crate::schema::MAC;
use crate::state::State;

mod classify;
mod context;
mod customers;
mod prior;
#[cfg(test)]
mod tests;

pub use classify::{changed_status_days, day_device_summary, statuses, DAILY, FIRST_TIME, OCCASIONAL, WEEKLY};
pub use context::Context;
use context::WINDOW;
pub use customers::{customers, merge_customers};
use customers::{overlay, Aggregate, Rows, Stored, NO_VISIT};
pub use prior::{republish_days, split_statuses, Prior};

/// What the statuses pass decides.
pub struct Statuses {
    /// Statuses of the days from `since` on (the only ones that can have changed).
    pub recent: DataFrame,
    pub since: Option<i32>,
    /// `customers_recent` (the newest day's devices, totals over all days) and
    /// `customers_settled` (every device before the newest day) to publish; `None`: the
    /// published one stands.
    pub customers_recent: Option<DataFrame>,
    pub customers_settled: Option<DataFrame>,
    /// The boundary of the settled customers aggregate kept for the next update.
    pub settled_before: Option<i32>,
    /// The settled aggregate with its boundary and the context of the days before it, when
    /// they differ from the ones kept (to write).
    pub settled_new: Option<(i32, bytes::Bytes, DataFrame)>,
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
    prior_settled: Option<(i32, Stored)>,
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
        let pick =
            |a: &dyn Rows| a.find(mac).map(|i| a.row(i)).map(|r| if visit { r.first_visit } else { r.first_date });
        let settled = self.prior_settled.as_ref().and_then(|(_, a)| pick(a));
        let d = match (settled, self.prior_recent.as_ref().and_then(|a| pick(a))) {
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
        let settled = self.prior_settled.as_ref().filter(|(b, _)| *b > since).map(|(_, a)| a as &dyn Rows);
        for a in self.prior_recent.iter().map(|a| a as &dyn Rows).chain(settled) {
            for m in a.macs() {
                if let Some(d) = self.prior_first(m, false).filter(|d| *d >= since) {
                    was.insert(m, d);
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
            // Nothing changed (the published customers stand), or no data is left at all.
            let (published, settled_before) = match (&self.prior_recent, &self.prior_settled) {
                (Some(_), settled) if changed.is_empty() => (None, settled.as_ref().map(|(b, _)| *b)),
                _ => (Some(customers(&empty()?, s)?), None),
            };
            return Ok(Statuses {
                recent: empty()?,
                since: None,
                customers_recent: published.clone(),
                customers_settled: published,
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
        // customers = settled (days before the boundary) + the days from the boundary on;
        // `None`: the previous settled part stands (looked up in place, not decoded).
        let (settled, at_latest): (Option<Aggregate>, DataFrame) = match &self.prior_settled {
            Some((boundary, old)) if since >= *boundary => {
                let between: Vec<i32> = all_days.range(*boundary..since).copied().collect();
                let kept = crate::par::map(&between, |d| state.get_day_statuses(*d))?;
                let mut live: Vec<DataFrame> = kept.into_iter().flatten().collect();
                live.push(recent.clone());
                let live = concat_frames(live)?;
                let settled = if latest > *boundary {
                    let before_latest = live.clone().lazy().filter(col("day").lt(lit(latest))).collect()?;
                    Some(old.decode().merge(&of(&before_latest)?))
                } else {
                    None
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
                (Some(settled), all.lazy().filter(col("day").gt_eq(lit(latest))).collect()?)
            }
        };
        let gone = changed.iter().filter(|d| !all_days.contains(d)).copied().collect();
        let at_latest = of(&at_latest)?;
        let customers_recent = match (&settled, &self.prior_settled) {
            (Some(new), _) => overlay(new, &at_latest),
            (None, Some((_, old))) => overlay(old, &at_latest),
            (None, None) => at_latest,
        }
        .frame()?;
        let settled_new = match settled {
            None => None,
            Some(settled) => {
                let mut bits = PlHashMap::new();
                if let Some(kept) = &self.kept {
                    kept.shift_into(latest, &mut bits);
                }
                Context::add(&mut bits, latest, &recent, s)?;
                Some((latest, settled.to_bytes(), Context::from_bits(latest, bits).frame(), settled.frame()?))
            }
        };
        let (settled_new, customers_settled) = match settled_new {
            Some((b, bytes, context, frame)) => (Some((b, bytes, context)), Some(frame)),
            None => (None, None),
        };
        Ok(Statuses {
            customers_recent: Some(customers_recent),
            customers_settled,
            settled_new,
            settled_before: Some(latest),
            recent,
            since: Some(since),
            gone,
            moved_first_days: self.moved_first_days(since),
        })
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
