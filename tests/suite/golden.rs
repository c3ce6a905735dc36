//! Golden test: the binary on the committed dataset `data/golden`, every result table
//! compared with `tests/golden/<table>.csv` (rendered by `footfall show --format csv`).
//! `FOOTFALL_UPDATE_GOLDEN=1 cargo test --test suite golden::` rewrites the files; review the diff.

use std::collections::BTreeSet;

use crate::util::*;

/// Names of the `schemas/*.json` files (read from disk, not through the crate) whose JSON
/// satisfies `pick`; each file must name its own table.
fn schemas_on_disk(pick: impl Fn(&serde_json::Value) -> bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(root().join("schemas")).unwrap() {
        let p = e.unwrap().path();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["name"].as_str(), p.file_stem().and_then(|s| s.to_str()), "{}", p.display());
        if pick(&v) {
            out.insert(v["name"].as_str().unwrap().to_string());
        }
    }
    out
}

#[test]
fn catalogue_and_schemas_list_the_same_tables() {
    let compiled: BTreeSet<String> = footfall::schema::all().iter().map(|s| s.name.clone()).collect();
    assert_eq!(compiled, schemas_on_disk(|_| true), "compiled-in schemas vs schemas/");
    // data_quality is partitioned by the files' dates, from the manifest, not by a day's query.
    let mut daily: BTreeSet<String> = footfall::metrics::DAILY.iter().map(|m| m.name.to_string()).collect();
    daily.insert(footfall::metrics::quality::NAME.to_string());
    // The sales stage's tables follow the probe days (src/sales).
    daily.extend(footfall::sales::TABLES.iter().map(|t| t.to_string()));
    let on_disk = schemas_on_disk(|s| s["kind"] == "result" && s["partitioning"] == "date");
    assert_eq!(daily, on_disk, "catalogue (metrics::DAILY, data_quality, sales::TABLES) vs date-partitioned schemas");
    let snapshots = schemas_on_disk(|s| s["kind"] == "result" && s["partitioning"] == "snapshot");
    let compiled: BTreeSet<String> =
        footfall::metrics::snapshots::SNAPSHOTS.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(snapshots, compiled, "metrics::SNAPSHOTS vs snapshot schemas");
    // A view is read from stored tables only.
    for v in schemas_on_disk(|s| s["partitioning"] == "view") {
        let view = footfall::schema::get(&v).unwrap();
        assert!(!view.view_of.is_empty(), "{v}");
        for part in &view.view_of {
            let p = footfall::schema::get(part).unwrap();
            assert!(
                !p.is_view() && p.primary_key == view.primary_key && p.columns.len() == view.columns.len(),
                "{v}: {part}"
            );
        }
    }
}

#[test]
fn every_table_matches_its_golden_file() {
    let dir = golden_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml"]);
    let update = std::env::var("FOOTFALL_UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let golden = root().join("tests/golden");
    std::fs::create_dir_all(&golden).unwrap();
    let tables = ok(d, &["tables", "--format", "csv"]).stdout;
    let names: Vec<&str> = tables.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    let listed: BTreeSet<&str> = names.iter().copied().collect();
    let results = schemas_on_disk(|s| s["kind"] == "result");
    assert_eq!(listed, results.iter().map(String::as_str).collect(), "`tables` vs schemas/ result tables");
    // No golden file without a table (a removed table must take its golden file along).
    let files: BTreeSet<String> = std::fs::read_dir(&golden)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_string_lossy().strip_suffix(".csv").map(str::to_string))
        .collect();
    if !update {
        assert_eq!(files, results, "tests/golden/*.csv vs schemas/ result tables");
    }
    let mut failures = Vec::new();
    for t in names {
        let got = ok(d, &["show", t, "--config", "footfall.toml", "--format", "csv"]).stdout;
        let path = golden.join(format!("{t}.csv"));
        if update {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} missing; run with FOOTFALL_UPDATE_GOLDEN=1", path.display()));
        if got != want {
            let first = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(got.lines().count().min(want.lines().count()));
            failures.push(format!(
                "{t}: {} lines vs {} golden; first difference at line {}:\n  got:  {:?}\n  want: {:?}",
                got.lines().count(),
                want.lines().count(),
                first + 1,
                got.lines().nth(first),
                want.lines().nth(first)
            ));
        }
    }
    assert!(failures.is_empty(), "golden mismatch (FOOTFALL_UPDATE_GOLDEN=1 rewrites):\n{}", failures.join("\n"));
}

#[test]
fn golden_tables_are_not_trivial() {
    // Guards against a golden set that silently lost its content.
    let golden = root().join("tests/golden");
    for (t, min_rows) in [
        ("mall_daily_visitors", 2),
        ("top_shops_daily", 4),
        ("customer_positions", 100),
        ("repeat_shop_visits_daily", 1),
        ("data_quality", 10),
    ] {
        let text = std::fs::read_to_string(golden.join(format!("{t}.csv"))).unwrap();
        assert!(text.lines().count() > min_rows, "{t} has only {} lines", text.lines().count());
    }
}
