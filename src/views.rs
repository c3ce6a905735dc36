//! Read-side views over the published tables that commands print: `check`'s data-quality
//! summary, `status`, one device's story (`customer`), `diff`'s and `update --dry-run`'s rows
//! and the demo summary. Commands only parse arguments and print what these return; every view
//! is a frame, so every `--format` applies to it.

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::*;

use crate::config::Settings;
use crate::schema::{self, MAC};
use crate::store::Location;
use crate::tables::read_table;
use crate::timeutil::days_to_date;

fn table(out: &Location, name: &str, tz: &str, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<DataFrame> {
    read_table(out, schema::get(name)?, tz, from, to)
}

/// How far the processed data reaches: the newest accepted event (the *watermark*) and its
/// local date. Every date before that date is complete; that date (usually today) is a day
/// "so far" — an update at 10:15 publishes a quarter of it — and is marked so by `show`,
/// `check`, `status`, the demo and the report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Freshness {
    /// The newest accepted event time (UTC epoch seconds).
    pub watermark: i64,
    /// Its local date: the first incomplete date.
    pub partial_from: NaiveDate,
    /// The mall's zone, for [`Freshness::through`].
    pub tz: chrono_tz::Tz,
}

impl Freshness {
    /// From the committed state's head; `None` without state or data.
    pub fn of(out: &Location, tz: &str) -> Result<Option<Freshness>> {
        let Some(w) = crate::state::Manifest::load(out)?.and_then(|m| m.watermark()) else { return Ok(None) };
        Ok(Some(Freshness::at(w, crate::timeutil::parse_tz(tz)?)))
    }

    pub fn at(watermark: i64, tz: chrono_tz::Tz) -> Freshness {
        let day = crate::timeutil::LocalClock::new(tz).local_days(watermark);
        Freshness { watermark, partial_from: days_to_date(day), tz }
    }

    pub fn complete(&self, date: NaiveDate) -> bool {
        date < self.partial_from
    }

    /// The watermark as local time, e.g. "2026-03-08 10:14:59 CST".
    pub fn through(&self) -> String {
        chrono::DateTime::from_timestamp(self.watermark, 0)
            .unwrap_or_default()
            .with_timezone(&self.tz)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }

    /// A `complete` column for a frame with a `date` column.
    pub fn complete_column(this: Option<Freshness>) -> Expr {
        match this {
            Some(f) => col("date").lt(lit(f.partial_from)),
            None => lit(true),
        }
    }
}

