//! The one data path shared by `run` and `update`:
//!
//! ```text
//! probe files ─inspect+parse─▶ segments (per file, per day) ─merge─▶ day rollups
//!     ─visits─▶ device-day summaries ─all days─▶ statuses (staff, loyalty) + customers
//!     ─catalogue─▶ result tables ─publish─▶ <out>/<table>/date=D/part-0.parquet
//! ```
//!
//! `run` is `update` from an empty state in a fresh generation. An update reads only files
//! that are new or changed since the manifest, recomputes the days those files touch plus
//! the days whose new-customer figures or staff/visitor/loyalty statuses move (those look
//! back over earlier days), and commits the manifest last.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{bail, Context, Result};
use polars::prelude::*;

use crate::config::Plan;
use crate::dims::{self, Dims};
use crate::fault;
use crate::par;
use crate::ingest::{self, FileQuality, IngestCtx, ProbeFile, REASONS};
use crate::metrics::{self, presence, Shared};
use crate::progress::Progress;
use crate::publish::{self, parquet_bytes, read_parquet};
use crate::schema;
use crate::schema::Pseudonyms;
use crate::state::{self, FileRecord, Lock, Manifest, RunRecord};
use crate::store::Location;
use crate::timeutil::{days_to_date, LocalClock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Rebuild everything from all probe files.
    Run,
    /// Process only new or changed files.
    Update,
}

/// What a run did (or, with `dry_run`, would do).
#[derive(Debug, Default)]
pub struct Report {
    pub new_files: Vec<String>,
    pub changed_files: Vec<String>,
    pub missing_files: Vec<String>,
    pub unchanged_files: usize,
    pub dates_published: Vec<chrono::NaiveDate>,
    pub rows_read: i64,
    pub rows_rejected: i64,
    /// Probe files parsed.
    pub files_read: usize,
    /// Reads of probe objects (footers and bodies): proves an update opens only new files.
    pub probe_reads: u64,
}

/// Step timings on stderr when `FOOTFALL_TRACE=1` (for profiling; off by default).
fn trace(step: &str, t0: std::time::Instant) {
    if std::env::var("FOOTFALL_TRACE").is_ok_and(|v| v == "1") {
        eprintln!("trace: {step} at {:.2}s", t0.elapsed().as_secs_f64());
    }
}

/// A fingerprint of the settings results depend on (the MAC key only as a hash).
fn settings_fingerprint(plan: &Plan) -> String {
    let s = &plan.settings;
    let policy = |exclude: bool, yes: &'static str, no: &'static str| if exclude { yes } else { no };
    format!(
        "tz={};gap={};top={};randomized={};mall_gap={};min_rssi={};min_dwell={};staff={}h/{}d/{};key={};density={}/{}",
        s.tz_name,
        s.visit_gap,
        s.top_shops,
        policy(s.exclude_randomized, "exclude", "keep"),
        s.mall_gap,
        s.min_rssi,
        s.min_dwell,
        s.staff_min_hours,
        s.staff_min_days,
        policy(s.staff_exclude, "exclude", "flag"),
        s.mac_key.as_ref().map(|k| k.fingerprint()).unwrap_or_else(|| "none".into()),
        s.density_cell,
        s.density_slot,
    )
}

