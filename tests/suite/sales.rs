//! Sales (`[input] sales`): the golden mall's hand-written POS files
//! (`data/golden/sales/`, Europe/Berlin, 2026-03-29 is the DST day) worked out by hand,
//! a late corrected file, batch ≡ incremental, a bad file, the week-over-week trend, and money
//! summed exactly over 10^6 rows.

use std::collections::BTreeMap;
use std::path::Path;

use crate::util::*;

/// A table as CSV lines (header left out), through `show`.
fn table(d: &Path, name: &str) -> Vec<String> {
    let o = ok(d, &["show", name, "--config", "footfall.toml", "--format", "csv"]);
    o.stdout.lines().skip(1).map(str::to_string).collect()
}

/// `column` of each CSV line keyed by its first `key` columns.
fn by_key(d: &Path, name: &str, key: usize) -> BTreeMap<String, BTreeMap<String, String>> {
    let o = ok(d, &["show", name, "--config", "footfall.toml", "--format", "csv"]);
    let mut lines = o.stdout.lines();
    let head: Vec<String> = lines.next().unwrap().split(',').map(str::to_string).collect();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let k = cells[..key].join(",");
            (k, head.iter().cloned().zip(cells.iter().map(|c| c.to_string())).collect())
        })
        .collect()
}

#[test]
fn golden_sales_follow_the_rules_worked_by_hand() {
    let dir = golden_mall();
    let d = dir.path();
    let o = ok(d, &["run", "--config", "footfall.toml"]);
    // 9 + 4 + 2 rows; rejected: S009 unknown, T6 without sold_at, U3's amount "abc".
    assert!(o.stderr.contains("sales: 3 file(s) read (3 new, 0 changed), 15 rows, 3 rejected"), "{}", o.explain());
    // data_quality: one row per sales file, by reason (shop_code_missing is shared with probes).
    let sql = "SELECT date, file, rows_read, rows_accepted, rows_rejected, rejected_shop_unknown, \
               rejected_sold_at_missing, rejected_amount_invalid, rejected_mac_invalid FROM data_quality \
               WHERE source = 'sales' ORDER BY file";
    let dq = ok(d, &["sql", sql, "--config", "footfall.toml", "--format", "csv"]).stdout;
    let dq: Vec<&str> = dq.lines().skip(1).collect();
    assert_eq!(
        dq,
        [
            "2026-03-28,date=2026-03-28/pos-1.csv,9,7,2,1,1,0,0",
            "2026-03-29,date=2026-03-29/pos-1.csv,4,3,1,0,0,1,0",
            "2026-03-29,date=2026-03-29/pos-2-resend.csv,2,2,0,0,0,0,0",
        ]
    );
    let shops = by_key(d, "shop_daily_sales", 2);
    let visitors = by_key(d, "shop_daily_engagement", 2);
    // (date, shop) → (transactions, sales_amount), by hand from the files:
    // 28th: S001 T1 19.90 (sent twice: once) + T2 5.10; S002 T3 100 and refund T4 -20 (not a
    // transaction); S003 T7 12.34 at 23:50 local. T8 (23:30 UTC = 00:30 CET on the 29th) is
    // the 29th's. 29th: S001 U1 50.00 and its refund U5; S002 U2 0.05; S004 T8 8.00 and U4,
    // whose re-send (pos-2-resend.csv, the later path) says 35.00.
    let want = [
        ("2026-03-28,S001", "2", "25.00"),
        ("2026-03-28,S002", "1", "80.00"),
        ("2026-03-28,S003", "1", "12.34"),
        ("2026-03-28,S004", "0", "0.00"),
        ("2026-03-29,S001", "1", "0.00"),
        ("2026-03-29,S002", "1", "0.05"),
        ("2026-03-29,S003", "0", "0.00"),
        ("2026-03-29,S004", "2", "43.00"),
    ];
    for (k, tx, amount) in want {
        let r = &shops[k];
        assert_eq!((r["transactions"].as_str(), r["sales_amount"].as_str()), (tx, amount), "{k}");
        // Visitors are the shop's qualifying visitors; the ratios divide by them.
        let v: i64 = visitors[k]["visitors"].parse().unwrap();
        assert_eq!(r["visitors"], v.to_string(), "{k}");
        let (tx, cents) = (tx.parse::<f64>().unwrap(), amount.replace('.', "").parse::<f64>().unwrap());
        let ratio = |num: f64, den: f64| if den == 0.0 { String::new() } else { format!("{:?}", num / den) };
        assert_eq!(r["conversion_rate"], ratio(tx, v as f64), "{k}");
        assert_eq!(r["sales_per_visitor"], ratio(cents / 100.0, v as f64), "{k}");
        assert_eq!(r["avg_ticket"], ratio(cents / 100.0, tx), "{k}");
    }
    // Every shop with sales or an engagement row, and nothing else.
    let keys: Vec<&String> = shops.keys().collect();
    let mut expected: Vec<&String> = visitors.keys().collect();
    expected.sort();
    assert_eq!(keys, expected);

    let mall = by_key(d, "mall_daily_sales", 1);
    let engagement = by_key(d, "mall_daily_engagement", 1);
    for (date, tx, amount) in [("2026-03-28", "4", "117.34"), ("2026-03-29", "4", "43.05"), ("2026-03-30", "0", "0.00")]
    {
        let r = &mall[date];
        assert_eq!((r["transactions"].as_str(), r["sales_amount"].as_str()), (tx, amount), "{date}");
        assert_eq!(r["visitors"], engagement[date]["visitors"], "{date}");
    }
    // No week before the golden days: the trend has figures and no bases.
    let trend = by_key(d, "mall_daily_trend", 1);
    assert_eq!(trend["2026-03-28"]["sales_amount"], "117.34");
    assert_eq!(trend["2026-03-29"]["visitors"], engagement["2026-03-29"]["visitors"]);
    assert!(trend.values().all(|r| r["visitors_week_ago"].is_empty() && r["sales_change"].is_empty()));
}

