//! `footfall status`: processed and pending files, dates covered, the last run
//! ([`crate::views::status`]). The table format is the readable key/value form, and the
//! default even when piped (it is read by people and cron logs); other formats print the row.

use std::io::Write;

use anyhow::Result;
use polars::prelude::*;

use super::Ctx;
use crate::cli::StatusArgs;
use crate::error::EXIT_OK;
use crate::print::{check_binary, stdout, write_frame, Format};

pub fn run(ctx: &Ctx, a: StatusArgs) -> Result<i32> {
    let f = ctx.format.unwrap_or(Format::Table);
    check_binary(f)?;
    let plan = crate::config::plan(&a.plan.overrides(ctx.config.as_ref()))?;
    let mut df = crate::views::status(&plan)?;
    let mut w = stdout();
    if f != Format::Table {
        write_frame(&mut w, &mut df, f)?;
        return Ok(EXIT_OK);
    }
    let v = |c: &str| -> Result<String> {
        let av = df.column(c)?.get(0)?;
        Ok(match av {
            AnyValue::String(s) => s.to_string(),
            AnyValue::Null => "-".to_string(),
            other => other.to_string(),
        })
    };
    if !df.column("has_state")?.bool()?.get(0).unwrap_or(false) {
        writeln!(w, "no state in {}: nothing processed yet (run `footfall run`)", v("output")?)?;
        return Ok(EXIT_OK);
    }
    writeln!(w, "output:      {}", v("output")?)?;
    writeln!(w, "processed:   {} file(s)", v("processed_files")?)?;
    writeln!(
        w,
        "pending:     {} new, {} changed (partitions from {} days before the newest; `update --full` lists all)",
        v("pending_new")?,
        v("pending_changed")?,
        v("late_window_days")?
    )?;
    writeln!(w, "missing:     {} processed file(s) no longer listed", v("missing_files")?)?;
    match v("dates")?.as_str() {
        "0" => writeln!(w, "dates:       none")?,
        n => writeln!(w, "dates:       {} .. {} ({n} dates)", v("first_date")?, v("last_date")?)?,
    }
    if df.column("data_through")?.null_count() == 0 {
        writeln!(
            w,
            "data:        through {}; {} and later so far (incomplete)",
            v("data_through")?,
            v("partial_from")?
        )?;
    }
    if df.column("last_command")?.null_count() == 0 {
        writeln!(
            w,
            "last run:    {} {} → {}: {} ({} file(s), {} date(s) published)",
            v("last_command")?,
            v("last_started_at")?,
            v("last_finished_at")?,
            v("last_outcome")?,
            v("last_files_processed")?,
            v("last_dates_published")?
        )?;
    }
    writeln!(w, "full listing: {}", v("last_full_listing")?)?;
    Ok(EXIT_OK)
}
