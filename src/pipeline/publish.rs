//! Stage 6, result tables → the published layout: every daily table of each date to
//! re-publish (a date without data any more is retracted), then the snapshots beside the
//! state they were computed from; after a `run`, what an older generation left behind.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::*;

use super::rollup::{load_day, Kept, KEEP_ROLLUP_FILES};
use super::statuses::{day_device_summary, Classifier, Statuses};
use super::visits::{day_visits, DayVisits};
use crate::config::Settings;
use crate::dims::Dims;
use crate::fault;
use crate::metrics::{self, quality, snapshots, DayCtx, SnapshotCtx};
use crate::progress::Progress;
use crate::schema::{Pseudonyms, MAC};
use crate::state::{Manifest, State};
use crate::store::Location;
use crate::tables;
use crate::timeutil::days_to_date;

/// Walks the days from the earliest changed one (`since`) in order, deciding each day's
/// statuses before the next's. A changed day's rollup is built, its visits and device
/// summary (kept in the state) derived, and its tables published, so each rollup is built
/// once; an unchanged day is only decided again (from its kept summary). A changed day
/// without data any more loses its summary and its partitions. The last day, when it
/// changed, is decided but left to publish ([`Walked::last`]).
///
/// A day's tables are computed and written while the next day is read and decided: reading
/// a day (segments, sort, visits) keeps about one core busy, writing its tables about two,
/// so one after the other left a core idle for a third of each day. Memory then holds two
/// days, the one being written and the one being read, so a day of more than
/// [`OVERLAP_ROWS`] rollup rows is written before the next is read.
pub fn walk_days(
    shared: &Shared,
    all_days: &BTreeSet<i32>,
    changed: &BTreeSet<i32>,
    cls: &mut Classifier,
) -> Result<Walked> {
    let Shared { out, state, by_day, .. } = *shared;
    let mut walked = Walked { published: Vec::with_capacity(changed.len()), last: None };
    let Some(&since) = changed.first() else { return Ok(walked) };
    let days: BTreeSet<i32> = all_days.range(since..).chain(changed).copied().collect();
    let bar = shared.progress.bar(days.len() as u64, "days");
    let mut writing: Option<Pending> = None;
    for &day in &days {
        if !by_day.contains_key(&day) {
            state.delete_summary(day)?;
            retract(out, days_to_date(day))?;
        } else if changed.contains(&day) {
            let read = || -> Result<Pending> {
                let t0 = std::time::Instant::now();
                let kept =
                    Kept { version: shared.kept.get(&day).copied(), added: shared.added.get(&day).map(Vec::as_slice) };
                let pos = load_day(state, by_day, day, kept, shared.rows_bound(day))?;
                super::trace(&format!("  {} rollup", days_to_date(day)), t0);
                keep_rollup(shared, day, &pos)?;
                let visits = day_visits(&pos, shared.settings)?;
                super::trace(&format!("  {} visits", days_to_date(day)), t0);
                let mut summary = day_device_summary(&visits.mall, day, shared.settings)?;
                state.put_summary(day, &mut summary)?;
                let status = cls.decide(day, summary)?;
                super::trace(&format!("  {} rollup, visits, statuses", days_to_date(day)), t0);
                Ok(Pending { day, first: cls.first_dates(&status)?, pos, visits, status })
            };
            let mut previous = writing.take();
            if previous.as_ref().is_some_and(|p| p.pos.height() > OVERLAP_ROWS) {
                walked.published.extend(previous.take().map(|p| p.publish(shared)).transpose()?);
            }
            let (done, next) = crate::par::join(|| previous.map(|p| p.publish(shared)).transpose(), read)?;
            walked.published.extend(done);
            writing = Some(next);
        } else {
            cls.decide(day, state.get_summary(day)?)?;
        }
        bar.inc(1);
    }
    if let Some(p) = writing {
        if days.last() == Some(&p.day) {
            walked.last = Some(p);
        } else {
            walked.published.push(p.publish(shared)?);
        }
    }
    bar.finish_and_clear();
    Ok(walked)
}

/// The largest day (rollup rows) whose tables are written while the next day is read. Days
/// of 2.9 M rows (a 20 M-record week) overlapped ran in 0.96 × the time (median of five
/// paired runs) at a peak of 1.25 GB instead of 0.95 GB; days of 7.3 M (50 M) gained nothing,
/// both halves already using both cores, and peaked at 2.8 GB instead of 1.6 GB.
pub const OVERLAP_ROWS: usize = 4_000_000;

