//! `footfall.toml` + command-line flags → a validated [`Plan`], before any work starts.
//!
//! Every key is optional in the file; defaults are those of docs/inputs.md. Unknown keys are errors (a typo in
//! a cron job's config should fail loudly, not fall back to a default). Relative paths are
//! resolved against the directory of the config file, so a config works from any cwd.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::bail_usage;
use crate::store::Location;
use crate::timeutil::{parse_duration, parse_tz};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub mall: MallCfg,
    #[serde(default)]
    pub input: InputCfg,
    #[serde(default)]
    pub output: OutputCfg,
    #[serde(default)]
    pub visits: VisitsCfg,
    #[serde(default)]
    pub metrics: MetricsCfg,
    #[serde(default)]
    pub devices: DevicesCfg,
    #[serde(default)]
    pub visitors: VisitorsCfg,
    #[serde(default)]
    pub staff: StaffCfg,
    #[serde(default)]
    pub privacy: PrivacyCfg,
    #[serde(default)]
    pub density: DensityCfg,
    #[serde(default)]
    pub storage: StorageCfg,
    #[serde(default)]
    pub export: ExportCfg,
    /// A chain: one entry per mall, `[mall]` and every other section shared as defaults.
    #[serde(default)]
    pub malls: Vec<MallEntry>,
}

/// `[[malls]]`: one mall of a chain. Unset keys come from `[mall]` and `[input]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MallEntry {
    /// `[a-z0-9_-]+`: the `mall=<id>` of every path.
    pub id: String,
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub opening_hours: Option<String>,
    pub probes: Option<String>,
    pub dims: Option<String>,
    pub sales: Option<String>,
    pub lookback_days: Option<u32>,
}

