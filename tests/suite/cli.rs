//! The binary's contract: exit codes, messages on stderr, output formats, errors that name
//! the file and column and leave published outputs untouched.

use std::path::Path;

use crate::util::*;

fn out_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                v.push((p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    v.sort();
    v
}

#[test]
fn bad_config_is_exit_2_naming_the_key() {
    let dir = golden_mall();
    let d = dir.path();
    std::fs::write(
        d.join("bad.toml"),
        "[input]\nprobes = \"probes\"\n[output]\ndir = \"out\"\n[visits]\ngap = \"soon\"\n",
    )
    .unwrap();
    let o = expect(d, &["run", "--config", "bad.toml"], 2);
    assert!(o.stderr.contains("visits.gap"), "{}", o.explain());
    assert!(o.stdout.is_empty());
    std::fs::write(d.join("typo.toml"), "[mall]\ntimezon = \"UTC\"\n").unwrap();
    let o = expect(d, &["run", "--config", "typo.toml"], 2);
    assert!(o.stderr.contains("timezon"), "{}", o.explain());
    let o = expect(d, &["run", "--config", "nope.toml"], 2);
    assert!(o.stderr.contains("nope.toml"), "{}", o.explain());
}

#[test]
fn bad_input_files_are_exit_3_and_publish_nothing() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml"]);
    let before = out_files(&d.join("out"));
    assert!(!before.is_empty());

    // A file without ap_mac, written by footfall itself from a real file minus one column.
    let src = std::fs::read_dir(d.join("probes")).unwrap().next().unwrap().unwrap().path();
    let hour = std::fs::read_dir(&src).unwrap().next().unwrap().unwrap().path();
    let file = std::fs::read_dir(&hour).unwrap().next().unwrap().unwrap().path();
    let bad_dir = d.join("probes/date=2030-01-01/hour=00");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let bad = bad_dir.join("no-ap.parquet");
    drop_column(&file, &bad, "ap_mac");
    let o = expect(d, &["update", "--config", "footfall.toml"], 3);
    assert!(o.stderr.contains("no-ap.parquet") && o.stderr.contains("'ap_mac'"), "{}", o.explain());
    assert_eq!(before, out_files(&d.join("out")), "outputs changed after a failed update");

    // A file that is not Parquet at all.
    std::fs::remove_file(&bad).unwrap();
    std::fs::write(bad_dir.join("garbage.parquet"), b"this is not parquet, just text").unwrap();
    let o = expect(d, &["run", "--config", "footfall.toml"], 3);
    assert!(o.stderr.contains("garbage.parquet"), "{}", o.explain());
    assert_eq!(before, out_files(&d.join("out")), "outputs changed after a failed run");
}

fn drop_column(from: &Path, to: &Path, column: &str) {
    use polars::prelude::*;
    let f = std::fs::File::open(from).unwrap();
    let mut df = ParquetReader::new(f).finish().unwrap();
    df = df.drop(column).unwrap();
    let out = std::fs::File::create(to).unwrap();
    ParquetWriter::new(out).finish(&mut df).unwrap();
}

#[test]
fn run_twice_and_update_give_identical_outputs() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml", "--out", "a"]);
    ok(d, &["run", "--config", "footfall.toml", "--out", "b"]);
    let o = ok(d, &["diff", "a", "b"]);
    assert!(o.stdout.is_empty(), "{}", o.explain());
    // An update with nothing new changes nothing and reads nothing.
    let o = ok(d, &["update", "--config", "footfall.toml", "--out", "b"]);
    assert!(o.stderr.contains("0 file(s) read"), "{}", o.explain());
    ok(d, &["diff", "a", "b"]);
}

#[test]
fn diff_reports_differences_with_exit_1() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml", "--out", "a"]);
    ok(d, &["run", "--config", "footfall.toml", "--out", "b", "--top-shops", "2"]);
    let o = expect(d, &["diff", "a", "b"], 1);
    assert!(o.stdout.contains("top_shops_daily") && o.stdout.contains("DIFFERENT"), "{}", o.explain());
    assert!(!o.stdout.contains("mall_daily_visitors "), "{}", o.explain());
    let o = expect(d, &["diff", "a", "b", "--tables", "mall_daily_visitors"], 0);
    assert!(o.stdout.is_empty(), "{}", o.explain());
}