/// `check`: the data-quality report (docs/tables.md, data_quality) over the partition dates in `[from, to]`, one
/// row per measure. Counts are summed over files, except `distinct_devices`: the true number
/// of distinct devices with kept records on the local dates checked (per-file distinct counts
/// do not add up). Returns the report and the rejected share.
pub fn quality_summary(
    out: &Location,
    settings: &Settings,
    read: Option<&crate::config::ReadPlan>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<(DataFrame, f64)> {
    let tz = settings.tz_name.as_str();
    let dq_schema = schema::get("data_quality")?;
    let dq = read_table(out, dq_schema, tz, from, to)?;
    // The probe files here; the sales files' counts follow as sales_* measures.
    let sales_reasons: Vec<String> = crate::sales::REASONS.iter().map(|r| format!("rejected_{r}")).collect();
    let counts: Vec<&str> = dq_schema
        .columns
        .iter()
        .filter(|c| c.ty == "int64" && c.name != "distinct_devices" && !sales_reasons.contains(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    let mut report = dq
        .lazy()
        .filter(col("source").eq(lit("probes")))
        .select(
            std::iter::once(len().cast(DataType::Int64).alias("files"))
                .chain(counts.iter().map(|c| col(*c).sum().cast(DataType::Int64)))
                .collect::<Vec<_>>(),
        )
        .with_columns(quality_shares())
        .collect()?;
    let share = report.column("rejected_share")?.f64()?.get(0).unwrap_or(0.0);
    // Hours inside opening hours without a single device, over the dates with data.
    let hourly = table(out, "mall_hourly_visitors", tz, from, to)?;
    let days = table(out, "mall_daily_visitors", tz, from, to)?.column("date")?.cast(&DataType::String)?;
    let days: Vec<String> = days.str()?.iter().flatten().map(str::to_string).collect();
    let empty: i64 = empty_open_hours(&hourly, &days, settings.opening)?.values().sum();
    let distinct = crate::state::distinct_devices(out, from, to)?;
    report.with_column(Column::new("distinct_devices".into(), [distinct]))?;
    report.with_column(Column::new("empty_open_hours".into(), [empty]))?;
    // Whether every date checked is complete (see [`Freshness`]), and how far the data reaches.
    let fresh = Freshness::of(out, tz)?;
    let last_checked = days.iter().filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()).max();
    let complete = match (fresh, last_checked) {
        (Some(f), Some(d)) => f.complete(d),
        _ => true,
    };
    report.with_column(Column::new("complete".into(), [complete]))?;
    report.with_column(Column::new("data_through".into(), [fresh.map(|f| f.through()).unwrap_or_default()]))?;
    if let Some(r) = read.filter(|_| settings.sales) {
        for (name, v) in crate::sales::check_measures(r, from, to)? {
            report.with_column(Column::new(name.into(), [v]))?;
        }
    }
    // One row per measure reads better than one very wide row.
    let names: Vec<String> = report.get_column_names().iter().map(|s| s.to_string()).collect();
    let values: Vec<String> =
        report.columns().iter().map(|c| c.get(0).map(|v| v.to_string()).unwrap_or_default()).collect();
    Ok((df!("measure" => names, "value" => values)?, share))
}

/// Rejected rows as a share of rows read, randomised-MAC rows as a share of rows accepted,
/// over summed data_quality counts.
pub fn quality_shares() -> [Expr; 2] {
    let share = |a: &str, b: &str| col(a).cast(DataType::Float64) / col(b).cast(DataType::Float64);
    [
        share("rows_rejected", "rows_read").alias("rejected_share"),
        share("randomized_rows", "rows_accepted").alias("randomized_share"),
    ]
}

/// Per date (`YYYY-MM-DD`) of `dates`: local opening hours `[open, close)` in which not a single
/// device was heard, from `mall_hourly_visitors` rows.
pub fn empty_open_hours(
    hourly: &DataFrame,
    dates: &[String],
    (open, close): (u32, u32),
) -> Result<std::collections::BTreeMap<String, i64>> {
    let hour = || col("hour_start").dt().hour().cast(DataType::UInt32);
    let busy = hourly
        .clone()
        .lazy()
        .filter(hour().gt_eq(lit(open)).and(hour().lt(lit(close))))
        .group_by([col("date").cast(DataType::String).alias("d")])
        .agg([len().cast(DataType::Int64).alias("n")])
        .collect()?;
    let d = busy.column("d")?.str()?;
    let n = busy.column("n")?.i64()?;
    let busy: std::collections::BTreeMap<&str, i64> =
        d.iter().zip(n.iter()).filter_map(|(d, n)| Some((d?, n.unwrap_or(0)))).collect();
    Ok(dates
        .iter()
        .map(|day| (day.clone(), ((close - open) as i64 - busy.get(day.as_str()).copied().unwrap_or(0)).max(0)))
        .collect())
}

/// `status`: the state's files, what a plain update would read (within the late window), the
/// dates covered, the last run and the last full listing, as one row (`has_state` false and
/// nulls when nothing was processed yet).
pub fn status(plan: &crate::config::Plan) -> Result<DataFrame> {
    let m = crate::state::Manifest::load(&plan.out)?;
    let pending = match &m {
        Some(_) => Some(crate::pipeline::plan::prepare(plan, crate::pipeline::Mode::Update)?.report),
        None => None,
    };
    let days = m.as_ref().map(|m| m.days()).unwrap_or_default();
    let tz = crate::timeutil::parse_tz(&plan.settings.tz_name)?;
    let fresh = m.as_ref().and_then(|m| m.watermark()).map(|w| Freshness::at(w, tz));
    let date = |d: Option<&i32>| d.map(|d| crate::timeutil::date_to_days(days_to_date(*d)));
    let count = |n: Option<usize>| n.map(|n| n as i64);
    let run = m.as_ref().and_then(|m| m.last_run.as_ref());
    let text = |f: fn(&crate::state::RunRecord) -> &str| run.map(|r| f(r).to_string());
    let df = df!(
        "output" => [plan.out.display.as_str()],
        "has_state" => [m.is_some()],
        "processed_files" => [count(m.as_ref().map(|m| m.file_count()))],
        "pending_new" => [count(pending.as_ref().map(|p| p.new_files.len()))],
        "pending_changed" => [count(pending.as_ref().map(|p| p.changed_files.len()))],
        "missing_files" => [count(pending.as_ref().map(|p| p.missing_files.len()))],
        "first_date" => [date(days.first())],
        "last_date" => [date(days.last())],
        "dates" => [count(m.as_ref().map(|_| days.len()))],
        "last_command" => [text(|r| &r.command)],
        "last_started_at" => [text(|r| &r.started_at)],
        "last_finished_at" => [text(|r| &r.finished_at)],
        "last_outcome" => [text(|r| &r.outcome)],
        "last_files_processed" => [run.map(|r| r.files_processed as i64)],
        "last_dates_published" => [run.map(|r| r.dates_published as i64)],
        "late_window_days" => [plan.lookback_days.map(i64::from)],
        "data_through" => [fresh.map(|f| f.through())],
        "partial_from" => [fresh.map(|f| crate::timeutil::date_to_days(f.partial_from))],
        "last_full_listing" => [m.as_ref().and_then(|m| m.last_full_listing.clone())],
    )?;
    let dates = [
        col("first_date").cast(DataType::Date),
        col("last_date").cast(DataType::Date),
        col("partial_from").cast(DataType::Date),
    ];
    Ok(df.lazy().with_columns(dates).collect()?)
}

/// `update --dry-run`: one row per file an update would read (`new`, `changed`) or no longer
/// finds (`missing`).
pub fn dry_run_rows(r: &crate::pipeline::Report) -> Result<DataFrame> {
    let groups = [("new", &r.new_files), ("changed", &r.changed_files), ("missing", &r.missing_files)];
    let (mut change, mut file) = (Vec::new(), Vec::new());
    for (what, files) in groups {
        for f in files {
            change.push(what);
            file.push(f.as_str());
        }
    }
    Ok(df!("change" => change, "file" => file)?)
}

/// `diff`: one row per table compared (`equal` true or false, row counts, rows only on each
/// side, the column mismatch if any).
pub fn diff_rows(diffs: &[(&str, &crate::diff::TableDiff)]) -> Result<DataFrame> {
    Ok(df!(
        "table" => diffs.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        "equal" => diffs.iter().map(|(_, d)| d.is_equal()).collect::<Vec<_>>(),
        "left_rows" => diffs.iter().map(|(_, d)| d.left_rows as i64).collect::<Vec<_>>(),
        "right_rows" => diffs.iter().map(|(_, d)| d.right_rows as i64).collect::<Vec<_>>(),
        "only_left" => diffs.iter().map(|(_, d)| d.only_left.len() as i64).collect::<Vec<_>>(),
        "only_right" => diffs.iter().map(|(_, d)| d.only_right.len() as i64).collect::<Vec<_>>(),
        "columns_differ" => diffs.iter().map(|(_, d)| d.header_mismatch.clone()).collect::<Vec<_>>(),
    )?)
}

/// The columns of [`Story::visits`].
pub const VISIT_COLUMNS: [&str; 5] = ["shop_code", "shop_name", "start", "end", "dwell_seconds"];

/// One device's story on one day.
pub struct Story {
    /// The device as published: its MAC, or its pseudonym with a MAC key.
    pub device: String,
    pub date: NaiveDate,
    /// Its `customers` row.
    pub customer: DataFrame,
    /// Its visits that day (shop, name, start, end, dwell).
    pub visits: DataFrame,
    /// Its `favorite_shop_daily` row that day.
    pub favourite: DataFrame,
}

/// The story of the device with this (raw, parsed) MAC on `date` (default: its last day);
/// `Err(device)` when it was never seen.
pub fn customer_story(
    out: &Location,
    settings: &Settings,
    mac: u64,
    date: Option<NaiveDate>,
) -> Result<std::result::Result<Story, String>> {
    // Outputs hold pseudonyms when a key is set: the raw MAC given here is hashed the same way.
    let device = match &settings.mac_key {
        Some(k) => k.pseudonym(mac),
        None => crate::mac::format_mac(mac),
    };
    let tz = settings.tz_name.as_str();
    let is_me = || col(MAC).eq(lit(device.clone()));
    let customer = table(out, "customers", tz, None, None)?.lazy().filter(is_me()).collect()?;
    if customer.height() == 0 {
        return Ok(Err(device));
    }
    let date = match date {
        Some(d) => d,
        None => days_to_date(customer.column("last_date")?.cast(&DataType::Int32)?.i32()?.get(0).unwrap_or_default()),
    };
    let day = Some(date);
    // Visits that day, from the device's positions: the same gap rule as the metrics.
    let pos = table(out, "customer_positions", tz, day, day)?
        .lazy()
        .filter(is_me())
        .select([
            (col("second").dt().timestamp(TimeUnit::Milliseconds) / lit(1000i64)).alias("second"),
            lit(mac).alias(MAC),
            col("shop_code"),
            col("rssi_max"),
        ])
        .collect()?;
    let visits = crate::pipeline::visits::visits(&pos, settings.visit_gap)?;
    let shops = table(out, "shop_daily_visitors", tz, day, day)?
        .lazy()
        .select([col("shop_code"), col("shop_name")])
        .unique(None, UniqueKeepStrategy::Any);
    let mut visits = visits
        .lazy()
        .left_join(shops, col("shop_code"), col("shop_code"))
        .sort(["start", "shop_code"], Default::default())
        .select([col("shop_code"), col("shop_name"), col("start"), col("end"), col("dwell").alias(VISIT_COLUMNS[4])])
        .collect()?;
    for c in ["start", "end"] {
        let s = visits.column(c)?.cast(&DataType::Int64)?;
        let s = (s.as_materialized_series() * 1_000_000i64)
            .cast(&DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)))?
            .cast(&schema::dtype_of("timestamp", tz))?;
        visits.with_column(s.with_name(c.into()).into_column())?;
    }
    let favourite = table(out, "favorite_shop_daily", tz, day, day)?.lazy().filter(is_me()).collect()?;
    Ok(Ok(Story { device, date, customer, visits, favourite }))
}