/// `[export]`: where `footfall export` (and `update`, with `after_update`) copies the tables.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportCfg {
    /// `postgresql://user@host:port/db` or `mysql://…`; a password may be in it or in
    /// `PGPASSWORD` / `MYSQL_PWD`.
    pub url: Option<String>,
    /// PostgreSQL schema (default `public`) / MySQL database (default: the URL's).
    pub schema: Option<String>,
    /// Tables to export (default: every result table).
    pub tables: Option<Vec<String>>,
    /// Export after each successful `update`.
    pub after_update: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageCfg {
    /// S3-compatible endpoint, e.g. "http://127.0.0.1:9000".
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub allow_http: Option<bool>,
    /// Retries of a failed storage request (with exponential backoff).
    pub retries: Option<usize>,
    /// Give up retrying a request after this long, e.g. "60s".
    pub retry_timeout: Option<String>,
    /// The lock lease on object storage, e.g. "60s" (3s..1h).
    pub lock_lease: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MallCfg {
    pub timezone: Option<String>,
    pub name: Option<String>,
    /// Local opening hours, e.g. "10-22" (used by `footfall check`).
    pub opening_hours: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputCfg {
    pub probes: Option<String>,
    pub dims: Option<String>,
    /// POS transactions (optional): `shop_daily_sales`, `mall_daily_sales` and the trend's sales.
    pub sales: Option<String>,
    /// `update` lists only partition dates from (newest processed partition date − this many
    /// days) on (default 3); `update --full` lists everything.
    pub lookback_days: Option<u32>,
    /// Accepted event times: from this UTC date (default "2000-01-01") …
    pub occur_time_min: Option<String>,
    /// … to before this one (default "2100-01-01").
    pub occur_time_max: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputCfg {
    pub dir: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitsCfg {
    pub gap: Option<String>,
    pub mall_gap: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsCfg {
    pub top_shops: Option<i64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesCfg {
    pub randomized: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitorsCfg {
    pub min_rssi: Option<i64>,
    pub min_dwell: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffCfg {
    pub min_hours_per_day: Option<f64>,
    pub min_days: Option<i64>,
    pub policy: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyCfg {
    pub mac_key: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DensityCfg {
    pub cell: Option<f64>,
    pub slot: Option<String>,
}

/// Command-line overrides shared by the commands that read a config.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub probes: Option<String>,
    pub dims: Option<String>,
    pub out: Option<String>,
    pub timezone: Option<String>,
    pub top_shops: Option<i64>,
    /// `--mall ID` (repeatable): these malls of a chain.
    pub malls: Vec<String>,
    /// `--mall-index N`: the N-th mall of the config (from 0; an orchestrator's job index).
    pub mall_index: Option<usize>,
}

/// Validated settings that the metrics depend on.
///
/// Every field is part of [`Settings::fingerprint`] unless marked `#[serde(skip)]`, so a new
/// setting is covered by `update`'s "settings changed" refusal without further code; skip a
/// field only if no published value depends on it.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Named by `tz_name`.
    #[serde(skip)]
    pub tz: Tz,
    pub tz_name: String,
    /// Shop visit gap, seconds.
    pub visit_gap: i64,
    /// Mall visit gap, seconds.
    pub mall_gap: i64,
    pub top_shops: u32,
    pub exclude_randomized: bool,
    pub min_rssi: i32,
    pub min_dwell: i64,
    pub staff_min_hours: f64,
    pub staff_min_days: u32,
    pub staff_exclude: bool,
    /// Pseudonymise device MACs (docs/tables.md, "Device") with this key (fingerprinted as a hash only).
    #[serde(serialize_with = "key_fingerprint")]
    pub mac_key: Option<crate::mac::MacKey>,
    pub density_cell: f64,
    pub density_slot: i64,
    /// Accepted event times `[min, max)`, epoch seconds. Fixed dates, not relative to the
    /// clock: a run's results never depend on when it runs.
    pub occur_time_min: i64,
    pub occur_time_max: i64,
    /// Local opening hours [open, close): only `footfall check` and the report read them.
    #[serde(skip)]
    pub opening: (u32, u32),
    /// The mall's name (`mall.name`), for titles.
    #[serde(skip)]
    pub mall_name: String,
    /// Whether `[input] sales` is configured: the trend's sales columns depend on it (left
    /// out of the fingerprint when false, so states from before sales keep theirs).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sales: bool,
}

fn key_fingerprint<S: serde::Serializer>(k: &Option<crate::mac::MacKey>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&k.as_ref().map(|k| k.fingerprint()).unwrap_or_else(|| "none".into()))
}

impl Settings {
    /// The settings results depend on, as one string kept in the state: an update with a
    /// different fingerprint is refused.
    pub fn fingerprint(&self) -> String {
        serde_json::to_string(self).expect("settings serialize")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tz: chrono_tz::UTC,
            tz_name: "UTC".into(),
            visit_gap: 600,
            mall_gap: 900,
            top_shops: 5,
            exclude_randomized: false,
            min_rssi: -65,
            min_dwell: 300,
            staff_min_hours: 6.0,
            staff_min_days: 3,
            staff_exclude: false,
            mac_key: None,
            density_cell: 5.0,
            density_slot: 900,
            occur_time_min: 946_684_800,   // 2000-01-01T00:00:00Z
            occur_time_max: 4_102_444_800, // 2100-01-01T00:00:00Z
            opening: (10, 22),
            mall_name: "The mall".into(),
            sales: false,
        }
    }
}

/// Where to read and write, and how to compute.
#[derive(Debug, Clone)]
pub struct Plan {
    pub probes: Location,
    pub dims: Option<Location>,
    /// `[input] sales`: POS transactions, optional.
    pub sales: Option<Location>,
    pub out: Location,
    pub settings: Settings,
    /// The late window: `update` lists partition dates from the newest processed one minus
    /// this many days; `None` (`update --full`) lists every partition.
    pub lookback_days: Option<u32>,
    /// `[export]` with `after_update = true`: what `update` exports after publishing.
    pub export: Option<crate::export::ExportPlan>,
}

fn storage(cfg: &FileConfig) -> Result<crate::store::StorageOpts> {
    let d = crate::store::StorageOpts::default();
    let timeout = duration("storage.retry_timeout", &cfg.storage.retry_timeout, d.retry_timeout.as_secs() as i64)?;
    let lease = duration("storage.lock_lease", &cfg.storage.lock_lease, d.lock_lease.as_secs() as i64)?;
    if !(3..=3600).contains(&lease) {
        bail_usage!("storage.lock_lease: {lease}s is outside 3s..1h");
    }
    Ok(crate::store::StorageOpts {
        endpoint: cfg.storage.endpoint.clone(),
        region: cfg.storage.region.clone(),
        allow_http: cfg.storage.allow_http,
        retries: cfg.storage.retries.unwrap_or(d.retries),
        retry_timeout: std::time::Duration::from_secs(timeout as u64),
        lock_lease: std::time::Duration::from_secs(lease as u64),
    })
}

/// Reads the config file (explicit, or `./footfall.toml` if present).
pub fn load_file(explicit: Option<&Path>) -> Result<(FileConfig, PathBuf)> {
    let (path, must_exist) = match explicit {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from("footfall.toml"), false),
    };
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    if !path.exists() {
        if must_exist {
            bail_usage!("config file {} not found", path.display());
        }
        return Ok((FileConfig::default(), base));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| crate::error::usage(format!("cannot read config {}: {e}", path.display())))?;
    let cfg: FileConfig = toml::from_str(&text)
        .map_err(|e| crate::error::usage(format!("config {}: {}", path.display(), e.to_string().trim_end())))?;
    Ok((cfg, base))
}

/// The default late window of `update`, in days before the newest processed partition date.
pub const DEFAULT_LOOKBACK_DAYS: u32 = 3;

/// The longest duration a setting takes: a year (longer ones are typos, and bounded values
/// keep every sum with event times far from overflow).
const MAX_DURATION: i64 = 366 * 86_400;

fn duration(key: &str, v: &Option<String>, default: i64) -> Result<i64> {
    match v {
        None => Ok(default),
        Some(s) => match parse_duration(s) {
            Some(d) if d <= MAX_DURATION => Ok(d),
            Some(_) => bail_usage!("{key}: '{s}' is longer than the limit of 366 days"),
            None => bail_usage!("{key}: invalid duration '{s}' (use e.g. \"90s\", \"10m\", \"1h\")"),
        },
    }
}

/// The first instant of a UTC date given as `YYYY-MM-DD`, in epoch seconds.
fn utc_date(key: &str, v: &Option<String>, default: i64) -> Result<i64> {
    match v.as_deref() {
        None => Ok(default),
        Some(s) => match chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(day) => Ok(day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp()),
            Err(_) => bail_usage!("{key}: expected a date YYYY-MM-DD, got \"{s}\""),
        },
    }
}

/// Validates the settings part of a config.
pub fn settings(cfg: &FileConfig, ov: &Overrides) -> Result<Settings> {
    let d = Settings::default();
    let tz_name = ov.timezone.clone().or_else(|| cfg.mall.timezone.clone()).unwrap_or(d.tz_name.clone());
    let tz = parse_tz(&tz_name)?;
    let top = ov.top_shops.or(cfg.metrics.top_shops).unwrap_or(d.top_shops as i64);
    if !(1..=1000).contains(&top) {
        bail_usage!("metrics.top_shops: must be between 1 and 1000, got {top}");
    }
    let exclude_randomized = match cfg.devices.randomized.as_deref() {
        None | Some("keep") => false,
        Some("exclude") => true,
        Some(o) => bail_usage!("devices.randomized: expected \"keep\" or \"exclude\", got \"{o}\""),
    };
    let staff_exclude = match cfg.staff.policy.as_deref() {
        None | Some("flag") => false,
        Some("exclude") => true,
        Some(o) => bail_usage!("staff.policy: expected \"flag\" or \"exclude\", got \"{o}\""),
    };
    let min_rssi = cfg.visitors.min_rssi.unwrap_or(d.min_rssi as i64);
    if !(-120..=0).contains(&min_rssi) {
        bail_usage!("visitors.min_rssi: must be within -120..=0 dBm, got {min_rssi}");
    }
    let staff_min_days = cfg.staff.min_days.unwrap_or(d.staff_min_days as i64);
    if !(1..=7).contains(&staff_min_days) {
        bail_usage!("staff.min_days: must be within 1..=7, got {staff_min_days}");
    }
    let staff_min_hours = cfg.staff.min_hours_per_day.unwrap_or(d.staff_min_hours);
    if !(0.0..=24.0).contains(&staff_min_hours) {
        bail_usage!("staff.min_hours_per_day: must be within 0..=24, got {staff_min_hours}");
    }
    let cell = cfg.density.cell.unwrap_or(d.density_cell);
    if cell.is_nan() || cell <= 0.0 {
        bail_usage!("density.cell: must be > 0, got {cell}");
    }
    let visit_gap = duration("visits.gap", &cfg.visits.gap, d.visit_gap)?;
    let mall_gap = duration("visits.mall_gap", &cfg.visits.mall_gap, d.mall_gap)?;
    let density_slot = duration("density.slot", &cfg.density.slot, d.density_slot)?;
    if density_slot == 0 || 86_400 % density_slot != 0 {
        bail_usage!("density.slot: must divide a day, got '{}'", cfg.density.slot.as_deref().unwrap_or(""));
    }
    let opening = match cfg.mall.opening_hours.as_deref() {
        None => d.opening,
        Some(s) => match s
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?)))
        {
            Some((a, b)) if a < b && b <= 24 => (a, b),
            _ => bail_usage!(
                "mall.opening_hours: expected \"OPEN-CLOSE\" in whole local hours such as \"10-22\", got \"{s}\""
            ),
        },
    };
    let occur_time_min = utc_date("input.occur_time_min", &cfg.input.occur_time_min, d.occur_time_min)?;
    let occur_time_max = utc_date("input.occur_time_max", &cfg.input.occur_time_max, d.occur_time_max)?;
    if occur_time_min >= occur_time_max {
        bail_usage!("input.occur_time_min must be before input.occur_time_max");
    }
    let mac_key = cfg
        .privacy
        .mac_key
        .clone()
        .or_else(|| std::env::var("FOOTFALL_MAC_KEY").ok())
        .filter(|k| !k.is_empty())
        .map(|k| crate::mac::MacKey::new(&k));
    Ok(Settings {
        tz,
        tz_name,
        visit_gap,
        mall_gap,
        top_shops: top as u32,
        exclude_randomized,
        min_rssi: min_rssi as i32,
        min_dwell: duration("visitors.min_dwell", &cfg.visitors.min_dwell, d.min_dwell)?,
        staff_min_hours,
        staff_min_days: staff_min_days as u32,
        staff_exclude,
        mac_key,
        density_cell: cell,
        density_slot,
        occur_time_min,
        occur_time_max,
        opening,
        mall_name: cfg.mall.name.clone().unwrap_or(d.mall_name),
        sales: cfg.input.sales.is_some(),
    })
}

/// One mall of a chain (its id) or a single mall's config (`None`), and its plan.
#[derive(Debug, Clone)]
pub struct MallPlan {
    pub id: Option<String>,
    pub plan: Plan,
}

/// The malls a command line selects of a config: all of them without `--mall` or
/// `--mall-index`; a config without `[[malls]]` is one mall without an id (the layout of a
/// single mall). Each entry's config is the file's with the entry's keys put in.
pub fn select_malls(cfg: &FileConfig, ov: &Overrides) -> Result<Vec<(Option<String>, FileConfig)>> {
    if cfg.malls.is_empty() {
        if !ov.malls.is_empty() || ov.mall_index.is_some() {
            bail_usage!("--mall and --mall-index need a config with [[malls]] entries");
        }
        return Ok(vec![(None, cfg.clone())]);
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, m) in cfg.malls.iter().enumerate() {
        let ok = !m.id.is_empty()
            && m.id.len() <= 64
            && m.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            bail_usage!("malls[{i}].id: \"{}\" must be 1-64 characters of a-z, 0-9, _ and -", m.id);
        }
        if !seen.insert(m.id.as_str()) {
            bail_usage!("malls[{i}].id: \"{}\" is used twice", m.id);
        }
        if m.probes.is_none() && ov.probes.is_none() {
            bail_usage!("malls[{i}].probes is not set (mall \"{}\")", m.id);
        }
    }
    let picked: Vec<&MallEntry> = match (ov.mall_index, ov.malls.as_slice()) {
        (Some(_), [_, ..]) => bail_usage!("give --mall or --mall-index, not both"),
        (Some(i), []) => match cfg.malls.get(i) {
            Some(m) => vec![m],
            None => {
                bail_usage!("--mall-index {i}: the config has {} mall(s) (0..{})", cfg.malls.len(), cfg.malls.len())
            }
        },
        (None, []) => cfg.malls.iter().collect(),
        (None, ids) => ids
            .iter()
            .map(|id| match cfg.malls.iter().find(|m| &m.id == id) {
                Some(m) => Ok(m),
                None => Err(crate::error::usage(format!(
                    "--mall {id}: no such mall in the config (malls: {})",
                    cfg.malls.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", ")
                ))),
            })
            .collect::<Result<_>>()?,
    };
    Ok(picked
        .into_iter()
        .map(|m| {
            let mut c = cfg.clone();
            c.malls.clear();
            c.mall.name = m.name.clone().or(c.mall.name);
            c.mall.timezone = m.timezone.clone().or(c.mall.timezone);
            c.mall.opening_hours = m.opening_hours.clone().or(c.mall.opening_hours);
            c.input.probes = m.probes.clone();
            c.input.dims = m.dims.clone();
            c.input.sales = m.sales.clone();
            c.input.lookback_days = m.lookback_days.or(c.input.lookback_days);
            (Some(m.id.clone()), c)
        })
        .collect())
}

