//! SPEC §7: who really came in, for how long, how loyal they are — without staff. Queries over
//! one day's visits and that day's statuses (staff, visitor, loyalty: decided by the
//! pipeline's statuses stage).

use polars::prelude::*;

use super::context::{with_shop_names, DayCtx};
use crate::config::Settings;
use crate::rules::{qualifying, DAILY, FIRST_TIME, OCCASIONAL, WEEKLY};
use crate::schema::MAC;

/// Dwell buckets of qualifying visits: (column, lower bound, upper bound) in seconds.
const BUCKETS: [(&str, i64, i64); 5] = [
    ("dwell_lt_5m", 0, 300),
    ("dwell_5_20m", 300, 1200),
    ("dwell_20_60m", 1200, 3600),
    ("dwell_1_6h", 3600, 21600),
    ("dwell_6h_plus", 21600, i64::MAX),
];

fn staff_of_day(c: &DayCtx) -> LazyFrame {
    c.status.clone().lazy().filter(col("staff")).select([col(MAC)])
}

/// `lf` without the day's staff devices.
fn non_staff(lf: LazyFrame, c: &DayCtx) -> LazyFrame {
    lf.anti_join(staff_of_day(c), col(MAC), col(MAC))
}

/// detected, visitors, passersby, capture_rate, visits, dwell statistics and buckets over
/// a frame of visits (one row per visit).
fn engagement(lf: LazyFrame, by: &[&str], s: &Settings, extra: Vec<Expr>) -> LazyFrame {
    let q = qualifying(s);
    let dwell = col("dwell").filter(q.clone()).cast(DataType::Float64);
    let mut aggs = vec![
        col(MAC).n_unique().cast(DataType::Int64).alias("detected"),
        col(MAC).filter(q.clone()).n_unique().cast(DataType::Int64).alias("visitors"),
        q.clone().cast(DataType::Int64).sum().alias("visits"),
        dwell.clone().mean().alias("avg_dwell_seconds"),
        dwell.median().alias("median_dwell_seconds"),
    ];
    for (name, lo, hi) in BUCKETS {
        let inside = col("dwell").gt_eq(lit(lo)).and(col("dwell").lt(lit(hi)));
        aggs.push(q.clone().and(inside).cast(DataType::Int64).sum().alias(name));
    }
    aggs.extend(extra);
    let grouped = if by.is_empty() {
        lf.select(aggs)
    } else {
        lf.group_by(by.iter().map(|c| col(*c)).collect::<Vec<_>>()).agg(aggs)
    };
    grouped.with_columns([
        (col("detected") - col("visitors")).alias("passersby"),
        ratio(col("visitors"), col("detected")).alias("capture_rate"),
    ])
}

/// a / b as a float, null where b = 0.
fn ratio(a: Expr, b: Expr) -> Expr {
    when(b.clone().gt(lit(0i64)))
        .then(a.cast(DataType::Float64) / b.cast(DataType::Float64))
        .otherwise(lit(NULL).cast(DataType::Float64))
}

pub fn shop_daily_engagement(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let lf = engagement(non_staff(c.visits.clone().lazy(), c), &["shop_code"], c.settings, vec![]);
    Ok(with_shop_names(lf, c.dims))
}

pub fn mall_daily_engagement(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let flags = c.status.clone().lazy().select([col(MAC), col("randomized")]);
    let mall = non_staff(c.mall.clone().lazy(), c).left_join(flags, col(MAC), col(MAC));
    let randomized = col(MAC).filter(col("randomized")).n_unique().cast(DataType::Int64).alias("randomized_devices");
    let staff = c.status.clone().lazy().select([col("staff").cast(DataType::Int64).sum().alias("staff")]);
    Ok(engagement(mall, &[], c.settings, vec![randomized])
        .cross_join(staff, None)
        .with_column(ratio(col("randomized_devices"), col("detected")).alias("randomized_share")))
}

pub fn mall_daily_loyalty(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let is = |class: i32| col("loyalty").eq(lit(class)).fill_null(lit(false)).cast(DataType::Int64).sum();
    Ok(c.status
        .clone()
        .lazy()
        .select([
            col("visitor").cast(DataType::Int64).sum().alias("visitors"),
            is(FIRST_TIME).alias("first_time"),
            is(DAILY).alias("daily"),
            is(WEEKLY).alias("weekly"),
            is(OCCASIONAL).alias("occasional"),
        ])
        .with_column((col("visitors") - col("first_time")).alias("returning")))
}

pub fn staff_devices_daily(c: &DayCtx) -> PolarsResult<LazyFrame> {
    Ok(c.status.clone().lazy().filter(col("staff")).select([
        col(MAC),
        (col("mall_dwell").cast(DataType::Float64) / lit(3600.0)).alias("hours_present"),
        col("days7").alias("days_present_last_7"),
    ]))
}

