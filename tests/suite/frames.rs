//! Frame-level test helpers: tiny hand-made probe records through the real pipeline
//! (`pipeline::execute`) on object_store's in-memory store.
#![allow(dead_code)]

use std::collections::BTreeMap;

use bytes::Bytes;
use footfall::config::{Plan, Settings};
use footfall::dims::Dims;
use footfall::mac::format_mac;
use footfall::pipeline::{execute, Mode};
use footfall::progress::{Progress, ProgressMode};
use footfall::schema::results;
use footfall::store::Location;
use footfall::tables::{parquet_bytes, read_table};
use footfall::timeutil::parse_tz;
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

/// Records (epoch second, device MAC, AP MAC, shop, rssi) as an all-string probe file.
fn probe_file(recs: &[(i64, &str, &str, &str, i64)]) -> Bytes {
    let mut df = df!(
        "occur_time" => recs.iter().map(|r| r.0.to_string()).collect::<Vec<_>>(),
        "user_device_mac" => recs.iter().map(|r| r.1.to_string()).collect::<Vec<_>>(),
        "ap_mac" => recs.iter().map(|r| r.2.to_string()).collect::<Vec<_>>(),
        "shop_code" => recs.iter().map(|r| r.3.to_string()).collect::<Vec<_>>(),
        "rssi" => recs.iter().map(|r| r.4.to_string()).collect::<Vec<_>>(),
    )
    .unwrap();
    parquet_bytes(&mut df).unwrap()
}

/// The dimension tables of `d` as the CSV files a mall would provide.
fn write_dims(dims: &Location, d: &Dims) {
    let text = |v: AnyValue| match v {
        AnyValue::Null => String::new(),
        AnyValue::UInt64(m) => format_mac(m),
        AnyValue::String(s) => s.to_string(),
        other => other.to_string(),
    };
    let csv = |header: &str, df: &DataFrame, cols: &[&str]| {
        let mut out = format!("{header}\n");
        for i in 0..df.height() {
            let cells: Vec<String> = cols.iter().map(|c| text(df.column(c).unwrap().get(i).unwrap())).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        Bytes::from(out)
    };
    let shops = d.shops.clone().lazy().with_row_index("id", Some(1)).collect().unwrap();
    dims.put("area_shop.csv", csv("id,shop_code,shop_name", &shops, &["id", "shop_code", "shop_name"])).unwrap();
    if d.places.height() > 0 {
        dims.put("place_info.csv", csv("user_device_mac,used_x,used_y", &d.places, &["user_device_mac", "x", "y"]))
            .unwrap();
    }
    if d.aps.height() > 0 {
        dims.put("ap_info.csv", csv("ap_mac,x,y", &d.aps, &["ap_mac", "x", "y"])).unwrap();
    }
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

/// Every result table but data_quality (which counts rows read, by design), as [`rows`], of
/// the real pipeline run over one probe file holding `recs`, on an in-memory store.
pub fn tables(s: &Settings, d: &Dims, recs: &[(i64, &str, &str, &str, i64)]) -> BTreeMap<String, Vec<String>> {
    let mem = Location::memory();
    let (probes, dims, out) = (mem.child("probes"), mem.child("dims"), mem.child("out"));
    probes.put("x.parquet", probe_file(recs)).unwrap();
    write_dims(&dims, d);
    let plan = Plan {
        probes,
        dims: Some(dims),
        sales: None,
        out: out.clone(),
        settings: s.clone(),
        lookback_days: None,
        export: None,
    };
    let report = execute(&plan, Mode::Run, false, Progress::new(ProgressMode::Off, true)).unwrap();
    assert_eq!((report.rows_read as usize, report.rows_rejected), (recs.len(), 0), "every test record is valid");
    results()
        .filter(|t| t.name != "data_quality")
        .map(|t| (t.name.clone(), rows(&read_table(&out, t, &s.tz_name, None, None).unwrap())))
        .collect()
}
