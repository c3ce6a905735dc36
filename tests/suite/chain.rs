//! Chains (`[[malls]]`): each mall's tables equal the mall run alone, byte for byte; the
//! chain tables equal an independent computation from each mall's accepted probe events.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::util::*;

/// (id, timezone, first local date, seed): `east` and `west` share their devices (same
/// seed) with `west` a local day earlier, so shared devices cross a date boundary; `other`
/// is another crowd.
pub const MALLS: [(&str, &str, &str, u64); 3] = [
    ("east", "Asia/Shanghai", "2026-03-02", 1),
    ("west", "America/New_York", "2026-03-01", 1),
    ("other", "Europe/Berlin", "2026-03-02", 2),
];

/// Generates the three malls under `d/<id>` and writes `d/chain.toml`.
pub fn chain(d: &Path) {
    let mut toml = String::from("[mall]\nopening_hours = \"9-22\"\n[output]\ndir = \"out\"\n");
    for (id, tz, start, seed) in MALLS {
        let (seed, dir) = (seed.to_string(), d.join(id));
        ok(
            d,
            &[
                "generate",
                "--out",
                dir.to_str().unwrap(),
                "--days",
                "3",
                "--visitors",
                "60",
                "--shops",
                "6",
                "--timezone",
                tz,
                "--start",
                start,
                "--seed",
                &seed,
                "--quiet",
            ],
        );
        toml +=
            &format!("[[malls]]\nid = \"{id}\"\ntimezone = \"{tz}\"\nprobes = \"{id}/probes\"\ndims = \"{id}/dims\"\nsales = \"{id}/sales\"\n");
    }
    std::fs::write(d.join("chain.toml"), toml).unwrap();
}

/// Every published table file under `out`, relative, `_state` left out.
fn table_files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(out)
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|rel| !rel.starts_with("_state"))
        .map(|rel| {
            let bytes = std::fs::read(out.join(&rel)).unwrap();
            (rel, bytes)
        })
        .collect()
}

/// A CSV's data lines.
fn lines(csv: &str) -> Vec<String> {
    csv.lines().skip(1).map(str::to_string).collect()
}

#[test]
fn a_chain_publishes_each_mall_as_run_alone_and_exact_chain_tables() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    chain(d);
    let r = ok(d, &["run", "--config", "chain.toml", "--jobs", "2"]);
    for (id, ..) in MALLS {
        assert!(r.stderr.contains(&format!("mall {id}: run:")), "{}", r.explain());
    }
    let chain_out = table_files(&d.join("out"));

    // Each mall alone, with its generated config: the same bytes under mall=<id>.
    let mut devices: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new(); // date → mall → devices
    for (id, ..) in MALLS {
        let conf = d.join(id).join("footfall.toml");
        let conf = conf.to_str().unwrap();
        ok(d, &["run", "--config", conf, "--quiet"]);
        let alone = table_files(&d.join(id).join("out"));
        assert!(alone.len() > 20, "{id}: {} files", alone.len());
        for (rel, bytes) in &alone {
            let (table, rest) = rel.split_once('/').unwrap();
            let in_chain = format!("{table}/mall={id}/{rest}");
            assert!(chain_out.get(&in_chain) == Some(bytes), "{id}: {in_chain} differs from {rel} run alone");
        }
        let mine = chain_out.keys().filter(|k| k.contains(&format!("/mall={id}/"))).count();
        assert_eq!(mine, alone.len(), "{id}: no other files in the chain");
        // The independent formulation: distinct accepted devices per local date (probes view),
        // checked against the mall's own daily visitors first.
        let q = "SELECT CAST(date AS VARCHAR) AS d, user_device_mac FROM probes GROUP BY 1, 2";
        let rows = ok(d, &["sql", "--config", conf, "--format", "csv", q]).stdout;
        for l in lines(&rows) {
            let (date, mac) = l.split_once(',').unwrap();
            devices.entry(date.into()).or_default().entry(id.into()).or_default().insert(mac.into());
        }
        let daily = ok(d, &["show", "mall_daily_visitors", "--config", conf, "--format", "csv"]).stdout;
        for l in lines(&daily) {
            let (date, n) = l.split_once(',').unwrap();
            assert_eq!(devices[date][id].len().to_string(), n, "{id} {date}");
        }
    }

    // Chain tables, worked out from the per-mall device sets.
    let mut want_daily = Vec::new();
    let mut want_overlap = Vec::new();
    for (date, malls) in &devices {
        let mut count: BTreeMap<&String, usize> = BTreeMap::new();
        for set in malls.values() {
            for m in set {
                *count.entry(m).or_default() += 1;
            }
        }
        let cross = count.values().filter(|n| **n > 1).count();
        want_daily.push(format!("{date},{},{},{cross}", malls.len(), count.len()));
        let ids: Vec<&String> = malls.keys().collect(); // sorted: mall_a < mall_b
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                let shared = malls[*a].intersection(&malls[*b]).count();
                if shared > 0 {
                    want_overlap.push(format!("{date},{a},{b},{shared}"));
                }
            }
        }
    }
    assert!(want_overlap.iter().any(|l| l.contains("east,west")), "the test chain shares devices: {want_overlap:?}");
    let daily = ok(d, &["show", "chain_daily_visitors", "--config", "chain.toml", "--format", "csv"]).stdout;
    assert_eq!(lines(&daily), want_daily);
    // `sql` over the whole chain: each table with a `mall` column, and the chain tables.
    let q = "SELECT CAST(date AS VARCHAR) AS d, mall, visitors FROM mall_daily_visitors ORDER BY d, mall";
    let got = lines(&ok(d, &["sql", "--config", "chain.toml", "--format", "csv", q]).stdout);
    let want: Vec<String> = devices
        .iter()
        .flat_map(|(date, malls)| malls.iter().map(move |(m, set)| format!("{date},{m},{}", set.len())))
        .collect();
    assert_eq!(got, want);
    let q = "SELECT CAST(date AS VARCHAR), malls, visitors, cross_mall_visitors FROM chain_daily_visitors ORDER BY 1";
    assert_eq!(lines(&ok(d, &["sql", "--config", "chain.toml", "--format", "csv", q]).stdout), want_daily);
    // One mall of the chain (`--mall`): its daily and snapshot tables as `show` has them.
    for t in ["mall_daily_visitors", "customers_settled"] {
        let shown = ok(d, &["show", t, "--config", "chain.toml", "--mall", "west", "--format", "csv"]).stdout;
        let q = format!("SELECT COUNT(*) AS n FROM {t}");
        let n = ok(d, &["sql", "--config", "chain.toml", "--mall", "west", "--format", "csv", &q]).stdout;
        assert_eq!(lines(&n), [(shown.lines().count() - 1).to_string()], "{t}");
    }
    let q = "SELECT COUNT(DISTINCT mall) AS n FROM customer_positions";
    assert_eq!(lines(&ok(d, &["sql", "--config", "chain.toml", "--format", "csv", q]).stdout), ["3"]);
    let overlap = ok(d, &["show", "mall_overlap_daily", "--config", "chain.toml", "--format", "csv"]).stdout;
    assert_eq!(lines(&overlap), want_overlap);
}

