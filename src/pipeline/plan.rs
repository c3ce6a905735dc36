//! Stage 0, what a run will do: the settings check against the committed state, the listing
//! (within the look-back window) and the diff against the manifest. `status` and
//! `update --dry-run` stop here, without loading dimensions or reading a probe file.

use std::collections::BTreeSet;

use anyhow::Result;

use super::ingest::{self, ProbeFile};
use crate::config::Plan;
use crate::state::{new_generation, Manifest};

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
    let (manifest, prior) = match (mode, old) {
        (Mode::Update, Some(m)) => (m.clone(), Some(m)),
        _ => (Manifest::new(new_generation(), fingerprint), None),
    };
    // With a look-back window an update lists only recent partition dates.
    let since = match (mode, plan.lookback_days) {
        (Mode::Update, Some(n)) => {
            manifest.files.values().filter_map(|f| f.part_date).max().map(|d| d - chrono::Duration::days(n as i64))
        }
        _ => None,
    };
    let files = ingest::discover_since(&plan.probes, since)?;
    let mut report = Report::default();
    let mut work = Vec::new();
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
    let listed: BTreeSet<&str> = files.iter().map(|f| f.entry.rel.as_str()).collect();
    report.missing_files = manifest
        .files
        .iter()
        .filter(|(k, r)| !listed.contains(k.as_str()) && since.is_none_or(|s| r.part_date.is_none_or(|d| d >= s)))
        .map(|(k, _)| k.clone())
        .collect();
    Ok(Prepared { manifest, prior, work, report })
}
