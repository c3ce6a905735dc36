//! `footfall run` and `footfall update`.

use std::io::Write;

use anyhow::{Context, Result};

use super::Ctx;
use crate::bail_usage;
use crate::cli::{JobsArgs, RunArgs, UpdateArgs};
use crate::config::MallPlan;
use crate::error::{EXIT_IO, EXIT_OK};
use crate::pipeline::{self, Mode, Report};
use crate::print::{check_binary, stdout, write_frame, Format};
use crate::progress::Progress;

pub fn run(ctx: &Ctx, a: RunArgs) -> Result<i32> {
    let malls = crate::config::plans(&a.plan.overrides(ctx.config.as_ref()))?;
    fan_out(ctx, "run", &malls, &a.jobs, |plan, progress| pipeline::execute(plan, Mode::Run, false, progress))
}

pub fn update(ctx: &Ctx, a: UpdateArgs) -> Result<i32> {
    let mut malls = crate::config::plans(&a.plan.overrides(ctx.config.as_ref()))?;
    for m in &mut malls {
        if a.full {
            m.plan.lookback_days = None;
        }
    }
    if malls.len() == 1 && a.dry_run {
        return dry_run(ctx, &malls[0].plan);
    }
    if a.dry_run {
        bail_usage!("--dry-run lists one mall's files: choose one with --mall ID");
    }
    fan_out(ctx, "update", &malls, &a.jobs, |plan, progress| {
        let report = pipeline::execute(plan, Mode::Update, false, progress)?;
        if let Some(x) = &plan.export {
            let r = crate::export::export(&plan.out, x, progress).context(
                "update published its results, but exporting them failed (the next update or `footfall export` sends what was missed)",
            )?;
            Ok((report, Some((x.clone(), r))))
        } else {
            Ok((report, None))
        }
    })
}

/// What one mall's run or update reports.
trait Outcome {
    fn report(&self) -> &Report;
    fn say_more(&self, _ctx: &Ctx) {}
}

impl Outcome for Report {
    fn report(&self) -> &Report {
        self
    }
}

impl Outcome for (Report, Option<(crate::export::ExportPlan, crate::export::ExportReport)>) {
    fn report(&self) -> &Report {
        &self.0
    }
    fn say_more(&self, ctx: &Ctx) {
        if let Some((x, r)) = &self.1 {
            super::export::say(ctx, x, r);
        }
    }
}

/// Runs every selected mall (several at once with `--jobs`), each isolated; then, when
/// every mall of a chain was selected, its chain tables. A single mall (no `[[malls]]`, or
/// one `--mall`/`--mall-index`) fails with its own error and exit code; with several, each
/// mall's outcome is one line and any failure is exit 3 once all have run.
fn fan_out<T: Outcome + Send>(
    ctx: &Ctx,
    what: &str,
    malls: &[MallPlan],
    jobs: &JobsArgs,
    f: impl Fn(&crate::config::Plan, Progress) -> Result<T> + Sync,
) -> Result<i32> {
    let chain = crate::config::chain_ids(ctx.config.as_deref())?;
    // Every mall of a chain was processed: its chain tables follow.
    let then_chain = || -> Result<()> {
        if !chain.is_empty() && malls.len() == chain.len() {
            let root = malls[0].plan.out.root();
            let r = crate::chain::recompute(&root, &chain)
                .context("the malls are published, but the chain tables are not")?;
            ctx.say(chain_summary(&r));
            // `update` exports after publishing (export.after_update); `run` never does.
            let export = malls[0].plan.export.as_ref().filter(|_| what == "update");
            if let Some(x) = export.map(|x| x.chain_tables_only()) {
                let r = crate::export::export(&root, &x, ctx.progress)
                    .context("the chain tables are published, but exporting them failed")?;
                super::export::say(ctx, &x, &r);
            }
        }
        Ok(())
    };
    if let [one] = malls {
        let r = f(&one.plan, ctx.progress)?;
        summarize(ctx, &label(what, one.id.as_deref()), r.report());
        r.say_more(ctx);
        then_chain()?;
        return Ok(EXIT_OK);
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let jobs = jobs.jobs.map(usize::from).unwrap_or(cores).min(malls.len());
    // Bars of several malls at once would overwrite each other: one line per mall instead.
    let progress = if jobs > 1 { Progress::new(crate::progress::ProgressMode::Off, true) } else { ctx.progress };
    let results = crate::chain::for_each_mall(malls, jobs, |m| f(&m.plan, progress));
    let mut failed = Vec::new();
    for (m, r) in malls.iter().zip(&results) {
        let id = m.id.as_deref().unwrap_or_default();
        match r {
            Ok(r) => {
                summarize(ctx, &label(what, Some(id)), r.report());
                r.say_more(ctx);
            }
            Err(e) => {
                eprintln!("mall {id}: {what} failed: {e:#}");
                failed.push(id);
            }
        }
    }
    then_chain()?;
    if failed.is_empty() {
        Ok(EXIT_OK)
    } else {
        eprintln!("error: {} of {} malls failed: {}", failed.len(), malls.len(), failed.join(", "));
        Ok(EXIT_IO)
    }
}

fn label(what: &str, mall: Option<&str>) -> String {
    match mall {
        Some(id) => format!("mall {id}: {what}"),
        None => what.to_string(),
    }
}

/// One line for the chain tables.
pub fn chain_summary(r: &crate::chain::ChainReport) -> String {
    format!(
        "chain: {} mall(s) with data, {} date(s), {} device-day(s) → {} and {}",
        r.malls_with_state,
        r.dates,
        r.device_days,
        crate::chain::DAILY,
        crate::chain::OVERLAP
    )
}

fn dry_run(ctx: &Ctx, plan: &crate::config::Plan) -> Result<i32> {
    let report = pipeline::execute(plan, Mode::Update, true, ctx.progress)?;
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
    let s = &r.sales;
    if s.files_read > 0 || !s.missing_files.is_empty() {
        ctx.say(format!(
            "{what}: sales: {} file(s) read ({} new, {} changed), {} rows, {} rejected; {} date(s) published",
            s.files_read,
            s.new_files,
            s.changed_files,
            s.rows_read,
            s.rows_rejected,
            s.dates_published.len()
        ));
    }
    if !s.missing_files.is_empty() {
        ctx.say(format!(
            "note: {} processed sales file(s) no longer exist (kept in results): {}",
            s.missing_files.len(),
            s.missing_files.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if !r.missing_files.is_empty() {
        ctx.say(format!(
            "note: {} processed file(s) no longer exist (kept in results): {}",
            r.missing_files.len(),
            r.missing_files.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
}
