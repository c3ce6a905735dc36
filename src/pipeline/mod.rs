//! The one data path shared by `run` and `update`, a module per stage in data-path order:
//!
//! ```text
//! plan ─▶ ingest ─▶ rollup ─▶ visits ─▶ statuses ─▶ (metrics: the catalogue) ─▶ publish
//! what to   probe      per (file, day)   shop and   device-day summaries,   one query per    one object per
//! read      files →    segments; merged  mall       staff/loyalty statuses,  table of a day   (table, date);
//!           events     into day rollups  visits     customers                                 snapshots; state
//! ```
//!
//! Days are walked in order from the earliest changed one: a changed day goes from rollup to
//! published tables before the next day is read (its statuses depend on no later day), so
//! each rollup is built once and memory holds one day. Days whose statuses or new-customer
//! figures moved without their data changing (an update's late file) are published after.
//!
//! `run` is `update` from an empty state in a fresh generation. An update reads only files
//! that are new or changed since the manifest, recomputes the days those files touch plus the
//! days whose new-customer figures or statuses move, and commits the manifest last: objects
//! a crashed run wrote but no committed manifest names are never read.

pub mod ingest;
pub mod plan;
pub mod publish;
pub mod rollup;
pub mod statuses;
pub mod visits;

use anyhow::Result;

pub use plan::{Mode, Report};

use crate::config::Plan;
use crate::metrics::SnapshotCtx;
use crate::progress::Progress;
use crate::state::{merge_pseudonyms, Lock, RunRecord};
use crate::{dims, fault};
use publish::Shared;

/// Step timings on stderr when `FOOTFALL_TRACE=1` (for profiling; off by default), with the
/// process's CPU time, resident memory and peak so far where the OS reports them (Linux).
pub(crate) fn trace(step: &str, t0: std::time::Instant) {
    if std::env::var("FOOTFALL_TRACE").is_ok_and(|v| v == "1") {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let mib = |key: &str| {
            let kb = status.lines().find_map(|l| l.strip_prefix(key)?.trim().strip_suffix("kB")?.trim().parse().ok());
            kb.map_or("?".to_string(), |kb: u64| (kb / 1024).to_string())
        };
        let (rss, peak) = (mib("VmRSS:"), mib("VmHWM:"));
        let cpu = cpu_seconds().map_or("?".to_string(), |c| format!("{c:.3}s"));
        eprintln!("trace: {step} at {:.3}s (cpu {cpu}, rss {rss} MiB, peak {peak} MiB)", t0.elapsed().as_secs_f64());
    }
}

/// The process's CPU time so far (user + system): beside the wall time, how many cores a
/// step kept busy.
fn cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    // SAFETY: getrusage only writes the struct it is given.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) == 0 {
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            return Some(secs(u.ru_utime) + secs(u.ru_stime));
        }
    }
    None
}

/// Hands memory freed by a finished day back to the OS (glibc keeps freed blocks in its
/// per-thread arenas; without this a day's peak lands on top of the previous day's leftovers).
/// This covers glibc callers of the library (tests) and C code's own allocations; an
/// allocator registered with [`set_collector`] is asked to return its freed pages too, but
/// only once the process holds more than [`KEEP_RESIDENT`]: pages kept are reused by the next
/// day without a page fault each.
pub(crate) fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused heap pages; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    if let Some(collect) = COLLECTOR.get() {
        if resident_bytes().is_none_or(|b| b > KEEP_RESIDENT) {
            collect();
        }
    }
}

/// Resident memory up to which freed pages stay with the allocator between days. A 51 M
/// week's 7.3 M-row days hold about 1.2 GB at their ends: with 1 GiB every such day gave its
/// pages back and faulted them in again (7–9 s of kernel time a run); with 1.5 GiB they are
/// reused, the week peaks at 1.54–1.61 GB and runs in 0.86 × the time (BENCHMARKS.md, step 13).
/// Before a day's key buffers were sized once, 1 GiB already let a week peak at 2.04 GB.
pub const KEEP_RESIDENT: u64 = 3 << 29;

static COLLECTOR: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Registers how the process's allocator returns freed pages to the OS at once (the binary:
/// mimalloc's `mi_collect`, its timed purge being off). Set once; later calls are ignored.
pub fn set_collector(collect: fn()) {
    let _ = COLLECTOR.set(collect);
}

