//! The incremental state under `<out>/_state/`: a manifest of processed input files and the
//! rollups from which any date's tables are recomputed without re-reading probe files.
//!
//! Layout (one *generation* per `run`; `update` adds to the current one):
//!
//! ```text
//! _state/manifest.json                            the head, committed last: the truth
//! _state/<gen>/files/date=P/v<n>.json             the processed files of data-quality date P
//! _state/lock                                     held by a running run/update
//! _state/<gen>/segments/date=D/<file-key>.parquet one file's rollup for one local day
//! _state/<gen>/devices/date=D.parquet             each device's day: first/last second, mall dwell, qualifying
//! _state/<gen>/rollups/date=D/v<n>.parquet        a recent day's whole rollup (days with many files)
//! _state/<gen>/customers-settled/before=D.bin     customers over the days before D (the manifest names D)
//! _state/<gen>/context/before=D.parquet           per device, its staff-threshold and visitor days of D−27..D−1
//! _state/<gen>/statuses/date=D.parquet            staff/visitor/loyalty of each device of day D
//! _state/<gen>/pseudonyms.parquet                 device id → pseudonym (only with privacy.mac_key)
//! ```
//!
//! Segments are per (file, day), so a changed file retracts exactly its own contribution;
//! objects not named by the committed manifest are ignored, so a crash leaves nothing that
//! the next update could mistake for processed data.

mod lock;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use lock::Lock;

use crate::schema::{Pseudonyms, MAC};
use crate::store::Location;
use crate::tables::{read_parquet, state_bytes};

/// Per-file data quality (docs/tables.md, data_quality). Field order matches `schemas/data_quality.json`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FileQuality {
    pub rows_read: i64,
    pub rows_accepted: i64,
    /// Rejections, indexed like [`REASONS`].
    pub rejected: [i64; REASONS.len()],
    pub randomized_rows: i64,
    pub distinct_devices: i64,
    pub unknown_shop_rows: i64,
    pub unknown_ap_rows: Option<i64>,
    pub late_rows: Option<i64>,
}

/// Why a row was rejected; the first failing check in this order names the reason.
pub const REASONS: [&str; 11] = [
    "occur_time_missing",
    "occur_time_invalid",
    "occur_time_out_of_range",
    "mac_missing",
    "mac_invalid",
    "ap_mac_missing",
    "ap_mac_invalid",
    "shop_code_missing",
    "rssi_missing",
    "rssi_invalid",
    "rssi_out_of_range",
];

pub const MANIFEST: &str = "_state/manifest.json";
/// 3: the settings fingerprint is derived from `Settings` (JSON); 4: published date partitions
/// hold no `date` column (Hive convention), so an older output must be rebuilt by `run`;
/// 5: statuses are kept per day and `customers` as a settled part plus the latest days;
/// 6: a file's quality counts `occur_time_out_of_range` rejections; 7: the file list is split
/// into versioned parts per date named by a small head; 8: `data_quality` has a `source`
/// column and rows for sales files (a date republished by an update must match the others).
const FORMAT: u32 = 8;

/// What the state knows of one input file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileRecord {
    pub size: u64,
    pub e_tag: Option<String>,
    pub last_modified: i64,
    /// Local days (days since epoch) the file has records for.
    pub days: Vec<i32>,
    pub part_date: Option<NaiveDate>,
    pub part_hour: Option<u32>,
    pub quality: FileQuality,
    /// The newest accepted event time (UTC epoch seconds).
    #[serde(default)]
    pub newest_event: Option<i64>,
}

/// The last run, for `footfall status`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RunRecord {
    pub command: String,
    pub started_at: String,
    pub finished_at: String,
    pub files_processed: usize,
    pub dates_published: usize,
    pub outcome: String,
}

/// One part of the file list in the manifest head: the files whose data-quality date (see
/// [`FileRecord::part_key`]) is this part's key.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct PartRef {
    /// Version of the committed part object (`files/date=<key>/v<n>.json`).
    pub v: u32,
    pub files: u32,
    /// Files without a `date=` key in their path (always listed, so always diffed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub undated: u32,
    /// Local days the part's files have records for.
    pub days: Vec<i32>,
    /// The newest accepted event time of its files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<i64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The committed state: a small head (`_state/manifest.json`, read and written by every
