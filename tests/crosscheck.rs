//! Cross-check: a second, deliberately plain formulation of SPEC §3 — arrow-rs to read the
//! probe files, std collections to compute — must agree with the published tables row for
//! row, on a generated mall whose dates include a DST change (Europe/Berlin, 2026-03-29).

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int32Type, Int64Type, TimeUnit, TimestampMillisecondType};
use chrono::{NaiveDate, TimeZone, Timelike};
use chrono_tz::Tz;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use polars::prelude::*;

use util::*;

const GAP: i64 = 600;

fn norm_mac(s: &str) -> Option<String> {
    let s = s.trim().to_lowercase();
    let hex: String = match s.len() {
        12 => s.clone(),
        17 => {
            let b = s.as_bytes();
            let sep = b[2];
            if !(sep == b':' || sep == b'-') || (0..5).any(|i| b[2 + 3 * i] != sep) {
                return None;
            }
            s.split(sep as char).collect()
        }
        _ => return None,
    };
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some((0..6).map(|i| &hex[2 * i..2 * i + 2]).collect::<Vec<_>>().join(":"))
}

fn text(a: &dyn Array, i: usize) -> Option<String> {
    if a.is_null(i) {
        return None;
    }
    Some(match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => a.as_string::<i64>().value(i).to_string(),
        DataType::Utf8View => a.as_string_view().value(i).to_string(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).to_string(),
        other => panic!("unexpected type {other}"),
    })
}

/// (second, mac, ap, shop, rssi) of every accepted record.
fn oracle_records(probes: &Path) -> Vec<(i64, String, String, String, i64)> {
    let mut out = Vec::new();
    for f in files_under(probes)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .map(|p| probes.join(p))
    {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&f).unwrap()).unwrap().build().unwrap();
        for batch in reader {
            let b = batch.unwrap();
            let c = |n: &str| b.column(b.schema().index_of(n).unwrap()).clone();
            let (t, m, a, s, r) = (c("occur_time"), c("user_device_mac"), c("ap_mac"), c("shop_code"), c("rssi"));
            for i in 0..b.num_rows() {
                let secs = if t.is_null(i) {
                    None
                } else {
                    match t.data_type() {
                        DataType::Int64 => Some(t.as_primitive::<Int64Type>().value(i)),
                        DataType::Timestamp(TimeUnit::Millisecond, _) => {
                            Some(t.as_primitive::<TimestampMillisecondType>().value(i).div_euclid(1000))
                        }
                        _ => {
                            let s = text(t.as_ref(), i).unwrap();
                            let s = s.trim();
                            s.parse::<i64>().ok().or_else(|| s.split_once('.').and_then(|(a, _)| a.parse().ok()))
                        }
                    }
                };
                let mac = text(m.as_ref(), i).and_then(|s| norm_mac(&s));
                let ap = text(a.as_ref(), i).and_then(|s| norm_mac(&s));
                let shop = text(s.as_ref(), i).filter(|s| !s.is_empty());
                let rssi =
                    text(r.as_ref(), i).and_then(|s| s.trim().parse::<i64>().ok()).filter(|v| (-120..=0).contains(v));
                if let (Some(t), Some(m), Some(a), Some(s), Some(r)) = (secs, mac, ap, shop, rssi) {
                    out.push((t, m, a, s, r));
                }
            }
        }
    }
    out
}

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path).unwrap().lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

/// Published rows rendered plainly: dates as YYYY-MM-DD, timestamps as epoch seconds,
/// floats with 9 decimals, nulls empty.
fn published(out: &Path, table: &str, tz: &str) -> Vec<String> {
    let loc = footfall::store::Location::local(out).unwrap();
    let schema = footfall::schema::get(table).unwrap();
    let df = footfall::read::read_table(&loc, schema, tz, None, None).unwrap();
    let mut rows = Vec::new();
    for i in 0..df.height() {
        let mut cells = Vec::new();
        for c in df.columns() {
            let v = c.get(i).unwrap();
            cells.push(match v {
                AnyValue::Null => String::new(),
                AnyValue::Date(d) => footfall::timeutil::days_to_date(d).to_string(),
                AnyValue::Datetime(v, _, _) | AnyValue::DatetimeOwned(v, _, _) => (v / 1_000_000).to_string(),
                AnyValue::Float64(f) => format!("{f:.9}"),
                AnyValue::String(s) => s.to_string(),
                AnyValue::StringOwned(s) => s.to_string(),
                other => other.to_string(),
            });
        }
        rows.push(cells.join(","));
    }
    rows
}

