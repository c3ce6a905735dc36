//! Golden test: the binary on the committed dataset `data/golden`, every result table
//! compared with `tests/golden/<table>.csv` (rendered by `footfall show --format csv`).
//! `FOOTFALL_UPDATE_GOLDEN=1 cargo test --test golden` rewrites the files; review the diff.

mod util;

use util::*;

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
    assert!(names.len() >= 12, "{names:?}");
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