#[test]
fn one_failing_mall_fails_alone_and_the_chain_step_reruns_from_state() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    chain(d);
    // A corrupt file in one mall: that mall fails (exit 3 for the whole run), the others publish.
    let bad = d.join("other/probes").join(&files_under(&d.join("other/probes"))[0]);
    std::fs::write(&bad, b"not parquet").unwrap();
    let r = expect(d, &["run", "--config", "chain.toml", "--jobs", "3"], 3);
    assert!(r.stderr.contains("mall other: run failed") && r.stderr.contains("1 of 3 malls failed"), "{}", r.explain());
    for id in ["east", "west"] {
        assert!(r.stderr.contains(&format!("mall {id}: run:")), "{}", r.explain());
        assert!(d.join(format!("out/mall_daily_visitors/mall={id}")).is_dir());
    }
    assert!(!d.join("out/mall_daily_visitors/mall=other").exists());
    let two = ok(d, &["show", "chain_daily_visitors", "--config", "chain.toml", "--format", "csv"]).stdout;
    assert!(lines(&two).iter().all(|l| l.split(',').nth(1).unwrap() != "3"), "{two}");

    // Fixed and run alone (as one orchestrator index would), then `footfall chain`: the same
    // chain tables as a run of the whole chain.
    std::fs::remove_file(&bad).unwrap();
    ok(d, &["run", "--config", "chain.toml", "--mall", "other"]);
    let r = ok(d, &["chain", "--config", "chain.toml"]);
    assert!(r.stderr.contains("chain: 3 mall(s)"), "{}", r.explain());
    let after_fanout = table_files(&d.join("out"));
    ok(d, &["run", "--config", "chain.toml"]);
    let whole = table_files(&d.join("out"));
    assert_eq!(after_fanout.keys().collect::<Vec<_>>(), whole.keys().collect::<Vec<_>>());
    for (rel, bytes) in &whole {
        assert!(after_fanout[rel] == *bytes, "{rel}");
    }
}

#[test]
fn mall_selection_is_validated_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    chain(d);
    let malls = ok(d, &["malls", "--config", "chain.toml", "--format", "json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&malls).unwrap();
    let ids: Vec<&str> = v.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["east", "west", "other"]);
    assert_eq!(v[1]["timezone"], "America/New_York");
    for (args, msg) in [
        (&["run", "--config", "chain.toml", "--mall", "north"][..], "no such mall"),
        (&["run", "--config", "chain.toml", "--mall-index", "3"][..], "has 3 mall(s)"),
        (&["show", "mall_daily_visitors", "--config", "chain.toml"][..], "choose one with --mall"),
        (&["run", "--config", "east/footfall.toml", "--mall", "east"][..], "need a config with [[malls]]"),
        (&["export", "--config", "chain.toml", "--mall", "south", "--to", "postgresql://x@h/db"][..], "no such mall"),
    ] {
        let r = expect(d, args, 2);
        assert!(r.stderr.contains(msg), "{}", r.explain());
    }
    assert!(!d.join("out").exists(), "nothing ran");
    ok(d, &["run", "--config", "chain.toml", "--mall-index", "1"]);
    assert!(d.join("out/mall_daily_visitors/mall=west").is_dir());
    assert!(!d.join("out/mall_daily_visitors/mall=east").exists());
}
