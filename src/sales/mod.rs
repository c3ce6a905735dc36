//! Sales (`[input] sales`): POS transactions beside the foot traffic, and the week-over-week
//! trend. A stage after the probe days are published, because its tables divide by their
//! visitors:
//!
//! ```text
//! list sales files ─▶ diff with the sales file list ─▶ parse new/changed (counted rejections)
//!   ─▶ dates to publish: their dates ± ID_WINDOW_DAYS + the dates the probes re-published
//!   ─▶ per date: re-read the files with rows within ID_WINDOW_DAYS of it, one row per
//!      transaction_id, keep the date's winners ─▶ shop/mall sales
//!   ─▶ trend of those dates and of the dates a week later ─▶ the file list, committed with the head
//! ```
//!
//! Why re-read instead of keeping parsed rows: POS files are small (one a day, thousands of
//! rows) next to probe files, and a date's window of files is a few dozen, so recomputing a date
//! from its files keeps the state to one list. Why a transaction id is unique within a window of
//! days rather than over all history: a date is then computed from the files of its window
//! only, so an update's cost follows the dates it touches, not the history, and a correction
//! that moves a sale to another day (within the window) still counts once (docs/tables.md,
//! sales). Money is integer cents, published as DECIMAL(18, 2).

pub mod parse;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context, Result};
use bytes::Bytes;
use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::Plan;
use crate::dims::Dims;
use crate::schema;
use crate::state::Manifest;
use crate::store::{Entry, Location};
use crate::tables;
use crate::timeutil::{date_to_days, days_to_date, LocalClock};
pub use parse::{SalesQuality, REASONS};

pub const SHOP: &str = "shop_daily_sales";
pub const MALL: &str = "mall_daily_sales";
pub const TREND: &str = "mall_daily_trend";
/// Copies of a `transaction_id` sold at most this many days apart count once.
pub const ID_WINDOW_DAYS: i32 = 7;
/// The tables this stage publishes (the trend also without a sales input).
pub const TABLES: [&str; 3] = [SHOP, MALL, TREND];

/// What the state knows of one sales file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SalesRecord {
    pub size: u64,
    pub e_tag: Option<String>,
    pub last_modified: i64,
    /// Local days it has accepted rows for.
    pub days: Vec<i32>,
    pub quality: SalesQuality,
}

impl SalesRecord {
    fn same(&self, e: &Entry) -> bool {
        self.size == e.size && self.e_tag == e.e_tag && self.last_modified == e.last_modified
    }
}

/// The committed list of sales files (`_state/<gen>/sales/v<n>.json`, named by the head).
pub type SalesFiles = BTreeMap<String, SalesRecord>;

fn list_rel(m: &Manifest, v: u32) -> String {
    format!("{}/sales/v{v}.json", m.gen_dir())
}

/// The committed sales file list of `out`, if any.
pub fn committed(out: &Location) -> Result<Option<SalesFiles>> {
    let Some(m) = Manifest::load(out)? else { return Ok(None) };
    let Some(v) = m.sales else { return Ok(None) };
    let rel = list_rel(&m, v);
    Ok(Some(
        serde_json::from_slice(&out.get(&rel)?).with_context(|| format!("{}: corrupt sales list", out.show(&rel)))?,
    ))
}