/// The plans of the selected malls (see [`select_malls`]), each validated before any runs.
pub fn plans(ov: &Overrides) -> Result<Vec<MallPlan>> {
    let (cfg, base) = load_file(ov.config.as_deref())?;
    select_malls(&cfg, ov)?
        .into_iter()
        .map(|(id, c)| {
            let plan = plan_of(&c, &base, ov, id.as_deref())
                .with_context(|| id.as_ref().map(|i| format!("mall {i}")).unwrap_or_default())?;
            Ok(MallPlan { id, plan })
        })
        .collect()
}

/// A chain config's malls, each with its config keys resolved (for `footfall malls`).
pub fn malls(ov: &Overrides) -> Result<Vec<(String, FileConfig)>> {
    let (cfg, _) = load_file(ov.config.as_deref())?;
    if cfg.malls.is_empty() {
        bail_usage!("the config has no [[malls]] entries (a single mall)");
    }
    Ok(select_malls(&cfg, ov)?.into_iter().map(|(id, c)| (id.unwrap_or_default(), c)).collect())
}

/// Every mall id of a chain config, in config order (empty for a single mall).
pub fn chain_ids(config: Option<&Path>) -> Result<Vec<String>> {
    Ok(load_file(config)?.0.malls.iter().map(|m| m.id.clone()).collect())
}

