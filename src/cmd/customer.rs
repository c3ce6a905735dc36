//! `footfall customer MAC [--date D]`: one device's story — first and last seen, days seen,
//! each visit that day and its favourite shop.

use anyhow::Result;
use polars::prelude::*;

use super::{parse_date, Ctx};
use crate::bail_usage;
use crate::cli::CustomerArgs;
use crate::error::EXIT_OK;
use crate::output::{resolve, write_frame, Format};
use crate::read::read_table;
use crate::schema;

pub fn run(_ctx: &Ctx, a: CustomerArgs) -> Result<i32> {
    let Some(mac) = crate::mac::parse_mac(&a.mac) else { bail_usage!("not a MAC address: '{}'", a.mac) };
    let date = a.date.as_deref().map(|d| parse_date("--date", d)).transpose()?;
    let f = resolve(a.format.format);
    if f == Format::Parquet {
        bail_usage!("customer prints several sections: use table, csv, json or ndjson");
    }
    let (out, settings, _, _) = crate::config::out_plan(&a.plan.overrides())?;
    // Outputs hold pseudonyms when a key is set: the raw MAC given here is hashed the same way.
    let mac_s = match &settings.mac_key {
        Some(k) => k.pseudonym(mac),
        None => crate::mac::format_mac(mac),
    };
    let tz = settings.tz_name.as_str();
    let is_me = || col("user_device_mac").eq(lit(mac_s.clone()));
    let mut stdout = std::io::stdout().lock();
    use std::io::Write;

    let mut c = read_table(&out, schema::get("customers")?, tz, None, None)?.lazy().filter(is_me()).collect()?;
    if c.height() == 0 {
        writeln!(stdout, "device {mac_s} was never seen")?;
        return Ok(EXIT_OK);
    }
    let date = match date {
        Some(d) => d,
        None => crate::timeutil::days_to_date(c.column("last_date")?.cast(&DataType::Int32)?.i32()?.get(0).unwrap()),
    };
    writeln!(stdout, "device {mac_s}")?;
    write_frame(&mut stdout, &mut c, f)?;

    // Visits that day, from the device's positions: the same gap rule as the metrics.
    let pos = read_table(&out, schema::get("customer_positions")?, tz, Some(date), Some(date))?
        .lazy()
        .filter(is_me())
        .select([
            (col("second").dt().timestamp(TimeUnit::Milliseconds) / lit(1000i64)).alias("second"),
            lit(mac).alias("user_device_mac"),
            col("shop_code"),
            col("rssi_max"),
        ])
        .collect()?;
    let visits = crate::metrics::visits(&pos, settings.visit_gap)?;
    let shops = read_table(&out, schema::get("shop_daily_visitors")?, tz, Some(date), Some(date))?
        .lazy()
        .select([col("shop_code"), col("shop_name")])
        .unique(None, UniqueKeepStrategy::Any);
    let mut v = visits
        .lazy()
        .left_join(shops, col("shop_code"), col("shop_code"))
        .sort(["start", "shop_code"], Default::default())
        .select([col("shop_code"), col("shop_name"), col("start"), col("end"), col("dwell").alias("dwell_seconds")])
        .collect()?;
    for c in ["start", "end"] {
        let s = v.column(c)?.cast(&DataType::Int64)?;
        let s = (s.as_materialized_series() * 1_000_000i64)
            .cast(&DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)))?
            .cast(&schema::dtype_of("timestamp", tz))?;
        v.with_column(s.with_name(c.into()).into_column())?;
    }
    writeln!(stdout, "\nvisits on {date}")?;
    write_frame(&mut stdout, &mut v, f)?;
    let mut fav = read_table(&out, schema::get("favorite_shop_daily")?, tz, Some(date), Some(date))?
        .lazy()
        .filter(is_me())
        .collect()?;
    writeln!(stdout, "\nfavourite shop on {date}")?;
    write_frame(&mut stdout, &mut fav, f)?;
    Ok(EXIT_OK)
}