/// `footfall check`'s sales measures over the local dates `[from, to]`: rows read and
/// rejected by reason (files with sales on those dates), shops that sold on a date without a
/// single qualifying visitor (a sign of a broken probe), and transaction ids whose copies were
/// sold more than [`ID_WINDOW_DAYS`] apart (the window does not join them: docs/tables.md),
/// from the files re-read.
pub fn check_measures(
    r: &crate::config::ReadPlan,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Vec<(String, i64)>> {
    let (out, tz) = (&r.out, r.settings.tz_name.as_str());
    let files = committed(out)?.unwrap_or_default();
    let in_range = |d: &i32| {
        let d = days_to_date(*d);
        from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t)
    };
    let mut q = SalesQuality::default();
    let checked: Vec<(&String, &SalesRecord)> =
        files.iter().filter(|(_, r)| r.days.iter().any(in_range) || r.days.is_empty()).collect();
    for (_, f) in &checked {
        q.rows_read += f.quality.rows_read;
        q.rows_accepted += f.quality.rows_accepted;
        for (a, b) in q.rejected.iter_mut().zip(f.quality.rejected) {
            *a += b;
        }
    }
    let n = checked.len() as i64;
    let several = match &r.sales {
        Some(sales) => {
            let dims = crate::dims::load(r.dims.as_ref(), r.settings.mac_key.as_ref())?;
            let mut ctx = parse::SalesCtx {
                clock: LocalClock::new(r.settings.tz),
                valid_times: (r.settings.occur_time_min, r.settings.occur_time_max - 1),
                known_shops: &dims.known_shops,
            };
            let mut days_of: HashMap<String, BTreeSet<i32>> = HashMap::new();
            for (rel, _) in &checked {
                let p = parse::parse(sales.get(rel)?, &sales.show(rel), rel.ends_with(".csv"), &mut ctx)?;
                let (ids, days) =
                    (p.rows.column("transaction_id")?.str()?.clone(), p.rows.column("day")?.i32()?.clone());
                for (id, day) in ids.iter().flatten().zip(days.into_no_null_iter()) {
                    days_of.entry(id.to_string()).or_default().insert(day);
                }
            }
            days_of.values().filter(|d| d.last().zip(d.first()).is_some_and(|(l, f)| l - f > ID_WINDOW_DAYS)).count()
                as i64
        }
        None => 0,
    };
    let shops = tables::read_table(out, schema::get(SHOP)?, tz, from, to)?
        .lazy()
        .filter(col("transactions").gt(lit(0)).and(col("visitors").eq(lit(0))))
        .collect()?
        .height() as i64;
    let mut m = vec![
        ("sales_files".to_string(), n),
        ("sales_rows_read".to_string(), q.rows_read),
        ("sales_rows_rejected".to_string(), q.rows_read - q.rows_accepted),
    ];
    m.extend(REASONS.iter().zip(q.rejected).map(|(r, v)| (format!("sales_rejected_{r}"), v)));
    m.push(("shop_days_with_sales_without_visitors".to_string(), shops));
    m.push((format!("sales_ids_more_than_{ID_WINDOW_DAYS}_days_apart"), several));
    Ok(m)
}

/// What the stage did.
#[derive(Debug, Default)]
pub struct SalesReport {
    pub files_read: usize,
    pub new_files: usize,
    pub changed_files: usize,
    pub missing_files: Vec<String>,
    pub rows_read: i64,
    pub rows_rejected: i64,
    pub dates_published: Vec<NaiveDate>,
    /// The committed list this run replaced, to delete once the head is committed.
    pub obsolete: Option<String>,
    /// The `data_quality` dates ([`quality_key`]) of the sales files read (every one after a run).
    pub quality_keys: BTreeSet<String>,
    /// The sales file list as committed by this run.
    pub files: SalesFiles,
}

/// A sales file's `data_quality` date and hour: its `date=`/`hour=` path keys, or without a
/// date the UTC date it was last modified (as for probe files).
pub fn quality_key(rel: &str, r: &SalesRecord) -> (String, Option<u32>) {
    let e = Entry { rel: rel.to_string(), size: r.size, e_tag: r.e_tag.clone(), last_modified: r.last_modified };
    let f = crate::pipeline::plan::ProbeFile::new(e);
    (crate::state::part_key(f.part_date, r.last_modified), f.part_hour)
}

/// The `date=` key of a path's first directory (what the late window lists by).
fn partition_date(rel: &str) -> Option<NaiveDate> {
    crate::pipeline::plan::date_key(rel.split('/').next()?)
}

/// The sales files under `sales` (`.parquet` and `.csv`; `_`/`.` names are skipped), with
/// `since` those of the late window ([`crate::pipeline::plan::list_since`]).
pub fn discover(sales: &Location, since: Option<NaiveDate>) -> Result<Vec<Entry>> {
    Ok(crate::pipeline::plan::list_since(sales, since)?
        .into_iter()
        .filter(|e| {
            (e.rel.ends_with(".parquet") || e.rel.ends_with(".csv"))
                && !e.rel.split('/').any(|s| s.starts_with('_') || s.starts_with('.'))
        })
        .collect())
}

