//! `footfall report`: one self-contained HTML file — the chart library (ECharts, vendored from
//! npm with its licence), the styles and the data inlined — that opens anywhere, offline, and
//! can be mailed or put on a screen. Only the dates shown are read.
//!
//! Rendering is deterministic (no animation, data in a fixed order, no clock), so the same
//! outputs give a byte-identical file: the report is golden-tested like the tables.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};
use chrono::NaiveDate;
use polars::prelude::*;
use serde_json::{json, Value};

use crate::config::Settings;
use crate::schema;
use crate::store::Location;
use crate::tables::{published_dates, read_table};

/// The vendored chart library (npm `echarts`, see `ECHARTS_VERSION`; licence in
/// `src/report/ECHARTS-LICENSE`).
pub const ECHARTS: &str = include_str!("echarts.min.js");
pub const ECHARTS_VERSION: &str = "5.6.0";
const CHARTS_JS: &str = include_str!("charts.js");
const STYLE: &str = include_str!("style.css");

/// Shops drawn by name in the per-shop charts; the rest are summed as "others" (top shops)
/// or reachable by scrolling (engagement).
const TOP_SHOPS: usize = 15;
/// The strongest shop-to-shop flows drawn.
const TOP_FLOWS: usize = 30;

/// The dates a report shows: `[from, to]` if given, else the last 7 dates with data.
pub fn dates(out: &Location, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Vec<NaiveDate>> {
    let all = published_dates(out, "mall_daily_visitors")?;
    let picked: Vec<NaiveDate> = match (from, to) {
        (None, None) => all.iter().rev().take(7).rev().copied().collect(),
        _ => all.into_iter().filter(|d| from.is_none_or(|f| *d >= f) && to.is_none_or(|t| *d <= t)).collect(),
    };
    if picked.is_empty() {
        bail!("{}: no published dates to report (run `footfall run` first, or widen --from/--to)", out.display);
    }
    Ok(picked)
}

pub(crate) fn strings(df: &DataFrame, c: &str) -> Result<Vec<String>> {
    let s = df.column(c)?.cast(&DataType::String)?;
    Ok(s.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect())
}

pub(crate) fn ints(df: &DataFrame, c: &str) -> Result<Vec<i64>> {
    let s = df.column(c)?.cast(&DataType::Int64)?;
    Ok(s.i64()?.iter().map(|v| v.unwrap_or(0)).collect())
}

/// Floats rounded for display (and a stable file); null stays null.
fn floats(df: &DataFrame, c: &str, digits: i32) -> Result<Vec<Option<f64>>> {
    let s = df.column(c)?.cast(&DataType::Float64)?;
    let k = 10f64.powi(digits);
    Ok(s.f64()?.iter().map(|v| v.map(|x| (x * k).round() / k)).collect())
}

/// The local clock time of a timestamp column, e.g. "14:00".
pub(crate) fn clock(df: &DataFrame, c: &str) -> Result<Vec<String>> {
    let out = df.clone().lazy().select([col(c).dt().strftime("%H:%M").alias(c)]).collect()?;
    strings(&out, c)
}

/// Renders the report of `dates` (ascending) as one HTML document.
pub fn render(out: &Location, settings: &Settings, mall: &str, dates: &[NaiveDate]) -> Result<String> {
    let tz = settings.tz_name.as_str();
    let (from, to) = (dates.first().copied(), dates.last().copied());
    let table = |name: &str, a: Option<NaiveDate>, b: Option<NaiveDate>| read_table(out, schema::get(name)?, tz, a, b);
    let date_strs: Vec<String> = dates.iter().map(|d| d.to_string()).collect();

    let daily = table("mall_daily_new_customers", from, to)?;
    // The per-shop charts show the last full day.
    let last = crate::views::last_full_day(&crate::views::visitors_by_date(&daily)?)
        .or(dates.last().copied())
        .ok_or_else(|| anyhow::anyhow!("the report has no dates"))?;
    let hourly = table("mall_hourly_visitors", from, to)?;
    let peak = table("peak_hour_daily", from, to)?;
    let loyalty = table("mall_daily_loyalty", from, to)?;
    let mall_eng = table("mall_daily_engagement", from, to)?;
    let transitions = table("shop_transitions_daily", from, to)?;
    let shops_last = table("shop_daily_visitors", Some(last), Some(last))?;
    let eng_last = table("shop_daily_engagement", Some(last), Some(last))?;
    let density = table("density_grid", Some(last), Some(last))?;

    // Hourly: day × local hour; on a fall-back day the repeated hour is its own column (′).
    let hour_labels = clock(&hourly, "hour_start")?;
    let hour_dates = strings(&hourly, "date")?;
    let hour_values = ints(&hourly, "visitors")?;
    let mut cells = Vec::new();
    let mut columns: BTreeSet<String> = (0..24).map(|h| format!("{h:02}:00")).collect();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for ((d, h), v) in hour_dates.iter().zip(&hour_labels).zip(&hour_values) {
        let label = if seen.insert((d.clone(), h.clone())) { h.clone() } else { format!("{h}′") };
        columns.insert(label.clone());
        cells.push((d.clone(), label, *v));
    }
    let columns: Vec<String> = columns.into_iter().collect();
    let cells: Vec<Value> = cells
        .iter()
        .map(|(d, h, v)| {
            let x = columns.iter().position(|c| c == h).unwrap_or(0);
            let y = date_strs.iter().position(|s| s == d).unwrap_or(0);
            json!([x, y, v])
        })
        .collect();

    // Top shops of the last day: the strongest by name, the rest summed.
    let shops_last = shops_last.sort(["visitors", "shop_code"], desc_first(2))?;
    let (codes, names, visitors) =
        (strings(&shops_last, "shop_code")?, strings(&shops_last, "shop_name")?, ints(&shops_last, "visitors")?);
    let label = |i: usize| if names[i].is_empty() { codes[i].clone() } else { format!("{} ({})", names[i], codes[i]) };
    let mut top_names: Vec<String> = (0..codes.len().min(TOP_SHOPS)).map(label).collect();
    let mut top_values: Vec<i64> = visitors.iter().take(TOP_SHOPS).copied().collect();
    if codes.len() > TOP_SHOPS {
        top_names.push(format!("{} other shops (sum)", codes.len() - TOP_SHOPS));
        top_values.push(visitors[TOP_SHOPS..].iter().sum());
    }

    // Capture rate and median dwell per shop, most detected first; the chart scrolls.
    let eng_last = eng_last.sort(["detected", "shop_code"], desc_first(2))?;
    let eng_codes = strings(&eng_last, "shop_code")?;
    let eng_names = strings(&eng_last, "shop_name")?;
    let eng_labels: Vec<String> = eng_codes
        .iter()
        .zip(&eng_names)
        .map(|(c, n)| if n.is_empty() { c.clone() } else { format!("{n} ({c})") })
        .collect();
    let median_min: Vec<Option<f64>> = floats(&eng_last, "median_dwell_seconds", 1)?
        .into_iter()
        .map(|v| v.map(|s| (s / 60.0 * 10.0).round() / 10.0))
        .collect();

    // Flows summed over the dates shown; the strongest drawn.
    let flows = transitions
        .lazy()
        .group_by([col("from_shop"), col("to_shop")])
        .agg([col("transitions").sum()])
        .sort(["transitions", "from_shop", "to_shop"], desc_first(3))
        .limit(TOP_FLOWS as IdxSize)
        .collect()?;
    let (from_s, to_s, n_s) =
        (strings(&flows, "from_shop")?, strings(&flows, "to_shop")?, ints(&flows, "transitions")?);
    let nodes: BTreeSet<&String> = from_s.iter().chain(&to_s).collect();
    let links: Vec<Value> =
        (0..n_s.len()).map(|i| json!({"source": from_s[i], "target": to_s[i], "value": n_s[i]})).collect();

    // Density of the last day: one heatmap per slot with devices.
    let slots = density
        .clone()
        .lazy()
        .select([col("slot_start"), col("slot_start").dt().strftime("%H:%M").alias("label")])
        .unique_stable(None, UniqueKeepStrategy::First)
        .sort(["slot_start"], Default::default())
        .collect()?;
    let slot_labels = strings(&slots, "label")?;
    let slot_of: Vec<String> = clock(&density, "slot_start")?;
    let (cx, cy, dv) = (ints(&density, "cell_x")?, ints(&density, "cell_y")?, ints(&density, "devices")?);
    let mut per_slot: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
    for i in 0..dv.len() {
        let k = slot_labels.iter().position(|s| *s == slot_of[i]).unwrap_or(0);
        per_slot.entry(k).or_default().push(json!([cx[i], cy[i], dv[i]]));
    }
    let grid_x = (cx.iter().min().copied().unwrap_or(0), cx.iter().max().copied().unwrap_or(0));
    let grid_y = (cy.iter().min().copied().unwrap_or(0), cy.iter().max().copied().unwrap_or(0));

    let sales = if settings.sales { sales_data(out, tz, from, to, last)? } else { Value::Null };
    let quality = quality_by_date(out, settings, dates, &hourly)?;
    // A day still being filled is drawn as such ("so far").
    let fresh = crate::views::Freshness::of(out, tz)?;
    let complete: Vec<bool> = strings(&daily, "date")?
        .iter()
        .map(|d| match (fresh, NaiveDate::parse_from_str(d, "%Y-%m-%d")) {
            (Some(f), Ok(d)) => f.complete(d),
            _ => true,
        })
        .collect();
    let data = json!({
        "mall": mall,
        "tz": tz,
        "dates": date_strs,
        "daily": {
            "dates": strings(&daily, "date")?,
            "new": ints(&daily, "new_customers")?,
            "returning": ints(&daily, "returning_customers")?,
            "visitors": ints(&daily, "visitors")?,
            "complete": complete,
            "through": fresh.map(|f| f.through()),
        },
        "hourly": {"hours": columns, "cells": cells},
        "peak": {"dates": strings(&peak, "date")?, "hour": clock(&peak, "hour_start")?, "visitors": ints(&peak, "visitors")?},
        "top": {"date": last.to_string(), "shops": top_names, "visitors": top_values},
        "engagement": {
            "date": last.to_string(),
            "shops": eng_labels,
            "capture": floats(&eng_last, "capture_rate", 3)?,
            "median_dwell_min": median_min,
        },
        "dwell": {
            "dates": strings(&mall_eng, "date")?,
            "buckets": [
                ["< 5 min", ints(&mall_eng, "dwell_lt_5m")?],
                ["5–20 min", ints(&mall_eng, "dwell_5_20m")?],
                ["20–60 min", ints(&mall_eng, "dwell_20_60m")?],
                ["1–6 h", ints(&mall_eng, "dwell_1_6h")?],
                ["≥ 6 h", ints(&mall_eng, "dwell_6h_plus")?],
            ],
        },
        "loyalty": {
            "dates": strings(&loyalty, "date")?,
            "classes": [
                ["first time", ints(&loyalty, "first_time")?],
                ["daily", ints(&loyalty, "daily")?],
                ["weekly", ints(&loyalty, "weekly")?],
                ["occasional", ints(&loyalty, "occasional")?],
            ],
        },
        "transitions": {"nodes": nodes, "links": links},
        "density": {
            "date": last.to_string(),
            "slots": slot_labels,
            "cells": (0..slot_labels.len()).map(|k| per_slot.remove(&k).unwrap_or_default()).collect::<Vec<_>>(),
            "x": [grid_x.0, grid_x.1],
            "y": [grid_y.0, grid_y.1],
        },
        "quality": quality,
        "sales": sales,
    });
    let title =
        format!("{} — foot traffic {} to {} ({tz})", html_escape(mall), date_strs[0], date_strs[date_strs.len() - 1]);
    // `</` cannot end the data script early: JSON escapes it.
    let data = serde_json::to_string(&data)?.replace("</", "<\\/");
    Ok(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"generator\" content=\"footfall\">\n<title>{title}</title>\n<style>\n{STYLE}</style>\n<script>\n/* ECharts {ECHARTS_VERSION} (Apache-2.0), vendored from npm */\n{ECHARTS}\n</script>\n</head>\n<body>\n<h1>{title}</h1>\n<p class=\"note\">Dates and hours are local to the mall ({tz}). Staff are excluded from visitors, dwell, loyalty, flows and density. Hover a chart for its numbers.</p>\n<main id=\"charts\"></main>\n<script id=\"footfall-data\" type=\"application/json\">{data}</script>\n<script>\n{CHARTS_JS}</script>\n</body>\n</html>\n"
    ))
}