#[test]
fn show_formats_filters_and_errors() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml"]);
    let all = ok(d, &["show", "mall_daily_visitors", "--format", "csv"]).stdout;
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines[0], "date,visitors");
    let first_date = lines[1].split(',').next().unwrap().to_string();
    let one = ok(d, &["show", "mall_daily_visitors", "--date", &first_date, "--format", "csv"]).stdout;
    assert_eq!(one, format!("date,visitors\n{}\n", lines[1]));
    let json = ok(d, &["show", "mall_daily_visitors", "--date", &first_date, "--format", "json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["date"], first_date.as_str());
    assert_eq!(v[0]["visitors"].to_string(), lines[1].split(',').nth(1).unwrap());
    let nd = ok(d, &["show", "top_shops_daily", "--date", &first_date, "--format", "ndjson", "--limit", "2"]).stdout;
    assert_eq!(nd.lines().count(), 2);
    let table =
        ok(d, &["show", "top_shops_daily", "--date", &first_date, "--format", "table", "--where", "rank=1"]).stdout;
    assert_eq!(table.lines().count(), 3, "{table}");
    // Parquet on stdout decodes to the same rows as the CSV, with the schema's types.
    use polars::prelude::SerReader;
    let pq = ok(d, &["show", "mall_daily_visitors", "--format", "parquet"]).raw;
    let df = polars::prelude::ParquetReader::new(std::io::Cursor::new(pq)).finish().unwrap();
    assert_eq!(df.dtypes(), [polars::prelude::DataType::Date, polars::prelude::DataType::Int64]);
    let from_pq: Vec<String> = (0..df.height())
        .map(|i| {
            format!("{},{}", df.column("date").unwrap().get(i).unwrap(), df.column("visitors").unwrap().get(i).unwrap())
        })
        .collect();
    assert_eq!(from_pq, lines[1..]);
    // An empty result is a header only.
    let empty = ok(d, &["show", "mall_daily_visitors", "--date", "1999-01-01", "--format", "csv"]).stdout;
    assert_eq!(empty, "date,visitors\n");
    let o = expect(d, &["show", "no_such_table"], 2);
    assert!(o.stderr.contains("unknown table") && o.stderr.contains("mall_daily_visitors"), "{}", o.explain());
    let o = expect(d, &["show", "mall_daily_visitors", "--date", "2026-13-01"], 2);
    assert!(o.stderr.contains("--date"), "{}", o.explain());
    let o = expect(d, &["show", "mall_daily_visitors", "--where", "nope=1"], 2);
    assert!(o.stderr.contains("nope"), "{}", o.explain());
}

#[test]
fn tables_schema_check_and_status() {
    let dir = golden_mall();
    let d = dir.path();
    let t = ok(d, &["tables", "--format", "csv"]).stdout;
    assert!(t.contains("top_shops_daily") && t.contains("top5_shop"));
    let s = ok(d, &["schema", "favorite_shop_daily", "--format", "csv"]).stdout;
    assert!(s.starts_with("column,type,nullable,key,meaning\ndate,date,false,true"), "{s}");
    expect(d, &["schema", "nope"], 2);
    let st = ok(d, &["status", "--config", "footfall.toml"]).stdout;
    assert!(st.contains("nothing processed"), "{st}");
    ok(d, &["run", "--config", "footfall.toml"]);
    let st = ok(d, &["status", "--config", "footfall.toml"]).stdout;
    assert!(st.contains("pending:     0 new, 0 changed"), "{st}");
    let c = ok(d, &["check", "--config", "footfall.toml", "--format", "csv"]).stdout;
    assert!(c.contains("rejected_share"), "{c}");
    // distinct_devices is the true count (as `probes` parses it), not the per-file sum.
    let measure = |name: &str| -> i64 {
        let l = c.lines().find(|l| l.starts_with(&format!("{name},"))).unwrap_or_else(|| panic!("{name}: {c}"));
        l.split_once(',').unwrap().1.parse().unwrap()
    };
    let q = ok(d, &["sql", "SELECT COUNT(DISTINCT user_device_mac) AS n FROM probes", "--format", "csv"]).stdout;
    assert_eq!(measure("distinct_devices").to_string(), q.lines().nth(1).unwrap(), "{c}");
    let dq = ok(d, &["sql", "SELECT SUM(distinct_devices) AS n FROM data_quality", "--format", "csv"]).stdout;
    let per_file_sum: i64 = dq.lines().nth(1).unwrap().parse().unwrap();
    assert!(measure("distinct_devices") < per_file_sum, "devices recur across files: {c}");
    // The golden data has bad rows on purpose: a zero threshold trips.
    expect(d, &["check", "--config", "footfall.toml", "--max-rejected-share", "0"], 1);
    ok(d, &["check", "--config", "footfall.toml", "--max-rejected-share", "0.5"]);
}

/// The newest local day is "so far" until data past its end arrives: `show`, `check`, `status`
/// and the demo summary say so. The watermark is worked out here as the newest second in
/// `customer_positions` (every accepted record of the golden mall, staff flagged not dropped).
#[test]
fn the_day_still_being_filled_is_marked_incomplete() {
    let dir = golden_mall();
    let d = dir.path();
    // Up to 09:00 UTC of the last UTC date: that local day (Europe/Berlin, CEST) is partial.
    for f in golden_files() {
        let s = f.to_string_lossy();
        if s.contains("date=2026-03-29/hour=") && s.split("hour=").nth(1).unwrap()[..2].parse::<u32>().unwrap() >= 9 {
            std::fs::remove_file(d.join("probes").join(&f)).unwrap();
        }
    }
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let newest = || {
        let o = ok(d, &["sql", "SELECT MAX(second) AS s FROM customer_positions", "--format", "csv"]).stdout;
        o.lines().nth(1).unwrap().to_string() // local time, e.g. 2026-03-29T10:59:58+02:00
    };
    let status = || {
        let st = ok(d, &["status", "--config", "footfall.toml", "--format", "csv"]).stdout;
        let (head, row) = st.split_once('\n').unwrap();
        let names: Vec<String> = head.split(',').map(str::to_string).collect();
        let values: Vec<String> = row.trim_end().split(',').map(str::to_string).collect();
        names.into_iter().zip(values).collect::<std::collections::BTreeMap<String, String>>()
    };
    assert!(newest().starts_with("2026-03-29"), "{}", newest());
    let o = ok(d, &["show", "mall_daily_visitors", "--config", "footfall.toml", "--format", "csv"]);
    assert!(o.stderr.contains("show: 2026-03-29 is incomplete (data through 2026-03-29 "), "{}", o.explain());
    let o =
        ok(d, &["show", "mall_daily_visitors", "--config", "footfall.toml", "--date", "2026-03-28", "--format", "csv"]);
    assert!(!o.stderr.contains("incomplete"), "{}", o.explain());
    let check = |date: &str| {
        ok(d, &["check", "--config", "footfall.toml", "--from", date, "--to", date, "--format", "csv"]).stdout
    };
    assert!(check("2026-03-28").contains("\ncomplete,true\n"), "{}", check("2026-03-28"));
    assert!(check("2026-03-29").contains("\ncomplete,false\n"), "{}", check("2026-03-29"));
    let st = status();
    assert_eq!(st["partial_from"], "2026-03-29", "{st:?}");
    // The same local instant as the newest record, to the second.
    assert_eq!(st["data_through"][..19].replace(' ', "T"), newest()[..19].replace(' ', "T"), "{st:?}");
    // The rest of the day arrives: the 29th stays so far until a record past its end.
    for f in golden_files() {
        let to = d.join("probes").join(&f);
        if !to.exists() {
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(root().join("data/golden/probes").join(&f), to).unwrap();
        }
    }
    ok(d, &["update", "--config", "footfall.toml", "--quiet"]);
    // The last UTC hours are past local midnight: the 29th is complete, the 30th so far.
    assert!(newest().starts_with("2026-03-30"), "{}", newest());
    assert_eq!(status()["partial_from"], "2026-03-30");
    assert!(check("2026-03-29").contains("\ncomplete,true\n"), "{}", check("2026-03-29"));
}

#[test]
fn global_options_are_accepted_anywhere() {
    let dir = golden_mall();
    let d = dir.path();
    let sub = d.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    // From another directory, so only the flag can find the config.
    let cfg = d.join("footfall.toml");
    let cfg = cfg.to_str().unwrap();
    let t = ok(&sub, &["tables", "--config", cfg, "--format", "csv"]).stdout;
    assert!(t.starts_with("table,grain,original,meaning\n"), "{t}");
    let s = ok(&sub, &["--format", "csv", "schema", "customers", "--config", cfg]).stdout;
    assert!(s.starts_with("column,type,nullable,key,meaning\nuser_device_mac,"), "{s}");
    ok(&sub, &["--config", cfg, "--progress", "off", "run"]);
    let before = ok(&sub, &["show", "mall_daily_visitors", "--config", cfg, "--format", "csv"]).stdout;
    let after =
        ok(&sub, &["--config", cfg, "--format", "csv", "show", "mall_daily_visitors", "--progress", "off"]).stdout;
    assert_eq!(before, after);
    assert!(before.starts_with("date,visitors\n2026-"), "{before}");
    let st = ok(&sub, &["status", "-c", cfg]).stdout;
    assert!(st.contains("pending:     0 new, 0 changed"), "{st}");
}

#[test]
fn broken_pipe_exits_zero() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml"]);
    let mut child = std::process::Command::new(bin())
        .args(["show", "customer_positions", "--format", "csv"])
        .current_dir(d)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn sql_over_tables_dimensions_and_probes() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml"]);
    // The same figure two ways: SQL over a result table and the table itself.
    let want = ok(d, &["show", "mall_daily_visitors", "--format", "csv"]).stdout;
    let got = ok(d, &["sql", "SELECT date, visitors FROM mall_daily_visitors ORDER BY date", "--format", "csv"]).stdout;
    assert_eq!(got, want);
    // Distinct devices per local date from the parsed probes equal mall_daily_visitors.
    let from_probes = ok(
        d,
        &[
            "sql",
            "SELECT date, COUNT(DISTINCT user_device_mac) AS visitors FROM probes GROUP BY date ORDER BY date",
            "--format",
            "csv",
        ],
    )
    .stdout;
    assert_eq!(from_probes, want);
    // A join with a dimension, filtered on date.
    let j = ok(d, &["sql", "SELECT s.shop_code, a.shop_name FROM shop_daily_visitors s JOIN area_shop a ON s.shop_code = a.shop_code WHERE s.date = '2026-03-28' ORDER BY s.shop_code LIMIT 1", "--format", "csv"]).stdout;
    assert_eq!(j, "shop_code,shop_name\nS001,Coffee 1\n");
    let empty = ok(d, &["sql", "SELECT * FROM mall_daily_visitors WHERE visitors < 0", "--format", "csv"]).stdout;
    assert_eq!(empty, "date,visitors\n");
    let o = expect(d, &["sql", "SELEC 1"], 2);
    assert!(o.stderr.contains("SQL"), "{}", o.explain());
    let o = expect(d, &["sql", "SELECT * FROM no_such_table"], 2);
    assert!(o.stderr.contains("no_such_table"), "{}", o.explain());
}