/// update) naming a versioned part of the file list per date. An update loads only the parts
/// it diffs against or whose days it recomputes and writes only the parts it changed, so what
/// it reads and writes does not grow with history (the head grows by one short entry a day).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Manifest {
    pub format: u32,
    pub generation: String,
    /// Settings that change results; an update with other settings is refused.
    pub settings: String,
    pub parts: BTreeMap<String, PartRef>,
    pub last_run: Option<RunRecord>,
    /// When an update or run last listed every probe partition (RFC 3339).
    #[serde(default)]
    pub last_full_listing: Option<String>,
    /// The day before which the state's settled customers aggregate covers every day.
    #[serde(default)]
    pub settled_before: Option<i32>,
    /// Recent days with many files (minute flushes) whose rollup is kept, by day: the version
    /// of `rollups/date=D/v<n>.parquet`, the rollup of exactly the committed files of D.
    #[serde(default)]
    pub rollups: BTreeMap<i32, u32>,
    /// The version of the sales file list (`sales/v<n>.json`), with `[input] sales`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales: Option<u32>,
    /// The parts read or built by this process, by key.
    #[serde(skip)]
    loaded: BTreeMap<String, BTreeMap<String, FileRecord>>,
    /// Which loaded part holds each file.
    #[serde(skip)]
    index: HashMap<String, String>,
    /// Parts changed since loading: written by [`Manifest::save`].
    #[serde(skip)]
    dirty: BTreeSet<String>,
}

impl FileRecord {
    /// The date of the manifest part and the `data_quality` partition the file belongs to:
    /// its `date=` partition, or without one the UTC date it was last modified.
    pub fn part_key(&self) -> String {
        part_key(self.part_date, self.last_modified)
    }
}

impl Manifest {
    pub fn load(out: &Location) -> Result<Option<Manifest>> {
        let Some(bytes) = out.get_opt(MANIFEST)? else { return Ok(None) };
        // The format first: an older format's fields need not parse as this one's.
        #[derive(Deserialize)]
        struct Head {
            format: u32,
        }
        let head: Head = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: corrupt state manifest", out.show(MANIFEST)))?;
        if head.format != FORMAT {
            bail!(
                "{}: state format {} is not supported (expected {FORMAT}); run `footfall run` to rebuild",
                out.show(MANIFEST),
                head.format
            );
        }
        let m: Manifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: corrupt state manifest", out.show(MANIFEST)))?;
        Ok(Some(m))
    }

    pub fn new(generation: String, settings: String) -> Manifest {
        Manifest { format: FORMAT, generation, settings, ..Default::default() }
    }

    fn part_rel(&self, key: &str, v: u32) -> String {
        format!("{}/files/date={key}/v{v}.json", self.gen_dir())
    }

    /// Loads the committed parts `keep` selects (in parallel; loaded ones are kept).
    pub fn load_parts(&mut self, out: &Location, keep: impl Fn(&str, &PartRef) -> bool) -> Result<()> {
        let want: Vec<(String, u32)> = self
            .parts
            .iter()
            .filter(|(k, p)| !self.loaded.contains_key(*k) && keep(k, p))
            .map(|(k, p)| (k.clone(), p.v))
            .collect();
        let parts = crate::par::map(&want, |(key, v)| {
            let rel = self.part_rel(key, *v);
            let bytes =
                out.get(&rel).with_context(|| format!("state is missing {rel}; run `footfall run` to rebuild"))?;
            let files: BTreeMap<String, FileRecord> =
                serde_json::from_slice(&bytes).with_context(|| format!("{}: corrupt state part", out.show(&rel)))?;
            Ok(files)
        })?;
        for ((key, _), files) in want.into_iter().zip(parts) {
            for rel in files.keys() {
                self.index.insert(rel.clone(), key.clone());
            }
            self.loaded.insert(key, files);
        }
        Ok(())
    }

    /// Loads the parts of files with a `date=` partition on or after `since` and of every
    /// file without one: the files a listing from `since` finds.
    pub fn load_listed(&mut self, out: &Location, since: Option<NaiveDate>) -> Result<()> {
        let since = since.map(|d| d.format("%Y-%m-%d").to_string());
        self.load_parts(out, |k, p| p.undated > 0 || since.as_deref().is_none_or(|s| k >= s))
    }

    /// Loads every part with records on a day on or after `day`: the files whose segments
    /// recomputing those days reads.
    pub fn load_days_from(&mut self, out: &Location, day: i32) -> Result<()> {
        self.load_parts(out, |_, p| p.days.iter().any(|d| *d >= day))
    }