/// The published sales tables' files, by path.
fn sales_files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(out)
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| ["shop_daily_sales/", "mall_daily_sales/", "mall_daily_trend/"].iter().any(|t| p.starts_with(t)))
        .map(|p| {
            let b = std::fs::read(out.join(&p)).unwrap();
            (p, b)
        })
        .collect()
}

#[test]
fn a_late_corrected_file_changes_its_date_and_equals_a_fresh_run() {
    let dir = golden_mall();
    let d = dir.path();
    // The 29th's files arrive after a first update; then a correction of the 28th.
    let later = d.join("held");
    std::fs::create_dir_all(&later).unwrap();
    std::fs::rename(d.join("sales/date=2026-03-29"), later.join("date=2026-03-29")).unwrap();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let first = table(d, "mall_daily_sales");
    // T8, in the 28th's file, is a sale of the 29th (00:30 local).
    assert!(first[1].starts_with("2026-03-29,1,8.00,"), "{first:?}");
    std::fs::rename(later.join("date=2026-03-29"), d.join("sales/date=2026-03-29")).unwrap();
    let o = ok(d, &["update", "--config", "footfall.toml"]);
    assert!(o.stderr.contains("sales: 2 file(s) read (2 new, 0 changed), 6 rows, 1 rejected"), "{}", o.explain());
    let before: BTreeMap<String, Vec<u8>> = sales_files(&d.join("out"));

    // T3 corrected from 100 to 90, and a sale T9 of S004 added: only the 28th changes.
    let fix = "transaction_id,shop_code,sold_at,amount\nT3,S002,1774699200,90.00\nT9,S004,1774699200,7.25\n";
    std::fs::write(d.join("sales/date=2026-03-28/pos-2-correction.csv"), fix).unwrap();
    let o = ok(d, &["update", "--config", "footfall.toml"]);
    assert!(o.stderr.contains("sales: 1 file(s) read (1 new, 0 changed), 2 rows, 0 rejected"), "{}", o.explain());
    let sql = "SELECT file FROM data_quality WHERE source = 'sales' AND date = '2026-03-28' ORDER BY file";
    let dq = ok(d, &["sql", sql, "--config", "footfall.toml", "--format", "csv"]).stdout;
    assert_eq!(
        dq.lines().skip(1).collect::<Vec<_>>(),
        ["date=2026-03-28/pos-1.csv", "date=2026-03-28/pos-2-correction.csv"]
    );
    let mall = table(d, "mall_daily_sales");
    assert!(mall[0].starts_with("2026-03-28,5,114.59,"), "117.34 - 10 + 7.25: {mall:?}");
    let after = sales_files(&d.join("out"));
    let quality =
        |out: &Path| -> Vec<u8> { std::fs::read(out.join("data_quality/date=2026-03-28/part-0.parquet")).unwrap() };
    let changed: Vec<&String> = after.keys().filter(|k| before.get(*k) != Some(&after[*k])).collect();
    assert!(changed.iter().all(|k| k.contains("date=2026-03-28")), "{changed:?}");
    assert!(!changed.is_empty());

    // The same files in one run: the same bytes.
    ok(d, &["run", "--config", "footfall.toml", "--out", "fresh", "--quiet"]);
    assert!(sales_files(&d.join("fresh")) == after, "update differs from a fresh run");
    assert!(quality(&d.join("fresh")) == quality(&d.join("out")), "data_quality differs from a fresh run");
}

