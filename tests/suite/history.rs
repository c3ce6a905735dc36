//! A year of hourly probe files (the size of history users have): 365 × 24 files plus one new
//! hour, a few records each, Europe/Berlin (both DST changes inside). Every command that
//! walks the whole history must succeed on it, and the figures must be the ones worked out
//! here from the generated records with plain std collections.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::util::*;
use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use chrono::{NaiveDate, TimeZone};
use parquet::arrow::ArrowWriter;

const DAYS: i64 = 365;
const PER_FILE: i64 = 3;
const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const SHOPS: [&str; 3] = ["S1", "S2", "S3"];

/// The records of UTC hour `h` (hours since START): (epoch second, device MAC, shop).
fn records_of_hour(h: i64) -> Vec<(i64, String, &'static str)> {
    (0..PER_FILE)
        .map(|k| {
            let device = (h * 7 + k * 13) % 60;
            let t = START + h * 3600 + (k * 1117 + h * 31) % 3600;
            (t, format!("00:aa:bb:00:00:{device:02x}"), SHOPS[((h + k) % 3) as usize])
        })
        .collect()
}

fn write_hour(probes: &Path, h: i64) {
    let recs = records_of_hour(h);
    let utc = chrono::Utc.timestamp_opt(START + h * 3600, 0).unwrap();
    let dir = probes.join(format!("date={}/hour={}", utc.format("%Y-%m-%d"), utc.format("%H")));
    std::fs::create_dir_all(&dir).unwrap();
    let col = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
    let batch = RecordBatch::try_from_iter([
        ("occur_time", Arc::new(Int64Array::from(recs.iter().map(|r| r.0).collect::<Vec<_>>())) as ArrayRef),
        ("user_device_mac", col(recs.iter().map(|r| r.1.clone()).collect())),
        ("ap_mac", col(recs.iter().map(|r| format!("00:1a:00:00:00:0{}", &r.2[1..])).collect())),
        ("shop_code", col(recs.iter().map(|r| r.2.to_string()).collect())),
        ("rssi", Arc::new(Int64Array::from(vec![-50i64; recs.len()])) as ArrayRef),
    ])
    .unwrap();
    let file = std::fs::File::create(dir.join("part-0.parquet")).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Distinct devices per local (Berlin) date of hours `0..hours`, worked out independently.
fn expected_daily_visitors(hours: i64) -> BTreeMap<NaiveDate, usize> {
    let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    let mut days: BTreeMap<NaiveDate, HashSet<String>> = BTreeMap::new();
    for h in 0..hours {
        for (t, mac, _) in records_of_hour(h) {
            let local = tz.timestamp_opt(t, 0).unwrap().date_naive();
            days.entry(local).or_default().insert(mac);
        }
    }
    days.into_iter().map(|(d, s)| (d, s.len())).collect()
}

fn daily_visitors(d: &Path) -> BTreeMap<NaiveDate, usize> {
    let csv = ok(d, &["show", "mall_daily_visitors", "--format", "csv"]).stdout;
    csv.lines()
        .skip(1)
        .map(|l| {
            let (date, n) = l.split_once(',').unwrap();
            (NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(), n.parse().unwrap())
        })
        .collect()
}

/// The value of one measure of `footfall check --format csv`.
fn measure(csv: &str, name: &str) -> String {
    let line = csv.lines().find(|l| l.starts_with(&format!("{name},"))).unwrap_or_else(|| panic!("{name}: {csv}"));
    line.split_once(',').unwrap().1.to_string()
}

#[test]
fn a_year_of_hourly_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let probes = d.join("probes");
    let hours = DAYS * 24;
    for h in 0..hours {
        write_hour(&probes, h);
    }
    std::fs::create_dir_all(d.join("dims")).unwrap();
    std::fs::write(d.join("dims/area_shop.csv"), "id,shop_code,shop_name\n1,S1,One\n2,S2,Two\n3,S3,Three\n").unwrap();
    std::fs::write(
        d.join("footfall.toml"),
        "[mall]\ntimezone = \"Europe/Berlin\"\n[input]\nprobes = \"probes\"\ndims = \"dims\"\n[output]\ndir = \"out\"\n",
    )
    .unwrap();
    assert!(files_under(&probes).len() >= 8_760);

    // The whole history, with progress bars drawn (stderr is not a terminal: `on` forces them).
    ok(d, &["--progress", "on", "run"]);
    assert_eq!(daily_visitors(d), expected_daily_visitors(hours));

    // One new hour: update after a year of history.
    write_hour(&probes, hours);
    let o = ok(d, &["--progress", "off", "update"]);
    assert!(o.stderr.contains("update: 1 file(s) read (1 new, 0 changed"), "{}", o.explain());
    let want = expected_daily_visitors(hours + 1);
    assert_eq!(daily_visitors(d), want);
    // Both DST days are in the history, with 23 and 25 hourly rows.
    let hourly =
        ok(d, &["sql", "SELECT date, COUNT(*) AS n FROM mall_hourly_visitors GROUP BY date", "--format", "csv"]);
    let n_hours = |date: &str| hourly.stdout.lines().find(|l| l.starts_with(date)).map(|l| l.to_string());
    assert_eq!(n_hours("2026-03-29").as_deref(), Some("2026-03-29,23"), "{}", hourly.stdout);
    assert_eq!(n_hours("2026-10-25").as_deref(), Some("2026-10-25,25"), "{}", hourly.stdout);

    // `probes` parses every file again.
    let n = ok(d, &["sql", "SELECT COUNT(*) AS n FROM probes", "--format", "csv"]).stdout;
    assert_eq!(n.trim(), format!("n\n{}", (hours + 1) * PER_FILE));

    let c = ok(d, &["check", "--format", "csv"]).stdout;
    let devices: HashSet<String> = (0..=hours).flat_map(records_of_hour).map(|r| r.1).collect();
    assert_eq!(measure(&c, "files"), (hours + 1).to_string(), "{c}");
    assert_eq!(measure(&c, "rows_read"), ((hours + 1) * PER_FILE).to_string(), "{c}");
    assert_eq!(measure(&c, "distinct_devices"), devices.len().to_string(), "{c}");

    let st = ok(d, &["status"]).stdout;
    assert!(st.contains(&format!("processed:   {} file(s)", hours + 1)), "{st}");
    assert!(st.contains("pending:     0 new, 0 changed"), "{st}");
    assert!(st.contains(&format!("({} dates)", want.len())), "{st}");
}
