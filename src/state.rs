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
//! _state/<gen>/customers.parquet                  the customers snapshot last published
//! _state/<gen>/statuses.parquet                   staff/visitor/loyalty of every device-day last published
//! _state/<gen>/pseudonyms.parquet                 device id → pseudonym (only with privacy.mac_key)
//! ```
//!
//! Segments are per (file, day), so a changed file retracts exactly its own contribution;
//! objects not named by the committed manifest are ignored, so a crash leaves nothing that
//! the next update could mistake for processed data.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ingest::FileQuality;
use crate::store::Location;

pub const MANIFEST: &str = "_state/manifest.json";
const FORMAT: u32 = 2;

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
}

impl Manifest {
    pub fn load(out: &Location) -> Result<Option<Manifest>> {
        let Some(bytes) = out.get_opt(MANIFEST)? else { return Ok(None) };
        let m: Manifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: corrupt state manifest", out.show(MANIFEST)))?;
        if m.format != FORMAT {
            bail!(
                "{}: state format {} is not supported (expected {FORMAT}); run `footfall run` to rebuild",
                out.show(MANIFEST),
                m.format
            );
        }
        Ok(Some(m))
    }

    pub fn new(generation: String, settings: String) -> Manifest {
        Manifest { format: FORMAT, generation, settings, ..Default::default() }
    }

    pub fn save(&self, out: &Location) -> Result<()> {
        let text = serde_json::to_vec_pretty(self)?;
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
}

/// Stable object name for a file's segments.
pub fn file_key(rel: &str) -> String {
    let h = Sha256::digest(rel.as_bytes());
    h.iter().take(10).map(|b| format!("{b:02x}")).collect()
}

pub fn segment_rel(gen_dir: &str, day: i32, rel: &str) -> String {
    format!("{gen_dir}/segments/date={}/{}.parquet", day_str(day), file_key(rel))
}

pub fn devices_rel(gen_dir: &str, day: i32) -> String {
    format!("{gen_dir}/devices/date={}.parquet", day_str(day))
}

pub fn customers_rel(gen_dir: &str) -> String {
    format!("{gen_dir}/customers.parquet")
}

pub fn statuses_rel(gen_dir: &str) -> String {
    format!("{gen_dir}/statuses.parquet")
}

pub fn pseudonyms_rel(gen_dir: &str) -> String {
    format!("{gen_dir}/pseudonyms.parquet")
}

pub fn day_str(day: i32) -> String {
    crate::timeutil::days_to_date(day).format("%Y-%m-%d").to_string()
}

/// A new generation name (sortable).
pub fn new_generation() -> String {
    let now = chrono::Utc::now();
    format!("gen-{}-{}", now.format("%Y%m%dT%H%M%S%.3f"), std::process::id())
}

/// Exclusive lock on an output location, created with a conditional PUT so that two
/// machines sharing a bucket cannot both hold it.
pub struct Lock {
    out: Location,
    released: bool,
}

const LOCK: &str = "_state/lock";

#[derive(Serialize, Deserialize)]
struct LockInfo {
    pid: u32,
    host: String,
    started_at: i64,
    expires_at: i64,
}

fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl Lock {
    /// Takes the lock or fails at once. A lock whose holder is gone (same host, dead pid) or
    /// whose expiry has passed is taken over.
    pub fn acquire(out: &Location, ttl_secs: i64) -> Result<Lock> {
        let now = chrono::Utc::now().timestamp();
        let info = LockInfo { pid: std::process::id(), host: host(), started_at: now, expires_at: now + ttl_secs };
        let body = Bytes::from(serde_json::to_vec(&info)?);
        for _ in 0..2 {
            if out.put_if_absent(LOCK, body.clone())? {
                return Ok(Lock { out: out.clone(), released: false });
            }
            let held = match out.get_opt(LOCK)? {
                None => continue,
                Some(b) => serde_json::from_slice::<LockInfo>(&b).ok(),
            };
            let stale = match &held {
                None => true,
                Some(h) => h.expires_at < now || (h.host == info.host && !pid_alive(h.pid)),
            };
            if stale {
                eprintln!("footfall: taking over a stale lock {}", out.show(LOCK));
                out.delete(LOCK)?;
                continue;
            }
            let h = held.unwrap();
            bail!(
                "{} is locked by another footfall run (pid {} on {}, since {}); try again later, or delete {} if that process is gone",
                out.display,
                h.pid,
                h.host,
                chrono::DateTime::from_timestamp(h.started_at, 0).map(|d| d.to_rfc3339()).unwrap_or_default(),
                out.show(LOCK)
            );
        }
        bail!("could not take the lock {}", out.show(LOCK))
    }

    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.out.delete(LOCK)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.out.delete(LOCK);
        }
    }
}

/// Distinct devices with kept records on the local dates in `[from, to]` (all dates when
/// unbounded), from the committed state's per-day device summaries; `None` without state.
pub fn distinct_devices(out: &Location, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Option<i64>> {
    use polars::prelude::*;
    let Some(m) = Manifest::load(out)? else { return Ok(None) };
    let gen_dir = m.gen_dir();
    let lo = from.map(crate::timeutil::date_to_days).unwrap_or(i32::MIN);
    let hi = to.map(crate::timeutil::date_to_days).unwrap_or(i32::MAX);
    let days: Vec<i32> = m.days().into_iter().filter(|d| (lo..=hi).contains(d)).collect();
    let macs: Vec<Series> = crate::par::map(&days, |d| {
        let df = crate::publish::read_parquet(out.get(&devices_rel(&gen_dir, *d))?)?;
        Ok(df.column("user_device_mac")?.as_materialized_series().clone())
    })?;
    let mut all: std::collections::HashSet<u64> = std::collections::HashSet::new();
    for s in &macs {
        all.extend(s.u64()?.into_no_null_iter());
    }
    Ok(Some(all.len() as i64))
}
