//! Fault injection for crash-safety tests: `FOOTFALL_FAIL_AT=<step>` aborts the process at
//! that step, as a `kill -9` would; `FOOTFALL_PAUSE_AT=<step>` holds there (to keep the lock
//! while a concurrency test starts a second run, or to stop a server mid-run): while the file
//! `FOOTFALL_PAUSE_WHILE` exists (at most 2 minutes), or for 3 s without it. On reaching the
//! pause it creates the file `FOOTFALL_PAUSE_REACHED` if set, so a test waits for that instead
//! of sleeping. Steps are listed in [`STEPS`].

/// Every step at which a run can be aborted, in execution order.
pub const STEPS: &[&str] = &[
    "after-lock",
    "after-first-segment",
    "after-segments",
    "after-first-partition",
    "after-days-walked",
    "after-partitions",
    "after-sales",
    "after-snapshots",
    "after-manifest",
];

/// The steps of `footfall export`, in execution order (`export-before-commit` is inside each
/// partition's transaction, after its rows are loaded).
pub const EXPORT_STEPS: &[&str] = &["export-after-tables", "export-before-commit", "export-after-first-partition"];

/// Aborts the process if `FOOTFALL_FAIL_AT` names this step.
pub fn point(step: &str) {
    debug_assert!(STEPS.contains(&step) || EXPORT_STEPS.contains(&step), "unknown fault step {step}");
    if std::env::var("FOOTFALL_FAIL_AT").is_ok_and(|s| s == step) {
        eprintln!("footfall: injected failure at step '{step}'");
        std::process::abort();
    }
    if std::env::var("FOOTFALL_PAUSE_AT").is_ok_and(|s| s == step) {
        if let Some(reached) = std::env::var_os("FOOTFALL_PAUSE_REACHED") {
            let _ = std::fs::write(reached, step);
        }
        match std::env::var_os("FOOTFALL_PAUSE_WHILE") {
            Some(path) => {
                let t0 = std::time::Instant::now();
                while std::path::Path::new(&path).exists() && t0.elapsed().as_secs() < 120 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
            None => std::thread::sleep(std::time::Duration::from_secs(3)),
        }
    }
}
