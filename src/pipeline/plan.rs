//! Stage 0, what a run will do: the settings check against the committed state, the listing of
//! probe files ([`ProbeFile`], their partition keys)
//! (within the look-back window) and the diff against the manifest. `status` and
//! `update --dry-run` stop here, without loading dimensions or reading a probe file.

use std::collections::BTreeSet;

use anyhow::Result;
use chrono::NaiveDate;

use crate::config::Plan;
use crate::state::{new_generation, Manifest};
use crate::store::{Entry, Location};

/// The date of a `date=YYYY-MM-DD` path segment.
pub fn date_key(seg: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(seg.strip_prefix("date=")?, "%Y-%m-%d").ok()
}

/// A probe file and its partition keys.
#[derive(Debug, Clone)]
pub struct ProbeFile {
    pub entry: Entry,
    pub part_date: Option<NaiveDate>,
    pub part_hour: Option<u32>,
}

impl ProbeFile {
    pub fn new(entry: Entry) -> Self {
        let (mut part_date, mut part_hour) = (None, None);
        for seg in entry.rel.split('/') {
            if seg.starts_with("date=") {
                part_date = date_key(seg);
            } else if let Some(h) = seg.strip_prefix("hour=") {
                part_hour = h.parse::<u32>().ok().filter(|h| *h < 24);
            }
        }
        ProbeFile { entry, part_date, part_hour }
    }

    /// UTC start of the partition hour, when the path has both keys.
    pub fn partition_start(&self) -> Option<i64> {
        let d = self.part_date?;
        Some(d.and_hms_opt(self.part_hour?, 0, 0)?.and_utc().timestamp())
    }
}

/// Lists the `.parquet` files under the probes location (other files, e.g. `_SUCCESS`, are ignored).
pub fn discover(probes: &Location) -> Result<Vec<ProbeFile>> {
    discover_since(probes, None)
}

/// Like [`discover`], but with `since` only `date=` partitions on or after it are listed, so
/// an hourly update does not list years of history.
pub fn discover_since(probes: &Location, since: Option<NaiveDate>) -> Result<Vec<ProbeFile>> {
    Ok(list_since(probes, since)?
        .into_iter()
        .filter(|e| e.rel.ends_with(".parquet") && !e.rel.split('/').any(|s| s.starts_with('_') || s.starts_with('.')))
        .map(ProbeFile::new)
        .collect())
}

/// Every object of an input (probes or sales), or with `since` the late window: the `date=`
/// partitions on or after it, every other directory and the files at the top, sorted.
pub fn list_since(input: &Location, since: Option<NaiveDate>) -> Result<Vec<Entry>> {
    let Some(since) = since else { return input.list() };
    let (dirs, mut v) = input.list_level("")?;
    for dir in dirs {
        if date_key(&dir).is_none_or(|d| d >= since) {
            v.extend(input.list_under(&dir)?);
        }
    }
    v.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(v)
}

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
    /// Whether every partition was listed (a `run`, `update --full`, a first update).
    pub full_listing: bool,
    /// The sales stage (`[input] sales`).
    pub sales: crate::sales::SalesReport,
}

/// Where a run starts from.
pub struct Prepared {
    /// The manifest this run builds and commits last (a fresh generation for `run`).
    pub manifest: Manifest,
    /// The committed manifest an update builds on (its state is compared against).
    pub prior: Option<Manifest>,
    /// Files to read: new or changed since the manifest.
    pub work: Vec<ProbeFile>,
    pub report: Report,
}

/// Checks the settings against the committed state, lists the probe files and diffs them
/// against the manifest.
pub fn prepare(plan: &Plan, mode: Mode) -> Result<Prepared> {
    let fingerprint = plan.settings.fingerprint();
    // `run` rebuilds from nothing: a manifest of another state format is what it replaces.
    let old = if mode == Mode::Update { Manifest::load(&plan.out)? } else { None };
    if let (Mode::Update, Some(m)) = (mode, &old) {
        if m.settings != fingerprint {
            return Err(crate::error::usage(format!(
                "settings changed since the last run ({} → {}); run `footfall run` to rebuild",
                m.settings, fingerprint
            )));
        }
    }
    let (mut manifest, prior) = match (mode, old) {
        (Mode::Update, Some(m)) => (m.clone(), Some(m)),
        _ => (Manifest::new(new_generation(), fingerprint), None),
    };
    // An update lists only the partitions of the late window (`update --full`: all).
    let since = match (mode, plan.lookback_days) {
        (Mode::Update, Some(n)) => manifest.newest_partition().map(|d| d - chrono::Duration::days(n as i64)),
        _ => None,
    };
    // Only the parts of the file list the listing is compared against are read.
    manifest.load_listed(&plan.out, since)?;
    let files = discover_since(&plan.probes, since)?;
    let mut report = Report { full_listing: since.is_none(), ..Default::default() };
    let mut work = Vec::new();
    for f in &files {
        match manifest.get(&f.entry.rel) {
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
    let listed: BTreeSet<&str> = files.iter().map(|f| f.entry.rel.as_str()).collect();
    report.missing_files = manifest
        .loaded_parts()
        .flat_map(|(_, files)| files)
        .filter(|(k, r)| !listed.contains(k.as_str()) && since.is_none_or(|s| r.part_date.is_none_or(|d| d >= s)))
        .map(|(k, _)| k.clone())
        .collect();
    report.missing_files.sort();
    Ok(Prepared { manifest, prior, work, report })
}
