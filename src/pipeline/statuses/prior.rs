//! What an update reads of the previous run's state, and the dates it must republish against it.

use std::collections::{BTreeSet, HashMap};

use anyhow::Result;
use polars::prelude::*;

use crate::config::Settings;
use crate::state::State;

use super::{changed_status_days, concat_frames, customers, statuses, Aggregate, Context, Statuses, Stored};

/// What an update reads of the previous run's state before deciding anything: its
/// customers as the settled aggregate and the aggregate of its kept statuses from that
/// boundary on (usually the latest day only: the state keeps no second copy of every device
/// to read and rewrite each update), and the context kept with the settled part. None of it
/// depends on the new files, so it is read while they are ingested.
pub struct Prior {
    pub(super) settled: Option<(i32, Stored)>,
    pub(super) recent: Aggregate,
    pub(super) context: Option<Context>,
}

impl Prior {
    /// `days`: the days the previous run had.
    pub fn read(p: &State, boundary: Option<i32>, days: &BTreeSet<i32>, s: &Settings) -> Result<Prior> {
        let (settled, context) = match boundary {
            None => (None, None),
            Some(b) => {
                let bytes = p.get_settled(b)?.ok_or_else(|| {
                    anyhow::anyhow!("state is missing its settled customers; run `footfall run` to rebuild")
                })?;
                let context = p.get_context(b)?.map(|df| Context::of(&df, b)).transpose()?;
                (Some((b, Stored::parse(bytes)?)), context)
            }
        };
        let from: Vec<i32> = days.range(boundary.unwrap_or(i32::MIN)..).copied().collect();
        let kept: Vec<DataFrame> = crate::par::map(&from, |d| p.get_day_statuses(*d))?.into_iter().flatten().collect();
        let recent = if kept.is_empty() { statuses(vec![], None, &|_| false, s)? } else { concat_frames(kept)? };
        Ok(Prior { settled, recent: Aggregate::of(&customers(&recent, s)?)?, context })
    }
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