    /// The newest `date=` partition of any processed file.
    pub fn newest_partition(&self) -> Option<NaiveDate> {
        self.parts
            .iter()
            .rev()
            .find(|(_, p)| p.files > p.undated)
            .and_then(|(k, _)| NaiveDate::parse_from_str(k, "%Y-%m-%d").ok())
    }

    /// The newest accepted event time processed (UTC epoch seconds): a local day is complete
    /// once it is at or past the day's end ([`crate::timeutil::day_complete`]).
    pub fn watermark(&self) -> Option<i64> {
        self.parts.values().filter_map(|p| p.newest).max()
    }

    /// A loaded file's record.
    pub fn get(&self, rel: &str) -> Option<&FileRecord> {
        self.loaded.get(self.index.get(rel)?)?.get(rel)
    }

    /// Records files (each replacing its previous record, whose part must be loaded) and
    /// updates the head's entries of the parts they left or joined.
    pub fn insert(&mut self, records: impl IntoIterator<Item = (String, FileRecord)>) {
        let mut touched = BTreeSet::new();
        for (rel, rec) in records {
            let key = rec.part_key();
            if let Some(old) = self.index.remove(&rel) {
                if let Some(files) = self.loaded.get_mut(&old) {
                    files.remove(&rel);
                }
                touched.insert(old);
            }
            self.loaded.entry(key.clone()).or_default().insert(rel.clone(), rec);
            self.index.insert(rel, key.clone());
            touched.insert(key);
        }
        for key in touched {
            let files = self.loaded.get(&key).map(|f| f.values()).into_iter().flatten();
            let days: BTreeSet<i32> = files.clone().flat_map(|f| f.days.iter().copied()).collect();
            let part = self.parts.entry(key.clone()).or_default();
            part.files = files.clone().count() as u32;
            part.undated = files.filter(|f| f.part_date.is_none()).count() as u32;
            part.days = days.into_iter().collect();
            part.newest = self.loaded.get(&key).and_then(|f| f.values().filter_map(|f| f.newest_event).max());
            self.dirty.insert(key);
        }
    }

    /// The loaded files with their records, by part.
    pub fn loaded_parts(&self) -> impl Iterator<Item = (&str, &BTreeMap<String, FileRecord>)> {
        self.loaded.iter().map(|(k, f)| (k.as_str(), f))
    }

    /// The parts this process changed (their `data_quality` partitions are republished).
    pub fn dirty_parts(&self) -> &BTreeSet<String> {
        &self.dirty
    }

    /// Number of processed files.
    pub fn file_count(&self) -> usize {
        self.parts.values().map(|p| p.files as usize).sum()
    }

    /// Writes the changed parts as new versions, then the head (the commit). Returns the
    /// objects the commit made obsolete, to delete once it is done.
    pub fn save(&mut self, out: &Location) -> Result<Vec<String>> {
        let mut obsolete = Vec::new();
        let mut writes = Vec::new();
        for key in &self.dirty {
            let files = self.loaded.get(key).filter(|f| !f.is_empty());
            let old = self.parts.get(key).map(|p| p.v).filter(|v| *v > 0);
            match files {
                Some(files) => {
                    let v = old.unwrap_or(0) + 1;
                    if let Some(p) = self.parts.get_mut(key) {
                        p.v = v;
                    }
                    writes.push((self.part_rel(key, v), Bytes::from(serde_json::to_vec(files)?)));
                }
                None => {
                    self.parts.remove(key);
                }
            }
            obsolete.extend(old.map(|v| self.part_rel(key, v)));
        }
        crate::par::map_owned(writes, |(rel, bytes)| out.put(&rel, bytes))?;
        out.put(MANIFEST, Bytes::from(serde_json::to_vec(&*self)?))?;
        self.dirty.clear();
        Ok(obsolete)
    }

    /// Every local day with data.
    pub fn days(&self) -> BTreeSet<i32> {
        self.parts.values().flat_map(|p| p.days.iter().copied()).collect()
    }

    /// The loaded files contributing to each day from `since` on (complete once
    /// [`Manifest::load_days_from`] loaded from `since`).
    pub fn files_by_day(&self, since: i32) -> BTreeMap<i32, Vec<&str>> {
        let mut m: BTreeMap<i32, Vec<&str>> = BTreeMap::new();
        for (rel, f) in self.loaded.values().flatten() {
            for d in f.days.iter().filter(|d| **d >= since) {
                m.entry(*d).or_default().push(rel.as_str());
            }
        }
        m
    }