#[test]
fn plain_formulation_agrees_with_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tzname = "Europe/Berlin";
    ok(
        d,
        &[
            "generate",
            "--out",
            "mall",
            "--days",
            "3",
            "--visitors",
            "120",
            "--shops",
            "6",
            "--timezone",
            tzname,
            "--start",
            "2026-03-28",
            "--seed",
            "7",
        ],
    );
    ok(d, &["run", "--config", "mall/footfall.toml"]);
    let tz: Tz = tzname.parse().unwrap();
    let out = d.join("mall/out");

    // Dimensions.
    let names: BTreeMap<String, String> =
        read_csv(&d.join("mall/dims/area_shop.csv")).into_iter().map(|r| (r[1].clone(), r[2].clone())).collect();
    let places: BTreeMap<String, (String, String)> = read_csv(&d.join("mall/dims/place_info.csv"))
        .into_iter()
        .map(|r| {
            (
                norm_mac(&r[0]).unwrap(),
                (format!("{:.9}", r[1].parse::<f64>().unwrap()), format!("{:.9}", r[2].parse::<f64>().unwrap())),
            )
        })
        .collect();
    let name = |s: &str| names.get(s).cloned().unwrap_or_default();

    // Distinct records with their local day and hour start.
    let recs: BTreeSet<(NaiveDate, i64, String, String, String, i64)> = oracle_records(&d.join("mall/probes"))
        .into_iter()
        .map(|(t, m, a, s, r)| (tz.timestamp_opt(t, 0).unwrap().date_naive(), t, m, a, s, r))
        .collect();
    assert!(recs.len() > 10_000, "generated data too small: {}", recs.len());
    let hour_of = |t: i64| {
        let l = tz.timestamp_opt(t, 0).unwrap();
        t - (l.minute() as i64 * 60 + l.second() as i64)
    };

    let mut expect: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    // Visitors.
    let mut day_devs: BTreeMap<NaiveDate, BTreeSet<&str>> = BTreeMap::new();
    let mut shop_devs: BTreeMap<(NaiveDate, &str), BTreeSet<&str>> = BTreeMap::new();
    let mut hour_devs: BTreeMap<(NaiveDate, i64), BTreeSet<&str>> = BTreeMap::new();
    for (day, t, m, _, s, _) in &recs {
        day_devs.entry(*day).or_default().insert(m);
        shop_devs.entry((*day, s)).or_default().insert(m);
        hour_devs.entry((*day, hour_of(*t))).or_default().insert(m);
    }
    expect.insert("mall_daily_visitors", day_devs.iter().map(|(d, s)| format!("{d},{}", s.len())).collect());
    expect.insert(
        "shop_daily_visitors",
        shop_devs.iter().map(|((d, s), v)| format!("{d},{s},{},{}", name(s), v.len())).collect(),
    );
    expect.insert("mall_hourly_visitors", hour_devs.iter().map(|((d, h), v)| format!("{d},{h},{}", v.len())).collect());
    let mut peak = Vec::new();
    let mut top = Vec::new();
    for day in day_devs.keys() {
        let best = hour_devs
            .iter()
            .filter(|((d, _), _)| d == day)
            .max_by(|a, b| a.1.len().cmp(&b.1.len()).then(b.0 .1.cmp(&a.0 .1)))
            .unwrap();
        peak.push(format!("{day},{},{}", best.0 .1, best.1.len()));
        let mut shops: Vec<(&str, usize)> =
            shop_devs.iter().filter(|((d, _), _)| d == day).map(|((_, s), v)| (*s, v.len())).collect();
        shops.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (i, (s, n)) in shops.iter().take(5).enumerate() {
            top.push(format!("{day},{},{s},{},{n}", i + 1, name(s)));
        }
    }
    expect.insert("peak_hour_daily", peak);
    expect.insert("top_shops_daily", top);

    // Customers and new customers.
    let mut cust: BTreeMap<&str, (i64, i64, BTreeSet<NaiveDate>)> = BTreeMap::new();
    for (day, t, m, _, _, _) in &recs {
        let e = cust.entry(m).or_insert((i64::MAX, i64::MIN, BTreeSet::new()));
        e.0 = e.0.min(*t);
        e.1 = e.1.max(*t);
        e.2.insert(*day);
    }
    expect.insert(
        "customers",
        cust.iter()
            .map(|(m, (f, l, days))| {
                format!("{m},{f},{l},{},{},{}", days.first().unwrap(), days.last().unwrap(), days.len())
            })
            .collect(),
    );
    let first_day = |m: &str| *cust[m].2.first().unwrap();
    expect.insert(
        "mall_daily_new_customers",
        day_devs
            .iter()
            .map(|(d, devs)| {
                let n = devs.iter().filter(|m| first_day(m) == *d).count();
                format!("{d},{},{n},{},{:.9}", devs.len(), devs.len() - n, n as f64 / devs.len() as f64)
            })
            .collect(),
    );

    // Positions.
    let mut pos: BTreeMap<(NaiveDate, i64, &str, &str, &str), (i64, i64)> = BTreeMap::new();
    for (day, t, m, a, s, r) in &recs {
        let e = pos.entry((*day, *t, m, a, s)).or_insert((*r, *r));
        e.0 = e.0.min(*r);
        e.1 = e.1.max(*r);
    }
    let xy = |m: &str| places.get(m).map(|(x, y)| format!("{x},{y}")).unwrap_or_else(|| ",".into());
    expect.insert(
        "customer_positions",
        pos.iter()
            .map(|((d, t, m, a, s), (lo, hi))| {
                format!("{d},{t},{m},{a},{s},{lo},{hi},{},{}", xy(m), first_day(m) == *d)
            })
            .collect(),
    );
    let mut latest: BTreeMap<(NaiveDate, &str), (i64, i64, &str, &str)> = BTreeMap::new();
    for ((d, t, m, a, s), (_, hi)) in &pos {
        let cand = (*t, *hi, *a, *s);
        let e = latest.entry((*d, m)).or_insert(cand);
        // Later second wins; then stronger; then smaller ap_mac, then smaller shop.
        if (cand.0, cand.1) > (e.0, e.1) || ((cand.0, cand.1) == (e.0, e.1) && (cand.2, cand.3) < (e.2, e.3)) {
            *e = cand;
        }
    }
    expect.insert(
        "latest_positions",
        latest.iter().map(|((d, m), (t, _, a, s))| format!("{d},{m},{t},{a},{s},{}", xy(m))).collect(),
    );

    // Visits.
    let mut secs: BTreeMap<(NaiveDate, &str, &str), BTreeSet<i64>> = BTreeMap::new();
    for (day, t, m, _, s, _) in &recs {
        secs.entry((*day, m, s)).or_default().insert(*t);
    }
    let mut per_dev: BTreeMap<(NaiveDate, &str), Vec<(&str, i64, i64)>> = BTreeMap::new();
    let mut repeat = Vec::new();
    for ((d, m, s), ts) in &secs {
        let ts: Vec<i64> = ts.iter().copied().collect();
        let (mut visits, mut dwell, mut start) = (1i64, 0i64, ts[0]);
        for w in ts.windows(2) {
            if w[1] - w[0] > GAP {
                dwell += w[0] - start;
                visits += 1;
                start = w[1];
            }
        }
        dwell += ts.last().unwrap() - start;
        per_dev.entry((*d, m)).or_default().push((s, visits, dwell));
        if visits >= 2 {
            repeat.push(format!("{d},{m},{s},{},{visits}", name(s)));
        }
    }
    expect.insert("repeat_shop_visits_daily", repeat);
    expect.insert(
        "favorite_shop_daily",
        per_dev
            .iter()
            .map(|((d, m), v)| {
                let best = v.iter().min_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(b.0))).unwrap();
                format!("{d},{m},{},{},{},{}", best.0, name(best.0), best.1, best.2)
            })
            .collect(),
    );

    let mut checked = 0;
    for (table, want) in &expect {
        let got = published(&out, table, tzname);
        if &got != want {
            let first = got.iter().zip(want.iter()).position(|(a, b)| a != b);
            panic!(
                "{table}: {} rows published, {} expected; first difference at {:?}: got {:?} want {:?}",
                got.len(),
                want.len(),
                first,
                first.map(|i| &got[i]),
                first.map(|i| &want[i])
            );
        }
        assert!(!want.is_empty(), "{table} is empty");
        checked += 1;
    }
    assert_eq!(checked, 11, "every seed table is cross-checked");
}
