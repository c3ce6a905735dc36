//! `footfall diff A B`: table-by-table, row-by-row comparison of two output directories.
//! Exit 1 on any difference — what a CI job runs against golden outputs. The table format
//! (the default, also when piped: CI logs are read by people) prints only what differs, with
//! sample rows; other formats print one row per table ([`crate::views::diff_rows`]).

use std::io::Write;

use anyhow::Result;

use super::Ctx;
use crate::cli::DiffArgs;
use crate::error::{EXIT_DIFFERENCES, EXIT_OK};
use crate::print::{check_binary, stdout, write_frame, Format};
use crate::store::Location;

pub fn run(ctx: &Ctx, a: DiffArgs) -> Result<i32> {
    let f = ctx.format.unwrap_or(Format::Table);
    check_binary(f)?;
    let cwd = std::env::current_dir()?;
    let left = Location::parse(&a.left, &cwd, "DIR_A")?;
    let right = Location::parse(&a.right, &cwd, "DIR_B")?;
    let tables: Vec<&crate::schema::TableSchema> = if a.tables.is_empty() {
        crate::schema::results().collect()
    } else {
        a.tables.iter().map(|t| crate::schema::get(t)).collect::<Result<_>>()?
    };
    let diffs: Vec<(&str, crate::diff::TableDiff)> = tables
        .iter()
        .map(|t| Ok((t.name.as_str(), crate::diff::diff_table(&left, &right, t)?)))
        .collect::<Result<_>>()?;
    let differing = diffs.iter().filter(|(_, d)| !d.is_equal()).count();
    let code = if differing > 0 { EXIT_DIFFERENCES } else { EXIT_OK };
    let mut w = stdout();
    if f != Format::Table {
        let rows: Vec<(&str, &crate::diff::TableDiff)> = diffs.iter().map(|(t, d)| (*t, d)).collect();
        write_frame(&mut w, &mut crate::views::diff_rows(&rows)?, f)?;
        return Ok(code);
    }
    for (name, d) in &diffs {
        if d.is_equal() {
            ctx.say(format!("{name:<28} equal ({} rows)", d.left_rows));
            continue;
        }
        writeln!(
            w,
            "{name:<28} DIFFERENT: {} rows vs {} rows; {} only in {}, {} only in {}",
            d.left_rows,
            d.right_rows,
            d.only_left.len(),
            a.left,
            d.only_right.len(),
            a.right
        )?;
        if let Some(h) = &d.header_mismatch {
            writeln!(w, "  columns differ: {h}")?;
        }
        writeln!(w, "  header: {}", d.header)?;
        for r in d.only_left.iter().take(a.show) {
            writeln!(w, "  - {r}")?;
        }
        for r in d.only_right.iter().take(a.show) {
            writeln!(w, "  + {r}")?;
        }
    }
    if differing > 0 {
        writeln!(w, "{differing} table(s) differ")?;
    } else {
        ctx.say("all tables equal");
    }
    Ok(code)
}
