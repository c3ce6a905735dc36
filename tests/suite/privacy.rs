//! `privacy.mac_key`: every device MAC becomes HMAC-SHA256(key, MAC)[..32 hex] and no raw
//! MAC is left in any output or state file. The pseudonyms are recomputed here with the
//! hmac crate directly (not footfall's code), and the keyed tables must equal the plain
//! ones with each MAC replaced by its pseudonym.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::util::*;
use hmac::{Hmac, Mac};
use polars::prelude::*;

const KEY: &str = "mall-secret-2026";

fn pseudonym(mac: &str) -> String {
    let mut h = Hmac::<sha2::Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    h.update(mac.as_bytes());
    h.finalize().into_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn tables_csv(d: &Path, config: &str) -> BTreeMap<String, String> {
    let names = ok(d, &["tables", "--format", "csv"]).stdout;
    names
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .filter(|t| t != "data_quality") // per-file counts; keyed or not they are equal anyway
        .map(|t| {
            let csv = ok(d, &["show", &t, "--config", config, "--format", "csv"]).stdout;
            (t, csv)
        })
        .collect()
}

#[test]
fn keyed_run_publishes_pseudonyms_only() {
    let dir = golden_mall();
    let d = dir.path();
    let base = std::fs::read_to_string(d.join("footfall.toml")).unwrap();
    std::fs::write(
        d.join("keyed.toml"),
        base.replace("dir = \"out\"", "dir = \"out-keyed\"") + &format!("\n[privacy]\nmac_key = \"{KEY}\"\n"),
    )
    .unwrap();
    ok(d, &["run", "--config", "footfall.toml"]);
    ok(d, &["run", "--config", "keyed.toml"]);

    // The raw device MACs, from the probes (unkeyed).
    let raw = ok(d, &["sql", "SELECT DISTINCT user_device_mac FROM probes", "--format", "csv"]).stdout;
    let raw: BTreeSet<String> = raw.lines().skip(1).map(str::to_string).collect();
    assert!(raw.len() >= 10, "{raw:?}");
    let map: BTreeMap<&str, String> = raw.iter().map(|m| (m.as_str(), pseudonym(m))).collect();

    // Keyed tables = plain tables with every MAC replaced (row order may differ: sorted by pseudonym).
    let plain = tables_csv(d, "footfall.toml");
    let keyed = tables_csv(d, "keyed.toml");
    let mut replaced_any = 0;
    for (t, csv) in &plain {
        let mut want: Vec<String> = csv
            .lines()
            .map(|l| {
                l.split(',')
                    .map(|f| match map.get(f) {
                        Some(p) => {
                            replaced_any += 1;
                            p.clone()
                        }
                        None => f.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        let mut got: Vec<String> = keyed[t].lines().map(str::to_string).collect();
        want[1..].sort();
        got[1..].sort();
        assert_eq!(got, want, "table {t}");
    }
    assert!(replaced_any > 1000, "the comparison covered device columns ({replaced_any} values)");

    // No raw MAC in any file: text forms in the bytes, and every decoded Parquet value.
    let raw_u64: BTreeSet<u64> = raw.iter().map(|m| u64::from_str_radix(&m.replace(':', ""), 16).unwrap()).collect();
    let out = d.join("out-keyed");
    let files: Vec<_> = files_under(&out).into_iter().map(|f| out.join(f)).collect();
    assert!(files.iter().any(|f| f.to_string_lossy().contains("_state")), "state files are checked too");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        for m in &raw {
            for form in [m.clone(), m.replace(':', ""), m.replace(':', "-")] {
                assert!(!text.contains(&form), "{} holds raw MAC {m}", f.display());
            }
        }
        if f.extension().is_some_and(|e| e == "parquet") {
            let df = ParquetReader::new(std::io::Cursor::new(bytes)).finish().unwrap();
            for c in df.columns() {
                let s = c.as_materialized_series();
                match s.dtype() {
                    DataType::UInt64 | DataType::Int64 => {
                        let v = s.cast(&DataType::UInt64).unwrap_or_else(|_| s.clone());
                        if let Ok(ca) = v.u64() {
                            for x in ca.iter().flatten() {
                                assert!(!raw_u64.contains(&x), "{}: column {} holds a raw MAC", f.display(), s.name());
                            }
                        }
                    }
                    DataType::String => {
                        for x in s.str().unwrap().iter().flatten() {
                            assert!(!raw.contains(x), "{}: column {} holds a raw MAC", f.display(), s.name());
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    // Ad hoc SQL sees pseudonyms too: the parsed probes and place_info.
    let sql = |q: &str| -> BTreeSet<String> {
        ok(d, &["sql", q, "--config", "keyed.toml", "--format", "csv"])
            .stdout
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    let pseudonyms: BTreeSet<String> = map.values().cloned().collect();
    assert_eq!(sql("SELECT DISTINCT user_device_mac FROM probes"), pseudonyms);
    let placed = sql("SELECT user_device_mac FROM place_info");
    assert!(!placed.is_empty() && placed.iter().all(|m| m.len() == 32 && !raw.contains(m)), "{placed:?}");

    // Commands that take a MAC accept the raw one.
    let some = raw.iter().next().unwrap();
    let o = ok(d, &["customer", some, "--config", "keyed.toml", "--format", "csv"]);
    assert!(o.stdout.lines().nth(1).unwrap().starts_with(&format!("{},", pseudonym(some))), "{}", o.explain());
    assert!(!o.stdout.contains(some.as_str()), "{}", o.explain());
}

#[test]
fn keyed_updates_equal_a_keyed_run() {
    // The pseudonym dictionary grows across updates; a late half must render like one run.
    let dir = golden_mall();
    let d = dir.path();
    let base = std::fs::read_to_string(d.join("footfall.toml")).unwrap();
    std::fs::write(d.join("keyed.toml"), base + &format!("\n[privacy]\nmac_key = \"{KEY}\"\n")).unwrap();
    let files = golden_files();
    let late: Vec<_> = files.iter().step_by(2).collect();
    std::fs::create_dir_all(d.join("held")).unwrap();
    for (i, f) in late.iter().enumerate() {
        std::fs::rename(d.join("probes").join(f), d.join("held").join(i.to_string())).unwrap();
    }
    ok(d, &["update", "--config", "keyed.toml"]);
    for (i, f) in late.iter().enumerate() {
        std::fs::rename(d.join("held").join(i.to_string()), d.join("probes").join(f)).unwrap();
    }
    ok(d, &["update", "--config", "keyed.toml"]);
    ok(d, &["run", "--config", "keyed.toml", "--out", "reference"]);
    let o = run(d, &["diff", "out", "reference"]);
    assert_eq!(o.code, 0, "{}", o.explain());
    let macs = ok(d, &["show", "customers", "--config", "keyed.toml", "--format", "csv"]).stdout;
    assert!(macs.lines().skip(1).all(|l| l.split(',').next().unwrap().len() == 32), "{macs}");
}
