//! `footfall schema TABLE`: a table's columns, from schemas/.

use anyhow::Result;
use polars::prelude::*;

use super::Ctx;
use crate::cli::SchemaArgs;
use crate::error::EXIT_OK;
use crate::print::{check_binary, resolve, write_frame};

pub fn run(ctx: &Ctx, a: SchemaArgs) -> Result<i32> {
    let t = crate::schema::get(&a.table)?;
    let c = &t.columns;
    let mut df = df!(
        "column" => c.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        "type" => c.iter().map(|c| c.ty.clone()).collect::<Vec<_>>(),
        "nullable" => c.iter().map(|c| c.nullable).collect::<Vec<_>>(),
        "key" => c.iter().map(|c| t.primary_key.contains(&c.name)).collect::<Vec<_>>(),
        "meaning" => c.iter().map(|c| c.description.clone()).collect::<Vec<_>>(),
    )?;
    let f = resolve(ctx.format);
    check_binary(f)?;
    write_frame(&mut crate::print::stdout(), &mut df, f)?;
    Ok(EXIT_OK)
}
