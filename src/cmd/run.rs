//! `footfall run` and `footfall update`.

use std::io::Write;

use anyhow::{Context, Result};

use super::Ctx;
use crate::cli::{RunArgs, UpdateArgs};
use crate::error::EXIT_OK;
use crate::pipeline::{self, Mode, Report};
use crate::print::{check_binary, stdout, write_frame, Format};

pub fn run(ctx: &Ctx, a: RunArgs) -> Result<i32> {
    let plan = crate::config::plan(&a.plan.overrides(ctx.config.as_ref()))?;
    let report = pipeline::execute(&plan, Mode::Run, false, ctx.progress)?;
    summarize(ctx, "run", &report);
    Ok(EXIT_OK)
}

pub fn update(ctx: &Ctx, a: UpdateArgs) -> Result<i32> {
    let mut plan = crate::config::plan(&a.plan.overrides(ctx.config.as_ref()))?;
    if a.full {
        plan.lookback_days = None;
    }
    let report = pipeline::execute(&plan, Mode::Update, a.dry_run, ctx.progress)?;
    if a.dry_run {
        // The list is data: stdout. The table format (the default) is one `change<TAB>file`
        // line per file, as shell loops read it.
        let f = ctx.format.unwrap_or(Format::Table);
        check_binary(f)?;
        let mut w = stdout();
        let mut rows = crate::views::dry_run_rows(&report)?;
        if f == Format::Table {
            let (change, file) = (rows.column("change")?.str()?, rows.column("file")?.str()?);
            for (c, p) in change.iter().zip(file.iter()) {
                writeln!(w, "{}\t{}", c.unwrap_or_default(), p.unwrap_or_default())?;
            }
        } else {
            write_frame(&mut w, &mut rows, f)?;
        }
        ctx.say(format!(
            "dry run: {} new, {} changed, {} unchanged, {} missing file(s)",
            report.new_files.len(),
            report.changed_files.len(),
            report.unchanged_files,
            report.missing_files.len()
        ));
        return Ok(EXIT_OK);
    }
    summarize(ctx, "update", &report);
    if let Some(x) = &plan.export {
        let r = crate::export::export(&plan.out, x, ctx.progress).context(
            "update published its results, but exporting them failed (the next update or `footfall export` sends what was missed)",
        )?;
        super::export::say(ctx, x, &r);
    }
    Ok(EXIT_OK)
}

fn summarize(ctx: &Ctx, what: &str, r: &Report) {
    let dates = match (r.dates_published.first(), r.dates_published.last()) {
        (Some(a), Some(b)) if a == b => format!(" ({a})"),
        (Some(a), Some(b)) => format!(" ({a} .. {b})"),
        _ => String::new(),
    };
    ctx.say(format!(
        "{what}: {} file(s) read ({} new, {} changed, {} unchanged; {} probe object reads), {} rows, {} rejected; {} date(s) published{dates}",
        r.files_read,
        r.new_files.len(),
        r.changed_files.len(),
        r.unchanged_files,
        r.probe_reads,
        r.rows_read,
        r.rows_rejected,
        r.dates_published.len()
    ));
    if !r.missing_files.is_empty() {
        ctx.say(format!(
            "note: {} processed file(s) no longer exist (kept in results): {}",
            r.missing_files.len(),
            r.missing_files.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
}