/// Runs the stage: `published` are the dates the probe stage published in this run,
/// `probe_days` every day with probe data. With `run` (`fresh`) every date is published.
pub fn stage(
    plan: &Plan,
    manifest: &mut Manifest,
    fresh: bool,
    published: &[NaiveDate],
    probe_days: &BTreeSet<i32>,
    dims: &Dims,
) -> Result<SalesReport> {
    let out = &plan.out;
    let mut report = SalesReport::default();
    let mut files: SalesFiles = match (fresh, manifest.sales) {
        (false, Some(v)) => {
            let rel = list_rel(manifest, v);
            serde_json::from_slice(&out.get(&rel)?)
                .with_context(|| format!("{}: corrupt sales list", out.show(&rel)))?
        }
        _ => SalesFiles::new(),
    };
    let mut touched: BTreeSet<i32> = published.iter().map(|d| date_to_days(*d)).collect();
    // Days a new or changed file has (or had) rows on: the dates whose window holds them move.
    let mut changed_days: BTreeSet<i32> = BTreeSet::new();
    let mut parsed: HashMap<String, DataFrame> = HashMap::new();
    if let Some(sales) = &plan.sales {
        // An update lists the late window as for the probes: from the newest partition (of
        // either input) minus `lookback_days`.
        let since = match (fresh, plan.lookback_days) {
            (false, Some(n)) => {
                let newest_sales = files.keys().filter_map(|rel| partition_date(rel)).max();
                manifest.newest_partition().max(newest_sales).map(|d| d - chrono::Duration::days(n as i64))
            }
            _ => None,
        };
        let listed = discover(sales, since)?;
        let work: Vec<&Entry> = listed.iter().filter(|e| !files.get(&e.rel).is_some_and(|r| r.same(e))).collect();
        let read = crate::par::map(&work, |e| {
            let bytes = sales.get(&e.rel).with_context(|| format!("cannot read sales file {}", sales.show(&e.rel)))?;
            parse_file(plan, sales, &e.rel, bytes, dims)
        })?;
        for (e, p) in work.iter().zip(read) {
            let days: BTreeSet<i32> = p.rows.column("day")?.i32()?.into_no_null_iter().collect();
            match files.get(&e.rel) {
                Some(old) => {
                    report.changed_files += 1;
                    changed_days.extend(old.days.iter().copied());
                }
                None => report.new_files += 1,
            }
            changed_days.extend(days.iter().copied());
            report.rows_read += p.quality.rows_read;
            report.rows_rejected += p.quality.rows_read - p.quality.rows_accepted;
            let record = SalesRecord {
                size: e.size,
                e_tag: e.e_tag.clone(),
                last_modified: e.last_modified,
                days: days.into_iter().collect(),
                quality: p.quality,
            };
            report.quality_keys.insert(quality_key(&e.rel, &record).0);
            files.insert(e.rel.clone(), record);
            parsed.insert(e.rel.clone(), p.rows);
        }
        report.files_read = work.len();
        let listed: BTreeSet<&str> = listed.iter().map(|e| e.rel.as_str()).collect();
        let in_window = |rel: &str| since.is_none_or(|s| partition_date(rel).is_none_or(|d| d >= s));
        report.missing_files = files.keys().filter(|k| !listed.contains(k.as_str()) && in_window(k)).cloned().collect();
    }
    let sales_days: BTreeSet<i32> = files.values().flat_map(|r| r.days.iter().copied()).collect();
    let known: BTreeSet<i32> = probe_days.union(&sales_days).copied().collect();
    touched.extend(changed_days.iter().flat_map(|d| d - ID_WINDOW_DAYS..=d + ID_WINDOW_DAYS));
    if fresh {
        touched = known.clone();
        report.quality_keys = files.iter().map(|(rel, r)| quality_key(rel, r).0).collect();
    }
    touched.retain(|d| known.contains(d));

    let tz = plan.settings.tz_name.as_str();
    if let Some(sales) = &plan.sales {
        // The files of the touched days' windows not read above (an update's unchanged ones),
        // each read once; then the days, in parallel.
        let near = |r: &SalesRecord| r.days.iter().any(|d| touched.iter().any(|t| (d - t).abs() <= ID_WINDOW_DAYS));
        let unread: Vec<(&String, &SalesRecord)> =
            files.iter().filter(|(rel, r)| !parsed.contains_key(*rel) && near(r)).collect();
        let read = crate::par::map(&unread, |&(rel, r)| {
            let bytes = sales.get(rel).with_context(|| format!("cannot read sales file {}", sales.show(rel)))?;
            let p = parse_file(plan, sales, rel, bytes, dims)?;
            if p.quality != r.quality {
                anyhow::bail!("sales file {} changed while it was read; run again", sales.show(rel));
            }
            Ok(p.rows)
        })?;
        parsed.extend(unread.iter().map(|(rel, _)| (*rel).clone()).zip(read));
        let days: Vec<i32> = touched.iter().copied().collect();
        crate::par::map(&days, |&day| {
            let rows = day_rows(&files, &parsed, day)?;
            let (shop, mall) = day_tables(out, day, rows, dims)?;
            let date = days_to_date(day);
            let dated = |df| tables::with_partition_date(df, date);
            tables::publish_partition(out, schema::get(SHOP)?, date, dated(shop)?, tz, None)?;
            tables::publish_partition(out, schema::get(MALL)?, date, dated(mall)?, tz, None)?;
            Ok(())
        })?;
    }
    // The trend of a date reads the date a week before: those a week after a changed date move.
    let trend_days: BTreeSet<i32> = touched.iter().flat_map(|d| [*d, d + 7]).filter(|d| known.contains(d)).collect();
    crate::par::map(&trend_days.iter().copied().collect::<Vec<i32>>(), |&day| {
        let (date, df) = (days_to_date(day), trend_row(out, day, plan.sales.is_some())?);
        tables::publish_partition(out, schema::get(TREND)?, date, tables::with_partition_date(df, date)?, tz, None)?;
        Ok(())
    })?;
    if fresh {
        // A run publishes every date it knows; what an earlier run left goes (all of the sales
        // tables when sales are no longer configured).
        for t in TABLES {
            let keep = t == TREND || plan.sales.is_some();
            for d in tables::published_dates(out, t)? {
                if !keep || !known.contains(&date_to_days(d)) {
                    out.delete(&tables::partition_rel(t, d))?;
                }
            }
        }
    }
    report.dates_published = touched.union(&trend_days).map(|d| days_to_date(*d)).collect();
    // The list is written as a new version; the head names it (committed by the caller).
    if plan.sales.is_some() {
        let v = manifest.sales.filter(|_| !fresh).unwrap_or(0) + 1;
        out.put(&list_rel(manifest, v), Bytes::from(serde_json::to_vec(&files)?))?;
        report.obsolete = manifest.sales.filter(|_| !fresh).map(|old| list_rel(manifest, old));
        manifest.sales = Some(v);
    }
    report.files = files;
    Ok(report)
}

