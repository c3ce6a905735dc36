//! `footfall diff A B`: table-by-table, row-by-row comparison of two output directories.
//! Exit 1 on any difference — what a CI job runs against golden outputs.

use anyhow::Result;

use super::Ctx;
use crate::cli::DiffArgs;
use crate::error::{EXIT_DIFFERENCES, EXIT_OK};
use crate::store::Location;

pub fn run(ctx: &Ctx, a: DiffArgs) -> Result<i32> {
    let cwd = std::env::current_dir()?;
    let left = Location::parse(&a.left, &cwd, "DIR_A")?;
    let right = Location::parse(&a.right, &cwd, "DIR_B")?;
    let tables: Vec<&crate::schema::TableSchema> = if a.tables.is_empty() {
        crate::schema::results().collect()
    } else {
        a.tables.iter().map(|t| crate::schema::get(t)).collect::<Result<_>>()?
    };
    let mut differing = 0;
    for t in tables {
        let d = crate::diff::diff_table(&left, &right, t)?;
        if d.is_equal() {
            ctx.say(format!("{:<28} equal ({} rows)", t.name, d.left_rows));
            continue;
        }
        differing += 1;
        println!(
            "{:<28} DIFFERENT: {} rows vs {} rows; {} only in {}, {} only in {}",
            t.name,
            d.left_rows,
            d.right_rows,
            d.only_left.len(),
            a.left,
            d.only_right.len(),
            a.right
        );
        if let Some(h) = &d.header_mismatch {
            println!("  columns differ: {h}");
        }
        println!("  header: {}", d.header);
        for r in d.only_left.iter().take(a.show) {
            println!("  - {r}");
        }
        for r in d.only_right.iter().take(a.show) {
            println!("  + {r}");
        }
    }
    if differing > 0 {
        println!("{differing} table(s) differ");
        Ok(EXIT_DIFFERENCES)
    } else {
        ctx.say("all tables equal");
        Ok(EXIT_OK)
    }
}