/// What [`walk_days`] did: the changed dates it published, and the last day of the walk
/// when it changed, decided but not published yet: its tables are written while the
/// snapshots, which need every day decided, are computed and published beside them.
pub struct Walked {
    pub published: Vec<NaiveDate>,
    pub last: Option<Pending>,
}

/// A decided day with what its tables are computed from.
pub struct Pending {
    day: i32,
    pos: DataFrame,
    visits: DayVisits,
    status: DataFrame,
    first: DataFrame,
}

impl Pending {
    pub fn publish(self, shared: &Shared) -> Result<NaiveDate> {
        publish_day(shared, self.day, self.pos, Some(self.visits), self.status, &self.first)?;
        super::release_memory();
        Ok(days_to_date(self.day))
    }
}

/// Publishes the tables of `days` that did not change but whose statuses or new-customer
/// figures moved (an update's late or changed file), with the statuses decided by the walk.
/// The "after-first-partition" fault point fires again at the first of these.
pub fn publish_days(
    shared: &Shared,
    days: &BTreeSet<i32>,
    mut status_by_day: HashMap<i32, DataFrame>,
    empty_status: &DataFrame,
    cls: &Classifier,
) -> Result<Vec<NaiveDate>> {
    let bar = shared.progress.bar(days.len() as u64, "publishing");
    let mut published = Vec::with_capacity(days.len());
    let first_partition = std::sync::Once::new();
    let shared = &Shared { first_partition: &first_partition, ..*shared };
    let Shared { out, state, by_day, .. } = *shared;
    for &day in days {
        let date = days_to_date(day);
        if !by_day.contains_key(&day) {
            retract(out, date)?;
        } else {
            let t0 = std::time::Instant::now();
            // No file of the day changed: a kept rollup covers it whole.
            let kept = Kept { version: shared.kept.get(&day).copied(), added: Some(&[]) };
            let pos = load_day(state, by_day, day, kept, shared.rows_bound(day))?;
            super::trace(&format!("  {date} rollup"), t0);
            let status = status_by_day.remove(&day).unwrap_or_else(|| empty_status.clone());
            let first = cls.first_dates(&status)?;
            publish_day(shared, day, pos, None, status, &first)?;
            super::release_memory();
            published.push(date);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(published)
}

/// Keeps the rollup of a day with many files (a new version, recorded for the manifest), so
/// the next update adding files to it need not read every segment again.
fn keep_rollup(shared: &Shared, day: i32, pos: &DataFrame) -> Result<()> {
    if shared.by_day.get(&day).map_or(0, Vec::len) < KEEP_ROLLUP_FILES {
        return Ok(());
    }
    let v = shared.kept.get(&day).map_or(1, |v| v + 1);
    shared.state.put_rollup(day, v, &mut pos.clone())?;
    shared.rollups_written.lock().unwrap_or_else(|e| e.into_inner()).insert(day, v);
    Ok(())
}

/// The manifest's kept rollups after this run: the versions written replace the committed
/// ones; only the last week's days keep one (late files for older days are rare). Returns the
/// objects the commit makes obsolete, as (day, version).
pub fn record_rollups(
    manifest: &mut Manifest,
    written: BTreeMap<i32, u32>,
    all_days: &BTreeSet<i32>,
) -> Vec<(i32, u32)> {
    let mut obsolete = Vec::new();
    for (day, v) in written {
        obsolete.extend(manifest.rollups.insert(day, v).map(|old| (day, old)));
    }
    let from = all_days.last().map_or(i32::MAX, |d| d - 7);
    manifest.rollups.retain(|d, v| {
        let keep = *d >= from && all_days.contains(d);
        if !keep {
            obsolete.push((*d, *v));
        }
        keep
    });
    obsolete
}

/// Computes and publishes every daily table of one day: each table is computed and then
/// written (its own single PUT) by one of two workers, largest first ([`metrics::by_size`]);
/// a table's frame is gone once written.
fn publish_day(
    shared: &Shared,
    day: i32,
    pos: DataFrame,
    visits: Option<DayVisits>,
    status: DataFrame,
    first_dates: &DataFrame,
) -> Result<()> {
    let (date, t0) = (days_to_date(day), std::time::Instant::now());
    let ctx = day_ctx(day, pos, visits, status, first_dates, shared)?;
    let trace = std::env::var("FOOTFALL_TRACE").is_ok_and(|v| v == "1");
    crate::par::map(&metrics::by_size(), |m| {
        let (schema, df) = metrics::compute(m, &ctx)?;
        let (t1, rows) = (std::time::Instant::now(), df.height());
        let size = tables::publish_partition(shared.out, schema, date, df, &shared.settings.tz_name, shared.names)?;
        if trace {
            let secs = t1.elapsed().as_secs_f64();
            eprintln!("trace:     write {} {secs:.2}s, {rows} rows, {size} bytes", schema.name);
        }
        shared.first_partition.call_once(|| fault::point("after-first-partition"));
        Ok(())
    })?;
    super::trace(&format!("  {date} tables written"), t0);
    Ok(())
}

/// Removes every daily table's partition of a date that has no data any more.
fn retract(out: &Location, date: NaiveDate) -> Result<()> {
    for m in metrics::DAILY {
        out.delete(&tables::partition_rel(m.name, date))?;
    }
    Ok(())
}

/// Publishes every snapshot table (outputs only: each is recomputed whole by every run).
pub fn publish_snapshot_tables(out: &Location, ctx: &SnapshotCtx) -> Result<()> {
    crate::par::map(snapshots::SNAPSHOTS, |s| {
        let (schema, t0) = (crate::schema::get(s.name)?, std::time::Instant::now());
        let Some(df) = (s.query)(ctx)? else { return Ok(()) };
        let df = schema.conform_with(df, &ctx.settings.tz_name, ctx.names)?;
        tables::publish_snapshot(out, schema, df)?;
        super::trace(&format!("  {} published", s.name), t0);
        Ok(())
    })?;
    Ok(())
}

/// Publishes the `data_quality` dates in `keys`: the probe files of each date's manifest
/// part (loaded here when not yet) and the sales files of that date; a date left without any
/// file is removed.
pub fn publish_quality(
    out: &Location,
    manifest: &mut Manifest,
    keys: &BTreeSet<String>,
    sales: &crate::sales::SalesFiles,
    settings: &Settings,
    names: Option<&Pseudonyms>,
) -> Result<()> {
    let schema = crate::schema::get(quality::NAME)?;
    manifest.load_parts(out, |k, _| keys.contains(k))?;
    let mut sales_by_key: BTreeMap<String, Vec<quality::SalesRow>> = BTreeMap::new();
    for (rel, r) in sales {
        let (key, hour) = crate::sales::quality_key(rel, r);
        if keys.contains(&key) {
            sales_by_key.entry(key).or_default().push(quality::SalesRow { file: rel, hour, quality: &r.quality });
        }
    }
    let empty = BTreeMap::new();
    let probe_parts: BTreeMap<&str, &BTreeMap<String, crate::state::FileRecord>> = manifest.loaded_parts().collect();
    let keys: Vec<&String> = keys.iter().collect();
    crate::par::map(&keys, |key| {
        let date = NaiveDate::parse_from_str(key, "%Y-%m-%d")?;
        let files = probe_parts.get(key.as_str()).copied().unwrap_or(&empty);
        let sales = sales_by_key.get(key.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        if files.is_empty() && sales.is_empty() {
            return out.delete(&tables::partition_rel(quality::NAME, date));
        }
        let df = quality::data_quality(date, files, sales)?;
        tables::publish_partition(out, schema, date, df, &settings.tz_name, names).map(drop)
    })?;
    Ok(())
}

/// Stores what the next update compares against and builds on: the statuses of the days
/// decided again, the settled customers part and its context, the pseudonyms. Written after
/// every partition: an update that dies before its manifest leaves statuses the next one
/// compares against, so they must not be ahead of what is published.
pub fn keep_state(
    state: &State,
    st: &Statuses,
    all_days: &BTreeSet<i32>,
    pseudonyms: Option<&DataFrame>,
) -> Result<()> {
    if let Some((before, settled, context)) = &st.settled_new {
        state.put_settled(*before, settled.clone())?;
        state.put_context(*before, &mut context.clone())?;
    }
    if let Some(since) = st.since {
        let mut by_day = super::statuses::split_statuses(&st.recent, &all_days.range(since..).copied().collect())?;
        for day in all_days.range(since..) {
            let mut df = by_day.remove(day).unwrap_or_else(|| st.recent.clear());
            state.put_day_statuses(*day, &mut df)?;
        }
    }
    for day in &st.gone {
        state.delete_day_statuses(*day)?;
    }
    if let Some(dict) = pseudonyms {
        state.put_pseudonyms(&mut dict.clone())?;
    }
    Ok(())
}

/// After a `run`: removes the previous generation's state and the partitions of dates that
/// no longer have data.
pub fn cleanup_after_run(out: &Location, manifest: &Manifest, sales_keys: &BTreeSet<String>) -> Result<()> {
    for e in out.list_under("_state")? {
        let top = e.rel.split('/').nth(1).unwrap_or("");
        if top.starts_with("gen-") && top != manifest.generation {
            out.delete(&e.rel)?;
        }
    }
    let dates: BTreeSet<NaiveDate> = manifest.days().iter().map(|d| days_to_date(*d)).collect();
    for m in metrics::DAILY {
        for d in tables::published_dates(out, m.name)? {
            if !dates.contains(&d) {
                out.delete(&tables::partition_rel(m.name, d))?;
            }
        }
    }
    // Before state format 7 data_quality and customers were one file each.
    out.delete(&tables::snapshot_rel(quality::NAME))?;
    out.delete(&tables::snapshot_rel("customers"))?;
    for d in tables::published_dates(out, quality::NAME)? {
        let key = d.format("%Y-%m-%d").to_string();
        if !manifest.parts.contains_key(&key) && !sales_keys.contains(&key) {
            out.delete(&tables::partition_rel(quality::NAME, d))?;
        }
    }
    Ok(())
}

/// What publishing any date of a run needs: where to, the state and the files of each day,
/// the dimensions and settings, the pseudonyms (with a MAC key).
#[derive(Clone, Copy)]
pub struct Shared<'a> {
    pub out: &'a Location,
    pub state: &'a State<'a>,
    pub by_day: &'a BTreeMap<i32, Vec<&'a str>>,
    /// A bound on each day's segment rows ([`Manifest::accepted_rows_by_day`]).
    pub rows_by_day: &'a BTreeMap<i32, u64>,
    pub dims: &'a Dims,
    pub settings: &'a Settings,
    pub names: Option<&'a Pseudonyms>,
    pub progress: Progress,
    /// The committed kept rollups (day → version), the files this run added per day that no
    /// changed file touches, and the kept rollups this run writes.
    pub kept: &'a BTreeMap<i32, u32>,
    pub added: &'a BTreeMap<i32, Vec<String>>,
    pub rollups_written: &'a std::sync::Mutex<BTreeMap<i32, u32>>,
    /// Fires the "after-first-partition" fault point at the first partition written.
    pub first_partition: &'a std::sync::Once,
}

impl Shared<'_> {
    fn rows_bound(&self, day: i32) -> usize {
        self.rows_by_day.get(&day).map_or(0, |&r| usize::try_from(r).unwrap_or(usize::MAX))
    }
}

/// What every table of one date is computed from: its rollup (its visits if already
/// computed), its statuses and its devices' first days, with `staff.policy = "exclude"`
/// applied and the shop visits derived.
fn day_ctx<'a>(
    day: i32,
    pos: DataFrame,
    visits: Option<DayVisits>,
    status: DataFrame,
    first_dates: &'a DataFrame,
    sh: &Shared<'a>,
) -> Result<DayCtx<'a>> {
    let s = sh.settings;
    let DayVisits { shop, mall } = match visits {
        Some(v) => v,
        None => day_visits(&pos, s)?,
    };
    // A device is staff for the whole day, so dropping its rows equals recomputing without it.
    // Filtered in place: the rollup's (second, device, AP, shop) order is kept for the scans.
    let (pos, shop) = if s.staff_exclude {
        let staff = status.clone().lazy().filter(col("staff")).collect()?;
        let staff: PlHashSet<u64> = staff.column(MAC)?.u64()?.into_no_null_iter().collect();
        let without = |df: DataFrame| -> Result<DataFrame> {
            let keep: BooleanChunked =
                df.column(MAC)?.u64()?.iter().map(|m| !m.is_some_and(|m| staff.contains(&m))).collect();
            Ok(df.filter(&keep)?)
        };
        (without(pos)?, without(shop)?)
    } else {
        (pos, shop)
    };
    let mut pos = pos;
    pos.rechunk_mut(); // the scans read it as slices
    Ok(DayCtx { day, pos, visits: shop, mall, status, first_dates, dims: sh.dims, settings: s, names: sh.names })
}