/// The root of a chain's outputs and every mall id of the config (`footfall chain`).
pub fn chain_root(ov: &Overrides) -> Result<(Location, Vec<String>)> {
    let (cfg, base) = load_file(ov.config.as_deref())?;
    if cfg.malls.is_empty() {
        bail_usage!("the config has no [[malls]] entries: chain tables need a chain");
    }
    select_malls(&cfg, &Overrides { malls: vec![], mall_index: None, ..ov.clone() })?;
    let Some(out) = ov.out.clone().or(cfg.output.dir.clone()) else {
        bail_usage!("output.dir is not set (config key output.dir or --out)");
    };
    let out = Location::parse_with(&out, &base, "output.dir", &storage(&cfg)?)?;
    Ok((out, cfg.malls.iter().map(|m| m.id.clone()).collect()))
}

/// The one mall a command works on: a single mall's config, or one `--mall` of a chain.
fn one_mall(ov: &Overrides) -> Result<(Option<String>, FileConfig, PathBuf)> {
    let (cfg, base) = load_file(ov.config.as_deref())?;
    let mut picked = select_malls(&cfg, ov)?;
    if picked.len() != 1 {
        bail_usage!(
            "this config has {} malls: choose one with --mall ID ({})",
            cfg.malls.len(),
            cfg.malls.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let (id, c) = picked.remove(0);
    Ok((id, c, base))
}

/// Builds the full plan of one mall: config file, flags, validated settings and locations.
pub fn plan(ov: &Overrides) -> Result<Plan> {
    let (id, cfg, base) = one_mall(ov)?;
    plan_of(&cfg, &base, ov, id.as_deref())
}

/// The outputs of a config and flags: the chain's part of one mall, or a single mall's.
fn out_location(
    cfg: &FileConfig,
    base: &Path,
    ov: &Overrides,
    st: &crate::store::StorageOpts,
    mall: Option<&str>,
) -> Result<Location> {
    let Some(out) = ov.out.clone().or(cfg.output.dir.clone()) else {
        bail_usage!("output.dir is not set (config key output.dir or --out)");
    };
    let out = Location::parse_with(&out, base, "output.dir", st)?;
    Ok(match mall {
        Some(id) => out.for_mall(id),
        None => out,
    })
}

fn plan_of(cfg: &FileConfig, base: &Path, ov: &Overrides, mall: Option<&str>) -> Result<Plan> {
    let settings = settings(cfg, ov)?;
    let probes = ov.probes.clone().or(cfg.input.probes.clone());
    let Some(probes) = probes else {
        bail_usage!("input.probes is not set (config key input.probes or --probes)");
    };
    let dims = ov.dims.clone().or(cfg.input.dims.clone());
    let st = storage(cfg)?;
    let out = out_location(cfg, base, ov, &st, mall)?;
    Ok(Plan {
        probes: Location::parse_with(&probes, base, "input.probes", &st)?,
        dims: dims.map(|d| Location::parse_with(&d, base, "input.dims", &st)).transpose()?,
        sales: cfg.input.sales.as_ref().map(|s| Location::parse_with(s, base, "input.sales", &st)).transpose()?,
        out,
        settings,
        lookback_days: Some(cfg.input.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS)),
        export: match (cfg.export.after_update, mall) {
            (Some(true), None) => Some(export_plan_of(cfg, None, None, None, None)?),
            // A mall of a chain exports its own rows; the chain tables follow the chain step.
            (Some(true), Some(id)) => {
                let scope = crate::export::ChainScope { malls: vec![id.to_string()], chain_tables: false };
                Some(export_plan_of(cfg, None, None, None, None)?.in_chain(scope, cfg.export.tables.is_none()))
            }
            _ => None,
        },
    })
}

/// The export plan of `[export]`, with a command line's target, tables and date range
/// taking precedence.
fn export_plan_of(
    cfg: &FileConfig,
    to: Option<&str>,
    tables: Option<&[String]>,
    from: Option<chrono::NaiveDate>,
    until: Option<chrono::NaiveDate>,
) -> Result<crate::export::ExportPlan> {
    let Some(url) = to.or(cfg.export.url.as_deref()) else {
        bail_usage!("no export target: give --to URL or set export.url");
    };
    let tables = tables.or(cfg.export.tables.as_deref());
    crate::export::ExportPlan::new(url, cfg.export.schema.as_deref(), tables, from, until)
}

/// What `footfall export` needs: the published outputs (a chain's root for a chain), the
/// settings and the export plan. In a chain the plan covers the malls of `--mall` (every
/// mall, and then the chain tables, without it).
pub fn export_plan(
    ov: &Overrides,
    to: Option<&str>,
    tables: Option<&[String]>,
    from: Option<chrono::NaiveDate>,
    until: Option<chrono::NaiveDate>,
) -> Result<(Location, Settings, crate::export::ExportPlan)> {
    let (cfg, base) = load_file(ov.config.as_deref())?;
    let plan = export_plan_of(&cfg, to, tables, from, until)?;
    let all_tables = tables.or(cfg.export.tables.as_deref()).is_none();
    if cfg.malls.is_empty() {
        if let Some(t) = plan.tables.iter().find(|t| t.kind == "chain") {
            bail_usage!("export: {} is a chain table; this config has no [[malls]]", t.name);
        }
        let r = read_plan(ov)?;
        return Ok((r.out, r.settings, plan));
    }
    let picked = select_malls(&cfg, ov)?;
    let scope = crate::export::ChainScope {
        malls: picked.iter().filter_map(|(id, _)| id.clone()).collect(),
        chain_tables: picked.len() == cfg.malls.len(),
    };
    if !scope.chain_tables {
        if let Some(t) = plan.tables.iter().find(|t| t.kind == "chain") {
            bail_usage!("export: {} is a chain table, exported with the whole chain (without --mall)", t.name);
        }
    }
    let out = out_location(&cfg, &base, ov, &storage(&cfg)?, None)?;
    Ok((out, settings(&cfg, ov)?, plan.in_chain(scope, all_tables)))
}

/// What the read-side commands (`show`, `sql`, `check`, `customer`, `report`, `export`) need:
/// the published outputs and the settings, and the inputs where configured (`sql` reads them).
pub struct ReadPlan {
    pub out: Location,
    pub settings: Settings,
    pub probes: Option<Location>,
    pub dims: Option<Location>,
    pub sales: Option<Location>,
}

/// The read plan of a config and flags; unlike [`plan`], inputs may be unset.
pub fn read_plan(ov: &Overrides) -> Result<ReadPlan> {
    let (id, cfg, base) = one_mall(ov)?;
    let settings = settings(&cfg, ov)?;
    let probes = ov.probes.clone().or(cfg.input.probes.clone());
    let dims = ov.dims.clone().or(cfg.input.dims.clone());
    let st = storage(&cfg)?;
    Ok(ReadPlan {
        out: out_location(&cfg, &base, ov, &st, id.as_deref())?,
        settings,
        probes: probes.map(|p| Location::parse_with(&p, &base, "input.probes", &st)).transpose()?,
        dims: dims.map(|d| Location::parse_with(&d, &base, "input.dims", &st)).transpose()?,
        sales: cfg.input.sales.as_ref().map(|s| Location::parse_with(s, &base, "input.sales", &st)).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings> {
        let cfg: FileConfig = toml::from_str(text).map_err(|e| crate::error::usage(e.to_string()))?;
        settings(&cfg, &Overrides::default())
    }

    #[test]
    fn defaults_follow_the_spec() {
        let s = parse("").unwrap();
        assert_eq!((s.visit_gap, s.mall_gap, s.top_shops, s.min_rssi, s.min_dwell), (600, 900, 5, -65, 300));
        assert_eq!(s.tz_name, "UTC");
        assert_eq!((s.staff_min_hours, s.staff_min_days, s.staff_exclude), (6.0, 3, false));
        assert_eq!(
            (s.exclude_randomized, s.mac_key.is_none(), s.density_cell, s.density_slot),
            (false, true, 5.0, 900)
        );
    }

    #[test]
    fn every_result_setting_is_in_the_fingerprint() {
        let base = parse("").unwrap().fingerprint();
        for text in [
            "[mall]\ntimezone = \"Europe/Berlin\"",
            "[visits]\ngap = \"11m\"",
            "[visits]\nmall_gap = \"16m\"",
            "[metrics]\ntop_shops = 6",
            "[devices]\nrandomized = \"exclude\"",
            "[visitors]\nmin_rssi = -70",
            "[visitors]\nmin_dwell = \"6m\"",
            "[staff]\nmin_hours_per_day = 5",
            "[staff]\nmin_days = 2",
            "[staff]\npolicy = \"exclude\"",
            "[privacy]\nmac_key = \"k\"",
            "[density]\ncell = 4",
            "[density]\nslot = \"30m\"",
            "[input]\noccur_time_min = \"2010-01-01\"",
            "[input]\noccur_time_max = \"2030-01-01\"",
        ] {
            assert_ne!(parse(text).unwrap().fingerprint(), base, "{text}");
        }
        // Opening hours change no published value (only `check` reads them).
        assert_eq!(parse("[mall]\nopening_hours = \"9-21\"").unwrap().fingerprint(), base);
        // The key itself never appears, only its hash.
        assert!(!parse("[privacy]\nmac_key = \"secret-key\"").unwrap().fingerprint().contains("secret-key"));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("[visits]\ngap = \"ten\"", "visits.gap"),
            ("[mall]\ntimezone = \"Mars/Olympus\"", "mall.timezone"),
            ("[devices]\nrandomized = \"maybe\"", "devices.randomized"),
            ("[staff]\npolicy = \"fire\"", "staff.policy"),
            ("[visits]\nmall_gap = \"-5m\"", "visits.mall_gap"),
            ("[visitors]\nmin_dwell = \"5 minutes\"", "visitors.min_dwell"),
            ("[visitors]\nmin_rssi = 3", "visitors.min_rssi"),
            ("[staff]\nmin_days = 8", "staff.min_days"),
            ("[staff]\nmin_hours_per_day = 25", "staff.min_hours_per_day"),
            ("[density]\ncell = 0", "density.cell"),
            ("[density]\nslot = \"7m\"", "density.slot"),
            ("[devices]\nrandomized = \"drop\"", "devices.randomized"),
            ("[mall]\ntimzone = \"UTC\"", "timzone"),
            ("[visits]\ngap = \"9223372036854775807d\"", "visits.gap"),
            ("[visits]\ngap = \"367d\"", "visits.gap"),
            ("[input]\noccur_time_min = \"2000-13-01\"", "input.occur_time_min"),
            ("[input]\noccur_time_max = \"soon\"", "input.occur_time_max"),
            ("[input]\noccur_time_min = \"2030-01-01\"\noccur_time_max = \"2020-01-01\"", "input.occur_time_min"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(format!("{err:#}").contains(key), "{text}: {err:#}");
            assert_eq!(crate::error::exit_code(&err), 2);
        }
        let cfg: FileConfig = toml::from_str("[storage]\nretry_timeout = \"99999999999999999999s\"").unwrap();
        let err = storage(&cfg).unwrap_err();
        assert!(format!("{err:#}").contains("storage.retry_timeout"), "{err:#}");
    }
}
