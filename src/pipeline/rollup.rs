//! Stage 2, events → rollups. Each probe file's events become one *segment* per local day at
//! the grain of a day's rollup `pos`: one row per (second, device, AP, shop) with RSSI min/max
//! and the local hour start. Merging segments is associative and duplicate-insensitive, so a
//! day's rollup is the same whatever files arrived together — which makes `update` exact — and
//! a changed file retracts exactly its own segments.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};
use polars::prelude::*;

use super::ingest::{self, IngestCtx, ProbeFile};
use super::plan::Report;
use crate::config::Plan;
use crate::dims::Dims;
use crate::fault;
use crate::progress::Progress;
use crate::schema::MAC;
use crate::state::{day_str, FileRecord, Manifest, State};
use crate::timeutil::LocalClock;

/// Reduces parsed events to the segment grain (the same as `pos`).
pub fn events_to_segment(events: DataFrame) -> Result<DataFrame> {
    Ok(events
        .lazy()
        .group_by([col("second"), col(MAC), col("ap_mac"), col("shop_code")])
        .agg([col("hour").first(), col("rssi").min().alias("rssi_min"), col("rssi").max().alias("rssi_max")])
        .collect()?)
}

/// Folds per-file segments of one day into the day's `pos` rollup.
pub fn merge_pos(parts: Vec<LazyFrame>) -> Result<DataFrame> {
    let all = concat(parts, UnionArgs::default())?;
    Ok(all
        .group_by([col("second"), col(MAC), col("ap_mac"), col("shop_code")])
        .agg([col("hour").first(), col("rssi_min").min(), col("rssi_max").max()])
        .collect()?)
}

/// The rollup of one day from the segments of the files that have records on it.
pub fn load_day(state: &State, by_day: &BTreeMap<i32, Vec<&str>>, day: i32) -> Result<DataFrame> {
    let files = by_day.get(&day).map(Vec::as_slice).unwrap_or_default();
    let parts: Vec<LazyFrame> = crate::par::map(files, |rel| Ok(state.get_segment(day, rel)?.lazy()))?;
    if parts.is_empty() {
        bail!("no segments for {}", day_str(day));
    }
    merge_pos(parts)
}

/// One probe file after ingest: its pseudonyms (keyed mode) and its new state record.
pub struct Processed {
    pub names: Vec<(u64, String)>,
    pub rel: String,
    pub rec: FileRecord,
}

/// Validates every file's footer first (a bad file fails the run before anything is written),
/// then parses each file and writes its per-day segments, files in parallel.
pub fn ingest_files(
    plan: &Plan,
    dims: &Dims,
    work: &[ProbeFile],
    state: &State,
    progress: Progress,
) -> Result<Vec<Processed>> {
    let layouts: Vec<ingest::FileLayout> = crate::par::map(work, |f| ingest::inspect(&plan.probes, f))?;
    let bar = progress.bar(work.len() as u64, "reading");
    let first_written = std::sync::Once::new();
    let jobs: Vec<(&ProbeFile, ingest::FileLayout)> = work.iter().zip(layouts).collect();
    let processed = crate::par::map(&jobs, |&(f, layout)| {
        let rel = &f.entry.rel;
        let mut ctx = IngestCtx {
            clock: LocalClock::new(plan.settings.tz),
            known_shops: &dims.known_shops,
            known_aps: dims.known_aps.as_ref(),
            exclude_randomized: plan.settings.exclude_randomized,
            key: plan.settings.mac_key.as_ref(),
        };
        let parsed = ingest::parse(plan.probes.get(rel)?, &plan.probes.show(rel), f, layout, &mut ctx)?;
        let mut days = Vec::new();
        for (day, events) in ingest::split_by_day(parsed.events)? {
            state.put_segment(day, rel, &mut events_to_segment(events)?)?;
            days.push(day);
            first_written.call_once(|| fault::point("after-first-segment"));
        }
        bar.inc(1);
        Ok(Processed {
            names: parsed.names,
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
    Ok(processed)
}

/// What recording the ingested files changed.
pub struct Recorded {
    /// Days whose data changed (new files' days, and every day a changed file had).
    pub changed: BTreeSet<i32>,
    /// (id, pseudonym) of the devices read (keyed mode).
    pub names: Vec<(u64, String)>,
}

/// Records ingested files in the manifest being built; a changed file's segments of days it no
/// longer has are retracted.
pub fn record_files(
    manifest: &mut Manifest,
    processed: Vec<Processed>,
    state: &State,
    report: &mut Report,
) -> Result<Recorded> {
    let mut changed = BTreeSet::new();
    let mut names = Vec::new();
    report.files_read = processed.len();
    for Processed { names: n, rel, rec } in processed {
        names.extend(n);
        if let Some(prev) = manifest.files.get(&rel) {
            for d in &prev.days {
                if !rec.days.contains(d) {
                    state.delete_segment(*d, &rel)?;
                }
                changed.insert(*d);
            }
        }
        changed.extend(rec.days.iter().copied());
        report.rows_read += rec.quality.rows_read;
        report.rows_rejected += rec.quality.rejected.iter().sum::<i64>();
        manifest.files.insert(rel, rec);
    }
    Ok(Recorded { changed, names })
}
