//! The 27 days before the first day classified again, per device as two bit sets: all a later
//! day's status reads of them.

use std::collections::BTreeSet;

use anyhow::Result;
use polars::prelude::*;

use crate::config::Settings;
use crate::schema::MAC;
use crate::state::State;

use super::strictly_increasing;

/// Days a status looks back on (D−27..D−1).
pub(super) const WINDOW: i32 = 27;

/// What classifying the days from `before` on needs of the 27 days before it, per device as
/// bits (bit k = day `before − 1 − k`): whether the day's mall dwell reached the staff
/// threshold (`long`) and whether it was a visitor-day (`visit`); nothing else of those days
/// enters a later day's status. Kept in the state beside the settled customers (same
/// boundary), so an update reads one object instead of the 27 days' statuses.
pub struct Context {
    pub(super) before: i32,
    /// Sorted.
    pub(super) mac: Vec<u64>,
    pub(super) long: Vec<u32>,
    pub(super) visit: Vec<u32>,
}

impl Context {
    /// The context of the days before `since`: the one kept with the settled part (shifted,
    /// with the kept statuses of any days between its boundary and `since`), else from the
    /// kept statuses of the 27 days (a state without one, a `run`, a late file).
    pub(super) fn before(
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
    pub(super) fn add(
        bits: &mut PlHashMap<u64, (u32, u32)>,
        before: i32,
        statuses: &DataFrame,
        s: &Settings,
    ) -> Result<()> {
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
    pub(super) fn shift_into(&self, before: i32, bits: &mut PlHashMap<u64, (u32, u32)>) {
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

    pub(super) fn from_bits(before: i32, bits: PlHashMap<u64, (u32, u32)>) -> Self {
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
    pub(super) fn rows(&self, macs: &UInt64Chunked, lo: i32, s: &Settings) -> DataFrame {
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

    pub(super) fn frame(&self) -> DataFrame {
        df!(MAC => &self.mac, "long" => &self.long, "visit" => &self.visit).expect("columns of equal length")
    }

    pub(super) fn of(df: &DataFrame, before: i32) -> Result<Self> {
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
