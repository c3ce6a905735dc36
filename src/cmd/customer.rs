//! `footfall customer MAC [--date D]`: one device's story ([`crate::views::customer_story`]).
//!
//! Table: three sections for people. JSON: one object `{device, date, seen, customer, visits,
//! favourite}` (NDJSON: that object on one line). CSV: one row per visit that day, with the
//! device, the date and whether the visit's shop is the day's favourite.

use std::io::Write;

use anyhow::Result;
use polars::prelude::*;

use super::Ctx;
use crate::bail_usage;
use crate::cli::CustomerArgs;
use crate::error::EXIT_OK;
use crate::print::{resolve, stdout, write_frame, Format};

/// A frame as a JSON array of row objects.
fn json_rows(df: &mut DataFrame) -> Result<serde_json::Value> {
    let mut buf = Vec::new();
    write_frame(&mut buf, df, Format::Json)?;
    Ok(serde_json::from_slice(&buf)?)
}

pub fn run(ctx: &Ctx, a: CustomerArgs) -> Result<i32> {
    let Some(mac) = crate::mac::parse_mac(&a.mac) else { bail_usage!("not a MAC address: '{}'", a.mac) };
    let f = resolve(ctx.format);
    if f == Format::Parquet {
        bail_usage!("customer prints several sections: use table, csv, json or ndjson");
    }
    let crate::config::ReadPlan { out, settings, .. } =
        crate::config::read_plan(&a.plan.overrides(ctx.config.as_ref()))?;
    let story = crate::views::customer_story(&out, &settings, mac, a.date)?;
    let mut w = stdout();
    match (f, story) {
        (Format::Table, Err(device)) => writeln!(w, "device {device} was never seen")?,
        (Format::Table, Ok(mut s)) => {
            writeln!(w, "device {}", s.device)?;
            write_frame(&mut w, &mut s.customer, f)?;
            writeln!(w, "\nvisits on {}", s.date)?;
            write_frame(&mut w, &mut s.visits, f)?;
            writeln!(w, "\nfavourite shop on {}", s.date)?;
            write_frame(&mut w, &mut s.favourite, f)?;
        }
        (Format::Json | Format::Ndjson, story) => {
            let doc = match story {
                Err(device) => serde_json::json!({ "device": device, "seen": false }),
                Ok(mut s) => serde_json::json!({
                    "device": s.device,
                    "date": s.date.to_string(),
                    "seen": true,
                    "customer": json_rows(&mut s.customer)?,
                    "visits": json_rows(&mut s.visits)?,
                    "favourite": json_rows(&mut s.favourite)?,
                }),
            };
            let text = if f == Format::Json { serde_json::to_string_pretty(&doc)? } else { doc.to_string() };
            writeln!(w, "{text}")?;
        }
        (_, story) => {
            let (device, date, visits, favourite) = match story {
                Err(device) => (device, None, None, None),
                Ok(s) => {
                    let fav = s.favourite.column("shop_code")?.str()?.get(0).map(str::to_string);
                    (s.device, Some(s.date), Some(s.visits), fav)
                }
            };
            let mut rows = match visits {
                None => DataFrame::empty_with_schema(&Schema::from_iter(
                    crate::views::VISIT_COLUMNS.iter().map(|c| Field::new((*c).into(), DataType::String)),
                )),
                Some(v) => v,
            };
            let n = rows.height();
            let favourite_col = rows
                .column("shop_code")?
                .str()?
                .iter()
                .map(|s| s.is_some() && s == favourite.as_deref())
                .collect::<Vec<bool>>();
            rows.insert_column(0, Column::new("device".into(), vec![device.as_str(); n]))?;
            rows.insert_column(1, Column::new("date".into(), vec![date.map(|d| d.to_string()); n]))?;
            rows.with_column(Column::new("favourite".into(), favourite_col))?;
            write_frame(&mut w, &mut rows, f)?;
        }
    }
    Ok(EXIT_OK)
}