#[test]
fn customer_tells_one_devices_day() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml"]);
    // Pick a device with a repeat visit and compare its story with the tables.
    let rep = ok(d, &["show", "repeat_shop_visits_daily", "--format", "csv", "--limit", "1"]).stdout;
    let row: Vec<&str> = rep.lines().nth(1).unwrap().split(',').collect();
    let (date, mac, shop, visits) = (row[0], row[1], row[2], row[4]);
    let upper = mac.to_uppercase().replace(':', "-");
    let o = ok(d, &["customer", &upper, "--date", date, "--format", "csv"]);
    assert!(o.stdout.lines().skip(1).all(|l| l.starts_with(&format!("{mac},{date},"))), "{}", o.explain());
    let visits_at_shop = o.stdout.lines().filter(|l| l.starts_with(&format!("{mac},{date},{shop},"))).count();
    assert_eq!(visits_at_shop.to_string(), visits, "{}", o.explain());
    let o = ok(d, &["customer", "00:00:00:00:00:99", "--format", "table"]);
    assert!(o.stdout.contains("never seen"), "{}", o.explain());
    expect(d, &["customer", "not-a-mac"], 2);
}

#[test]
fn an_empty_dataset_publishes_empty_tables() {
    let dir = golden_mall();
    let d = dir.path();
    for input in ["probes", "sales"] {
        std::fs::remove_dir_all(d.join(input)).unwrap();
        std::fs::create_dir_all(d.join(input)).unwrap();
    }
    ok(d, &["run", "--config", "footfall.toml"]);
    ok(d, &["update", "--config", "footfall.toml"]);
    assert_eq!(ok(d, &["show", "data_quality", "--format", "ndjson"]).stdout, "");
    assert_eq!(ok(d, &["show", "mall_daily_sales", "--format", "csv"]).stdout.lines().count(), 1);
    assert_eq!(ok(d, &["show", "mall_daily_visitors", "--format", "csv"]).stdout, "date,visitors\n");
}