/// Runs `run` or `update`.
pub fn execute(plan: &Plan, mode: Mode, dry_run: bool, progress: Progress) -> Result<Report> {
    let started = chrono::Utc::now();
    let t0 = std::time::Instant::now();
    let out = &plan.out;
    let lock = if dry_run { None } else { Some(Lock::acquire(out, 6 * 3600)?) };
    fault::point("after-lock");

    let fingerprint = settings_fingerprint(plan);
    let old = Manifest::load(out)?;
    if mode == Mode::Update {
        if let Some(m) = &old {
            if m.settings != fingerprint {
                return Err(crate::error::usage(format!(
                    "settings changed since the last run ({} → {}); run `footfall run` to rebuild",
                    m.settings, fingerprint
                )));
            }
        }
    }
    let (mut manifest, prior) = match (mode, &old) {
        (Mode::Update, Some(m)) => (m.clone(), Some(m.clone())),
        _ => (Manifest::new(state::new_generation(), fingerprint), None),
    };
    let gen_dir = manifest.gen_dir();

    // What to read.
    let key = plan.settings.mac_key.as_ref();
    let dims = dims::load(plan.dims.as_ref(), key)?;
    // With a look-back window an update lists only recent partition dates.
    let since = match (mode, plan.lookback_days) {
        (Mode::Update, Some(n)) => {
            manifest.files.values().filter_map(|f| f.part_date).max().map(|d| d - chrono::Duration::days(n as i64))
        }
        _ => None,
    };
    let files = ingest::discover_since(&plan.probes, since)?;
    let mut report = Report::default();
    let mut work: Vec<ProbeFile> = Vec::new();
    let listed: BTreeSet<&str> = files.iter().map(|f| f.entry.rel.as_str()).collect();
    for f in &files {
        match manifest.files.get(&f.entry.rel) {
            Some(r)
                if r.size == f.entry.size && r.e_tag == f.entry.e_tag && r.last_modified == f.entry.last_modified =>
            {
                report.unchanged_files += 1
            }
            Some(_) => {
                report.changed_files.push(f.entry.rel.clone());
                work.push(f.clone());
            }
            None => {
                report.new_files.push(f.entry.rel.clone());
                work.push(f.clone());
            }
        }
    }
    trace("listed", t0);
    report.missing_files = manifest
        .files
        .iter()
        .filter(|(k, r)| !listed.contains(k.as_str()) && since.is_none_or(|s| r.part_date.is_none_or(|d| d >= s)))
        .map(|(k, _)| k.clone())
        .collect();
    if dry_run {
        return Ok(report);
    }

    // Validate every candidate before any work: a bad file fails the run, nothing published.
    let layouts: Vec<ingest::FileLayout> = par::map(&work, |f| ingest::inspect(&plan.probes, f))?;

    // Parse files in parallel; each writes its own per-day segments.
    let bar = progress.bar(work.len() as u64, "reading");
    let first_written = std::sync::Once::new();
    let jobs: Vec<(&ProbeFile, ingest::FileLayout)> = work.iter().zip(layouts).collect();
    let records: Vec<Processed> = par::map(&jobs, |&(f, layout)| {
            let rel = &f.entry.rel;
            let name = plan.probes.show(rel);
            let bytes = plan.probes.get(rel)?;
            let mut ctx = IngestCtx {
                clock: LocalClock::new(plan.settings.tz),
                known_shops: &dims.known_shops,
                known_aps: dims.known_aps.as_ref(),
                exclude_randomized: plan.settings.exclude_randomized,
                key,
            };
            let parsed = ingest::parse(bytes, &name, f, layout, &mut ctx)?;
            let names = parsed.names;
            let mut days = Vec::new();
            for (day, events) in ingest::split_by_day(parsed.events)? {
                let mut seg = metrics::events_to_segment(events)?;
                out.put(&state::segment_rel(&gen_dir, day, rel), parquet_bytes(&mut seg)?)?;
                days.push(day);
                first_written.call_once(|| fault::point("after-first-segment"));
            }
            bar.inc(1);
            Ok(Processed {
                names,
                rel: rel.clone(),
                rec: FileRecord {
                    size: f.entry.size,
                    e_tag: f.entry.e_tag.clone(),
                    last_modified: f.entry.last_modified,
                    days,
                    part_date: f.part_date,
                    part_hour: f.part_hour,
                    quality: parsed.quality,
                },
            })
        })?;
    bar.finish_and_clear();
    report.files_read = records.len();
    report.probe_reads = plan.probes.reads.load(std::sync::atomic::Ordering::Relaxed);

    // Days touched: the new files' days and the days a changed file used to have.
    let mut affected: BTreeSet<i32> = BTreeSet::new();
    let mut new_names = Vec::new();
    for Processed { names, rel, rec } in records {
        new_names.extend(names);
        if let Some(prev) = manifest.files.get(&rel) {
            for d in &prev.days {
                if !rec.days.contains(d) {
                    out.delete(&state::segment_rel(&gen_dir, *d, &rel))?;
                }
                affected.insert(*d);
            }
        }
        affected.extend(rec.days.iter().copied());
        report.rows_read += rec.quality.rows_read;
        report.rows_rejected += rec.quality.rejected.iter().sum::<i64>();
        manifest.files.insert(rel, rec);
    }
    trace("segments written", t0);
    fault::point("after-segments");

    // Pass 1: each touched day's rollup and its device summary.
    let all_days = manifest.days();
    let by_day = manifest.files_by_day();
    let bar = progress.bar(affected.len() as u64, "rollups");
    let mut pos_cache: HashMap<i32, (DataFrame, metrics::DayVisits)> = HashMap::new();
    let mut cached_rows = 0usize;
    let cache_budget = pos_cache_rows();
    for &day in &affected {
        if !all_days.contains(&day) {
            out.delete(&state::devices_rel(&gen_dir, day))?;
            continue;
        }
        let pos = load_day(out, &gen_dir, &by_day, day)?;
        trace("  day loaded", t0);
        let visits = metrics::day_visits(&pos, &plan.settings)?;
        trace("  visits", t0);
        let mut summary = presence::day_device_summary(&visits.mall, day, &plan.settings)?;
        trace("  summary", t0);
        out.put(&state::devices_rel(&gen_dir, day), parquet_bytes(&mut summary)?)?;
        if cached_rows + pos.height() <= cache_budget {
            cached_rows += pos.height();
            pos_cache.insert(day, (pos, visits));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    trace("day summaries", t0);
    fault::point("after-day-summaries");

    // Statuses (staff, visitor, loyalty) and customers over all days. Dates whose statuses
    // or new-customer figures moved join the dates to re-publish.
    let day_list: Vec<i32> = all_days.iter().copied().collect();
    let summaries: Vec<LazyFrame> =
        par::map(&day_list, |d| Ok(read_parquet(out.get(&state::devices_rel(&gen_dir, *d))?)?.lazy()))?;
    let statuses = presence::statuses(summaries, &plan.settings)?;
    let customers = metrics::customers(&statuses, &plan.settings)?;
    trace("statuses and customers", t0);
    let mut republish = affected.clone();
    if let Some(prev) = &prior {
        if let Some(bytes) = out.get_opt(&state::customers_rel(&prev.gen_dir()))? {
            republish.extend(moved_first_days(&read_parquet(bytes)?, &customers)?);
        }
        if let (Some(bytes), Some(&since)) = (out.get_opt(&state::statuses_rel(&prev.gen_dir()))?, affected.first()) {
            republish.extend(presence::changed_status_days(&read_parquet(bytes)?, &statuses, since)?);
        }
    }
    let names = match key {
        None => None,
        Some(_) => {
            let old = match &prior {
                Some(prev) => out.get_opt(&state::pseudonyms_rel(&prev.gen_dir()))?.map(read_parquet).transpose()?,
                None => None,
            };
            Some(pseudonym_dictionary(old, new_names)?)
        }
    };
    let mut status_by_day = split_statuses(&statuses, &republish)?;

    // Pass 2: compute and publish every daily table of each day to republish.
    let shared = Shared {
        customers: &customers,
        dims: &dims,
        settings: &plan.settings,
        names: names.as_ref().map(|(_, map)| map),
    };
    let bar = progress.bar(republish.len() as u64, "publishing");
    let mut first_partition = true;
    for &day in &republish {
        let date = days_to_date(day);
        if !all_days.contains(&day) {
            for m in metrics::DAILY {
                out.delete(&publish::partition_rel(m.name, date))?;
            }
            bar.inc(1);
            continue;
        }
        let (pos, visits) = match pos_cache.remove(&day) {
            Some((p, v)) => (p, Some(v)),
            None => (load_day(out, &gen_dir, &by_day, day)?, None),
        };
        let status = status_by_day.remove(&day).unwrap_or_else(|| statuses.clear());
        let tables = metrics::tables_of_day(day, pos, visits, status, &shared)?;
        trace("  tables computed", t0);
        for (schema, df) in tables {
            publish::publish_partition(out, schema, date, df)?;
            if first_partition {
                first_partition = false;
                fault::point("after-first-partition");
            }
        }
        report.dates_published.push(date);
        trace("  published", t0);
        bar.inc(1);
    }
    bar.finish_and_clear();
    fault::point("after-partitions");

    // Snapshots and state.
    let tz = plan.settings.tz_name.as_str();
    let cust_schema = schema::get("customers")?;
    let dq_schema = schema::get("data_quality")?;
    let cust = &customers;
    let name_map = shared.names;
    // Independent writes; the snapshots are O(devices ever seen), so overlap them.
    par::join(
        || -> Result<()> {
            par::join(
                || publish::publish_snapshot(out, cust_schema, cust_schema.conform_with(cust.clone(), tz, name_map)?),
                || publish::publish_snapshot(out, dq_schema, dq_schema.conform(quality_frame(&manifest)?, tz)?),
            )?;
            Ok(())
        },
        || -> Result<()> {
            out.put(&state::customers_rel(&gen_dir), parquet_bytes(&mut cust.clone())?)?;
            out.put(&state::statuses_rel(&gen_dir), parquet_bytes(&mut statuses.clone())?)?;
            if let Some((dict, _)) = &names {
                out.put(&state::pseudonyms_rel(&gen_dir), parquet_bytes(&mut dict.clone())?)?;
            }
            Ok(())
        },
    )?;
    trace("snapshots", t0);
    fault::point("after-snapshots");

    manifest.last_run = Some(RunRecord {
        command: if mode == Mode::Run { "run".into() } else { "update".into() },
        started_at: started.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        files_processed: report.files_read,
        dates_published: report.dates_published.len(),
        outcome: "ok".into(),
    });
    manifest.save(out)?;
    fault::point("after-manifest");

    if mode == Mode::Run {
        cleanup_after_run(out, &manifest, &all_days)?;
    }
    if let Some(lock) = lock {
        lock.release()?;
    }
    Ok(report)
}

/// One probe file after parsing: its pseudonyms (keyed mode) and its new state record.
struct Processed {
    names: Vec<(u64, String)>,
    rel: String,
    rec: FileRecord,
}

/// Rows of `pos` kept in memory between the two passes (beyond it, days are re-read from
/// their segments): trades peak memory for re-reads. `FOOTFALL_POS_CACHE_ROWS` overrides it.
fn pos_cache_rows() -> usize {
    std::env::var("FOOTFALL_POS_CACHE_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000_000)
}

/// Merges every segment of one day.
fn load_day(out: &Location, gen_dir: &str, by_day: &BTreeMap<i32, Vec<&str>>, day: i32) -> Result<DataFrame> {
    let files = by_day.get(&day).map(Vec::as_slice).unwrap_or_default();
    let parts: Vec<LazyFrame> = par::map(files, |rel| {
            let seg = state::segment_rel(gen_dir, day, rel);
            let bytes =
                out.get(&seg).with_context(|| format!("state is missing {seg}; run `footfall run` to rebuild"))?;
            Ok(read_parquet(bytes)?.lazy())
        })?;
    if parts.is_empty() {
        bail!("no segments for {}", state::day_str(day));
    }
    metrics::merge_pos(parts)
}

/// For each of `days`, the statuses of the devices seen that day.
fn split_statuses(statuses: &DataFrame, days: &BTreeSet<i32>) -> Result<HashMap<i32, DataFrame>> {
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

/// The id → pseudonym dictionary: the previous one plus this run's devices. Two pseudonyms
/// sharing an id would merge two devices, so that fails the run.
fn pseudonym_dictionary(old: Option<DataFrame>, new: Vec<(u64, String)>) -> Result<(DataFrame, Pseudonyms)> {
    let mut map: Pseudonyms = HashMap::with_capacity(new.len());
    if let Some(old) = old {
        let ids = old.column("id")?.u64()?;
        let ps = old.column("pseudonym")?.str()?;
        for (id, p) in ids.iter().zip(ps.iter()) {
            if let (Some(id), Some(p)) = (id, p) {
                map.insert(id, p.to_string());
            }
        }
    }
    for (id, p) in new {
        match map.get(&id) {
            Some(q) if *q != p => {
                bail!("pseudonyms {q} and {p} share the internal id {id:016x}; cannot tell the devices apart")
            }
            Some(_) => {}
            None => {
                map.insert(id, p);
            }
        }
    }
    let (ids, ps): (Vec<u64>, Vec<&str>) = map.iter().map(|(k, v)| (*k, v.as_str())).unzip();
    let df = df!("id" => ids, "pseudonym" => ps)?;
    Ok((df, map))
}

/// Days whose new-customer figures change: for every device whose first day moved, its old
/// and new first day.
fn moved_first_days(old: &DataFrame, new: &DataFrame) -> Result<BTreeSet<i32>> {
    let key = "user_device_mac";
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

/// Removes the previous generation's state and partitions of days that no longer exist.
fn cleanup_after_run(out: &Location, manifest: &Manifest, days: &BTreeSet<i32>) -> Result<()> {
    for e in out.list_under("_state")? {
        let top = e.rel.split('/').nth(1).unwrap_or("");
        if top.starts_with("gen-") && top != manifest.generation {
            out.delete(&e.rel)?;
        }
    }
    let dates: BTreeSet<chrono::NaiveDate> = days.iter().map(|d| days_to_date(*d)).collect();
    for m in metrics::DAILY {
        for d in publish::published_dates(out, m.name)? {
            if !dates.contains(&d) {
                out.delete(&publish::partition_rel(m.name, d))?;
            }
        }
    }
    Ok(())
}

/// The `data_quality` table from the manifest's file records.
pub fn quality_frame(m: &Manifest) -> Result<DataFrame> {
    let n = m.files.len();
    let mut date = Vec::with_capacity(n);
    let mut hour = Vec::with_capacity(n);
    let mut file = Vec::with_capacity(n);
    let mut cols: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for k in ["rows_read", "rows_accepted", "rows_rejected", "randomized_rows", "distinct_devices", "unknown_shop_rows"]
        .into_iter()
        .chain(REASONS)
    {
        cols.insert(k, Vec::with_capacity(n));
    }
    let mut late = Vec::with_capacity(n);
    let mut unknown_aps = Vec::with_capacity(n);
    for (rel, r) in &m.files {
        let q: &FileQuality = &r.quality;
        date.push(r.part_date.map(crate::timeutil::date_to_days));
        hour.push(r.part_hour.map(|h| h as i32));
        file.push(rel.clone());
        let rejected: i64 = q.rejected.iter().sum();
        for (k, v) in [
            ("rows_read", q.rows_read),
            ("rows_accepted", q.rows_accepted),
            ("rows_rejected", rejected),
            ("randomized_rows", q.randomized_rows),
            ("distinct_devices", q.distinct_devices),
            ("unknown_shop_rows", q.unknown_shop_rows),
        ] {
            cols.entry(k).or_default().push(v);
        }
        for (i, reason) in REASONS.iter().enumerate() {
            cols.entry(reason).or_default().push(q.rejected[i]);
        }
        late.push(q.late_rows);
        unknown_aps.push(q.unknown_ap_rows);
    }
    let mut columns = vec![
        Column::new("date".into(), date),
        Column::new("hour".into(), hour),
        Column::new("file".into(), file),
        Column::new("late_rows".into(), late),
        Column::new("unknown_ap_rows".into(), unknown_aps),
    ];
    for (k, v) in cols {
        let name = if REASONS.contains(&k) { format!("rejected_{k}") } else { k.to_string() };
        columns.push(Column::new(name.into(), v));
    }
    Ok(DataFrame::new(n, columns)?)
}

/// The whole catalogue over in-memory events (parsed frames as [`ingest::parse_frame`]
/// returns them), through the same rollup and query code as `run` but without storage.
/// Used by tests and small tools; returns every result table by name. `names` renders
/// pseudonymised device ids.
pub fn compute_in_memory(
    events: Vec<DataFrame>,
    dims: &Dims,
    settings: &crate::config::Settings,
    names: Option<&Pseudonyms>,
) -> Result<BTreeMap<String, DataFrame>> {
    let mut by_day: BTreeMap<i32, Vec<LazyFrame>> = BTreeMap::new();
    for ev in events {
        for (day, part) in ingest::split_by_day(ev)? {
            by_day.entry(day).or_default().push(metrics::events_to_segment(part)?.lazy());
        }
    }
    let mut days = BTreeMap::new();
    let mut summaries = Vec::new();
    for (day, parts) in by_day {
        let pos = metrics::merge_pos(parts)?;
        let visits = metrics::day_visits(&pos, settings)?;
        summaries.push(presence::day_device_summary(&visits.mall, day, settings)?.lazy());
        days.insert(day, (pos, visits));
    }
    let statuses = presence::statuses(summaries, settings)?;
    let customers = metrics::customers(&statuses, settings)?;
    let mut status_by_day = split_statuses(&statuses, &days.keys().copied().collect())?;
    let tz = settings.tz_name.as_str();
    let mut out: BTreeMap<String, DataFrame> = BTreeMap::new();
    for m in metrics::DAILY {
        out.insert(m.name.to_string(), schema::get(m.name)?.empty(tz));
    }
    let shared = Shared { customers: &customers, dims, settings, names };
    for (day, (pos, visits)) in days {
        let status = status_by_day.remove(&day).unwrap_or_else(|| statuses.clear());
        for (s, df) in metrics::tables_of_day(day, pos, Some(visits), status, &shared)? {
            out.get_mut(&s.name).unwrap().vstack_mut_owned(df)?;
        }
    }
    let cs = schema::get("customers")?;
    out.insert("customers".into(), cs.conform_with(customers, tz, names)?);
    Ok(out)
}