/// The sales charts' data (`[input] sales`): per day the amount (currency units, for the
/// axis; exact text for labels), conversion and the week-over-week changes; per shop of the
/// last full day its conversion and sales per visitor.
fn sales_data(
    out: &Location,
    tz: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    last: NaiveDate,
) -> Result<Value> {
    let table = |name: &str, a, b| read_table(out, schema::get(name)?, tz, a, b);
    let mall = table(crate::sales::MALL, from, to)?;
    let trend = table(crate::sales::TREND, from, to)?;
    let shops =
        table(crate::sales::SHOP, Some(last), Some(last))?.sort(["sales_amount", "shop_code"], desc_first(2))?;
    let text = |df: &DataFrame, c: &str| -> Result<Vec<String>> {
        Ok(df.column(c)?.cast(&DataType::String)?.str()?.iter().map(|v| v.unwrap_or_default().to_string()).collect())
    };
    let amount = |df: &DataFrame, c: &str| -> Result<Vec<Option<f64>>> {
        Ok(df.column(c)?.cast(&DataType::Float64)?.f64()?.iter().collect())
    };
    let pct = |v: Vec<Option<f64>>| -> Vec<Option<f64>> {
        v.into_iter().map(|v| v.map(|v| (v * 1000.0).round() / 10.0)).collect()
    };
    let labels: Vec<String> = strings(&shops, "shop_code")?
        .iter()
        .zip(strings(&shops, "shop_name")?)
        .map(|(c, n)| if n.is_empty() { c.clone() } else { format!("{n} ({c})") })
        .collect();
    Ok(json!({
        "dates": strings(&mall, "date")?,
        "amount": amount(&mall, "sales_amount")?,
        "amount_text": text(&mall, "sales_amount")?,
        "conversion": pct(floats(&mall, "conversion_rate", 6)?),
        "trend": {
            "dates": strings(&trend, "date")?,
            "visitors": pct(floats(&trend, "visitors_change", 6)?),
            "sales": pct(floats(&trend, "sales_change", 6)?),
        },
        "shops": {
            "date": last.to_string(),
            "shops": labels,
            "conversion": pct(floats(&shops, "conversion_rate", 6)?),
            "per_visitor": floats(&shops, "sales_per_visitor", 2)?,
        },
    }))
}