#[test]
fn a_missing_probes_directory_is_an_error_not_an_empty_dataset() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml"]);
    let before = out_files(&d.join("out"));
    let o = expect(d, &["run", "--config", "footfall.toml", "--probes", "probez"], 3);
    assert!(o.stderr.contains("input.probes") && o.stderr.contains("probez"), "{}", o.explain());
    assert!(!d.join("probez").exists());
    assert_eq!(before, out_files(&d.join("out")));
}

#[test]
fn update_refuses_changed_settings() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml"]);
    let o = expect(d, &["update", "--config", "footfall.toml", "--top-shops", "2"], 2);
    assert!(o.stderr.contains("settings changed") && o.stderr.contains("footfall run"), "{}", o.explain());
    ok(d, &["run", "--config", "footfall.toml", "--top-shops", "2"]);
    ok(d, &["update", "--config", "footfall.toml", "--top-shops", "2"]);
}

#[test]
fn demo_runs_end_to_end_and_summarises_engagement() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = ok(d, &["demo", "--dir", "mall"]);
    let lines: Vec<&str> = o.stdout.lines().collect();
    let header = lines.iter().position(|l| l.contains("capture_%")).unwrap_or_else(|| panic!("{}", o.explain()));
    assert!(lines[header].contains("median_dwell_min") && lines[header].contains("occasional"), "{}", o.explain());
    // Each day's loyalty classes add up to its visitors, and visitors ≤ detected.
    let mut days = 0;
    for l in lines[header + 2..].iter().take_while(|l| !l.is_empty()) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let n = |i: usize| f[i].parse::<i64>().unwrap();
        assert_eq!(n(5) + n(6) + n(7) + n(8), n(2), "{l}");
        assert!(n(2) <= n(1), "{l}");
        days += 1;
    }
    assert_eq!(days, 8, "{}", o.explain());
    // The summary is what the tables say.
    let eng = ok(
        d,
        &["show", "mall_daily_engagement", "--config", "mall/footfall.toml", "--date", "2026-03-05", "--format", "csv"],
    );
    let row: Vec<&str> = eng.stdout.lines().nth(1).unwrap().split(',').collect();
    let demo_row: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("2026-03-05") && l.split_whitespace().count() == 10)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!((demo_row[1], demo_row[2]), (row[1], row[2]), "detected and visitors");
    // The demo also writes its report and says where.
    let report = d.join("mall/report.html");
    assert!(o.stdout.contains("mall/report.html"), "{}", o.explain());
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("2026-03-05") && html.contains("id=\"footfall-data\""), "report lacks the demo's data");
}

