//! `footfall demo`: a week of a demo mall under ./demo, processed end to end, summarised.

use std::io::Write;

use anyhow::Result;

use super::Ctx;
use crate::cli::DemoArgs;
use crate::config::Overrides;
use crate::error::EXIT_OK;
use crate::generate::{generate, GenSpec};
use crate::pipeline::{self, Mode};
use crate::print::{write_frame, Format};

pub fn run(ctx: &Ctx, a: DemoArgs) -> Result<i32> {
    let spec = GenSpec {
        out: a.dir.clone(),
        days: 7,
        visitors: 2000,
        shops: 24,
        staff: None,
        timezone: "Asia/Shanghai".into(),
        start: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
        seed: 42,
        minute_files_days: 0,
    };
    let t0 = std::time::Instant::now();
    let g = generate(&spec, ctx.progress)?;
    ctx.say(format!(
        "demo: generated {} probe records in {} hourly files under {}",
        g.records,
        g.files,
        spec.out.display()
    ));
    let config = spec.out.join("footfall.toml");
    let plan = crate::config::plan(&Overrides { config: Some(config.clone()), ..Default::default() })?;
    let report = pipeline::execute(&plan, Mode::Run, false, ctx.progress)?;
    ctx.say(format!(
        "demo: processed {} rows ({} rejected) into {} dates of results under {} in {:.1}s",
        report.rows_read,
        report.rows_rejected,
        report.dates_published.len(),
        plan.out.display,
        t0.elapsed().as_secs_f64()
    ));
    let tz = plan.settings.tz_name.as_str();
    let mut sum = crate::views::demo_summary(&plan.out, tz)?;
    let mut stdout = crate::print::stdout();
    writeln!(
        stdout,
        "\nVisitors per day (local dates, {tz}), new vs returning, and the peak hour (complete = false: a day so far):\n"
    )?;
    write_frame(&mut stdout, &mut sum.daily, Format::Table)?;
    writeln!(
        stdout,
        "\nVisitors vs passers-by (a mall visit of ≥ 5 min reaching -65 dBm), median dwell and loyalty; staff excluded:\n"
    )?;
    write_frame(&mut stdout, &mut sum.engaged, Format::Table)?;
    let sales = crate::tables::read_table(&plan.out, crate::schema::get(crate::sales::MALL)?, tz, None, None)?;
    let mut sales =
        sales.select(["date", "transactions", "sales_amount", "visitors", "conversion_rate", "avg_ticket"])?;
    writeln!(stdout, "\nSales of the demo's POS feed (refunds and a re-send included) against qualifying visitors:\n")?;
    write_frame(&mut stdout, &mut sales, Format::Table)?;
    if let Some((d, mut top)) = sum.top {
        writeln!(stdout, "\nTop shops on {d}:\n")?;
        write_frame(&mut stdout, &mut top, Format::Table)?;
    }
    let report = super::report::write(&plan.out, &plan.settings, None, None, &a.dir.join("report.html"))?;
    writeln!(stdout, "\nReport (open it in a browser, works offline): {}", report.display())?;
    writeln!(
        stdout,
        "\nExplore: footfall tables | footfall show top_shops_daily --config {} | footfall check --config {}",
        config.display(),
        config.display()
    )?;
    Ok(EXIT_OK)
}
