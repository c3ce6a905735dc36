//! `footfall report`: a self-contained HTML report of the published tables ([`crate::report`]).

use anyhow::{Context, Result};

use super::Ctx;
use crate::cli::ReportArgs;
use crate::config::Overrides;
use crate::error::EXIT_OK;

pub fn run(ctx: &Ctx, a: ReportArgs) -> Result<i32> {
    let ov = a.malls.apply(Overrides { config: ctx.config.clone(), out: a.results.clone(), ..Default::default() });
    let crate::config::ReadPlan { out, settings, .. } = crate::config::read_plan(&ov)?;
    let path = write(&out, &settings, a.from, a.to, &a.out)?;
    ctx.say(format!("report: wrote {}", path.display()));
    Ok(EXIT_OK)
}

/// Renders the report and writes it (written aside, then renamed: never half a file).
pub fn write(
    out: &crate::store::Location,
    settings: &crate::config::Settings,
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
    path: &std::path::Path,
) -> Result<std::path::PathBuf> {
    let dates = crate::report::dates(out, from, to)?;
    let html = crate::report::render(out, settings, &settings.mall_name, &dates)?;
    let tmp = path.with_extension("html.tmp");
    std::fs::write(&tmp, html).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.to_path_buf())
}
