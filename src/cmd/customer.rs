//! `footfall customer MAC [--date D]`: one device's story ([`crate::views::customer_story`]).

use std::io::Write;

use anyhow::Result;

use super::{parse_date, Ctx};
use crate::bail_usage;
use crate::cli::CustomerArgs;
use crate::error::EXIT_OK;
use crate::print::{resolve, write_frame, Format};

pub fn run(ctx: &Ctx, a: CustomerArgs) -> Result<i32> {
    let Some(mac) = crate::mac::parse_mac(&a.mac) else { bail_usage!("not a MAC address: '{}'", a.mac) };
    let date = a.date.as_deref().map(|d| parse_date("--date", d)).transpose()?;
    let f = resolve(ctx.format);
    if f == Format::Parquet {
        bail_usage!("customer prints several sections: use table, csv, json or ndjson");
    }
    let (out, settings, _, _) = crate::config::out_plan(&a.plan.overrides(ctx.config.as_ref()))?;
    let mut stdout = std::io::stdout().lock();
    let mut s = match crate::views::customer_story(&out, &settings, mac, date)? {
        Ok(s) => s,
        Err(device) => {
            writeln!(stdout, "device {device} was never seen")?;
            return Ok(EXIT_OK);
        }
    };
    writeln!(stdout, "device {}", s.device)?;
    write_frame(&mut stdout, &mut s.customer, f)?;
    writeln!(stdout, "\nvisits on {}", s.date)?;
    write_frame(&mut stdout, &mut s.visits, f)?;
    writeln!(stdout, "\nfavourite shop on {}", s.date)?;
    write_frame(&mut stdout, &mut s.favourite, f)?;
    Ok(EXIT_OK)
}
