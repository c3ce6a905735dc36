//! `footfall show TABLE`: published rows, pruned to the requested dates.

use anyhow::Result;
use polars::prelude::*;

use super::Ctx;
use crate::bail_usage;
use crate::cli::ShowArgs;
use crate::error::EXIT_OK;
use crate::print::{check_binary, resolve, write_frame};

pub fn run(ctx: &Ctx, a: ShowArgs) -> Result<i32> {
    let schema = crate::schema::get(&a.table)?;
    let (from, to) = match a.date {
        Some(d) => (Some(d), Some(d)),
        None => (a.from, a.to),
    };
    let mut filters = Vec::new();
    for f in &a.filters {
        let Some((c, v)) = f.split_once('=') else { bail_usage!("--where: expected COLUMN=VALUE, got '{f}'") };
        if schema.column(c).is_none() {
            bail_usage!("--where: table {} has no column '{c}'", schema.name);
        }
        filters.push((c.to_string(), v.to_string()));
    }
    let f = resolve(ctx.format);
    check_binary(f)?;
    let ov = a.plan.overrides(ctx.config.as_ref());
    let (out, tz) = if schema.kind == "chain" {
        // A chain table is the chain's, at the root of its outputs (dates are each mall's own).
        (crate::config::chain_root(&ov)?.0, None)
    } else {
        let plan = crate::config::read_plan(&ov)?;
        (plan.out, Some(plan.settings.tz_name))
    };
    let df = crate::tables::read_table(&out, schema, tz.as_deref().unwrap_or("UTC"), from, to)?;
    let mut lf = df.lazy();
    for (c, v) in filters {
        lf = lf.filter(col(c.as_str()).cast(DataType::String).eq(lit(v)));
    }
    if let Some(n) = a.limit {
        lf = lf.limit(n as IdxSize);
    }
    let mut df = lf.collect()?;
    write_frame(&mut crate::print::stdout(), &mut df, f)?;
    // A day still being filled is marked (on stderr: the rows are the table's).
    if let Some(tz) = tz.filter(|_| schema.is_partitioned() && df.height() > 0) {
        if let Some(fresh) = crate::views::Freshness::of(&out, &tz)? {
            let newest = df.column("date")?.cast(&DataType::Int32)?.i32()?.max().map(crate::timeutil::days_to_date);
            if let Some(d) = newest.filter(|d| !fresh.complete(*d)) {
                ctx.say(format!("show: {d} is incomplete (data through {})", fresh.through()));
            }
        }
    }
    Ok(EXIT_OK)
}
