//! `footfall check`: the data-quality report of SPEC §4, summed over files (except
//! `distinct_devices`: the distinct devices with kept records on the local dates checked);
//! exit 1 when a threshold is crossed so a cron job can alert.

use anyhow::Result;
use polars::prelude::*;

use super::{parse_date, Ctx};
use crate::bail_usage;
use crate::cli::CheckArgs;
use crate::error::{EXIT_DIFFERENCES, EXIT_OK};
use crate::output::{check_binary, resolve, write_frame};

pub fn run(ctx: &Ctx, a: CheckArgs) -> Result<i32> {
    let from = a.from.as_deref().map(|s| parse_date("--from", s)).transpose()?;
    let to = a.to.as_deref().map(|s| parse_date("--to", s)).transpose()?;
    if let Some(x) = a.max_rejected_share {
        if !(0.0..=1.0).contains(&x) {
            bail_usage!("--max-rejected-share: must be within 0..=1, got {x}");
        }
    }
    let f = resolve(a.format.format);
    check_binary(f)?;
    let (out, settings, _, _) = crate::config::out_plan(&a.plan.overrides())?;
    let schema = crate::schema::get("data_quality")?;
    let dq = crate::read::read_table(&out, schema, &settings.tz_name, from, to)?;
    // Per-file distinct counts do not add up (a device is in many files): the true figure
    // comes from the state's per-day device summaries.
    let counts: Vec<&str> = schema
        .columns
        .iter()
        .filter(|c| c.ty == "int64" && c.name != "distinct_devices")
        .map(|c| c.name.as_str())
        .collect();
    let mut report = dq
        .lazy()
        .select(
            std::iter::once(len().cast(DataType::Int64).alias("files"))
                .chain(counts.iter().map(|c| col(*c).sum().cast(DataType::Int64)))
                .collect::<Vec<_>>(),
        )
        .with_columns([
            (col("rows_rejected").cast(DataType::Float64) / col("rows_read").cast(DataType::Float64))
                .alias("rejected_share"),
            (col("randomized_rows").cast(DataType::Float64) / col("rows_accepted").cast(DataType::Float64))
                .alias("randomized_share"),
        ])
        .collect()?;
    // One row per measure reads better than one very wide row.
    let share = report.column("rejected_share")?.f64()?.get(0).unwrap_or(0.0);
    // Hours inside opening hours without a single device, over the dates with data.
    let (open, close) = settings.opening;
    let hourly =
        crate::read::read_table(&out, crate::schema::get("mall_hourly_visitors")?, &settings.tz_name, from, to)?;
    let days = crate::read::read_table(&out, crate::schema::get("mall_daily_visitors")?, &settings.tz_name, from, to)?
        .height() as i64;
    let busy_open = hourly
        .lazy()
        .filter(
            col("hour_start")
                .dt()
                .hour()
                .cast(DataType::UInt32)
                .gt_eq(lit(open))
                .and(col("hour_start").dt().hour().cast(DataType::UInt32).lt(lit(close))),
        )
        .select([len().cast(DataType::Int64).alias("n")])
        .collect()?
        .column("n")?
        .i64()?
        .get(0)
        .unwrap_or(0);
    let distinct = crate::state::distinct_devices(&out, from, to)?;
    report.with_column(Column::new("distinct_devices".into(), [distinct]))?;
    report.with_column(Column::new("empty_open_hours".into(), [(days * (close - open) as i64 - busy_open).max(0)]))?;
    let names: Vec<String> = report.get_column_names().iter().map(|s| s.to_string()).collect();
    let values: Vec<String> =
        report.columns().iter().map(|c| c.get(0).map(|v| v.to_string()).unwrap_or_default()).collect();
    let mut long = df!("measure" => names, "value" => values)?;
    write_frame(&mut std::io::stdout().lock(), &mut long, f)?;
    if let Some(max) = a.max_rejected_share {
        if share > max {
            ctx.say(format!("check: rejected share {share:.4} exceeds --max-rejected-share {max}"));
            return Ok(EXIT_DIFFERENCES);
        }
    }
    Ok(EXIT_OK)
}