    /// Per day from `since`: the accepted rows of the files with records on it, a bound on
    /// the rows of its segments (a segment holds at most one row per accepted record).
    pub fn accepted_rows_by_day(&self, since: i32) -> BTreeMap<i32, u64> {
        let mut m: BTreeMap<i32, u64> = BTreeMap::new();
        for (_, f) in self.loaded.values().flatten() {
            for d in f.days.iter().filter(|d| **d >= since) {
                *m.entry(*d).or_default() += f.quality.rows_accepted.max(0) as u64;
            }
        }
        m
    }

    pub fn gen_dir(&self) -> String {
        format!("_state/{}", self.generation)
    }

    /// Typed access to this manifest's generation of state objects.
    pub fn objects<'a>(&self, out: &'a Location) -> State<'a> {
        State { out, gen_dir: self.gen_dir() }
    }
}

/// Stable object name for a file's segments.
fn file_key(rel: &str) -> String {
    let h = Sha256::digest(rel.as_bytes());
    h.iter().take(10).map(|b| format!("{b:02x}")).collect()
}

/// An input file's data-quality date: its `date=` partition, else the UTC date it was last
/// modified (probe and sales files alike).
pub fn part_key(part_date: Option<NaiveDate>, last_modified: i64) -> String {
    match part_date {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => chrono::DateTime::from_timestamp(last_modified, 0).unwrap_or_default().format("%Y-%m-%d").to_string(),
    }
}

pub fn day_str(day: i32) -> String {
    crate::timeutil::days_to_date(day).format("%Y-%m-%d").to_string()
}

/// A new generation name (sortable).
pub fn new_generation() -> String {
    let now = chrono::Utc::now();
    format!("gen-{}-{}", now.format("%Y%m%dT%H%M%S%.3f"), std::process::id())
}

/// The objects of one state generation, read and written by type; the only place that
/// knows their names.
pub struct State<'a> {
    out: &'a Location,
    gen_dir: String,
}

