//! The seed tables (docs/tables.md): the original Flink jobs' metrics, with their defects fixed.
//! Device counts read the day's shop visits, not `pos`: every record lies in exactly one shop
//! visit of its device and shop, and there are about a third as many visits as rows.

use polars::prelude::*;
use polars_arrow::bitmap::MutableBitmap;

use super::context::{coordinates, rows, with_place, with_shop_names, DayCtx, Rows};
use crate::schema::MAC;

fn desc(cols: &[bool]) -> SortMultipleOptions {
    SortMultipleOptions::default().with_order_descending_multi(cols.to_vec()).with_maintain_order(true)
}

pub fn mall_daily_visitors(c: &DayCtx) -> PolarsResult<LazyFrame> {
    Ok(c.visits.clone().lazy().select([col(MAC).n_unique().cast(DataType::Int64).alias("visitors")]))
}

pub fn shop_daily_visitors(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let lf = c
        .visits
        .clone()
        .lazy()
        .group_by([col("shop_code")])
        .agg([col(MAC).n_unique().cast(DataType::Int64).alias("visitors")]);
    Ok(with_shop_names(lf, c.dims))
}

/// Distinct devices per local hour: the rollup is in time order, so each hour's rows are
/// one run (hour starts are instants and never decrease, even when a DST hour repeats).
pub fn mall_hourly_visitors(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let Rows { hour, mac, .. } = rows(&c.pos)?;
    let (mut hours, mut visitors) = (Vec::new(), Vec::new());
    let mut devices: PlHashSet<u64> = PlHashSet::new();
    for (&h, &m) in hour.iter().zip(mac) {
        if hours.last() != Some(&h) {
            if !hours.is_empty() {
                visitors.push(devices.len() as i64);
                devices.clear();
            }
            hours.push(h);
        }
        devices.insert(m);
    }
    if !hours.is_empty() {
        visitors.push(devices.len() as i64);
    }
    Ok(df!("hour_start" => hours, "visitors" => visitors)?.lazy())
}

pub fn peak_hour_daily(c: &DayCtx) -> PolarsResult<LazyFrame> {
    Ok(mall_hourly_visitors(c)?.sort(["visitors", "hour_start"], desc(&[true, false])).limit(1))
}

pub fn top_shops_daily(c: &DayCtx) -> PolarsResult<LazyFrame> {
    Ok(shop_daily_visitors(c)?
        .sort(["visitors", "shop_code"], desc(&[true, false]))
        .limit(c.settings.top_shops)
        .with_column(int_range(lit(1), len() + lit(1), 1, DataType::Int32).alias("rank")))
}

/// Devices seen that day with their first day ever.
fn day_devices(c: &DayCtx) -> LazyFrame {
    c.visits.clone().lazy().select([col(MAC)]).unique(None, UniqueKeepStrategy::Any).left_join(
        c.first_dates.clone().lazy(),
        col(MAC),
        col(MAC),
    )
}

pub fn mall_daily_new_customers(c: &DayCtx) -> PolarsResult<LazyFrame> {
    Ok(day_devices(c)
        .select([
            len().cast(DataType::Int64).alias("visitors"),
            col("first_date").eq(lit(c.day)).cast(DataType::Int64).sum().alias("new_customers"),
        ])
        .with_columns([
            (col("visitors") - col("new_customers")).alias("returning_customers"),
            (col("new_customers").cast(DataType::Float64) / col("visitors").cast(DataType::Float64)).alias("new_ratio"),
        ]))
}

/// The day's rollup with place_info's coordinates and whether the device's first day is this
/// one: the rollup's own columns (shared, not copied) plus three looked up per row, in the
/// rollup's order, which is this table's key order (a join would copy every column).
///
/// One lookup a row, in a map of the devices that are placed or new today; the coordinates
/// are written as values and validity bits (a column of `Option<f64>` took twice the memory
/// and a builder's copy).
pub fn customer_positions(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let first = c.first_dates.column("first_date")?.cast(&DataType::Int32)?;
    // Device → (x, y, new today).
    let mut known: PlHashMap<u64, (Option<f64>, Option<f64>, bool)> = PlHashMap::new();
    for (m, d) in c.first_dates.column(MAC)?.u64()?.iter().zip(first.i32()?.iter()) {
        if let (Some(m), true) = (m, d == Some(c.day)) {
            known.insert(m, (None, None, true));
        }
    }
    for (m, (px, py)) in coordinates(&c.dims.places, MAC)? {
        let e = known.entry(m).or_insert((None, None, false));
        (e.0, e.1) = (px, py);
    }
    let macs = c.pos.column(MAC)?.u64()?;
    let n = macs.len();
    let (mut x, mut y, mut new) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut x_valid, mut y_valid) = (MutableBitmap::with_capacity(n), MutableBitmap::with_capacity(n));
    for m in macs.iter() {
        let (px, py, is_new) = m.and_then(|m| known.get(&m).copied()).unwrap_or((None, None, false));
        x.push(px.unwrap_or_default());
        x_valid.push(px.is_some());
        y.push(py.unwrap_or_default());
        y_valid.push(py.is_some());
        new.push(is_new);
    }
    let coordinate = |name: &str, v: Vec<f64>, valid: MutableBitmap| {
        Float64Chunked::from_vec_validity(name.into(), v, Some(valid.into())).into_column()
    };
    let mut df = c.pos.select(["second", MAC, "ap_mac", "shop_code", "rssi_min", "rssi_max"])?;
    df.with_column(coordinate("x", x, x_valid))?;
    df.with_column(coordinate("y", y, y_valid))?;
    df.with_column(Column::new("is_new_customer".into(), new))?;
    Ok(df.lazy())
}