fn parse_file(plan: &Plan, sales: &Location, rel: &str, bytes: Bytes, dims: &Dims) -> Result<parse::Parsed> {
    let mut ctx = parse::SalesCtx {
        clock: LocalClock::new(plan.settings.tz),
        valid_times: (plan.settings.occur_time_min, plan.settings.occur_time_max - 1),
        known_shops: &dims.known_shops,
    };
    parse::parse(bytes, &sales.show(rel), rel.ends_with(".csv"), &mut ctx)
}

/// The transactions of one local day: of every row within [`ID_WINDOW_DAYS`] of it, one per
/// `transaction_id` — the file with the greatest path wins, within a file the later row — and
/// of those the day's.
fn day_rows(files: &SalesFiles, parsed: &HashMap<String, DataFrame>, day: i32) -> Result<DataFrame> {
    let window = |d: &i32| (d - day).abs() <= ID_WINDOW_DAYS;
    let mut parts = Vec::new();
    for rel in files.iter().filter(|(_, r)| r.days.iter().any(window)).map(|(rel, _)| rel) {
        let Some(rows) = parsed.get(rel) else { anyhow::bail!("sales file {rel} was not read") };
        let near = col("day").gt_eq(lit(day - ID_WINDOW_DAYS)).and(col("day").lt_eq(lit(day + ID_WINDOW_DAYS)));
        let rows = rows.clone().lazy().filter(near).with_column(lit(rel.as_str()).alias("file"));
        parts.push(rows);
    }
    let empty = df!(
        "transaction_id" => Vec::<String>::new(), "shop_code" => Vec::<String>::new(),
        "second" => Vec::<i64>::new(), "day" => Vec::<i32>::new(), "cents" => Vec::<i64>::new(),
        "row" => Vec::<i64>::new(), "file" => Vec::<String>::new()
    )?;
    if parts.is_empty() {
        return Ok(empty);
    }
    Ok(concat(parts, UnionArgs::default())?
        .sort(["file", "row"], SortMultipleOptions::default())
        .unique_stable(Some(cols(["transaction_id"])), UniqueKeepStrategy::Last)
        .filter(col("day").eq(lit(day)))
        .collect()?)
}

