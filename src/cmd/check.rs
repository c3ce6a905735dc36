//! `footfall check`: the data-quality report (docs/tables.md, data_quality) ([`crate::views::quality_summary`]);
//! exit 1 when a threshold is crossed so a cron job can alert.

use anyhow::Result;

use super::Ctx;
use crate::bail_usage;
use crate::cli::CheckArgs;
use crate::error::{EXIT_DIFFERENCES, EXIT_OK};
use crate::print::{check_binary, resolve, write_frame};

pub fn run(ctx: &Ctx, a: CheckArgs) -> Result<i32> {
    if let Some(x) = a.max_rejected_share {
        if !(0.0..=1.0).contains(&x) {
            bail_usage!("--max-rejected-share: must be within 0..=1, got {x}");
        }
    }
    let f = resolve(ctx.format);
    check_binary(f)?;
    let r = crate::config::read_plan(&a.plan.overrides(ctx.config.as_ref()))?;
    let (mut report, share) = crate::views::quality_summary(&r.out, &r.settings, Some(&r), a.from, a.to)?;
    write_frame(&mut crate::print::stdout(), &mut report, f)?;
    if let Some(max) = a.max_rejected_share {
        if share > max {
            ctx.say(format!("check: rejected share {share:.4} exceeds --max-rejected-share {max}"));
            return Ok(EXIT_DIFFERENCES);
        }
    }
    Ok(EXIT_OK)
}
