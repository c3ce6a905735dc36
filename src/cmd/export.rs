//! `footfall export`: copies the published tables into a database ([`crate::export`]).

use anyhow::Result;

use super::Ctx;
use crate::cli::ExportArgs;
use crate::config::Overrides;
use crate::error::EXIT_OK;
use crate::export::{ExportPlan, ExportReport};

pub fn run(ctx: &Ctx, a: ExportArgs) -> Result<i32> {
    let ov = a.malls.apply(Overrides { config: ctx.config.clone(), out: a.results.clone(), ..Default::default() });
    let (out, _, plan) = crate::config::export_plan(&ov, a.to.as_deref(), a.tables.as_deref(), a.from, a.until)?;
    let report = crate::export::export(&out, &plan, ctx.progress)?;
    say(ctx, &plan, &report);
    Ok(EXIT_OK)
}

/// One line on stderr: what an export did (also after `update`).
pub fn say(ctx: &Ctx, plan: &ExportPlan, r: &ExportReport) {
    ctx.say(format!(
        "export: {} partition(s) and {} snapshot(s) written ({} rows), {} date(s) retracted, {} up to date -> {} (schema {})",
        r.partitions,
        r.snapshots,
        r.rows,
        r.retracted,
        r.unchanged,
        plan.target.show(),
        plan.schema
    ));
}
