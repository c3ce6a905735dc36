//! The live page and its data: each panel computed on its own, so a table missing or
//! unreadable shows as a message on its panel.

use std::time::Duration;

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::*;
use serde_json::{json, Value};

use crate::config::ReadPlan;
use crate::report::{clock, ints};
use crate::schema;
use crate::tables::read_table;
use crate::timeutil::date_to_days;
use crate::views::Freshness;

/// Shops on the top-shops panel.
const TOP: usize = 10;

/// The page: the vendored ECharts inlined, the data polled from `/api/live` and drawn in place.
pub fn page() -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"generator\" content=\"footfall serve\">\n<title>footfall live</title>\n<style>\n{STYLE}</style>\n<script>\n/* ECharts {} (Apache-2.0), vendored from npm */\n{}\n</script>\n</head>\n<body>\n{BODY}\n<script>\n{SCRIPT}</script>\n</body>\n</html>\n",
        crate::report::ECHARTS_VERSION,
        crate::report::ECHARTS
    )
}

const STYLE: &str = include_str!("live.css");
const SCRIPT: &str = include_str!("live.js");
const BODY: &str = r#"<header><h1 id="mall">footfall live</h1><p id="fresh" class="fresh">waiting for data…</p></header>
<main>
<section class="panel" id="p-today"><h2>Visitors today so far</h2><div class="big" id="today">–</div><p id="today-vs" class="sub"></p></section>
<section class="panel" id="p-now"><h2>In the shops now</h2><div class="big" id="now">–</div><p id="now-at" class="sub"></p></section>
<section class="panel wide" id="p-occupancy"><h2>Occupancy today (5 minutes)</h2><div class="chart" id="occupancy"></div></section>
<section class="panel wide" id="p-hourly"><h2>Visitors per hour today</h2><div class="chart" id="hourly"></div></section>
<section class="panel" id="p-top"><h2>Top shops today</h2><div class="chart" id="top"></div></section>
<section class="panel" id="p-density"><h2>Density, last 15 minutes</h2><div class="chart" id="density"></div></section>
</main>"#;

/// Everything the page shows, as of now.
pub fn data(r: &ReadPlan, stale_after: Duration, update_error: Option<String>) -> Value {
    let tz = r.settings.tz_name.as_str();
    let fresh = match Freshness::of(&r.out, tz) {
        Ok(f) => f,
        Err(e) => return json!({"error": format!("{e:#}"), "mall": r.settings.mall_name}),
    };
    let Some(f) = fresh else {
        return json!({"mall": r.settings.mall_name, "error": "no data published yet", "update_error": update_error});
    };
    let now = chrono::Utc::now().timestamp();
    let age = now - f.watermark;
    let today = f.partial_from;
    let panel = |v: Result<Value>| v.unwrap_or_else(|e| json!({"error": format!("{e:#}")}));
    json!({
        "mall": r.settings.mall_name,
        "tz": tz,
        "as_of": chrono::DateTime::from_timestamp(now, 0).unwrap_or_default().with_timezone(&r.settings.tz).format("%Y-%m-%d %H:%M").to_string(),
        "newest": f.through(),
        "age_seconds": age,
        "stale": age > stale_after.as_secs() as i64,
        "update_error": update_error,
        "date": today.to_string(),
        "today": panel(today_vs_last_week(r, today, f.watermark)),
        "occupancy": panel(occupancy(r, today)),
        "hourly": panel(hourly(r, today)),
        "top": panel(top_shops(r, today)),
        "density": panel(density(r, today)),
    })
}

/// Devices heard today up to the newest data, and on the same weekday a week before up to the
/// same time of day (from the state's device-day summaries: aggregates only).
fn today_vs_last_week(r: &ReadPlan, today: NaiveDate, watermark: i64) -> Result<Value> {
    let Some(m) = crate::state::Manifest::load(&r.out)? else { return Ok(json!({"so_far": null})) };
    let state = m.objects(&r.out);
    let count = |day: i32, until: i64| -> Result<Option<i64>> {
        if !m.days().contains(&day) {
            return Ok(None);
        }
        let s = state.get_summary(day)?;
        Ok(Some(s.lazy().filter(col("first_seen").lt_eq(lit(until))).collect()?.height() as i64))
    };
    let day = date_to_days(today);
    let (so_far, week_ago) = (count(day, watermark)?, count(day - 7, watermark - 7 * 86_400)?);
    Ok(json!({"so_far": so_far, "week_ago": week_ago}))
}

fn table(r: &ReadPlan, name: &str, d: NaiveDate) -> Result<DataFrame> {
    read_table(&r.out, schema::get(name)?, &r.settings.tz_name, Some(d), Some(d))
}

/// The mall's occupancy per 5-minute slot today (the shops' occupancy summed) and its last value.
fn occupancy(r: &ReadPlan, today: NaiveDate) -> Result<Value> {
    let df = table(r, "occupancy_5min", today)?
        .lazy()
        .group_by([col("slot_start")])
        .agg([col("visitors").sum()])
        .sort(["slot_start"], Default::default())
        .collect()?;
    let (t, v) = (clock(&df, "slot_start")?, ints(&df, "visitors")?);
    Ok(json!({"slots": t, "visitors": v, "now": v.last(), "at": t.last()}))
}

fn hourly(r: &ReadPlan, today: NaiveDate) -> Result<Value> {
    let df = table(r, "mall_hourly_visitors", today)?;
    Ok(json!({"hours": clock(&df, "hour_start")?, "visitors": ints(&df, "visitors")?}))
}

fn top_shops(r: &ReadPlan, today: NaiveDate) -> Result<Value> {
    let order = SortMultipleOptions::default().with_order_descending_multi([true, false]);
    let df = table(r, "shop_daily_visitors", today)?.sort(["visitors", "shop_code"], order)?.head(Some(TOP));
    let codes = df.column("shop_code")?.str()?.clone();
    let names = df.column("shop_name")?.str()?.clone();
    let labels: Vec<String> = codes
        .iter()
        .zip(names.iter())
        .map(|(c, n)| match n.filter(|n| !n.is_empty()) {
            Some(n) => format!("{n} ({})", c.unwrap_or_default()),
            None => c.unwrap_or_default().to_string(),
        })
        .collect();
    Ok(json!({"shops": labels, "visitors": ints(&df, "visitors")?}))
}

/// The density grid's newest slot today (15 minutes by default): devices per cell.
fn density(r: &ReadPlan, today: NaiveDate) -> Result<Value> {
    let df = table(r, "density_grid", today)?;
    if df.height() == 0 {
        return Ok(json!({"cells": [], "at": null}));
    }
    let df = df.lazy().filter(col("slot_start").eq(col("slot_start").max())).collect()?;
    let at = clock(&df, "slot_start")?.first().cloned();
    let (x, y, n) = (ints(&df, "cell_x")?, ints(&df, "cell_y")?, ints(&df, "devices")?);
    let cells: Vec<Value> = (0..n.len()).map(|i| json!([x[i], y[i], n[i]])).collect();
    Ok(json!({"cells": cells, "at": at}))
}