#[test]
fn an_unreadable_sales_file_is_exit_3_naming_it_and_outputs_stay() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let before = sales_files(&d.join("out"));
    std::fs::write(d.join("sales/date=2026-03-29/pos-3.parquet"), b"not parquet").unwrap();
    let o = expect(d, &["update", "--config", "footfall.toml"], 3);
    assert!(o.stderr.contains("pos-3.parquet"), "{}", o.explain());
    assert!(sales_files(&d.join("out")) == before);
    std::fs::write(d.join("sales/date=2026-03-29/pos-3.csv"), "transaction_id,shop_code,amount\nX,S001,1\n").unwrap();
    std::fs::remove_file(d.join("sales/date=2026-03-29/pos-3.parquet")).unwrap();
    let o = expect(d, &["update", "--config", "footfall.toml"], 3);
    assert!(o.stderr.contains("pos-3.csv: missing required column 'sold_at'"), "{}", o.explain());
    assert!(sales_files(&d.join("out")) == before);
}

#[test]
fn the_trend_compares_each_date_with_the_same_weekday_a_week_before() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["generate", "--out", "m", "--days", "9", "--visitors", "30", "--shops", "4", "--seed", "5", "--quiet"]);
    let m = d.join("m");
    ok(&m, &["run", "--config", "footfall.toml", "--quiet"]);
    let visitors = by_key(&m, "mall_daily_engagement", 1);
    let new = by_key(&m, "mall_daily_new_customers", 1);
    let trend = by_key(&m, "mall_daily_trend", 1);
    assert_eq!(trend.keys().collect::<Vec<_>>(), visitors.keys().collect::<Vec<_>>());
    let mut bases = 0;
    for (date, r) in &trend {
        let week_ago =
            (chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap() - chrono::Duration::days(7)).to_string();
        assert_eq!(r["visitors"], visitors[date]["visitors"], "{date}");
        assert_eq!(r["new_customers"], new[date]["new_customers"], "{date}");
        match visitors.get(&week_ago) {
            Some(w) => {
                bases += 1;
                assert_eq!(r["visitors_week_ago"], w["visitors"], "{date}");
                assert_eq!(r["new_customers_week_ago"], new[&week_ago]["new_customers"], "{date}");
                let (now, base): (f64, f64) = (r["visitors"].parse().unwrap(), w["visitors"].parse().unwrap());
                assert_eq!(r["visitors_change"], format!("{:?}", now / base - 1.0), "{date}");
            }
            None => assert!(r["visitors_week_ago"].is_empty() && r["visitors_change"].is_empty(), "{date}"),
        }
        // The generated POS feed: the mall's sales of both dates.
        let sales = by_key(&m, "mall_daily_sales", 1);
        assert_eq!(r["sales_amount"], sales[date]["sales_amount"], "{date}");
        let cents = |s: &str| s.replace('.', "").parse::<i64>().unwrap();
        match sales.get(&week_ago) {
            Some(w) => {
                assert_eq!(r["sales_week_ago"], w["sales_amount"], "{date}");
                let (now, base) = (cents(&r["sales_amount"]) as f64, cents(&w["sales_amount"]) as f64);
                assert_eq!(r["sales_change"], format!("{:?}", now / base - 1.0), "{date}");
            }
            None => assert!(r["sales_week_ago"].is_empty() && r["sales_change"].is_empty(), "{date}"),
        }
    }
    assert!(bases >= 2, "the generated days span more than a week");
    // Without a sales input the trend keeps its other columns and its sales ones are null.
    let toml = std::fs::read_to_string(m.join("footfall.toml")).unwrap().replace("sales = \"sales\"\n", "");
    std::fs::write(m.join("footfall.toml"), toml).unwrap();
    ok(&m, &["run", "--config", "footfall.toml", "--quiet"]);
    let without = by_key(&m, "mall_daily_trend", 1);
    assert_eq!(without.keys().collect::<Vec<_>>(), trend.keys().collect::<Vec<_>>());
    for (date, r) in &without {
        assert_eq!(
            (&r["visitors"], &r["visitors_change"]),
            (&trend[date]["visitors"], &trend[date]["visitors_change"])
        );
        assert!(
            r["sales_amount"].is_empty() && r["sales_week_ago"].is_empty() && r["sales_change"].is_empty(),
            "{date}"
        );
    }
    let left =
        ["shop_daily_sales", "mall_daily_sales"].map(|t| m.join("out").join(t)).into_iter().filter(|p| p.exists());
    assert!(left.flat_map(|p| files_under(&p)).next().is_none(), "no sales tables without a sales input");
}

