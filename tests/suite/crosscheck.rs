//! Cross-check: a second, deliberately plain formulation of the seed tables (docs/tables.md) — arrow-rs to read the
//! probe files, std collections to compute — must agree with the published tables row for
//! row, on a generated mall whose dates include a DST change (Europe/Berlin, 2026-03-29).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int32Type, Int64Type, TimeUnit, TimestampMillisecondType};
use chrono::{NaiveDate, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use polars::prelude::*;

use crate::util::*;

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
    let df = footfall::tables::read_table(&loc, schema, tz, None, None).unwrap();
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

/// The tables the seed oracle below works out (docs/tables.md).
const SEED: [&str; 13] = [
    "mall_daily_visitors",
    "shop_daily_visitors",
    "mall_hourly_visitors",
    "peak_hour_daily",
    "top_shops_daily",
    "customers",
    "customers_recent",
    "customers_settled",
    "mall_daily_new_customers",
    "customer_positions",
    "latest_positions",
    "favorite_shop_daily",
    "repeat_shop_visits_daily",
];
/// The tables the §7 oracle works out.
const PRESENCE: [&str; 7] = [
    "shop_daily_engagement",
    "mall_daily_engagement",
    "mall_daily_loyalty",
    "staff_devices_daily",
    "shop_transitions_daily",
    "density_grid",
    "occupancy_5min",
];

#[test]
fn the_oracles_cover_every_result_table() {
    // data_quality is checked by hand-worked parser tests, not by an oracle; the trend against
    // the published tables it reads (sales.rs); the sales tables by the oracle below.
    let by_hand = ["data_quality", "shop_daily_sales", "mall_daily_sales", "mall_daily_trend"];
    let covered: BTreeSet<&str> = SEED.iter().chain(PRESENCE.iter()).chain(by_hand.iter()).copied().collect();
    let catalogue: BTreeSet<&str> = footfall::schema::results().map(|s| s.name.as_str()).collect();
    assert_eq!(covered, catalogue);
}

/// Every expected table equals the published one, row for row, and none is empty.
fn assert_published(out: &Path, tz: &str, expect: &BTreeMap<&str, Vec<String>>) {
    for (table, want) in expect {
        let got = published(out, table, tz);
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
    }
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
    // Its stored parts: the newest day's devices with their totals over all days, and every
    // device's totals over the days before the newest.
    let newest = recs.iter().map(|r| r.0).max().unwrap();
    let row = |m: &str, (f, l, days): &(i64, i64, BTreeSet<NaiveDate>)| {
        format!("{m},{f},{l},{},{},{}", days.first().unwrap(), days.last().unwrap(), days.len())
    };
    expect.insert(
        "customers_recent",
        cust.iter().filter(|(_, c)| c.2.contains(&newest)).map(|(m, c)| row(m, c)).collect(),
    );
    let mut settled: BTreeMap<&str, (i64, i64, BTreeSet<NaiveDate>)> = BTreeMap::new();
    for (day, t, m, _, _, _) in recs.iter().filter(|r| r.0 < newest) {
        let e = settled.entry(m).or_insert((i64::MAX, i64::MIN, BTreeSet::new()));
        e.0 = e.0.min(*t);
        e.1 = e.1.max(*t);
        e.2.insert(*day);
    }
    expect.insert("customers_settled", settled.iter().map(|(m, c)| row(m, c)).collect());
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

    assert_eq!(expect.keys().copied().collect::<BTreeSet<_>>(), SEED.into(), "every seed table is cross-checked");
    assert_published(&out, tzname, &expect);
}

/// Sessions of sorted (second, strongest rssi) pairs split where the gap exceeds `gap`:
/// (start, end, strongest rssi).
fn sessions(secs: &BTreeMap<i64, i64>, gap: i64) -> Vec<(i64, i64, i64)> {
    let mut out: Vec<(i64, i64, i64)> = Vec::new();
    for (&t, &r) in secs {
        match out.last_mut() {
            Some(last) if t - last.1 <= gap => {
                last.1 = t;
                last.2 = last.2.max(r);
            }
            _ => out.push((t, t, r)),
        }
    }
    out
}

fn mean_median(v: &[i64]) -> (String, String) {
    if v.is_empty() {
        return (String::new(), String::new());
    }
    let mut s = v.to_vec();
    s.sort();
    let n = s.len();
    let median = if n % 2 == 1 { s[n / 2] as f64 } else { (s[n / 2 - 1] + s[n / 2]) as f64 / 2.0 };
    (format!("{:.9}", s.iter().sum::<i64>() as f64 / n as f64), format!("{median:.9}"))
}

fn buckets(v: &[i64]) -> String {
    let b = [0, 300, 1200, 3600, 21600, i64::MAX];
    (0..5).map(|i| v.iter().filter(|d| **d >= b[i] && **d < b[i + 1]).count().to_string()).collect::<Vec<_>>().join(",")
}

fn ratio(a: usize, b: usize) -> String {
    if b == 0 {
        String::new()
    } else {
        format!("{:.9}", a as f64 / b as f64)
    }
}

/// Settings of one §7 cross-check (the oracle's constants and the config they go into).
struct S7 {
    tz: &'static str,
    start: &'static str,
    seed: &'static str,
    visit_gap: i64,
    mall_gap: i64,
    min_rssi: i64,
    min_dwell: i64,
    staff_hours: i64,
    staff_days: usize,
    cell: f64,
    slot: i64,
}

#[test]
fn plain_formulation_of_section_7_agrees() {
    // Ten days across Berlin's DST change with staff, passers-by, randomised MACs and rhythms.
    section_7(&S7 {
        tz: "Europe/Berlin",
        start: "2026-03-24",
        seed: "11",
        visit_gap: 600,
        mall_gap: 900,
        min_rssi: -65,
        min_dwell: 300,
        staff_hours: 6,
        staff_days: 3,
        cell: 5.0,
        slot: 900,
    });
}

#[test]
fn plain_formulation_of_section_7_agrees_with_other_settings() {
    // A shop gap longer than the mall gap (shop visits may span mall visits), looser
    // visitors, stricter staff, another grid, half-hour slots, New York's DST change.
    section_7(&S7 {
        tz: "America/New_York",
        start: "2026-03-03",
        seed: "12",
        visit_gap: 1200,
        mall_gap: 600,
        min_rssi: -70,
        min_dwell: 120,
        staff_hours: 4,
        staff_days: 2,
        cell: 3.0,
        slot: 1800,
    });
}

fn section_7(p: &S7) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tzname = p.tz;
    let gen = [
        "generate",
        "--out",
        "mall",
        "--days",
        "10",
        "--visitors",
        "60",
        "--shops",
        "5",
        "--staff",
        "2",
        "--timezone",
        tzname,
        "--start",
        p.start,
        "--seed",
        p.seed,
    ];
    ok(d, &gen);
    let config = d.join("mall/footfall.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text += &format!(
        "\n[visits]\ngap = \"{}s\"\nmall_gap = \"{}s\"\n[visitors]\nmin_rssi = {}\nmin_dwell = \"{}s\"\n\
         [staff]\nmin_hours_per_day = {}\nmin_days = {}\n[density]\ncell = {}\nslot = \"{}s\"\n",
        p.visit_gap, p.mall_gap, p.min_rssi, p.min_dwell, p.staff_hours, p.staff_days, p.cell, p.slot
    );
    std::fs::write(&config, text).unwrap();
    ok(d, &["run", "--config", "mall/footfall.toml"]);
    let tz: Tz = tzname.parse().unwrap();
    let out = d.join("mall/out");
    let (min_rssi, min_dwell, mall_gap, staff_secs, staff_days, cell, slot) =
        (p.min_rssi, p.min_dwell, p.mall_gap, p.staff_hours * 3600, p.staff_days, p.cell, p.slot);

    let names: BTreeMap<String, String> =
        read_csv(&d.join("mall/dims/area_shop.csv")).into_iter().map(|r| (r[1].clone(), r[2].clone())).collect();
    let name = |s: &str| names.get(s).cloned().unwrap_or_default();
    let coords = |file: &str| -> BTreeMap<String, (f64, f64)> {
        read_csv(&d.join("mall/dims").join(file))
            .into_iter()
            .map(|r| {
                let (x, y) = if file == "ap_info.csv" { (2, 3) } else { (1, 2) };
                (norm_mac(&r[0]).unwrap(), (r[x].parse().unwrap(), r[y].parse().unwrap()))
            })
            .collect()
    };
    let places = coords("place_info.csv");
    let aps = coords("ap_info.csv");

    let recs: BTreeSet<(NaiveDate, i64, String, String, String, i64)> = oracle_records(&d.join("mall/probes"))
        .into_iter()
        .map(|(t, m, a, s, r)| (tz.timestamp_opt(t, 0).unwrap().date_naive(), t, m, a, s, r))
        .collect();

    // Seconds per (day, device, shop) and per (day, device), with the strongest RSSI.
    let mut shop_secs: BTreeMap<(NaiveDate, &str, &str), BTreeMap<i64, i64>> = BTreeMap::new();
    let mut mall_secs: BTreeMap<(NaiveDate, &str), BTreeMap<i64, i64>> = BTreeMap::new();
    for (day, t, m, _, s, r) in &recs {
        let e = shop_secs.entry((*day, m, s)).or_default().entry(*t).or_insert(*r);
        *e = (*e).max(*r);
        let e = mall_secs.entry((*day, m)).or_default().entry(*t).or_insert(*r);
        *e = (*e).max(*r);
    }
    let qualifies = |v: &(i64, i64, i64)| v.2 >= min_rssi && v.1 - v.0 >= min_dwell;
    let mall_visits: BTreeMap<(NaiveDate, &str), Vec<(i64, i64, i64)>> =
        mall_secs.iter().map(|(k, s)| (*k, sessions(s, mall_gap))).collect();

    // Staff and visitor-days.
    let dwell_of = |day: NaiveDate, m: &str| -> Option<i64> {
        mall_visits.get(&(day, m)).map(|v| v.iter().map(|x| x.1 - x.0).sum())
    };
    let days7 = |day: NaiveDate, m: &str| -> usize {
        (0..7).filter(|k| dwell_of(day - chrono::Duration::days(*k), m).is_some_and(|s| s >= staff_secs)).count()
    };
    let is_staff = |day: NaiveDate, m: &str| days7(day, m) >= staff_days;
    let mut visitor_days: BTreeMap<&str, BTreeSet<NaiveDate>> = BTreeMap::new();
    for ((day, m), v) in &mall_visits {
        if v.iter().any(qualifies) && !is_staff(*day, m) {
            visitor_days.entry(m).or_default().insert(*day);
        }
    }

    let mut expect: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let all_days: BTreeSet<NaiveDate> = mall_secs.keys().map(|k| k.0).collect();

    // Shop engagement.
    let mut per_shop: BTreeMap<(NaiveDate, &str), (BTreeSet<&str>, BTreeSet<&str>, Vec<i64>)> = BTreeMap::new();
    for ((day, m, s), secs) in &shop_secs {
        if is_staff(*day, m) {
            continue;
        }
        let e = per_shop.entry((*day, s)).or_default();
        e.0.insert(m);
        for v in sessions(secs, p.visit_gap).iter().filter(|v| qualifies(v)) {
            e.1.insert(m);
            e.2.push(v.1 - v.0);
        }
    }
    let engagement = |det: usize, vis: usize, dw: &[i64]| {
        let (avg, med) = mean_median(dw);
        format!("{det},{vis},{},{},{},{avg},{med},{}", det - vis, ratio(vis, det), dw.len(), buckets(dw))
    };
    expect.insert(
        "shop_daily_engagement",
        per_shop
            .iter()
            .map(|((d, s), (det, vis, dw))| format!("{d},{s},{},{}", name(s), engagement(det.len(), vis.len(), dw)))
            .collect(),
    );

    // Mall engagement and loyalty.
    let mut mall_rows = Vec::new();
    let mut loyalty_rows = Vec::new();
    for day in &all_days {
        let devs: Vec<&str> = mall_visits.keys().filter(|k| k.0 == *day).map(|k| k.1).collect();
        let staff = devs.iter().filter(|m| is_staff(*day, m)).count();
        let non_staff: Vec<&str> = devs.iter().copied().filter(|m| !is_staff(*day, m)).collect();
        let mut dw = Vec::new();
        let mut vis = 0;
        for m in &non_staff {
            let q: Vec<i64> = mall_visits[&(*day, *m)].iter().filter(|v| qualifies(v)).map(|v| v.1 - v.0).collect();
            vis += !q.is_empty() as usize;
            dw.extend(q);
        }
        let randomized = non_staff.iter().filter(|m| u8::from_str_radix(&m[..2], 16).unwrap() & 2 != 0).count();
        mall_rows.push(format!(
            "{day},{},{staff},{}",
            engagement(non_staff.len(), vis, &dw),
            ratio(randomized, non_staff.len())
        ));
        let mut classes = [0usize; 4];
        for m in &non_staff {
            let Some(vd) = visitor_days.get(m).filter(|v| v.contains(day)) else { continue };
            let back = |k: i64| *day - chrono::Duration::days(k);
            let class = if vd.range(..*day).next().is_none() {
                0
            } else if vd.range(back(6)..=*day).count() >= 5 {
                1
            } else if (0..4).filter(|k| vd.range(back(7 * k + 6)..=back(7 * k)).next().is_some()).count() >= 2 {
                2
            } else {
                3
            };
            classes[class] += 1;
        }
        let visitors: usize = classes.iter().sum();
        assert_eq!(visitors, vis);
        loyalty_rows.push(format!(
            "{day},{visitors},{},{},{},{},{}",
            classes[0],
            classes[1],
            classes[2],
            classes[3],
            visitors - classes[0]
        ));
    }
    expect.insert("mall_daily_engagement", mall_rows);
    expect.insert("mall_daily_loyalty", loyalty_rows);

    // Staff devices.
    expect.insert(
        "staff_devices_daily",
        mall_visits
            .keys()
            .filter(|(day, m)| is_staff(*day, m))
            .map(|(day, m)| format!("{day},{m},{:.9},{}", dwell_of(*day, m).unwrap() as f64 / 3600.0, days7(*day, m)))
            .collect(),
    );

    // Transitions.
    let mut trans: BTreeMap<(NaiveDate, &str, &str), (usize, BTreeSet<&str>)> = BTreeMap::new();
    for ((day, m), mv) in &mall_visits {
        if is_staff(*day, m) {
            continue;
        }
        let mut q: Vec<(i64, &str)> = shop_secs
            .iter()
            .filter(|((d, dm, _), _)| d == day && dm == m)
            .flat_map(|((_, _, s), secs)| {
                sessions(secs, p.visit_gap).into_iter().filter(qualifies).map(move |v| (v.0, *s))
            })
            .collect();
        q.sort();
        let mall_of = |t: i64| mv.iter().position(|v| v.0 <= t && t <= v.1).unwrap();
        for w in q.windows(2) {
            if w[0].1 != w[1].1 && mall_of(w[0].0) == mall_of(w[1].0) {
                let e = trans.entry((*day, w[0].1, w[1].1)).or_default();
                e.0 += 1;
                e.1.insert(m);
            }
        }
    }
    expect.insert(
        "shop_transitions_daily",
        trans.iter().map(|((d, a, b), (n, devs))| format!("{d},{a},{b},{n},{}", devs.len())).collect(),
    );

    // Density.
    let mut heard: BTreeMap<(NaiveDate, &str, i64), BTreeMap<&str, i64>> = BTreeMap::new();
    for (day, t, m, a, _, r) in &recs {
        let e = heard.entry((*day, m, *t)).or_default().entry(a).or_insert(*r);
        *e = (*e).max(*r);
    }
    let round3 = |v: f64| (v * 1000.0).round() / 1000.0;
    let mut grid: BTreeMap<(NaiveDate, i64, i64, i64), BTreeSet<&str>> = BTreeMap::new();
    for ((day, m, t), by_ap) in &heard {
        if is_staff(*day, m) {
            continue;
        }
        let p = places.get(*m).copied().or_else(|| {
            let known: Vec<(f64, (f64, f64))> =
                by_ap.iter().filter_map(|(a, r)| aps.get(*a).map(|xy| (10f64.powf(*r as f64 / 10.0), *xy))).collect();
            let w: f64 = known.iter().map(|k| k.0).sum();
            (!known.is_empty()).then(|| {
                (
                    known.iter().map(|k| k.0 * k.1 .0).sum::<f64>() / w,
                    known.iter().map(|k| k.0 * k.1 .1).sum::<f64>() / w,
                )
            })
        });
        let Some((x, y)) = p else { continue };
        let off = tz
            .offset_from_utc_datetime(&chrono::DateTime::from_timestamp(*t, 0).unwrap().naive_utc())
            .fix()
            .local_minus_utc() as i64;
        let slot_start = t - (t + off).rem_euclid(slot);
        let c = |v: f64| (round3(v) / cell).floor() as i64;
        grid.entry((*day, slot_start, c(x), c(y))).or_default().insert(m);
    }
    expect.insert(
        "density_grid",
        grid.iter().map(|((d, s, x, y), devs)| format!("{d},{s},{x},{y},{}", devs.len())).collect(),
    );

    // Occupancy: every 5-minute local slot a qualifying non-staff visit overlaps, per shop and
    // for the mall ("*").
    let slot_of = |t: i64| {
        let off = tz
            .offset_from_utc_datetime(&chrono::DateTime::from_timestamp(t, 0).unwrap().naive_utc())
            .fix()
            .local_minus_utc() as i64;
        t - (t + off).rem_euclid(300)
    };
    let mut occ: BTreeMap<(NaiveDate, i64, String), BTreeSet<String>> = BTreeMap::new();
    let mut mark = |day: NaiveDate, m: &str, s: &str, v: (i64, i64, i64)| {
        let mut t = slot_of(v.0);
        while t <= v.1 {
            occ.entry((day, t, s.to_string())).or_default().insert(m.to_string());
            t += 300;
        }
    };
    for ((day, m, s), secs) in &shop_secs {
        if !is_staff(*day, m) {
            for v in sessions(secs, p.visit_gap).into_iter().filter(qualifies) {
                mark(*day, m, s, v);
            }
        }
    }
    for ((day, m), mv) in &mall_visits {
        if !is_staff(*day, m) {
            for v in mv.iter().copied().filter(qualifies) {
                mark(*day, m, "*", v);
            }
        }
    }
    expect
        .insert("occupancy_5min", occ.iter().map(|((d, t, s), devs)| format!("{d},{t},{s},{}", devs.len())).collect());

    assert_eq!(expect.keys().copied().collect::<BTreeSet<_>>(), PRESENCE.into(), "every §7 table is cross-checked");
    assert_published(&out, tzname, &expect);
    // The data exercise every rule.
    let loyalty = published(&out, "mall_daily_loyalty", tzname);
    let sum_col = |i: usize| loyalty.iter().map(|r| r.split(',').nth(i).unwrap().parse::<i64>().unwrap()).sum::<i64>();
    assert!((2..=5).all(|i| sum_col(i) > 0), "every loyalty class occurs: {loyalty:?}");
}