/// `(date, visitors)` of a frame with those columns (e.g. `mall_daily_new_customers`).
pub fn visitors_by_date(df: &DataFrame) -> Result<Vec<(NaiveDate, i64)>> {
    let days = df.column("date")?.cast(&DataType::Int32)?;
    let visitors = df.column("visitors")?.cast(&DataType::Int64)?;
    Ok(days
        .i32()?
        .iter()
        .zip(visitors.i64()?.iter())
        .filter_map(|(d, v)| Some((days_to_date(d?), v.unwrap_or(0))))
        .collect())
}

/// The last *full* day: the latest date with at least a tenth of the busiest date's visitors.
/// The date after a mall's last day often holds only late-night spill-over, which would make a
/// poor "latest day" for the per-shop views (the demo's top shops, the report's shop charts).
pub fn last_full_day(visitors_by_date: &[(NaiveDate, i64)]) -> Option<NaiveDate> {
    let busiest = visitors_by_date.iter().map(|(_, v)| *v).max()?;
    visitors_by_date.iter().filter(|(_, v)| v.saturating_mul(10) >= busiest).map(|(d, _)| *d).max()
}

/// What `footfall demo` prints after its run.
pub struct DemoSummary {
    /// Per date: visitors, new vs returning, the peak hour.
    pub daily: DataFrame,
    /// Per date: detected vs visitors, capture rate, median dwell, loyalty split, staff.
    pub engaged: DataFrame,
    /// The top shops of the last full day.
    pub top: Option<(NaiveDate, DataFrame)>,
}

