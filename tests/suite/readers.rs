//! Published tables through the readers a data team uses — pyarrow (`read_table` and
//! `dataset`), pandas, DuckDB, Polars and Spark (`tests/readers.py`) — after a `run` and an
//! `update`: every result table's rows, column names and types checked against `schemas/`.
//! `.ci/run` installs them in a Python environment (FOOTFALL_READERS_PYTHON); without it
//! `cargo test` reports these tests as ignored (see build.rs), unless FOOTFALL_REQUIRE_READERS=1
//! (set by `.ci/run`), where a missing Python fails them.

use std::collections::BTreeMap;

use crate::util::*;

fn python() -> String {
    std::env::var("FOOTFALL_READERS_PYTHON")
        .expect("FOOTFALL_READERS_PYTHON: a Python with pyarrow, pandas, duckdb, polars, pyspark (see .ci/run)")
}

#[test]
#[cfg_attr(not(has_readers), ignore = "needs FOOTFALL_READERS_PYTHON: .ci/run installs the readers")]
fn every_engine_reads_every_table_after_run_and_update() {
    let py = python();
    let dir = golden_mall();
    let d = dir.path();
    // Partitions written by `run` and by a later `update` must read as one dataset.
    let files = golden_files();
    let later = &files[files.len() / 2..];
    for f in later {
        std::fs::remove_file(d.join("probes").join(f)).unwrap();
    }
    ok(d, &["run", "--config", "footfall.toml"]);
    for f in later {
        let to = d.join("probes").join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root().join("data/golden/probes").join(f), to).unwrap();
    }
    let o = ok(d, &["update", "--config", "footfall.toml"]);
    assert!(o.stderr.contains(&format!("{} new", later.len())), "{}", o.explain());

    let tables = ok(d, &["tables", "--format", "csv"]).stdout;
    let mut expected = BTreeMap::new();
    for t in tables.lines().skip(1).map(|l| l.split(',').next().unwrap()) {
        let rows = ok(d, &["show", t, "--config", "footfall.toml", "--format", "csv"]).stdout.lines().count() - 1;
        expected.insert(t.to_string(), rows);
    }
    assert!(expected["customer_positions"] > 100, "{expected:?}");
    std::fs::write(d.join("expected.json"), serde_json::to_string(&expected).unwrap()).unwrap();
    let o = std::process::Command::new(&py)
        .arg(root().join("tests/readers.py"))
        .arg(d.join("out"))
        .arg(root().join("schemas"))
        .arg(d.join("expected.json"))
        .env("FOOTFALL_TZ", "Europe/Berlin")
        .output()
        .expect("cannot start python");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "tests/readers.py failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Every reader read every table.
    assert_eq!(stdout.lines().filter(|l| l.ends_with(" ok")).count(), 6 * expected.len(), "{stdout}");
}

#[test]
#[cfg_attr(not(has_readers), ignore = "needs FOOTFALL_READERS_PYTHON: .ci/run installs the readers")]
fn every_engine_reads_a_chain_table_as_one_dataset_with_a_mall_column() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::chain::chain(d);
    ok(d, &["run", "--config", "chain.toml"]);
    let tables = ["mall_daily_visitors", "shop_daily_visitors", "customers_settled"];
    // footfall's own count of each mall's rows.
    let mut want: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for t in tables {
        for (id, ..) in crate::chain::MALLS {
            let csv = ok(d, &["show", t, "--config", "chain.toml", "--mall", id, "--format", "csv"]).stdout;
            want.entry(t.to_string()).or_default().insert(id.to_string(), csv.lines().count() - 1);
        }
    }
    assert!(want["customers_settled"]["west"] > 10, "{want:?}");
    let o = std::process::Command::new(&py)
        .arg(root().join("tests/readers_chain.py"))
        .arg(d.join("out"))
        .args(tables)
        .output()
        .expect("cannot start python");
    assert!(o.status.success(), "tests/readers_chain.py failed\n{}", String::from_utf8_lossy(&o.stderr));
    let got: BTreeMap<String, BTreeMap<String, BTreeMap<String, usize>>> =
        serde_json::from_slice(o.stdout.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).unwrap()).unwrap();
    let readers: Vec<&String> = got.keys().collect();
    assert_eq!(readers, ["duckdb", "pandas", "polars", "pyarrow.dataset", "spark"]);
    for (reader, by_table) in &got {
        assert_eq!(by_table, &want, "{reader}");
    }
}