impl State<'_> {
    fn segment_rel(&self, day: i32, rel: &str) -> String {
        format!("{}/segments/date={}/{}.parquet", self.gen_dir, day_str(day), file_key(rel))
    }

    fn summary_rel(&self, day: i32) -> String {
        format!("{}/devices/date={}.parquet", self.gen_dir, day_str(day))
    }

    fn whole_rel(&self, name: &str) -> String {
        format!("{}/{name}.parquet", self.gen_dir)
    }

    fn put(&self, rel: &str, df: &mut DataFrame) -> Result<()> {
        self.out.put(rel, state_bytes(df)?)
    }

    fn get_opt(&self, rel: &str) -> Result<Option<DataFrame>> {
        self.out.get_opt(rel)?.map(read_parquet).transpose()
    }

    /// One probe file's rollup of one local day.
    pub fn put_segment(&self, day: i32, file: &str, df: &mut DataFrame) -> Result<()> {
        self.put(&self.segment_rel(day, file), df)
    }

    pub fn get_segment(&self, day: i32, file: &str) -> Result<DataFrame> {
        let rel = self.segment_rel(day, file);
        let bytes =
            self.out.get(&rel).with_context(|| format!("state is missing {rel}; run `footfall run` to rebuild"))?;
        read_parquet(bytes)
    }

    pub fn delete_segment(&self, day: i32, file: &str) -> Result<()> {
        self.out.delete(&self.segment_rel(day, file))
    }

    /// Each device's summary of one day (first/last second, mall dwell, qualifying).
    pub fn put_summary(&self, day: i32, df: &mut DataFrame) -> Result<()> {
        self.put(&self.summary_rel(day), df)
    }

    pub fn get_summary(&self, day: i32) -> Result<DataFrame> {
        read_parquet(self.out.get(&self.summary_rel(day))?)
    }

    pub fn delete_summary(&self, day: i32) -> Result<()> {
        self.out.delete(&self.summary_rel(day))
    }

    fn statuses_rel(&self, day: i32) -> String {
        format!("{}/statuses/date={}.parquet", self.gen_dir, day_str(day))
    }

    fn settled_rel(&self, before: i32) -> String {
        format!("{}/customers-settled/before={}.bin", self.gen_dir, day_str(before))
    }

    fn rollup_rel(&self, day: i32, v: u32) -> String {
        format!("{}/rollups/date={}/v{v}.parquet", self.gen_dir, day_str(day))
    }

    /// A day's whole rollup, kept for days with many files (see `pipeline::rollup::load_day`).
    pub fn put_rollup(&self, day: i32, v: u32, df: &mut DataFrame) -> Result<()> {
        self.put(&self.rollup_rel(day, v), df)
    }

    pub fn get_rollup(&self, day: i32, v: u32) -> Result<DataFrame> {
        let rel = self.rollup_rel(day, v);
        let bytes =
            self.out.get(&rel).with_context(|| format!("state is missing {rel}; run `footfall run` to rebuild"))?;
        read_parquet(bytes)
    }

    pub fn delete_rollup(&self, day: i32, v: u32) -> Result<()> {
        self.out.delete(&self.rollup_rel(day, v))
    }

    /// Staff/visitor/loyalty status of each device seen on one day, as last published.
    pub fn put_day_statuses(&self, day: i32, df: &mut DataFrame) -> Result<()> {
        self.put(&self.statuses_rel(day), df)
    }

    pub fn get_day_statuses(&self, day: i32) -> Result<Option<DataFrame>> {
        self.get_opt(&self.statuses_rel(day))
    }

    pub fn delete_day_statuses(&self, day: i32) -> Result<()> {
        self.out.delete(&self.statuses_rel(day))
    }

    /// The customers aggregate over every day before `before` (named by its boundary, so a
    /// crashed run's new one never replaces the one the committed manifest names).
    /// Raw columns, not Parquet: every update reads it whole (one row per device ever seen),
    /// and decoding Parquet was most of an update's cost after a year (see
    /// `pipeline::statuses::customers::Aggregate::to_bytes`).
    pub fn put_settled(&self, before: i32, bytes: Bytes) -> Result<()> {
        self.out.put(&self.settled_rel(before), bytes)
    }

    pub fn get_settled(&self, before: i32) -> Result<Option<Bytes>> {
        self.out.get_mapped(&self.settled_rel(before))
    }

    /// Deletes the settled aggregate and the context kept with it.
    pub fn delete_settled(&self, before: i32) -> Result<()> {
        self.out.delete(&self.settled_rel(before))?;
        self.out.delete(&self.context_rel(before))
    }

    fn context_rel(&self, before: i32) -> String {
        format!("{}/context/before={}.parquet", self.gen_dir, day_str(before))
    }

    /// Per device, its staff-threshold and visitor days among the 27 before `before` (bits).
    pub fn put_context(&self, before: i32, df: &mut DataFrame) -> Result<()> {
        self.put(&self.context_rel(before), df)
    }

    pub fn get_context(&self, before: i32) -> Result<Option<DataFrame>> {
        self.get_opt(&self.context_rel(before))
    }

    /// Device id → pseudonym (only with a MAC key).
    pub fn put_pseudonyms(&self, df: &mut DataFrame) -> Result<()> {
        self.put(&self.whole_rel("pseudonyms"), df)
    }

    pub fn get_pseudonyms(&self) -> Result<Option<DataFrame>> {
        self.get_opt(&self.whole_rel("pseudonyms"))
    }
}

