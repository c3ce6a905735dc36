//! `footfall tables`: the result tables, from schemas/.

use anyhow::Result;
use polars::prelude::*;

use super::Ctx;
use crate::error::EXIT_OK;
use crate::print::{check_binary, resolve, write_frame};

pub fn run(ctx: &Ctx) -> Result<i32> {
    let s: Vec<_> = crate::schema::results().collect();
    let mut df = df!(
        "table" => s.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        "grain" => s.iter().map(|t| t.grain.clone()).collect::<Vec<_>>(),
        "original" => s.iter().map(|t| t.original.clone()).collect::<Vec<_>>(),
        "meaning" => s.iter().map(|t| t.description.clone()).collect::<Vec<_>>(),
    )?;
    let f = resolve(ctx.format);
    check_binary(f)?;
    write_frame(&mut crate::print::stdout(), &mut df, f)?;
    Ok(EXIT_OK)
}