pub fn demo_summary(out: &Location, tz: &str) -> Result<DemoSummary> {
    let get = |t: &str| table(out, t, tz, None, None);
    let fresh = Freshness::of(out, tz)?;
    let daily = get("mall_daily_new_customers")?
        .lazy()
        .join(
            get("peak_hour_daily")?.lazy().select([
                col("date"),
                col("hour_start").dt().hour().alias("peak_hour"),
                col("visitors").alias("peak_visitors"),
            ]),
            [col("date")],
            [col("date")],
            JoinArgs::new(JoinType::Left),
        )
        .select([
            col("date"),
            col("visitors"),
            col("new_customers"),
            col("returning_customers"),
            (col("new_ratio") * lit(100.0)).round(1, RoundMode::HalfAwayFromZero).alias("new_%"),
            col("peak_hour"),
            col("peak_visitors"),
            Freshness::complete_column(fresh).alias("complete"),
        ])
        .sort(["date"], Default::default())
        .collect()?;
    let engaged = get("mall_daily_engagement")?
        .lazy()
        .join(get("mall_daily_loyalty")?.lazy(), [col("date")], [col("date")], JoinArgs::new(JoinType::Left))
        .select([
            col("date"),
            col("detected"),
            col("visitors"),
            (col("capture_rate") * lit(100.0)).round(1, RoundMode::HalfAwayFromZero).alias("capture_%"),
            (col("median_dwell_seconds") / lit(60.0)).round(1, RoundMode::HalfAwayFromZero).alias("median_dwell_min"),
            col("first_time"),
            col("daily"),
            col("weekly"),
            col("occasional"),
            col("staff"),
        ])
        .sort(["date"], Default::default())
        .collect()?;
    let top = match last_full_day(&visitors_by_date(&daily)?) {
        None => None,
        Some(last) => {
            let top = table(out, "top_shops_daily", tz, Some(last), Some(last))?
                .lazy()
                .select([col("rank"), col("shop_code"), col("shop_name"), col("visitors")])
                .collect()?;
            Some((last, top))
        }
    };
    Ok(DemoSummary { daily, engaged, top })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_complete_once_data_past_its_local_end_arrived_dst_day_included() {
        // Europe/Berlin, 2026-03-29: clocks go from 02:00 CET to 03:00 CEST (a 23-hour day).
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let at = |s: &str| Freshness::at(chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp(), tz);
        let d = |day: u32| NaiveDate::from_ymd_opt(2026, 3, day).unwrap();
        // 00:30 CET on the 29th: the 28th is complete, the 29th so far.
        let f = at("2026-03-28T23:30:00Z");
        assert_eq!((f.partial_from, f.complete(d(28)), f.complete(d(29))), (d(29), true, false));
        // The last second of the short day, then the first of the next.
        assert_eq!(at("2026-03-29T21:59:59Z").partial_from, d(29));
        assert_eq!(at("2026-03-29T22:00:00Z").partial_from, d(30));
        assert_eq!(at("2026-03-29T22:00:00Z").through(), "2026-03-30 00:00:00 CEST");
    }

    #[test]
    fn the_last_full_day_has_a_tenth_of_the_busiest() {
        let d = |n: u32| NaiveDate::from_ymd_opt(2026, 3, n).unwrap();
        assert_eq!(last_full_day(&[]), None);
        // 15 busiest: 2 reaches a tenth (20 >= 15), 1 does not (10 < 15). Integer division of
        // the threshold (15 / 10 = 1) would wrongly call the spill-over day with 1 full.
        assert_eq!(last_full_day(&[(d(1), 15), (d(2), 2), (d(3), 1)]), Some(d(2)));
        assert_eq!(last_full_day(&[(d(1), 15), (d(2), 1)]), Some(d(1)));
        // Order of the input does not matter; a lone day is full.
        assert_eq!(last_full_day(&[(d(3), 1), (d(1), 15)]), Some(d(1)));
        assert_eq!(last_full_day(&[(d(5), 0)]), Some(d(5)));
    }
}
