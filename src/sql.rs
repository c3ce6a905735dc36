//! Tables as lazy frames for ad hoc queries (`footfall sql`): every published result table,
//! the dimensions and `probes` (the parsed, normalised, accepted probe events).
//!
//! Local result tables are scanned lazily with hive partitioning, so a query filtering on
//! `date` reads only the matching partitions; remote ones are fetched through object_store.

use anyhow::{Context, Result};
use polars::prelude::*;

use crate::config::Settings;
use crate::dims::Dims;
use crate::pipeline::ingest::{self, IngestCtx};
use crate::schema::TableSchema;
use crate::schema::MAC;
use crate::store::Location;

/// A lazy frame over a published result table.
pub fn result_table(out: &Location, schema: &TableSchema, tz: &str) -> Result<LazyFrame> {
    if schema.is_view() {
        return Ok(crate::tables::read_table(out, schema, tz, None, None)?.lazy());
    }
    if let Some(dir) = out.local_path(&schema.name) {
        let has_files = dir.exists() && out.list_under(&schema.name)?.iter().any(|e| e.rel.ends_with(".parquet"));
        if has_files {
            let glob = format!("{}/**/*.parquet", dir.display());
            let args = ScanArgsParquet {
                // `date` of a partitioned table comes from the path (see crate::tables).
                hive_options: HiveOptions {
                    enabled: Some(!schema.is_snapshot() || out.mall.is_some()),
                    hive_start_idx: 0,
                    // A chain's mall is a path segment too (`<table>/mall=<id>/…`).
                    schema: (!schema.is_snapshot() || out.mall.is_some()).then(|| {
                        let mall = out.mall.as_ref().map(|_| Field::new("mall".into(), DataType::String));
                        let date = (!schema.is_snapshot())
                            .then(|| Field::new(crate::tables::PARTITION.into(), DataType::Date));
                        Arc::new(Schema::from_iter(mall.into_iter().chain(date)))
                    }),
                    try_parse_dates: true,
                },
                ..Default::default()
            };
            let lf = LazyFrame::scan_parquet(PlRefPath::from(glob.as_str()), args)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("cannot scan {}", dir.display()))?;
            let cols: Vec<Expr> = schema.columns.iter().map(|c| col(c.name.as_str())).collect();
            return Ok(lf.select(cols));
        }
        return Ok(schema.empty(tz).lazy());
    }
    Ok(crate::tables::read_table(out, schema, tz, None, None)?.lazy())
}

/// Dimensions with MACs rendered as text (place_info's devices as pseudonyms with a MAC key).
pub fn dimension_frames(dims: &Dims) -> Result<Vec<(&'static str, LazyFrame)>> {
    let mac_text = |df: &DataFrame, c: &str| -> Result<DataFrame> {
        let names = dims.place_names.as_ref().filter(|_| c == MAC);
        let s = df
            .column(c)?
            .u64()?
            .iter()
            .map(|v| v.map(|m| names.and_then(|n| n.get(&m).cloned()).unwrap_or_else(|| crate::mac::format_mac(m))))
            .collect::<StringChunked>()
            .with_name(c.into());
        let mut df = df.clone();
        df.with_column(s.into_column())?;
        Ok(df)
    };
    Ok(vec![
        ("area_shop", dims.shops.clone().lazy()),
        ("place_info", mac_text(&dims.places, MAC)?.lazy()),
        ("ap_info", mac_text(&dims.aps, "ap_mac")?.lazy()),
    ])
}

/// Parsed, normalised, accepted probe events: date, hour_start, second, user_device_mac,
/// ap_mac, shop_code, rssi (times in the mall's zone).
pub fn probes(probes: &Location, dims: &Dims, settings: &Settings) -> Result<LazyFrame> {
    let files = ingest::discover(probes)?;
    let key = settings.mac_key.as_ref();
    let parsed: Vec<ingest::Parsed> = crate::par::map(&files, |f| {
        let layout = ingest::inspect(probes, f)?;
        let mut ctx = IngestCtx::new(settings, dims);
        ingest::parse(probes.get(&f.entry.rel)?, &probes.show(&f.entry.rel), f, layout, &mut ctx)
    })?;
    // With a key, device ids are rendered as pseudonyms, never as raw MACs.
    let mut names = crate::schema::Pseudonyms::new();
    let mut frames = Vec::with_capacity(parsed.len());
    for p in parsed {
        names.extend(p.names);
        frames.push(p.events.frame()?);
    }
    let schema = probes_schema();
    let mut all = DataFrame::empty();
    for f in frames {
        if all.width() == 0 {
            all = f;
        } else {
            all.vstack_mut_owned(f)?;
        }
    }
    if all.width() == 0 {
        return Ok(DataFrame::empty_with_schema(&schema.polars_schema(&settings.tz_name)).lazy());
    }
    let df = all.lazy().rename(["day", "hour"], ["date", "hour_start"], true).collect()?;
    Ok(schema.conform_with(df, &settings.tz_name, key.map(|_| &names))?.lazy())
}

fn probes_schema() -> &'static TableSchema {
    crate::schema::get("probes").expect("schemas/probes.json")
}

/// Every result table of a chain as one frame with a `mall` column (each mall's rows read as
/// `footfall sql --mall` reads them; timestamps in UTC, since the malls' zones differ), and the
/// chain tables.
pub fn chain_tables(malls: &[crate::config::MallPlan]) -> Result<Vec<(String, LazyFrame)>> {
    let mut out = Vec::new();
    for s in crate::schema::results() {
        let mut parts = Vec::with_capacity(malls.len());
        for m in malls {
            let id = m.id.as_deref().unwrap_or_default();
            let lf = result_table(&m.plan.out, s, &m.plan.settings.tz_name)?;
            let utc: Vec<Expr> = s
                .columns
                .iter()
                .map(|c| match c.ty.as_str() {
                    "timestamp" => {
                        col(c.name.as_str()).cast(DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)))
                    }
                    _ => col(c.name.as_str()),
                })
                .collect();
            parts.push(lf.select(utc).with_column(lit(id).alias("mall")));
        }
        let all = if parts.is_empty() {
            s.empty("UTC").lazy().with_column(lit(NULL).cast(DataType::String).alias("mall"))
        } else {
            concat(parts, UnionArgs::default())?
        };
        out.push((s.name.clone(), all));
    }
    if let Some(m) = malls.first() {
        for s in crate::schema::all().iter().filter(|s| s.kind == "chain") {
            out.push((s.name.clone(), result_table(&m.plan.out.root(), s, "UTC")?));
        }
    }
    Ok(out)
}
