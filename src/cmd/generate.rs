//! `footfall generate`: a synthetic mall.

use anyhow::Result;

use super::Ctx;
use crate::cli::GenerateArgs;
use crate::error::EXIT_OK;
use crate::generate::{generate, GenSpec};

pub fn spec(a: &GenerateArgs) -> Result<GenSpec> {
    Ok(GenSpec {
        out: a.out.clone(),
        days: a.days,
        visitors: a.visitors,
        shops: a.shops,
        staff: a.staff,
        timezone: a.timezone.clone(),
        start: a.start,
        seed: a.seed,
        minute_files_days: a.minute_files_days,
    })
}

pub fn run(ctx: &Ctx, a: GenerateArgs) -> Result<i32> {
    let spec = spec(&a)?;
    let t0 = std::time::Instant::now();
    let r = generate(&spec, ctx.progress)?;
    let secs = t0.elapsed().as_secs_f64();
    ctx.say(format!(
        "generated {} records in {} files ({:.1} MiB) under {} in {secs:.1}s ({:.2} M records/s); config: {}",
        r.records,
        r.files,
        r.bytes as f64 / 1048576.0,
        spec.out.display(),
        r.records as f64 / secs / 1e6,
        spec.out.join("footfall.toml").display()
    ));
    Ok(EXIT_OK)
}
