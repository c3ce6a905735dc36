//! The incremental state under `<out>/_state/`: a manifest of processed input files and the
//! rollups from which any date's tables are recomputed without re-reading probe files.
//!
//! Layout (one *generation* per `run`; `update` adds to the current one):
//!
//! ```text
//! _state/manifest.json                            committed last: the truth
//! _state/lock                                     held by a running run/update
//! _state/<gen>/segments/date=D/<file-key>.parquet one file's rollup for one local day
//! _state/<gen>/devices/date=D.parquet             each device's day: first/last second, mall dwell, qualifying
//! _state/<gen>/customers-settled/before=D.parquet customers over the days before D (the manifest names D)
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
/// 6: a file's quality counts `occur_time_out_of_range` rejections.
const FORMAT: u32 = 6;

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

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Manifest {
    pub format: u32,
    pub generation: String,
    /// Settings that change results; an update with other settings is refused.
    pub settings: String,
    pub files: BTreeMap<String, FileRecord>,
    pub last_run: Option<RunRecord>,
    /// The day before which the state's settled customers aggregate covers every day.
    #[serde(default)]
    pub settled_before: Option<i32>,
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

    /// Compact JSON: the manifest lists every file ever processed and each update reads and
    /// rewrites it (pretty printed it was 384 KB for a month of hourly files, compact 215 KB).
    pub fn save(&self, out: &Location) -> Result<()> {
        let text = serde_json::to_vec(self)?;
        out.put(MANIFEST, Bytes::from(text))
    }

    /// Every local day with data.
    pub fn days(&self) -> BTreeSet<i32> {
        self.files.values().flat_map(|f| f.days.iter().copied()).collect()
    }

    /// The files contributing to each day (one pass over the files, not one per day).
    pub fn files_by_day(&self) -> BTreeMap<i32, Vec<&str>> {
        let mut m: BTreeMap<i32, Vec<&str>> = BTreeMap::new();
        for (rel, f) in &self.files {
            for d in &f.days {
                m.entry(*d).or_default().push(rel.as_str());
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
        format!("{}/customers-settled/before={}.parquet", self.gen_dir, day_str(before))
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
    pub fn put_settled(&self, before: i32, df: &mut DataFrame) -> Result<()> {
        self.put(&self.settled_rel(before), df)
    }

    pub fn get_settled(&self, before: i32) -> Result<Option<DataFrame>> {
        self.get_opt(&self.settled_rel(before))
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