/// Each device's last row of the day: its last second, strongest RSSI, then lowest AP and
/// shop. One pass over the rollup in its (second, device, AP, shop) order: a later row of
/// a device replaces the kept one when it is a later second or a stronger RSSI.
pub fn latest_positions(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let pos = &c.pos;
    let Rows { second, mac, rssi_max, .. } = rows(pos)?;
    let mut best: PlHashMap<u64, (i64, i32, IdxSize)> = PlHashMap::new();
    for (i, ((&t, &m), &r)) in second.iter().zip(mac).zip(rssi_max).enumerate() {
        let row = (t, r, i as IdxSize);
        best.entry(m)
            .and_modify(|b| {
                if t > b.0 || r > b.1 {
                    *b = row
                }
            })
            .or_insert(row);
    }
    let mut rows: Vec<(u64, IdxSize)> = best.into_iter().map(|(m, b)| (m, b.2)).collect();
    rows.sort_unstable();
    let idx = IdxCa::from_vec("".into(), rows.into_iter().map(|r| r.1).collect());
    Ok(with_place(pos.take(&idx)?.lazy(), c.dims))
}

/// Visits per (device, shop) that day with their summed dwell: (device, shop, visits, dwell),
/// summed by each visit's pair number (see [`crate::pipeline::visits::DayVisits`]), in pair
/// order. Pairs of devices dropped since (staff) have no visits and are left out.
fn visits_per_shop<'a>(c: &'a DayCtx) -> PolarsResult<Vec<(u64, &'a str, i64, i64)>> {
    let v = &c.visits;
    let (mac, shop, dwell) = (v.column(MAC)?.u64()?, v.column("shop_code")?.str()?, v.column("dwell")?.i64()?);
    let pair = v.column("pair")?.u32()?;
    let n = pair.max().map_or(0, |p| p as usize + 1);
    let mut per: Vec<(u64, &str, i64, i64)> = vec![(0, "", 0, 0); n];
    for (((m, s), d), p) in mac.iter().zip(shop.iter()).zip(dwell.iter()).zip(pair.iter()) {
        let (Some(m), Some(s), Some(d), Some(p)) = (m, s, d, p) else {
            polars_bail!(ComputeError: "a day's visits have null keys");
        };
        let e = &mut per[p as usize];
        if e.2 == 0 {
            (e.0, e.1) = (m, s);
        } else if (e.0, e.1) != (m, s) {
            polars_bail!(ComputeError: "a visit pair number names two (device, shop) pairs");
        }
        (e.2, e.3) = (e.2 + 1, e.3 + d);
    }
    per.retain(|e| e.2 > 0);
    Ok(per)
}

fn shop_visits_frame(rows: Vec<(u64, &str, i64, i64)>) -> PolarsResult<DataFrame> {
    let mut cols: (Vec<u64>, Vec<&str>, Vec<i64>, Vec<i64>) = Default::default();
    for (m, s, n, d) in rows {
        cols.0.push(m);
        cols.1.push(s);
        cols.2.push(n);
        cols.3.push(d);
    }
    df!(MAC => cols.0, "shop_code" => cols.1, "visits" => cols.2, "dwell_seconds" => cols.3)
}

/// Each device's shop with the most visits, then the longest dwell, then the lowest code.
pub fn favorite_shop_daily(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let mut best: PlHashMap<u64, (u64, &str, i64, i64)> = PlHashMap::new();
    for row in visits_per_shop(c)? {
        best.entry(row.0)
            .and_modify(|b| {
                if better(&row, b) {
                    *b = row
                }
            })
            .or_insert(row);
    }
    Ok(with_shop_names(shop_visits_frame(best.into_values().collect())?.lazy(), c.dims))
}

/// More visits, then longer dwell, then the lower shop code.
fn better(a: &(u64, &str, i64, i64), b: &(u64, &str, i64, i64)) -> bool {
    (a.2, a.3, std::cmp::Reverse(a.1)) > (b.2, b.3, std::cmp::Reverse(b.1))
}

pub fn repeat_shop_visits_daily(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let rows = visits_per_shop(c)?.into_iter().filter(|r| r.2 >= 2).collect();
    Ok(with_shop_names(shop_visits_frame(rows)?.lazy(), c.dims))
}
