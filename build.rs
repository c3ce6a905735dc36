//! Compiles in every `schemas/*.json` (the column truth of every table): the list is
//! discovered here, so adding a table needs no hand-kept include list.

use std::fmt::Write;

fn main() {
    // At run time: a compiled build script is reused from a shared target dir by other
    // checkouts, so the path it was compiled in may not be this one.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = std::path::Path::new(&manifest).join("schemas");
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
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("schemas.rs");
    std::fs::write(out, code).expect("write schemas.rs");
}