/// Sales, formulated plainly over the generated POS feed (its CSV text, std collections): per
/// local date, one row per transaction id from the greatest path, the later row within a file;
/// transactions = amounts >= 0, money in cents; visitors from the engagement tables (checked
/// by the oracle of section 7).
#[test]
fn plain_formulation_of_sales_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = ["generate", "--out", "mall", "--days", "4", "--visitors", "1500", "--shops", "8"];
    ok(d, &[&args[..], &["--timezone", "Europe/Berlin", "--start", "2026-03-27", "--seed", "11"]].concat());
    ok(d, &["run", "--config", "mall/footfall.toml"]);
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    let out = d.join("mall/out");
    let mut files: Vec<std::path::PathBuf> = files_under(&d.join("mall/sales"));
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    // id → (date, shop, cents), later files and rows overwriting earlier ones, whatever the date.
    let mut won: BTreeMap<String, (NaiveDate, String, i64)> = BTreeMap::new();
    let mut moved = 0;
    for f in &files {
        for r in read_csv(&d.join("mall/sales").join(f)) {
            let t: i64 = r[2].parse().unwrap();
            let date = tz.timestamp_opt(t, 0).unwrap().date_naive();
            let (neg, digits) = match r[3].strip_prefix('-') {
                Some(x) => (true, x),
                None => (false, r[3].as_str()),
            };
            let (whole, frac) = digits.split_once('.').unwrap();
            let cents = whole.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap();
            let was = won.insert(r[0].clone(), (date, r[1].clone(), if neg { -cents } else { cents }));
            moved += was.is_some_and(|w| w.0 != date) as usize;
        }
    }
    let mut shops: BTreeMap<(NaiveDate, String), (i64, i64)> = BTreeMap::new();
    assert!(moved > 0, "the feed has corrections moving a sale to another day");
    for (date, shop, cents) in won.values() {
        let e = shops.entry((*date, shop.clone())).or_default();
        e.0 += (*cents >= 0) as i64;
        e.1 += cents;
    }
    let money =
        |c: i64| format!("{}{}.{:02}", if c < 0 { "-" } else { "" }, c.unsigned_abs() / 100, c.unsigned_abs() % 100);
    let published_shops: BTreeMap<(NaiveDate, String), (i64, String, i64)> =
        published(&out, "shop_daily_sales", "Europe/Berlin")
            .iter()
            .map(|row| {
                let c: Vec<&str> = row.split(',').collect();
                let date = NaiveDate::parse_from_str(c[0], "%Y-%m-%d").unwrap();
                ((date, c[1].to_string()), (c[3].parse().unwrap(), c[4].to_string(), c[5].parse().unwrap()))
            })
            .collect();
    let visitors: BTreeMap<(NaiveDate, String), i64> = published(&out, "shop_daily_engagement", "Europe/Berlin")
        .iter()
        .map(|row| {
            let c: Vec<&str> = row.split(',').collect();
            ((NaiveDate::parse_from_str(c[0], "%Y-%m-%d").unwrap(), c[1].to_string()), c[4].parse().unwrap())
        })
        .collect();
    let mut keys: Vec<&(NaiveDate, String)> = shops.keys().chain(visitors.keys()).collect();
    keys.sort();
    keys.dedup();
    let want: BTreeMap<(NaiveDate, String), (i64, String, i64)> = keys
        .into_iter()
        .map(|k| {
            let (tx, cents) = shops.get(k).copied().unwrap_or_default();
            (k.clone(), (tx, money(cents), visitors.get(k).copied().unwrap_or(0)))
        })
        .collect();
    assert_eq!(published_shops, want);
    // The mall: the sum over shops, the mall's qualifying visitors.
    for row in published(&out, "mall_daily_sales", "Europe/Berlin") {
        let c: Vec<&str> = row.split(',').collect();
        let date = NaiveDate::parse_from_str(c[0], "%Y-%m-%d").unwrap();
        let of_day = shops.iter().filter(|((d, _), _)| *d == date);
        let (tx, cents) = of_day.fold((0, 0), |(t, m), (_, (a, b))| (t + a, m + b));
        assert_eq!((c[1].parse::<i64>().unwrap(), c[2].to_string()), (tx, money(cents)), "{date}");
    }
    assert!(won.values().any(|(_, _, c)| *c < 0), "the feed has refunds");
}
