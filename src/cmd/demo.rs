//! `footfall demo`: a week of a demo mall under ./demo, processed end to end, summarised.

use anyhow::Result;
use polars::prelude::*;

use super::Ctx;
use crate::cli::DemoArgs;
use crate::config::Overrides;
use crate::engine::{self, Mode};
use crate::error::EXIT_OK;
use crate::generate::{generate, GenSpec};
use crate::output::{write_frame, Format};
use crate::read::read_table;

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
    let report = engine::execute(&plan, Mode::Run, false, ctx.progress)?;
    ctx.say(format!(
        "demo: processed {} rows ({} rejected) into {} dates of results under {} in {:.1}s",
        report.rows_read,
        report.rows_rejected,
        report.dates_published.len(),
        plan.out.display,
        t0.elapsed().as_secs_f64()
    ));
    let tz = plan.settings.tz_name.as_str();
    let get = |t: &str| read_table(&plan.out, crate::schema::get(t)?, tz, None, None);
    let mut stdout = std::io::stdout().lock();
    use std::io::Write;

    let daily = get("mall_daily_new_customers")?
        .lazy()
        .join(
            get("peak_hour_daily")?.lazy().select([
                col("date"),
                col("hour_start").dt().hour().alias("peak_hour"),
                col("visitors").alias("peak_visitors"),
            ]),
            [col("date")],
            [col("date")],
            JoinArgs::new(JoinType::Left),
        )
        .select([
            col("date"),
            col("visitors"),
            col("new_customers"),
            col("returning_customers"),
            (col("new_ratio") * lit(100.0)).round(1, RoundMode::HalfAwayFromZero).alias("new_%"),
            col("peak_hour"),
            col("peak_visitors"),
        ])
        .sort(["date"], Default::default())
        .collect()?;
    writeln!(stdout, "\nVisitors per day (local dates, {tz}), new vs returning, and the peak hour:\n")?;
    write_frame(&mut stdout, &mut daily.clone(), Format::Table)?;

    // SPEC §7: who really came in, for how long, how loyal — without staff.
    let mut engaged = get("mall_daily_engagement")?
        .lazy()
        .join(get("mall_daily_loyalty")?.lazy(), [col("date")], [col("date")], JoinArgs::new(JoinType::Left))
        .select([
            col("date"),
            col("detected"),
            col("visitors"),
            (col("capture_rate") * lit(100.0)).round(1, RoundMode::HalfAwayFromZero).alias("capture_%"),
            (col("median_dwell_seconds") / lit(60.0)).round(1, RoundMode::HalfAwayFromZero).alias("median_dwell_min"),
            col("first_time"),
            col("daily"),
            col("weekly"),
            col("occasional"),
            col("staff"),
        ])
        .sort(["date"], Default::default())
        .collect()?;
    writeln!(
        stdout,
        "\nVisitors vs passers-by (a mall visit of ≥ 5 min reaching -65 dBm), median dwell and loyalty; staff excluded:\n"
    )?;
    write_frame(&mut stdout, &mut engaged, Format::Table)?;

    // The last full day (the day after the last one only holds late-night spill-over).
    let busiest = daily.column("visitors")?.i64()?.max().unwrap_or(0);
    let last = daily
        .clone()
        .lazy()
        .filter(col("visitors").gt_eq(lit(busiest / 10)))
        .select([col("date").cast(DataType::Int32).max()])
        .collect()?
        .column("date")?
        .i32()?
        .get(0);
    if let Some(last) = last {
        let d = crate::timeutil::days_to_date(last);
        let mut top = get("top_shops_daily")?
            .lazy()
            .filter(col("date").cast(DataType::Int32).eq(lit(last)))
            .select([col("rank"), col("shop_code"), col("shop_name"), col("visitors")])
            .collect()?;
        writeln!(stdout, "\nTop shops on {d}:\n")?;
        write_frame(&mut stdout, &mut top, Format::Table)?;
    }
    writeln!(
        stdout,
        "\nExplore: footfall tables | footfall show top_shops_daily --config {} | footfall check --config {}",
        config.display(),
        config.display()
    )?;
    Ok(EXIT_OK)
}