#[test]
fn money_sums_exactly_to_the_cent_over_a_million_rows() {
    let dir = golden_mall();
    let d = dir.path();
    std::fs::remove_dir_all(d.join("sales")).unwrap();
    std::fs::create_dir_all(d.join("sales/date=2026-03-28")).unwrap();
    // Amounts such as 0.10, 0.20, 0.30, 19.99 and -0.07 (a float sum drifts), summed here in cents.
    let mut csv = String::from("transaction_id,shop_code,sold_at,amount\n");
    let (mut cents, mut tx) = (0i64, 0i64);
    for i in 0..1_000_000i64 {
        let c = [10, 20, 30, 1999, -7, 333][(i % 6) as usize] + (i % 97);
        cents += c;
        tx += (c >= 0) as i64;
        let shop = ["S001", "S002", "S003", "S004"][(i % 4) as usize];
        let a = c.unsigned_abs();
        let sign = if c < 0 { "-" } else { "" };
        csv += &format!("t{i},{shop},{},{sign}{}.{:02}\n", 1_774_692_000 + i % 36_000, a / 100, a % 100);
    }
    std::fs::write(d.join("sales/date=2026-03-28/big.csv"), csv).unwrap();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let mall = table(d, "mall_daily_sales");
    let want = format!("2026-03-28,{tx},{}.{:02},", cents / 100, cents % 100);
    assert!(mall[0].starts_with(&want), "{} vs {want}", mall[0]);
}