/// Parses machine-readable output in `format`, returning its number of records; panics naming
/// the command when it does not parse.
fn parse_output(o: &Out, format: &str) -> usize {
    use polars::prelude::*;
    match format {
        "csv" => {
            let df = CsvReadOptions::default()
                .with_has_header(true)
                .into_reader_with_file_handle(std::io::Cursor::new(o.raw.clone()))
                .finish()
                .unwrap_or_else(|e| panic!("not CSV: {e}\n{}", o.explain()));
            assert!(df.width() > 0 || o.stdout.is_empty(), "no columns\n{}", o.explain());
            df.height()
        }
        "json" => match serde_json::from_str::<serde_json::Value>(&o.stdout) {
            Ok(serde_json::Value::Array(a)) => a.len(),
            Ok(other) => other.as_object().map(|_| 1).unwrap_or_else(|| panic!("not a JSON document\n{}", o.explain())),
            Err(e) => panic!("not JSON: {e}\n{}", o.explain()),
        },
        "ndjson" => o
            .stdout
            .lines()
            .map(|l| {
                let v: serde_json::Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("not NDJSON: {e}\n{}", o.explain()));
                assert!(v.is_object(), "an NDJSON line is not an object\n{}", o.explain());
            })
            .count(),
        "parquet" => ParquetReader::new(std::io::Cursor::new(o.raw.clone()))
            .finish()
            .unwrap_or_else(|e| panic!("not Parquet: {e}\n{}", o.explain()))
            .height(),
        _ => unreachable!(),
    }
}

