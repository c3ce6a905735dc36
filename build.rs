//! Compiles in every `schemas/*.json` (the column truth of every table): the list is
//! discovered here, so adding a table needs no hand-kept include list.
//!
//! Also finds the outside programs some integration tests need (an S3 server, the readers'
//! Python, Chromium, PostgreSQL, MariaDB) and sets a `cfg` for each one present, so a test whose
//! program is missing is reported by `cargo test` as *ignored* with the reason, never as
//! passed. `FOOTFALL_REQUIRE_*=1` (set by `.ci/run`) sets the `cfg` regardless: the test runs
//! and fails loudly if the program is missing. Detection reruns when those variables change; a
//! program installed later is picked up after `touch build.rs` (or run the ignored tests with
//! `cargo test -- --include-ignored`).

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn main() {
    schemas();
    tools();
}

fn schemas() {
    // At run time: a compiled build script is reused from a shared target dir by other
    // checkouts, so the path it was compiled in may not be this one.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("schemas");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("schemas/ is readable")
        .filter_map(|e| {
            let p = e.expect("schemas/ entry").path();
            (p.extension()? == "json").then(|| p.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();
    let mut code = String::from("&[\n");
    for n in &names {
        let path = dir.join(format!("{n}.json"));
        writeln!(code, "    ({n:?}, include_str!({:?})),", path.display().to_string()).unwrap();
    }
    code.push(']');
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("schemas.rs");
    std::fs::write(out, code).expect("write schemas.rs");
}

fn env(name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={name}");
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Sets `cfg(name)` when the program is found or required.
fn tool(name: &str, require: &str, found: bool) {
    println!("cargo::rustc-check-cfg=cfg({name})");
    if found || env(require).as_deref() == Some("1") {
        println!("cargo::rustc-cfg={name}");
    }
}

fn tools() {
    let home = PathBuf::from(env("HOME").unwrap_or_default());
    let s3s = env("FOOTFALL_S3S_BIN").is_some() || home.join(".cache/footfall-tools/bin/s3s-fs").exists();
    tool("has_s3s", "FOOTFALL_REQUIRE_S3", s3s);
    tool("has_readers", "FOOTFALL_REQUIRE_READERS", env("FOOTFALL_READERS_PYTHON").is_some());
    let chromium = env("FOOTFALL_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into());
    tool("has_browser", "FOOTFALL_REQUIRE_BROWSER", chromium.exists());
    let pg = env("FOOTFALL_PG_BIN").is_some()
        || std::fs::read_dir("/usr/lib/postgresql")
            .map(|r| r.filter_map(|e| e.ok()).any(|e| e.path().join("bin/initdb").exists()))
            .unwrap_or(false);
    tool("has_postgres", "FOOTFALL_REQUIRE_DB", pg);
    let maria = env("FOOTFALL_MARIADB_BIN").map(PathBuf::from).unwrap_or_else(|| "/usr/sbin/mariadbd".into());
    tool("has_mariadb", "FOOTFALL_REQUIRE_DB", maria.exists());
}