/// Consecutive qualifying shop visits within one mall visit (each shop visit carries the
/// mall visit holding its first record), ordered by start then shop_code.
pub fn shop_transitions_daily(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let same = |c: &str| col(c).eq(col(c).shift(lit(1)));
    Ok(non_staff(c.visits.clone().lazy(), c)
        .filter(qualifying(c.settings))
        .select([col(MAC), col("mall_visit"), col("start"), col("shop_code")])
        .sort(["mall_visit", "start", "shop_code"], SortMultipleOptions::default())
        .with_column(col("shop_code").shift(lit(1)).alias("from_shop"))
        .filter(same("mall_visit").and(col("from_shop").neq(col("shop_code"))))
        .group_by([col("from_shop"), col("shop_code").alias("to_shop")])
        .agg([
            len().cast(DataType::Int64).alias("transitions"),
            col(MAC).n_unique().cast(DataType::Int64).alias("devices"),
        ]))
}

/// Position of each non-staff device in each second it was heard (SPEC §7.2), with the
/// second's local hour start: place_info where known, else the RSSI-power-weighted centroid
/// of the hearing APs that ap_info places.
fn positions(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let pos = non_staff(c.pos.clone().lazy(), c);
    let places = c.dims.places.clone().lazy().filter(col("x").is_not_null().and(col("y").is_not_null()));
    // Join first: only place_info's devices go through the group-by.
    let placed = pos.clone().inner_join(places.clone(), col(MAC), col(MAC)).group_by([col(MAC), col("second")]).agg([
        col("hour").first(),
        col("x").first(),
        col("y").first(),
    ]);
    let aps = c.dims.aps.clone().lazy().filter(col("x").is_not_null().and(col("y").is_not_null()));
    let w = || lit(10.0f64).pow(col("rssi_max").cast(DataType::Float64) / lit(10.0));
    let mut heard = pos.anti_join(places, col(MAC), col(MAC));
    // "Each AP once with its strongest RSSI": only needed when an AP reported under several
    // shop codes that day; otherwise (second, device, AP) is already unique in `pos`.
    if !one_shop_per_ap(&c.pos) {
        heard =
            heard.group_by([col(MAC), col("second"), col("ap_mac")]).agg([col("rssi_max").max(), col("hour").first()]);
    }
    let heard = heard.inner_join(aps, col("ap_mac"), col("ap_mac")).group_by([col(MAC), col("second")]).agg([
        col("hour").first(),
        ((w() * col("x")).sum() / w().sum()).alias("x"),
        ((w() * col("y")).sum() / w().sum()).alias("y"),
    ]);
    concat([placed.select([col(MAC), col("second"), col("hour"), col("x"), col("y")]), heard], UnionArgs::default())
}

/// Whether every AP reported under a single shop code in this rollup.
fn one_shop_per_ap(pos: &DataFrame) -> bool {
    let most = pos
        .clone()
        .lazy()
        .group_by([col("ap_mac")])
        .agg([col("shop_code").n_unique().alias("shops")])
        .select([col("shops").max()])
        .collect();
    match most.as_ref().ok().and_then(|df| df.column("shops").ok()?.get(0).ok()?.extract::<u32>()) {
        Some(n) => n <= 1,
        None => pos.height() == 0,
    }
}

pub fn density_grid(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let s = c.settings;
    let cell =
        |v: &str| (col(v).round(3, RoundMode::HalfAwayFromZero) / lit(s.density_cell)).floor().cast(DataType::Int64);
    // Slot starts per local hour: the offset is constant within an hour (as for hour_start).
    let hours = slot_offsets(c)?;
    let start = col("second") - (col("second") + col("offset")) % lit(s.density_slot);
    Ok(positions(c)?
        .inner_join(hours, col("hour"), col("hour"))
        .select([
            col(MAC),
            // A slot longer than an hour may reach back before a DST day's first instant.
            when(start.clone().lt(col("day_start"))).then(col("day_start")).otherwise(start).alias("slot_start"),
            cell("x").alias("cell_x"),
            cell("y").alias("cell_y"),
        ])
        .unique(None, UniqueKeepStrategy::Any)
        .group_by([col("slot_start"), col("cell_x"), col("cell_y")])
        .agg([len().cast(DataType::Int64).alias("devices")]))
}

/// hour → UTC offset at that hour, and the day's first instant.
fn slot_offsets(c: &DayCtx) -> PolarsResult<LazyFrame> {
    let mut clock = crate::timeutil::LocalClock::new(c.settings.tz);
    let hours: Vec<i64> = match c.pos.column("hour").and_then(|h| h.unique()) {
        Ok(h) => h.i64().map(|ca| ca.into_no_null_iter().collect()).unwrap_or_default(),
        Err(_) => vec![],
    };
    let offsets: Vec<i64> = hours.iter().map(|h| clock.offset(*h)).collect();
    let day_start = clock.day_start(c.day);
    Ok(df!("hour" => hours, "offset" => offsets)?.lazy().with_column(lit(day_start).alias("day_start")))
}