/// The id → pseudonym dictionary: the previous one plus this run's devices. Two pseudonyms
/// sharing an id would merge two devices, so that fails the run.
pub fn merge_pseudonyms(old: Option<DataFrame>, new: Vec<(u64, String)>) -> Result<(DataFrame, Pseudonyms)> {
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

/// Distinct devices with kept records on the local dates in `[from, to]` (all dates when
/// unbounded), from the committed state's per-day device summaries; `None` without state.
pub fn distinct_devices(out: &Location, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Option<i64>> {
    let Some(m) = Manifest::load(out)? else { return Ok(None) };
    let state = m.objects(out);
    let lo = from.map(crate::timeutil::date_to_days).unwrap_or(i32::MIN);
    let hi = to.map(crate::timeutil::date_to_days).unwrap_or(i32::MAX);
    let days: Vec<i32> = m.days().into_iter().filter(|d| (lo..=hi).contains(d)).collect();
    let macs: Vec<Series> =
        crate::par::map(&days, |d| Ok(state.get_summary(*d)?.column(MAC)?.as_materialized_series().clone()))?;
    let mut all: std::collections::HashSet<u64> = std::collections::HashSet::new();
    for s in &macs {
        all.extend(s.u64()?.into_no_null_iter());
    }
    Ok(Some(all.len() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(part_date: Option<&str>, last_modified: i64, days: &[i32]) -> FileRecord {
        FileRecord {
            size: 1,
            e_tag: None,
            last_modified,
            days: days.to_vec(),
            part_date: part_date.map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()),
            part_hour: None,
            quality: FileQuality::default(),
            newest_event: None,
        }
    }

    const JAN2: i64 = 1_704_153_600; // 2024-01-02T00:00:00Z

    /// Files of two dates and one undated file, committed; a reload sees only the head until
    /// parts are loaded, and a listing from the later date loads that part and the undated one.
    #[test]
    fn parts_are_saved_versioned_and_loaded_only_as_asked() {
        let out = Location::memory();
        let mut m = Manifest::new("gen-x".into(), "s".into());
        m.insert([
            ("date=2024-01-01/a.parquet".to_string(), rec(Some("2024-01-01"), 0, &[19723])),
            ("date=2024-01-03/b.parquet".to_string(), rec(Some("2024-01-03"), 0, &[19725, 19726])),
            ("loose.parquet".to_string(), rec(None, JAN2 + 5, &[19724])),
        ]);
        assert!(m.save(&out).unwrap().is_empty(), "nothing to delete after a first save");
        let keys: Vec<&str> = m.parts.keys().map(String::as_str).collect();
        assert_eq!(keys, ["2024-01-01", "2024-01-02", "2024-01-03"]);
        assert_eq!((m.parts["2024-01-02"].undated, m.parts["2024-01-03"].days.clone()), (1, vec![19725, 19726]));

        let mut r = Manifest::load(&out).unwrap().unwrap();
        assert_eq!(
            (r.file_count(), r.days(), r.newest_partition()),
            (3, m.days(), NaiveDate::from_ymd_opt(2024, 1, 3))
        );
        assert!(r.get("date=2024-01-01/a.parquet").is_none(), "parts are not read with the head");
        r.load_listed(&out, NaiveDate::from_ymd_opt(2024, 1, 3)).unwrap();
        assert!(r.get("date=2024-01-01/a.parquet").is_none());
        assert!(r.get("date=2024-01-03/b.parquet").is_some() && r.get("loose.parquet").is_some());
        r.load_days_from(&out, 19723).unwrap();
        let by_day = r.files_by_day(19724);
        assert_eq!(by_day.keys().copied().collect::<Vec<_>>(), [19724, 19725, 19726]);
        assert_eq!(by_day[&19724], ["loose.parquet"]);
    }

    /// A day's bound on segment rows sums the accepted rows of every file with records on it.
    #[test]
    fn accepted_rows_bound_each_days_segments() {
        let mut m = Manifest::new("gen-x".into(), "s".into());
        let with_rows = |days: &[i32], rows: i64| {
            let mut r = rec(None, JAN2, days);
            r.quality.rows_accepted = rows;
            r
        };
        m.insert([
            ("a.parquet".to_string(), with_rows(&[19723, 19724], 10)),
            ("b.parquet".to_string(), with_rows(&[19724], 5)),
            ("c.parquet".to_string(), with_rows(&[19725], 7)),
        ]);
        let got: Vec<(i32, u64)> = m.accepted_rows_by_day(19724).into_iter().collect();
        assert_eq!(got, [(19724, 15), (19725, 7)]);
    }

    /// A changed undated file modified on another day moves to that day's part: the old part
    /// is emptied (dropped from the head), both replaced versions are returned for deletion.
    #[test]
    fn a_changed_file_moves_between_parts_and_old_versions_become_obsolete() {
        let out = Location::memory();
        let mut m = Manifest::new("gen-x".into(), "s".into());
        m.insert([("loose.parquet".to_string(), rec(None, JAN2, &[19724]))]);
        m.insert([("date=2024-01-03/b.parquet".to_string(), rec(Some("2024-01-03"), 0, &[19725]))]);
        m.save(&out).unwrap();
        let mut r = Manifest::load(&out).unwrap().unwrap();
        r.load_listed(&out, NaiveDate::from_ymd_opt(2024, 1, 3)).unwrap();
        r.insert([("loose.parquet".to_string(), rec(None, JAN2 + 86_400, &[19725]))]);
        assert_eq!(r.dirty_parts().iter().map(String::as_str).collect::<Vec<_>>(), ["2024-01-02", "2024-01-03"]);
        let obsolete = r.save(&out).unwrap();
        assert_eq!(
            obsolete,
            ["_state/gen-x/files/date=2024-01-02/v1.json", "_state/gen-x/files/date=2024-01-03/v1.json"]
        );
        let r = Manifest::load(&out).unwrap().unwrap();
        assert_eq!(r.parts.keys().collect::<Vec<_>>(), ["2024-01-03"]);
        assert_eq!((r.parts["2024-01-03"].v, r.parts["2024-01-03"].files, r.file_count()), (2, 2, 2));
    }
}