/// Sort options: the first of `n` columns descending, the rest ascending (ties).
fn desc_first(n: usize) -> SortMultipleOptions {
    let mut order = vec![false; n];
    order[0] = true;
    SortMultipleOptions::default().with_order_descending_multi(order).with_maintain_order(true)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Per date shown: rejected and randomised shares and late rows (from data_quality, by the
/// files' partition date), and opening hours without a single device.
fn quality_by_date(out: &Location, settings: &Settings, dates: &[NaiveDate], hourly: &DataFrame) -> Result<Value> {
    let tz = settings.tz_name.as_str();
    let (from, to) = (dates.first().copied(), dates.last().copied());
    let dq = read_table(out, schema::get("data_quality")?, tz, from, to)?;
    // The probe files' quality (sales files have their own counts).
    let by = dq
        .lazy()
        .filter(col("source").eq(lit("probes")))
        .group_by([col("date")])
        .agg([
            col("rows_read").sum(),
            col("rows_rejected").sum(),
            col("rows_accepted").sum(),
            col("randomized_rows").sum(),
            col("late_rows").sum(),
        ])
        .with_columns(crate::views::quality_shares())
        .with_column(col("date").cast(DataType::String).alias("d"))
        .collect()?;
    let ds = strings(&by, "d")?;
    let (rej, rnd, late) =
        (floats(&by, "rejected_share", 4)?, floats(&by, "randomized_share", 4)?, ints(&by, "late_rows")?);
    let (open, close) = settings.opening;
    let date_strs: Vec<String> = dates.iter().map(|d| d.to_string()).collect();
    let empty = crate::views::empty_open_hours(hourly, &date_strs, settings.opening)?;
    let rows: Vec<Value> = dates
        .iter()
        .map(|d| {
            let d = d.to_string();
            let i = ds.iter().position(|x| *x == d);
            json!({
                "date": d,
                "rejected_share": i.and_then(|i| rej[i]),
                "randomized_share": i.and_then(|i| rnd[i]),
                "late_rows": i.map(|i| late[i]),
                "empty_open_hours": empty.get(&d).copied().unwrap_or(0),
            })
        })
        .collect();
    Ok(json!({"opening": [open, close], "rows": rows}))
}