/// `shop_daily_sales` and `mall_daily_sales` of a day from its transactions and the visitors
/// the probe stage published for it (none: 0).
fn day_tables(out: &Location, day: i32, rows: DataFrame, dims: &Dims) -> Result<(DataFrame, DataFrame)> {
    let date = days_to_date(day);
    let by_shop = rows.lazy().group_by([col("shop_code")]).agg([
        col("cents").gt_eq(lit(0)).cast(DataType::Int64).sum().alias("transactions"),
        col("cents").sum().alias("sales_amount"),
    ]);
    let shop_visitors = match read_partition(out, "shop_daily_engagement", date)? {
        Some(df) => df.lazy().select([col("shop_code"), col("visitors")]),
        None => df!("shop_code" => Vec::<String>::new(), "visitors" => Vec::<i64>::new())?.lazy(),
    };
    let shop = by_shop
        .join(
            shop_visitors,
            [col("shop_code")],
            [col("shop_code")],
            JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
        )
        .with_columns([
            col("transactions").fill_null(lit(0i64)),
            col("sales_amount").fill_null(lit(0i64)),
            col("visitors").fill_null(lit(0i64)),
        ])
        .join(dims.shops.clone().lazy(), [col("shop_code")], [col("shop_code")], JoinArgs::new(JoinType::Left));
    let shop = ratios(shop).collect()?;
    let visitors = read_partition(out, "mall_daily_engagement", date)?
        .and_then(|df| df.column("visitors").ok()?.i64().ok()?.get(0))
        .unwrap_or(0);
    let mall = shop
        .clone()
        .lazy()
        .select([col("transactions").sum().alias("transactions"), col("sales_amount").sum().alias("sales_amount")])
        .with_column(lit(visitors).alias("visitors"));
    Ok((shop, ratios(mall).collect()?))
}

/// The ratios of a sales frame (`transactions`, `sales_amount` in cents, `visitors`), null
/// where the divisor is 0: money ratios in currency units.
fn ratios(lf: LazyFrame) -> LazyFrame {
    let per = |num: Expr, den: &str| {
        when(col(den).gt(lit(0)))
            .then(num.cast(DataType::Float64) / col(den).cast(DataType::Float64))
            .otherwise(lit(NULL))
    };
    lf.with_columns([
        per(col("transactions"), "visitors").alias("conversion_rate"),
        per(col("sales_amount") / lit(100.0), "visitors").alias("sales_per_visitor"),
        per(col("sales_amount") / lit(100.0), "transactions").alias("avg_ticket"),
    ])
}

/// A published partition of a table, if any.
fn read_partition(out: &Location, table: &str, date: NaiveDate) -> Result<Option<DataFrame>> {
    let rel = tables::partition_rel(table, date);
    out.get_opt(&rel)?
        .map(|b| tables::read_parquet(b).with_context(|| format!("cannot read {}", out.show(&rel))))
        .transpose()
}

/// One value of a one-row published table, if the date has it.
fn figure(out: &Location, table: &str, column: &str, date: NaiveDate) -> Result<Option<i64>> {
    let Some(df) = read_partition(out, table, date)? else { return Ok(None) };
    let s = df.column(column)?.as_materialized_series().to_physical_repr().cast(&DataType::Int64)?;
    Ok(s.i64()?.get(0))
}

/// `mall_daily_trend` of a day: its visitors, new customers and sales against the same
/// weekday a week before (sales null without a sales input).
fn trend_row(out: &Location, day: i32, with_sales: bool) -> Result<DataFrame> {
    let (d, w) = (days_to_date(day), days_to_date(day - 7));
    let visitors = |d| figure(out, "mall_daily_engagement", "visitors", d);
    let new = |d| figure(out, "mall_daily_new_customers", "new_customers", d);
    let sales = |d| if with_sales { figure(out, MALL, "sales_amount", d) } else { Ok(None) };
    let change = |now: Option<i64>, before: Option<i64>| match (now, before) {
        (Some(n), Some(b)) if b != 0 => Some(n as f64 / b as f64 - 1.0),
        _ => None,
    };
    let (v, vw, n, nw, s, sw) = (visitors(d)?, visitors(w)?, new(d)?, new(w)?, sales(d)?, sales(w)?);
    Ok(df!(
        "visitors" => [v.or(Some(0))],
        "visitors_week_ago" => [vw],
        "visitors_change" => [change(v, vw)],
        "new_customers" => [n.or(Some(0))],
        "new_customers_week_ago" => [nw],
        "sales_amount" => [s],
        "sales_week_ago" => [sw],
        "sales_change" => [change(s, sw)],
    )?)
}