#[test]
fn every_commands_machine_readable_output_parses() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    ok(d, &["run", "--config", "footfall.toml", "--out", "other", "--top-shops", "2", "--quiet"]);
    let rep = ok(d, &["show", "repeat_shop_visits_daily", "--format", "csv", "--limit", "1"]).stdout;
    let row: Vec<String> = rep.lines().nth(1).unwrap().split(',').map(str::to_string).collect();
    let (date, mac) = (row[0].as_str(), row[1].as_str());
    // (arguments, records expected: None = any number, checked to parse only)
    let commands: Vec<(Vec<&str>, Option<usize>)> = vec![
        (vec!["tables"], None),
        (vec!["schema", "top_shops_daily"], None),
        (vec!["show", "mall_daily_visitors"], Some(3)),
        (vec!["sql", "SELECT date, visitors FROM mall_daily_visitors ORDER BY date"], Some(3)),
        (vec!["check"], None),
        (vec!["status"], Some(1)),
        (vec!["update", "--dry-run"], Some(0)),
        (vec!["diff", "out", "other"], None),
        (vec!["diff", "out", "out"], None),
        (vec!["customer", mac, "--date", date], None),
        (vec!["customer", "00:00:00:00:00:99"], None),
    ];
    for (args, want) in &commands {
        for format in ["csv", "json", "ndjson", "parquet"] {
            let mut full: Vec<&str> = args.clone();
            full.extend(["--config", "footfall.toml", "--format", format]);
            let o = run(d, &full);
            if args[0] == "customer" && format == "parquet" {
                assert_eq!(o.code, 2, "customer has no Parquet form\n{}", o.explain());
                continue;
            }
            let expected_code = if args[0] == "diff" && args[2] == "other" { 1 } else { 0 };
            assert_eq!(o.code, expected_code, "{}", o.explain());
            let n = parse_output(&o, format);
            if let Some(want) = want {
                assert_eq!(n, *want, "records\n{}", o.explain());
            }
        }
    }
    // The records say what the readable forms say.
    let status = ok(d, &["status", "--format", "json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v[0]["processed_files"], golden_files().len());
    assert_eq!((v[0]["pending_new"].as_i64(), v[0]["first_date"].as_str()), (Some(0), Some("2026-03-28")));
    let diff = ok(d, &["diff", "out", "out", "--format", "json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&diff).unwrap();
    assert!(v.as_array().unwrap().iter().all(|t| t["equal"] == true), "{diff}");
    let diff = expect(d, &["diff", "out", "other", "--format", "csv"], 1).stdout;
    let top = diff.lines().find(|l| l.starts_with("top_shops_daily,")).unwrap();
    assert!(top.starts_with("top_shops_daily,false,"), "{diff}");
    assert!(diff.lines().any(|l| l.starts_with("mall_daily_visitors,true,")), "{diff}");
    let story = ok(d, &["customer", mac, "--date", date, "--format", "json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&story).unwrap();
    assert_eq!((v["device"].as_str(), v["date"].as_str(), v["seen"].as_bool()), (Some(mac), Some(date), Some(true)));
    let visits = ok(d, &["customer", mac, "--date", date, "--format", "csv"]).stdout;
    assert_eq!(visits.lines().count() - 1, v["visits"].as_array().unwrap().len(), "{visits}");
    assert!(visits.starts_with("device,date,shop_code,shop_name,start,end,dwell_seconds,favourite\n"), "{visits}");
    // A new file shows up in the dry run's records.
    std::fs::create_dir_all(d.join("probes/date=2026-03-30/hour=00")).unwrap();
    std::fs::copy(d.join("probes").join(&golden_files()[0]), d.join("probes/date=2026-03-30/hour=00/extra.parquet"))
        .unwrap();
    let dry = ok(d, &["update", "--dry-run", "--format", "ndjson"]).stdout;
    assert_eq!(dry.trim(), "{\"change\":\"new\",\"file\":\"date=2026-03-30/hour=00/extra.parquet\"}");
}
