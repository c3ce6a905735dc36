//! `footfall status`: processed and pending files, dates covered, the last run.

use anyhow::Result;

use super::Ctx;
use crate::cli::StatusArgs;
use crate::error::EXIT_OK;
use crate::pipeline::{self, Mode};
use crate::state::{day_str, Manifest};

pub fn run(ctx: &Ctx, a: StatusArgs) -> Result<i32> {
    let plan = crate::config::plan(&a.plan.overrides(ctx.config.as_ref()))?;
    let Some(m) = Manifest::load(&plan.out)? else {
        println!("no state in {}: nothing processed yet (run `footfall run`)", plan.out.display);
        return Ok(EXIT_OK);
    };
    let pending = pipeline::plan::prepare(&plan, Mode::Update)?.report;
    let days = m.days();
    println!("output:      {}", plan.out.display);
    println!("processed:   {} file(s)", m.files.len());
    println!("pending:     {} new, {} changed", pending.new_files.len(), pending.changed_files.len());
    println!("missing:     {} processed file(s) no longer listed", pending.missing_files.len());
    match (days.first(), days.last()) {
        (Some(a), Some(b)) => println!("dates:       {} .. {} ({} dates)", day_str(*a), day_str(*b), days.len()),
        _ => println!("dates:       none"),
    }
    if let Some(r) = &m.last_run {
        println!(
            "last run:    {} {} → {}: {} ({} file(s), {} date(s) published)",
            r.command, r.started_at, r.finished_at, r.outcome, r.files_processed, r.dates_published
        );
    }
    Ok(EXIT_OK)
}
