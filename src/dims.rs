//! Dimension tables (docs/inputs.md), read as they are at run time from `<name>.parquet` or
//! `<name>.csv`. Keys are normalised the same way as the facts (MACs to `u64`), so joins
//! are integer joins; a bad key or number is an error naming file, row and column.

use std::collections::HashSet;
use std::io::Cursor;

use anyhow::{bail, Context, Result};
use polars::prelude::*;

use crate::mac::{parse_mac, MacKey};
use crate::schema::MAC;
use crate::store::Location;

/// The dimensions a run needs, normalised.
#[derive(Clone)]
pub struct Dims {
    /// shop_code, shop_name (one row per shop_code).
    pub shops: DataFrame,
    pub known_shops: HashSet<String>,
    /// AP MACs of ap_info; `None` when there is no ap_info table.
    pub known_aps: Option<HashSet<u64>>,
    /// user_device_mac (u64), x, y (f64).
    pub places: DataFrame,
    /// ap_mac (u64), x, y (f64).
    pub aps: DataFrame,
    /// With a MAC key: place_info's device ids → pseudonyms (for rendering place_info).
    pub place_names: Option<crate::schema::Pseudonyms>,
}

impl Dims {
    /// Empty dimensions (no shop names, no positions).
    pub fn empty() -> Self {
        Dims {
            shops: df!("shop_code" => Vec::<String>::new(), "shop_name" => Vec::<String>::new()).unwrap(),
            known_shops: HashSet::new(),
            known_aps: None,
            places: df!(MAC => Vec::<u64>::new(), "x" => Vec::<f64>::new(), "y" => Vec::<f64>::new()).unwrap(),
            aps: df!("ap_mac" => Vec::<u64>::new(), "x" => Vec::<f64>::new(), "y" => Vec::<f64>::new()).unwrap(),
            place_names: None,
        }
    }
}

/// Reads a dimension table as all-text columns; `None` if neither file exists.
fn read_raw(dims: &Location, name: &str) -> Result<Option<(String, DataFrame)>> {
    let pq = format!("{name}.parquet");
    if let Some(bytes) = dims.get_opt(&pq)? {
        let shown = dims.show(&pq);
        let df = ParquetReader::new(Cursor::new(bytes))
            .finish()
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{shown}: unreadable Parquet"))?;
        return Ok(Some((shown, df)));
    }
    let csv = format!("{name}.csv");
    if let Some(bytes) = dims.get_opt(&csv)? {
        let shown = dims.show(&csv);
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .into_reader_with_file_handle(Cursor::new(bytes))
            .finish()
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{shown}: unreadable CSV"))?;
        return Ok(Some((shown, df)));
    }
    Ok(None)
}

fn text_col(df: &DataFrame, file: &str, col: &str) -> Result<Vec<Option<String>>> {
    let c = df.column(col).map_err(|_| anyhow::anyhow!("{file}: missing required column '{col}'"))?;
    let s = c
        .as_materialized_series()
        .cast(&DataType::String)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{file}: column '{col}'"))?;
    Ok(s.str()?.iter().map(|v| v.map(str::to_string)).collect())
}

fn mac_col(df: &DataFrame, file: &str, col: &str) -> Result<Vec<u64>> {
    text_col(df, file, col)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v.as_deref().and_then(parse_mac) {
            Some(m) => Ok(m),
            None => bail!("{file}: row {}: column '{col}': not a MAC address: {:?}", i + 2, v.unwrap_or_default()),
        })
        .collect()
}

fn float_col(df: &DataFrame, file: &str, col: &str) -> Result<Vec<Option<f64>>> {
    text_col(df, file, col)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => s
                .parse::<f64>()
                .map(Some)
                .map_err(|_| anyhow::anyhow!("{file}: row {}: column '{col}': not a number: {s:?}", i + 2)),
        })
        .collect()
}

/// Keeps the first row per key, so a duplicated dimension row cannot multiply facts.
fn first_per_key(df: DataFrame, key: &str) -> Result<DataFrame> {
    Ok(df.lazy().unique_stable_generic(Some(vec![col(key)]), UniqueKeepStrategy::First).collect()?)
}

/// Loads the dimensions; `area_shop` is required when a dims location is configured. With a
/// MAC key, place_info's devices are keyed like the facts before any join.
pub fn load(dims: Option<&Location>, key: Option<&MacKey>) -> Result<Dims> {
    let Some(dims) = dims else { return Ok(Dims::empty()) };
    let mut out = Dims::empty();
    match read_raw(dims, "area_shop")? {
        None => bail!("{}: required dimension table area_shop(.parquet|.csv) not found", dims.display),
        Some((file, df)) => {
            let codes = text_col(&df, &file, "shop_code")?;
            let names = text_col(&df, &file, "shop_name")?;
            if let Some(i) = codes.iter().position(|c| c.as_deref().unwrap_or("").is_empty()) {
                bail!("{file}: row {}: column 'shop_code' is empty", i + 2);
            }
            out.known_shops = codes.iter().flatten().cloned().collect();
            let shops = DataFrame::new(
                codes.len(),
                vec![Column::new("shop_code".into(), codes), Column::new("shop_name".into(), names)],
            )?;
            out.shops = first_per_key(shops, "shop_code")?;
        }
    }
    if let Some((file, df)) = read_raw(dims, "place_info")? {
        let mut macs = mac_col(&df, &file, MAC)?;
        if let Some(k) = key {
            let mut names = crate::schema::Pseudonyms::new();
            for m in macs.iter_mut() {
                let (id, name) = k.id(*m);
                names.insert(id, name);
                *m = id;
            }
            out.place_names = Some(names);
        }
        let x = float_col(&df, &file, "used_x")?;
        let y = float_col(&df, &file, "used_y")?;
        let places = DataFrame::new(
            macs.len(),
            vec![Column::new(MAC.into(), macs), Column::new("x".into(), x), Column::new("y".into(), y)],
        )?;
        out.places = first_per_key(places, MAC)?;
    }
    if let Some((file, df)) = read_raw(dims, "ap_info")? {
        let macs = mac_col(&df, &file, "ap_mac")?;
        out.known_aps = Some(macs.iter().copied().collect());
        let x = float_col(&df, &file, "x")?;
        let y = float_col(&df, &file, "y")?;
        let aps = DataFrame::new(
            macs.len(),
            vec![Column::new("ap_mac".into(), macs), Column::new("x".into(), x), Column::new("y".into(), y)],
        )?;
        out.aps = first_per_key(aps, "ap_mac")?;
    }
    Ok(out)
}
