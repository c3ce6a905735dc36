//! `footfall malls` and `footfall chain`.

use anyhow::Result;
use polars::prelude::*;

use super::Ctx;
use crate::cli::ChainArgs;
use crate::config::Overrides;
use crate::error::EXIT_OK;
use crate::print::{resolve, stdout, write_frame};

pub fn malls(ctx: &Ctx) -> Result<i32> {
    let malls = crate::config::malls(&Overrides { config: ctx.config.clone(), ..Default::default() })?;
    let col = |f: &dyn Fn(&crate::config::FileConfig) -> Option<String>| -> Vec<Option<String>> {
        malls.iter().map(|(_, c)| f(c)).collect()
    };
    let mut df = DataFrame::new(
        malls.len(),
        vec![
            Column::new("index".into(), (0..malls.len() as i64).collect::<Vec<_>>()),
            Column::new("id".into(), malls.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>()),
            Column::new("name".into(), col(&|c| c.mall.name.clone())),
            Column::new("timezone".into(), col(&|c| Some(c.mall.timezone.clone().unwrap_or_else(|| "UTC".into())))),
            Column::new("probes".into(), col(&|c| c.input.probes.clone())),
            Column::new("dims".into(), col(&|c| c.input.dims.clone())),
        ],
    )?;
    write_frame(&mut stdout(), &mut df, resolve(ctx.format))?;
    Ok(EXIT_OK)
}

pub fn run(ctx: &Ctx, a: ChainArgs) -> Result<i32> {
    let (root, malls) =
        crate::config::chain_root(&Overrides { config: ctx.config.clone(), out: a.out, ..Default::default() })?;
    let r = crate::chain::recompute(&root, &malls)?;
    ctx.say(super::run::chain_summary(&r));
    Ok(EXIT_OK)
}
