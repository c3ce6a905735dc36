//! Frame-level test helpers: tiny hand-made probe records through the real parser
//! (`ingest::parse_frame`) and the real catalogue (`engine::compute_in_memory`).
#![allow(dead_code)]

use std::collections::BTreeMap;

use footfall::config::Settings;
use footfall::dims::Dims;
use footfall::engine::compute_in_memory;
use footfall::ingest::{parse_frame, FileLayout, IngestCtx, Layout, ProbeFile};
use footfall::store::Entry;
use footfall::timeutil::{parse_tz, LocalClock};
use polars::prelude::*;

pub const AP1: &str = "00:1a:00:00:00:01";
pub const AP2: &str = "00:1a:00:00:00:02";
pub const AP3: &str = "00:1a:00:00:00:03";

pub fn ts(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
}

pub fn settings(tz: &str) -> Settings {
    Settings { tz: parse_tz(tz).unwrap(), tz_name: tz.into(), ..Settings::default() }
}

pub fn dims() -> Dims {
    let mut d = Dims::empty();
    d.shops = df!("shop_code" => ["S1", "S2"], "shop_name" => ["Shop One", "Shop Two"]).unwrap();
    d.known_shops = ["S1".to_string(), "S2".to_string()].into_iter().collect();
    d
}

/// Records (epoch second, device MAC, AP MAC, shop, rssi) as an all-string file.
pub fn events(s: &Settings, recs: &[(i64, &str, &str, &str, i64)]) -> DataFrame {
    let df = df!(
        "occur_time" => recs.iter().map(|r| r.0.to_string()).collect::<Vec<_>>(),
        "user_device_mac" => recs.iter().map(|r| r.1.to_string()).collect::<Vec<_>>(),
        "ap_mac" => recs.iter().map(|r| r.2.to_string()).collect::<Vec<_>>(),
        "shop_code" => recs.iter().map(|r| r.3.to_string()).collect::<Vec<_>>(),
        "rssi" => recs.iter().map(|r| r.4.to_string()).collect::<Vec<_>>(),
    )
    .unwrap();
    let known = dims().known_shops;
    let mut ctx = IngestCtx {
        clock: LocalClock::new(s.tz),
        known_shops: &known,
        known_aps: None,
        exclude_randomized: s.exclude_randomized,
        key: None,
    };
    let file = ProbeFile::new(Entry { rel: "x.parquet".into(), size: 0, e_tag: None, last_modified: 0 });
    let layout = FileLayout { occur_time: Layout::Text, rssi: Layout::Text };
    let p = parse_frame(&df, "test", &file, layout, &mut ctx).unwrap();
    assert_eq!(p.quality.rows_accepted as usize, recs.len(), "every test record is valid");
    p.events
}

/// Rows as CSV lines, with timestamps as epoch seconds so expectations are zone-free.
pub fn rows(df: &DataFrame) -> Vec<String> {
    let mut cols = Vec::new();
    for c in df.columns() {
        let s = c.as_materialized_series();
        let s = match s.dtype() {
            DataType::Datetime(_, _) => (s.to_physical_repr().into_owned() / 1_000_000i64).with_name(s.name().clone()),
            _ => s.clone(),
        };
        cols.push(s.into_column());
    }
    let mut df = DataFrame::new(df.height(), cols).unwrap();
    let mut buf = Vec::new();
    CsvWriter::new(&mut buf).include_header(false).finish(&mut df).unwrap();
    String::from_utf8(buf).unwrap().lines().map(str::to_string).collect()
}

pub fn tables(s: &Settings, d: &Dims, recs: &[(i64, &str, &str, &str, i64)]) -> BTreeMap<String, Vec<String>> {
    compute_in_memory(vec![events(s, recs)], d, s, None).unwrap().into_iter().map(|(k, v)| (k, rows(&v))).collect()
}
