//! Reading published result tables back (show, diff, demo summary, tests), with partition
//! pruning: only the `date=` objects inside the requested range are fetched.

use anyhow::{Context, Result};
use chrono::NaiveDate;
use polars::prelude::*;

use crate::publish::{read_parquet, snapshot_rel};
use crate::schema::TableSchema;
use crate::store::Location;

/// A table's rows, optionally limited to dates in `[from, to]`; sorted by primary key.
/// A table with no published data yields an empty frame with the schema's columns.
pub fn read_table(
    out: &Location,
    schema: &TableSchema,
    tz: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<DataFrame> {
    let rels: Vec<String> = if schema.is_snapshot() {
        let rel = snapshot_rel(&schema.name);
        match out.get_opt(&rel)? {
            Some(_) => vec![rel],
            None => vec![],
        }
    } else {
        out.list_under(&schema.name)?
            .into_iter()
            .filter(|e| e.rel.ends_with(".parquet"))
            .filter(|e| {
                let date = e
                    .rel
                    .split('/')
                    .find_map(|s| s.strip_prefix("date="))
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
                match date {
                    None => false,
                    Some(d) => from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t),
                }
            })
            .map(|e| e.rel)
            .collect()
    };
    let frames: Vec<DataFrame> =
        crate::par::map(&rels, |rel| read_parquet(out.get(rel)?).with_context(|| format!("cannot read {}", out.show(rel))))?;
    let mut df: Option<DataFrame> = None;
    for f in frames {
        let f = f.select(schema.columns.iter().map(|c| c.name.as_str()))?;
        match df.as_mut() {
            None => df = Some(f),
            Some(d) => {
                d.vstack_mut_owned(f)?;
            }
        }
    }
    let mut df = df.unwrap_or_else(|| schema.empty(tz));
    df.rechunk_mut();
    if schema.is_snapshot() && (from.is_some() || to.is_some()) && df.column("date").is_ok() {
        let lo = from.map(crate::timeutil::date_to_days).unwrap_or(i32::MIN);
        let hi = to.map(crate::timeutil::date_to_days).unwrap_or(i32::MAX);
        let d = col("date").cast(DataType::Int32);
        df = df.lazy().filter(d.clone().gt_eq(lit(lo)).and(d.lt_eq(lit(hi)))).collect()?;
    }
    Ok(df)
}