/// The process's resident memory (Linux: `/proc/self/statm`).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// Runs `run` or `update` (with `dry_run`, only says what an update would read).
pub fn execute(plan: &Plan, mode: Mode, dry_run: bool, progress: Progress) -> Result<Report> {
    let (started, t0) = (chrono::Utc::now(), std::time::Instant::now());
    let (out, settings) = (&plan.out, &plan.settings);
    let lock = if dry_run { None } else { Some(Lock::acquire(out)?) };
    fault::point("after-lock");
    if dry_run {
        return Ok(plan::prepare(plan, mode)?.report);
    }
    // The listing grows with the history, the dimensions do not: read them at once.
    let (prepared, dims) =
        crate::par::join(|| plan::prepare(plan, mode), || dims::load(plan.dims.as_ref(), settings.mac_key.as_ref()))?;
    let plan::Prepared { mut manifest, prior, work, mut report } = prepared;
    let state = manifest.objects(out);
    let prior_state = prior.as_ref().map(|m| m.objects(out));
    trace("listed and planned", t0);

    // The previous run's customers and context do not depend on the new files: read meanwhile.
    let boundary = prior.as_ref().and_then(|m| m.settled_before);
    let (processed, prior_read) = crate::par::join(
        || rollup::ingest_files(plan, &dims, &work, &state, progress),
        || match (&prior_state, &prior) {
            (Some(p), Some(m)) => {
                let read = statuses::Prior::read(p, boundary, &m.days(), settings)?;
                trace("  previous customers and context read", t0);
                Ok(Some(read))
            }
            _ => Ok(None),
        },
    )?;
    report.probe_reads = plan.probes.reads.load(std::sync::atomic::Ordering::Relaxed);
    let rollup::Recorded { changed, added, names: new_names } =
        rollup::record_files(&mut manifest, processed, &state, &mut report)?;
    trace("segments written", t0);
    fault::point("after-segments");

    // Days before the earliest changed one are neither read nor published.
    let since = changed.first().copied().unwrap_or(i32::MAX);
    manifest.load_days_from(out, since)?;
    let by_day = manifest.files_by_day(since);
    let rows_by_day = manifest.accepted_rows_by_day(since);
    let all_days = manifest.days();
    let pseudonyms = match settings.mac_key {
        None => None,
        Some(_) => {
            let old = prior_state.as_ref().map(|p| p.get_pseudonyms()).transpose()?.flatten();
            Some(merge_pseudonyms(old, new_names)?)
        }
    };
    let names = pseudonyms.as_ref().map(|(_, map)| map);
    let first_partition = std::sync::Once::new();
    let (kept, rollups_written) = (manifest.rollups.clone(), std::sync::Mutex::new(Default::default()));
    let shared = Shared {
        out,
        state: &state,
        by_day: &by_day,
        rows_by_day: &rows_by_day,
        dims: &dims,
        settings,
        names,
        progress,
        kept: &kept,
        added: &added,
        rollups_written: &rollups_written,
        first_partition: &first_partition,
    };
    let mut cls = statuses::Classifier::start(&state, prior_read, &all_days, &changed, settings)?;
    trace("context and prior customers read", t0);
    let walked = publish::walk_days(&shared, &all_days, &changed, &mut cls)?;
    trace("days walked", t0);
    // The last day's tables are written while the snapshots are computed and published.
    let (last, st) = crate::par::join(
        || walked.last.map(|p| p.publish(&shared)).transpose(),
        || {
            let st = cls.finish(&all_days, &changed)?;
            let snap = SnapshotCtx {
                customers_recent: st.customers_recent.as_ref(),
                customers_settled: st.customers_settled.as_ref(),
                settings,
                names,
            };
            publish::publish_snapshot_tables(out, &snap)?;
            Ok(st)
        },
    )?;
    trace("last day and snapshots published", t0);
    fault::point("after-days-walked");

    let mut republish = statuses::republish_days(prior_state.as_ref(), &changed, &st)?;
    republish.retain(|d| !changed.contains(d));
    trace("statuses and customers", t0);

    let status_by_day = statuses::split_statuses(&st.recent, &republish)?;
    let later = publish::publish_days(&shared, &republish, status_by_day, &st.recent.clear(), &cls)?;
    report.dates_published = walked.published.into_iter().chain(last).chain(later).collect();
    report.dates_published.sort();
    fault::point("after-partitions");
    // Sales divide by the visitors just published: a stage after them, committed with the head.
    // The state the next update builds on is kept meanwhile: it depends on the probe tables
    // only, and they are all published by now.
    let (sales, ()) = crate::par::join(
        || {
            let sales =
                crate::sales::stage(plan, &mut manifest, mode == Mode::Run, &report.dates_published, &all_days, &dims)?;
            trace("sales", t0);
            // data_quality: the dates of the probe files and of the sales files this run read.
            let keys: std::collections::BTreeSet<String> =
                manifest.dirty_parts().iter().cloned().chain(sales.quality_keys.iter().cloned()).collect();
            publish::publish_quality(out, &mut manifest, &keys, &sales.files, settings, names)?;
            fault::point("after-sales");
            Ok(sales)
        },
        || publish::keep_state(&state, &st, &all_days, pseudonyms.as_ref().map(|(df, _)| df)),
    )?;
    report.sales = sales;
    let written = rollups_written.into_inner().unwrap_or_else(|e| e.into_inner());
    let old_rollups = publish::record_rollups(&mut manifest, written, &all_days);
    let old_settled = manifest.settled_before;
    manifest.settled_before = st.settled_before;
    trace("state kept", t0);
    fault::point("after-snapshots");

    if report.full_listing {
        manifest.last_full_listing = Some(started.to_rfc3339());
    }
    manifest.last_run = Some(RunRecord {
        command: if mode == Mode::Run { "run".into() } else { "update".into() },
        started_at: started.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        files_processed: report.files_read,
        dates_published: report.dates_published.len(),
        outcome: "ok".into(),
    });
    if let Some(lock) = &lock {
        lock.ensure_held()?;
    }
    let obsolete = manifest.save(out)?;
    trace("manifest saved", t0);
    fault::point("after-manifest");
    for rel in obsolete.into_iter().chain(report.sales.obsolete.take()) {
        out.delete(&rel)?;
    }
    for (day, v) in old_rollups {
        state.delete_rollup(day, v)?;
    }
    if let Some(old) = old_settled.filter(|b| Some(*b) != manifest.settled_before) {
        state.delete_settled(old)?;
    }
    if mode == Mode::Run {
        publish::cleanup_after_run(out, &manifest, &report.sales.quality_keys)?;
    }
    if let Some(lock) = lock {
        lock.release()?;
    }
    let [g, p, l, d] = crate::store::requests::counts();
    trace(&format!("done; storage requests: {} (get {g}, put {p}, list {l}, delete {d})", g + p + l + d), t0);
    Ok(report)
}