#[test]
fn check_reports_sales_rejections_and_shops_selling_without_visitors() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let measures = |d: &Path| -> BTreeMap<String, String> {
        let o = ok(d, &["check", "--config", "footfall.toml", "--format", "csv"]);
        o.stdout
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(','))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let m = measures(d);
    for (k, v) in [
        ("sales_files", "3"),
        ("sales_rows_read", "15"),
        ("sales_rows_rejected", "3"),
        ("sales_rejected_shop_unknown", "1"),
        ("sales_rejected_sold_at_missing", "1"),
        ("sales_rejected_amount_invalid", "1"),
        ("sales_rejected_transaction_id_missing", "0"),
        ("shop_days_with_sales_without_visitors", "0"),
        ("sales_ids_more_than_7_days_apart", "0"),
    ] {
        assert_eq!(m.get(k).map(String::as_str), Some(v), "{k}: {m:?}");
    }
    assert!(table(d, "mall_daily_sales")[0].starts_with("2026-03-28,4,117.34,"));
    // S003 sells at 00:10 on the 30th (22:10 UTC on the 29th), when no probe heard a visitor
    // there; T1 (sold on the 28th, 19.90 at S001) comes again, sold on the 30th at S003: the
    // later file wins, so T1 leaves the 28th (4 → 3 transactions, 117.34 − 19.90 = 97.44).
    std::fs::create_dir_all(d.join("sales/date=2026-03-30")).unwrap();
    let csv = "transaction_id,shop_code,sold_at,amount\nV1,S003,1774822200,9.99\nT1,S003,1774822300,19.90\n";
    std::fs::write(d.join("sales/date=2026-03-30/pos-1.csv"), csv).unwrap();
    ok(d, &["update", "--config", "footfall.toml", "--quiet"]);
    let row = table(d, "shop_daily_sales").into_iter().find(|l| l.starts_with("2026-03-30,S003,")).unwrap();
    assert!(row.starts_with("2026-03-30,S003,Shoes 1,2,29.89,0,,,14.945"), "{row}");
    assert!(table(d, "mall_daily_sales")[0].starts_with("2026-03-28,3,97.44,"), "{:?}", table(d, "mall_daily_sales"));
    let m = measures(d);
    assert_eq!(
        (m["shop_days_with_sales_without_visitors"].as_str(), m["sales_ids_more_than_7_days_apart"].as_str()),
        ("1", "0")
    );
    // T2 (5.10 at S001 on the 28th) again on 8 April, 11 days later: beyond the window, it
    // counts on both dates, and check says so.
    std::fs::create_dir_all(d.join("sales/date=2026-04-08")).unwrap();
    let csv = "transaction_id,shop_code,sold_at,amount\nT2,S001,1775642400,5.10\n";
    std::fs::write(d.join("sales/date=2026-04-08/pos-1.csv"), csv).unwrap();
    ok(d, &["update", "--config", "footfall.toml", "--quiet"]);
    let mall = table(d, "mall_daily_sales");
    assert!(
        mall[0].starts_with("2026-03-28,3,97.44,") && mall.last().unwrap().starts_with("2026-04-08,1,5.10,"),
        "{mall:?}"
    );
    assert_eq!(measures(d)["sales_ids_more_than_7_days_apart"], "1");
    // The updates equal one run of the same files.
    ok(d, &["run", "--config", "footfall.toml", "--out", "fresh", "--quiet"]);
    assert!(sales_files(&d.join("fresh")) == sales_files(&d.join("out")), "update differs from a fresh run");
}

#[test]
fn sales_files_arriving_in_any_order_or_an_update_killed_after_sales_equal_one_run() {
    let dir = golden_mall();
    let d = dir.path();
    // The correction of the 28th joins the golden files; a run over all of them is the reference.
    let fix = "transaction_id,shop_code,sold_at,amount\nT3,S002,1774699200,90.00\nU2,S002,1774774800,0.10\n";
    std::fs::write(d.join("sales/date=2026-03-28/pos-2-correction.csv"), fix).unwrap();
    ok(d, &["run", "--config", "footfall.toml", "--out", "once", "--quiet"]);
    let quality_and_sales = |out: &Path| -> BTreeMap<String, Vec<u8>> {
        let mut m = sales_files(out);
        for f in files_under(&out.join("data_quality")) {
            m.insert(
                format!("data_quality/{}", f.display()),
                std::fs::read(out.join("data_quality").join(&f)).unwrap(),
            );
        }
        m
    };
    let want = quality_and_sales(&d.join("once"));
    let all: Vec<std::path::PathBuf> = files_under(&d.join("sales"));
    assert_eq!(all.len(), 4);
    let held = d.join("held");
    for order in [[3, 1, 0, 2], [2, 0, 3, 1]] {
        std::fs::rename(d.join("sales"), &held).unwrap();
        std::fs::create_dir_all(d.join("sales")).unwrap();
        let _ = std::fs::remove_dir_all(d.join("out"));
        ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
        for (k, i) in order.into_iter().enumerate() {
            let to = d.join("sales").join(&all[i]);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(held.join(&all[i]), &to).unwrap();
            // The second arrival's update dies once its sales are published, before its commit.
            if k == 1 {
                let o = run_env(d, &["update", "--config", "footfall.toml"], &[("FOOTFALL_FAIL_AT", "after-sales")]);
                assert_ne!(o.code, 0, "{}", o.explain());
            }
            ok(d, &["update", "--config", "footfall.toml", "--quiet"]);
        }
        std::fs::remove_dir_all(d.join("sales")).unwrap();
        std::fs::rename(&held, d.join("sales")).unwrap();
        let got = quality_and_sales(&d.join("out"));
        assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{order:?}");
        for (k, v) in &want {
            assert!(got[k] == *v, "{k} differs after arrival order {order:?}");
        }
    }
}
