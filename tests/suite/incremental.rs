//! docs/operations.md: after any sequence of `update`s — files arriving in any order and grouping, late
//! files for old dates, a file replaced by a changed version, runs killed at any step — the
//! result tables equal those of one `run` over the same files, row for row.

use std::path::{Path, PathBuf};

use crate::util::*;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn golden() -> PathBuf {
    root().join("data/golden")
}

/// An empty mall: dims and config, no probe files yet.
fn empty_mall() -> tempfile::TempDir {
    empty_mall_like(&golden())
}

/// An empty mall with the dims and config of the mall at `src`.
fn empty_mall_like(src: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&src.join("dims"), &dir.path().join("dims"));
    if src.join("sales").exists() {
        copy_dir(&src.join("sales"), &dir.path().join("sales"));
    }
    std::fs::copy(src.join("footfall.toml"), dir.path().join("footfall.toml")).unwrap();
    std::fs::create_dir_all(dir.path().join("probes")).unwrap();
    dir
}

/// A mall holding every golden probe file.
fn full_mall() -> tempfile::TempDir {
    let dir = empty_mall();
    for f in golden_files() {
        add(dir.path(), &f);
    }
    dir
}

/// Generates a mall into `<dir>/mall` (`footfall generate` with these options) and returns it.
fn generated(dir: &Path, days: u32, visitors: u32, shops: u32, staff: Option<u32>, seed: u64, tz: &str) -> PathBuf {
    let (days, visitors, shops, seed) = (days.to_string(), visitors.to_string(), shops.to_string(), seed.to_string());
    let mut args = vec!["generate", "--out", "mall", "--days", &days, "--visitors", &visitors, "--shops", &shops];
    let staff = staff.map(|n| n.to_string());
    if let Some(n) = &staff {
        args.extend(["--staff", n.as_str()]);
    }
    args.extend(["--seed", &seed, "--timezone", tz, "--quiet"]);
    ok(dir, &args);
    dir.join("mall")
}

/// Generates a mall into `<dir>/mall` whose last day is written as 1-minute files.
fn minute_mall(dir: &Path, days: &str, visitors: &str, shops: &str, seed: &str, tz: &str) -> PathBuf {
    let mut args = vec!["generate", "--out", "mall", "--days", days, "--visitors", visitors, "--shops", shops];
    args.extend(["--seed", seed, "--timezone", tz, "--minute-files-days", "1", "--quiet"]);
    ok(dir, &args);
    dir.join("mall")
}

fn add(d: &Path, rel: &Path) {
    add_from(&golden(), d, rel)
}

fn add_from(src: &Path, d: &Path, rel: &Path) {
    let to = d.join("probes").join(rel);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(src.join("probes").join(rel), to).unwrap();
}

fn assert_same_as_run(d: &Path, context: &str) {
    ok(d, &["run", "--config", "footfall.toml", "--out", "reference", "--quiet"]);
    let o = run(d, &["diff", "out", "reference"]);
    assert_eq!(o.code, 0, "{context}: update differs from run\n{}", o.explain());
}

#[test]
fn random_arrival_orders_equal_one_run() {
    let files = golden_files();
    assert!(files.len() >= 30);
    arrival_orders(&golden(), &files, 0..20);
}

#[test]
fn random_arrival_orders_over_five_weeks_equal_one_run() {
    // Long enough for every staff and loyalty window; staff, weekly and daily visitors occur.
    let dir = tempfile::tempdir().unwrap();
    let src = generated(dir.path(), 30, 8, 3, Some(1), 9, "Asia/Shanghai");
    let files: Vec<PathBuf> = files_under(&src.join("probes"));
    arrival_orders(&src, &files, 100..104);
}

/// A collector flushing every minute: the last day arrives as many small files per hour
/// partition, in flush order, an update after every few flushes (a late window of one day
/// over the hourly history); the tables equal one run over the same files.
#[test]
fn files_arriving_one_flush_at_a_time_equal_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let src = minute_mall(dir.path(), "3", "40", "4", "11", "Europe/Berlin");
    let files: Vec<PathBuf> = files_under(&src.join("probes"));
    let (minutes, hourly): (Vec<&PathBuf>, Vec<&PathBuf>) =
        files.iter().partition(|f| f.to_string_lossy().contains("-m"));
    let per_hour = |f: &&PathBuf| f.parent().unwrap().to_path_buf();
    let busiest = minutes.iter().map(per_hour).fold(std::collections::BTreeMap::new(), |mut m, h| {
        *m.entry(h).or_insert(0) += 1;
        m
    });
    assert!(busiest.values().any(|n| *n >= 20), "many flushes per hour partition: {busiest:?}");
    let m = empty_mall_like(&src);
    let d = m.path();
    for f in &hourly {
        add_from(&src, d, f);
    }
    ok(d, &["update", "--config", "footfall.toml", "--quiet"]);
    // In flush order: by hour partition, then minute.
    let mut minutes = minutes;
    minutes.sort();
    for batch in minutes.chunks(minutes.len().div_ceil(40)) {
        for f in batch {
            add_from(&src, d, f);
        }
        ok(d, &["update", "--config", "footfall.toml", "--quiet"]);
    }
    assert_same_as_run(d, "minute flushes");
}

/// A day of minute files keeps its rollup (rollup::KEEP_ROLLUP_FILES): a run or an update
/// killed at any step while files are added to such a day, then an update, equals one run.
#[test]
fn killed_at_every_step_while_a_kept_rollup_grows_then_update_equals_run() {
    let dir = tempfile::tempdir().unwrap();
    let src = minute_mall(dir.path(), "2", "30", "3", "13", "Asia/Shanghai");
    let mut files: Vec<PathBuf> = files_under(&src.join("probes"));
    files.sort();
    let half = files.len() * 3 / 4;
    for step in footfall::fault::STEPS {
        // (A killed `run` starts a fresh generation: no kept rollup is read; the hourly kill
        // test covers it.)
        for mode in ["update"] {
            let m = empty_mall_like(&src);
            let d = m.path();
            for f in &files[..half] {
                add_from(&src, d, f);
            }
            ok(d, &["update", "--config", "footfall.toml", "--quiet"]);
            let kept =
                files_under(&d.join("out/_state")).iter().filter(|f| f.to_string_lossy().contains("/rollups/")).count();
            assert!(kept >= 1, "a day of minute files keeps its rollup");
            for f in &files[half..] {
                add_from(&src, d, f);
            }
            let o = run_env(d, &[mode, "--config", "footfall.toml"], &[("FOOTFALL_FAIL_AT", step)]);
            assert_ne!(o.code, 0, "{mode} should have been killed at {step}\n{}", o.explain());
            ok(d, &["update", "--config", "footfall.toml", "--quiet"]);
            assert_same_as_run(d, &format!("minute files, {mode} killed at {step}"));
        }
    }
}

/// For each seed: the files of `src` arrive in a random order and random batches, one file is
/// replaced by a smaller version after it was processed, an update after each batch (a plain
/// one, which lists only the late window, or at random `--full`), a last `--full` update; the
/// result must equal one `run`.
fn arrival_orders(src: &Path, files: &[PathBuf], seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let mut rng = SmallRng::seed_from_u64(seed);
        let dir = empty_mall_like(src);
        let d = dir.path();
        let mut order = files.to_vec();
        order.shuffle(&mut rng);
        let batches = rng.gen_range(2..=6);
        let mut cuts: Vec<usize> = (0..batches - 1).map(|_| rng.gen_range(1..order.len())).collect();
        cuts.sort();
        cuts.push(order.len());
        let changed = order[rng.gen_range(0..order.len() / 2)].clone();
        let mut start = 0;
        let mut shrunk = false;
        for (i, &end) in cuts.iter().enumerate() {
            for f in &order[start..end] {
                add_from(src, d, f);
            }
            start = end;
            // Once the file to change has been processed, replace it in the next batch.
            if i > 0 && !shrunk && order[..end].contains(&changed) {
                shrink(&d.join("probes").join(&changed));
                shrunk = true;
            }
            let mut args = vec!["update", "--config", "footfall.toml", "--quiet"];
            if rng.gen_bool(0.5) {
                args.push("--full");
            }
            ok(d, &args);
        }
        if !shrunk {
            shrink(&d.join("probes").join(&changed));
        }
        ok(d, &["update", "--config", "footfall.toml", "--quiet", "--full"]);
        assert_same_as_run(d, &format!("seed {seed}, {batches} batches, changed {}", changed.display()));
    }
}

#[test]
fn late_file_for_an_old_date_moves_new_customers() {
    // Every file except the first day's daytime files, then those: devices first seen on the
    // second day turn out to be returning, so the second day must be republished although
    // the late files hold no record of it (UTC hours 00..=20 of 03-28 are local 03-28 in Berlin).
    let dir = empty_mall();
    let d = dir.path();
    let files = golden_files();
    let is_late = |f: &PathBuf| {
        let s = f.to_string_lossy();
        s.contains("date=2026-03-28")
            && s.split("hour=").nth(1).and_then(|h| h[..2].parse::<u32>().ok()).is_some_and(|h| h <= 20)
    };
    let (late, early): (Vec<_>, Vec<_>) = files.iter().partition(|f| is_late(f));
    assert!(late.len() >= 10, "{late:?}");
    for f in &early {
        add(d, f);
    }
    ok(d, &["update", "--config", "footfall.toml"]);
    let before = ok(d, &["show", "mall_daily_new_customers", "--date", "2026-03-29", "--format", "csv"]).stdout;
    for f in &late {
        add(d, f);
    }
    let o = ok(d, &["update", "--config", "footfall.toml"]);
    assert!(o.stderr.contains("2 date(s) published"), "only 03-28 and 03-29 change\n{}", o.explain());
    let after = ok(d, &["show", "mall_daily_new_customers", "--date", "2026-03-29", "--format", "csv"]).stdout;
    assert_ne!(before, after, "2026-03-29's new customers must move\n{}", o.explain());
    assert_same_as_run(d, "late files");
}

/// The golden mall but its last hour, processed by `run`; and that last file.
fn all_but_the_last_hour_run() -> (tempfile::TempDir, PathBuf) {
    let dir = empty_mall();
    let files = golden_files();
    let (last, rest) = files.split_last().unwrap();
    for f in rest {
        add(dir.path(), f);
    }
    ok(dir.path(), &["run", "--config", "footfall.toml", "--quiet"]);
    (dir, last.clone())
}

#[test]
fn an_update_bringing_one_hour_opens_only_that_file() {
    let (dir, last) = all_but_the_last_hour_run();
    let d = dir.path();
    add(d, &last);
    let o = ok(d, &["update", "--config", "footfall.toml"]);
    // One footer read (tail + metadata = 2 ranged reads) and one body read of the new file.
    assert!(o.stderr.contains("1 file(s) read (1 new, 0 changed"), "{}", o.explain());
    assert!(o.stderr.contains("; 3 probe object reads)"), "{}", o.explain());
    assert_same_as_run(d, "one new hour");
}

/// Every object under `dir` (relative path → bytes).
fn objects(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|f| (f.to_string_lossy().into_owned(), std::fs::read(dir.join(&f)).unwrap()))
        .collect()
}

/// The manifest is a head plus a part per date: an update of one hour rewrites the head, that
/// date's part (a new version, the old one deleted) and that date's data_quality partition,
/// and leaves every other part and data_quality date byte for byte as it was; an hour of the
/// newest day rewrites `customers_recent`, not `customers_settled`.
#[test]
fn an_update_rewrites_only_the_state_part_and_quality_date_it_touched() {
    let (dir, last) = all_but_the_last_hour_run();
    let d = dir.path();
    let parts_of = |all: &std::collections::BTreeMap<String, Vec<u8>>| -> std::collections::BTreeMap<String, Vec<u8>> {
        all.iter()
            .filter(|(k, _)| {
                k.contains("/files/date=") || k.starts_with("out/data_quality/") || k.starts_with("out/customers_")
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let before = parts_of(&objects(d));
    assert!(before.keys().filter(|k| k.contains("/files/")).count() >= 2, "{:?}", before.keys());
    add(d, &last);
    ok(d, &["update", "--config", "footfall.toml", "--quiet"]);
    let after = parts_of(&objects(d));
    let date = last.to_string_lossy().split('/').find_map(|s| s.strip_prefix("date=")).unwrap().to_string();
    let touched = |k: &String| k.contains(&format!("date={date}/")) || k.starts_with("out/customers_recent/");
    let unchanged_before: Vec<_> = before.iter().filter(|(k, _)| !touched(k)).collect();
    let unchanged_after: Vec<_> = after.iter().filter(|(k, _)| !touched(k)).collect();
    assert_eq!(unchanged_before, unchanged_after, "parts and data_quality dates other than {date}");
    let versions = |m: &std::collections::BTreeMap<String, Vec<u8>>| -> Vec<String> {
        m.keys()
            .filter(|k| touched(k) && k.contains("/files/"))
            .map(|k| k.rsplit('/').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(versions(&before), ["v1.json"]);
    assert_eq!(versions(&after), ["v2.json"], "a new version replaces the old one");
    let dq = |m: &std::collections::BTreeMap<String, Vec<u8>>| {
        m.get(&format!("out/data_quality/date={date}/part-0.parquet")).cloned()
    };
    assert_ne!(dq(&before), dq(&after), "the touched date's data_quality partition is rewritten");
    assert_same_as_run(d, "one new hour");
}

#[test]
fn killed_at_every_step_then_update_equals_uninterrupted() {
    let steps = footfall::fault::STEPS;
    assert_eq!(steps.len(), 9);
    let files = golden_files();
    for (i, step) in steps.iter().enumerate() {
        for mode in ["run", "update"] {
            let dir = empty_mall();
            let d = dir.path();
            // Half the files processed before, the rest arrive and the next run is killed.
            let half = files.len() / 2 + i;
            for f in &files[..half] {
                add(d, f);
            }
            ok(d, &["update", "--config", "footfall.toml", "--quiet"]);
            for f in &files[half..] {
                add(d, f);
            }
            let o = run_env(d, &[mode, "--config", "footfall.toml"], &[("FOOTFALL_FAIL_AT", step)]);
            assert_ne!(o.code, 0, "{mode} should have been killed at {step}\n{}", o.explain());
            assert!(o.stderr.contains(&format!("injected failure at step '{step}'")), "{}", o.explain());
            // Outputs stay readable, and the next update finishes the work.
            ok(d, &["show", "mall_daily_visitors", "--format", "csv"]);
            ok(d, &["update", "--config", "footfall.toml", "--quiet"]);
            assert_same_as_run(d, &format!("{mode} killed at {step}"));
        }
    }
}

#[test]
fn concurrent_updates_one_proceeds_the_other_fails_fast() {
    let dir = full_mall();
    let d = dir.path();
    // The first update holds the lock until `hold` is removed.
    let hold = d.join("hold");
    std::fs::write(&hold, "").unwrap();
    let mut first = std::process::Command::new(bin())
        .args(["update", "--config", "footfall.toml"])
        .current_dir(d)
        .env("FOOTFALL_PAUSE_AT", "after-lock")
        .env("FOOTFALL_PAUSE_WHILE", &hold)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lock = d.join("out/_state/lock");
    wait_for(&lock);
    let o = expect(d, &["update", "--config", "footfall.toml"], 3);
    assert!(o.stderr.contains("locked by another footfall run"), "{}", o.explain());
    // Failing fast = failing while the holder still holds: the second did not wait for it.
    assert!(first.try_wait().unwrap().is_none(), "the first update ended before the second failed");
    std::fs::remove_file(&hold).unwrap();
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "first update failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!lock.exists(), "lock not released");
    assert_same_as_run(d, "after concurrent updates");
}

#[test]
fn stale_lock_of_a_dead_process_is_taken_over() {
    let dir = full_mall();
    let d = dir.path();
    std::fs::create_dir_all(d.join("out/_state")).unwrap();
    let host =
        std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into());
    let now = chrono::Utc::now().timestamp();
    // pid 4194304 is above Linux's pid_max limit, so it cannot be alive.
    std::fs::write(
        d.join("out/_state/lock"),
        format!("{{\"pid\":4194304,\"host\":\"{host}\",\"started_at\":{now},\"expires_at\":{}}}", now + 3600),
    )
    .unwrap();
    let o = ok(d, &["update", "--config", "footfall.toml"]);
    assert!(o.stderr.contains("stale lock"), "{}", o.explain());
    // The update did the work after taking the lock over, and released it.
    assert!(o.stderr.contains(&format!("{} new", golden_files().len())), "{}", o.explain());
    assert!(!d.join("out/_state/lock").exists(), "lock not released");
    assert_same_as_run(d, "after taking over a stale lock");
}

/// A changed file's segments are rewritten before the manifest commit: a kill at any step of
/// the update that reads the changed version (and one new file) must leave a state the next
/// update finishes exactly.
#[test]
fn killed_at_every_step_while_a_changed_file_is_read_then_update_equals_uninterrupted() {
    let files = golden_files();
    let (last, rest) = files.split_last().unwrap();
    for step in footfall::fault::STEPS {
        let dir = empty_mall();
        let d = dir.path();
        for f in rest {
            add(d, f);
        }
        ok(d, &["update", "--config", "footfall.toml", "--quiet"]);
        // A processed file re-uploaded with fewer rows, and a new one.
        shrink(&d.join("probes").join(&rest[rest.len() / 2]));
        add(d, last);
        let o = run_env(d, &["update", "--config", "footfall.toml"], &[("FOOTFALL_FAIL_AT", step)]);
        assert_ne!(o.code, 0, "update should have been killed at {step}\n{}", o.explain());
        assert!(o.stderr.contains(&format!("injected failure at step '{step}'")), "{}", o.explain());
        ok(d, &["show", "mall_daily_visitors", "--format", "csv"]);
        let o = ok(d, &["update", "--config", "footfall.toml"]);
        if !step.ends_with("manifest") {
            assert!(o.stderr.contains("(1 new, 1 changed"), "the killed update committed nothing\n{}", o.explain());
        }
        assert_same_as_run(d, &format!("a changed file, killed at {step}"));
    }
}

#[test]
fn processes_racing_for_a_stale_lock_never_both_hold_it() {
    let dir = full_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml"]);
    for round in 0..5 {
        // A lock left by a process that is gone (no OS lock on it any more).
        std::fs::write(
            d.join("out/_state/lock"),
            "{\"pid\":4194304,\"host\":\"gone\",\"started_at\":0,\"expires_at\":0}",
        )
        .unwrap();
        let (holders, outs) = race_for_lock(d, &["update", "--config", "footfall.toml"], 3);
        assert_eq!(holders, 1, "round {round}: {holders} processes held the lock at once");
        let (won, lost): (Vec<&Out>, Vec<&Out>) = outs.iter().partition(|o| o.code == 0);
        assert_eq!(won.len(), 1, "round {round}: {}", outs.iter().map(Out::explain).collect::<Vec<_>>().join("\n"));
        for o in lost {
            assert_eq!(o.code, 3, "{}", o.explain());
            assert!(o.stderr.contains("locked by another footfall run"), "{}", o.explain());
        }
        assert!(!d.join("out/_state/lock").exists(), "round {round}: lock not released");
    }
    assert_same_as_run(d, "after racing for a stale lock");
}

#[test]
fn lookback_window_lists_only_recent_dates() {
    let dir = empty_mall();
    let d = dir.path();
    let mut cfg = std::fs::read_to_string(d.join("footfall.toml")).unwrap();
    cfg = cfg.replace("[input]\n", "[input]\nlookback_days = 0\n");
    std::fs::write(d.join("footfall.toml"), cfg).unwrap();
    let files = golden_files();
    let (last, rest) = files.split_last().unwrap();
    for f in rest {
        add(d, f);
    }
    ok(d, &["run", "--config", "footfall.toml"]);
    // Remove an old file: outside the window it is neither listed nor reported missing.
    std::fs::remove_file(d.join("probes").join(&files[0])).unwrap();
    add(d, last);
    let o = ok(d, &["update", "--config", "footfall.toml"]);
    assert!(o.stderr.contains("1 file(s) read (1 new, 0 changed"), "{}", o.explain());
    assert!(!o.stderr.contains("no longer exist"), "{}", o.explain());
    // A dry run inside the same window has nothing to do either.
    let o = ok(d, &["update", "--config", "footfall.toml", "--dry-run"]);
    assert!(o.stdout.is_empty(), "{}", o.explain());
}

#[test]
fn a_file_older_than_the_late_window_waits_for_a_full_listing() {
    // Nine days of a generated mall; one early hour file arrives after the rest.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = generated(d, 9, 40, 4, Some(1), 3, "UTC");
    let late = PathBuf::from("date=2026-03-03/hour=12");
    let held = d.join("held");
    std::fs::rename(m.join("probes").join(&late), &held).unwrap();
    ok(&m, &["update", "--config", "footfall.toml", "--quiet"]);
    let st = ok(&m, &["status", "--format", "json"]).stdout;
    let first_full: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert!(first_full[0]["last_full_listing"].is_string(), "a first update lists everything: {st}");
    assert_eq!(first_full[0]["late_window_days"], 3, "{st}");
    std::fs::rename(&held, m.join("probes").join(&late)).unwrap();
    // A plain update lists only 2026-03-07 onwards (the newest partition, 03-10, minus 3 days).
    let o = ok(&m, &["update", "--config", "footfall.toml", "--dry-run"]);
    assert!(o.stdout.is_empty(), "{}", o.explain());
    let o = ok(&m, &["update", "--config", "footfall.toml"]);
    assert!(o.stderr.contains("0 file(s) read"), "{}", o.explain());
    let st = ok(&m, &["status", "--format", "json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert_eq!(v[0]["last_full_listing"], first_full[0]["last_full_listing"], "a plain update is not a full listing");
    // The full listing takes it, once.
    let o = ok(&m, &["update", "--config", "footfall.toml", "--full", "--dry-run"]);
    assert!(o.stdout.starts_with("new\tdate=2026-03-03/hour=12/"), "{}", o.explain());
    let o = ok(&m, &["update", "--config", "footfall.toml", "--full"]);
    assert!(o.stderr.contains("1 file(s) read (1 new, 0 changed"), "{}", o.explain());
    let v: serde_json::Value = serde_json::from_str(&ok(&m, &["status", "--format", "json"]).stdout).unwrap();
    assert_ne!(v[0]["last_full_listing"], first_full[0]["last_full_listing"]);
    let o = ok(&m, &["update", "--config", "footfall.toml", "--full"]);
    assert!(o.stderr.contains("0 file(s) read"), "not read twice\n{}", o.explain());
    assert_same_as_run(&m, "a file later than the window, then --full");
}

#[test]
fn late_first_day_republishes_every_date_whose_staff_or_loyalty_moves() {
    // 35 days; the first day's files arrive last. Staff looks back 6 days and loyalty 27
    // (first_time: forever), so dates far after the late day must be re-published.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = generated(d, 35, 12, 4, Some(2), 5, "Europe/Berlin");
    std::fs::rename(m.join("probes/date=2026-03-02"), d.join("held")).unwrap();
    ok(&m, &["update", "--config", "footfall.toml", "--quiet"]);
    std::fs::rename(d.join("held"), m.join("probes/date=2026-03-02")).unwrap();
    ok(&m, &["run", "--config", "footfall.toml", "--out", "reference", "--quiet"]);
    // Not vacuous: without the first day, staff differs up to 6 days later and loyalty
    // beyond a week later (03-09 is the first date whose block 1 holds 03-02).
    let differing_dates = |table: &str| -> std::collections::BTreeSet<String> {
        let a = ok(&m, &["show", table, "--format", "csv"]).stdout;
        let b = ok(&m, &["show", table, "--format", "csv", "--out", "reference"]).stdout;
        let (a, b): (std::collections::BTreeSet<&str>, std::collections::BTreeSet<&str>) =
            (a.lines().collect(), b.lines().collect());
        a.symmetric_difference(&b).map(|l| l[..10].to_string()).collect()
    };
    let staff = differing_dates("staff_devices_daily");
    assert!(staff.contains("2026-03-08"), "{staff:?}");
    let loyalty = differing_dates("mall_daily_loyalty");
    assert!(loyalty.last().is_some_and(|d| d.as_str() >= "2026-03-09"), "{loyalty:?}");
    // Five weeks late: outside the late window, so only a full listing sees it.
    let o = ok(&m, &["update", "--config", "footfall.toml"]);
    assert!(o.stderr.contains("0 file(s) read"), "{}", o.explain());
    let o = ok(&m, &["update", "--config", "footfall.toml", "--full"]);
    assert_same_as_run(&m, &format!("late first day\n{}", o.stderr));
}

#[test]
fn an_older_state_format_is_refused_by_update_and_rebuilt_by_run() {
    let dir = full_mall();
    let d = dir.path();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let reference = d.join("reference");
    copy_dir(&d.join("out"), &reference);
    // The manifest as an older footfall wrote it.
    let path = d.join("out/_state/manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_ne!(v["format"], 4);
    v["format"] = 4.into();
    let old = serde_json::to_string(&v).unwrap();
    std::fs::write(&path, old).unwrap();
    let o = run(d, &["update", "--config", "footfall.toml"]);
    assert_eq!(o.code, 3, "{}", o.explain());
    assert!(
        o.stderr.contains("state format 4 is not supported") && o.stderr.contains("footfall run"),
        "{}",
        o.explain()
    );
    // What the message says to do works.
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    let o = run(d, &["diff", "out", "reference"]);
    assert_eq!(o.code, 0, "the rebuilt tables equal the first run's\n{}", o.explain());
    ok(d, &["update", "--config", "footfall.toml", "--quiet"]);
}

#[test]
fn an_update_after_a_gap_longer_than_the_loyalty_window_still_knows_earlier_visitors() {
    // Data on the first day, then none for 40 days, then five days. A visitor of the first
    // day coming back is "occasional", not "first_time", whether the later days come in one
    // run or in an update: the update's 27-day context is empty, so "ever" must come from
    // the kept first visitor-days.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = generated(d, 45, 40, 4, None, 7, "UTC");
    let mut later = Vec::new();
    for e in std::fs::read_dir(m.join("probes")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.as_str() > "date=2026-03-02" && name.as_str() < "date=2026-04-12" {
            std::fs::remove_dir_all(m.join("probes").join(&name)).unwrap();
        } else if name.as_str() >= "date=2026-04-12" {
            std::fs::rename(m.join("probes").join(&name), d.join(&name)).unwrap();
            later.push(name);
        }
    }
    assert!(later.len() >= 5, "{later:?}");
    ok(&m, &["update", "--config", "footfall.toml", "--quiet"]);
    for name in &later {
        std::fs::rename(d.join(name), m.join("probes").join(name)).unwrap();
    }
    ok(&m, &["update", "--config", "footfall.toml", "--quiet"]);
    ok(&m, &["run", "--config", "footfall.toml", "--out", "reference", "--quiet"]);
    // Not vacuous: visitors of the first day come back.
    let loyalty = ok(&m, &["show", "mall_daily_loyalty", "--format", "csv", "--out", "reference"]).stdout;
    let returning: i64 = loyalty
        .lines()
        .filter(|l| l.starts_with("2026-04-12"))
        .map(|l| l.rsplit(',').next().unwrap().parse::<i64>().unwrap())
        .sum();
    assert!(returning > 0, "{loyalty}");
    let o = run(&m, &["diff", "out", "reference"]);
    assert_eq!(o.code, 0, "update after a gap differs from run\n{}", o.explain());
}

/// An update lists the late window's `date=` partitions, every other directory and the files
/// at the top of each input: a probe file and a sales file put at the top are read once, and
/// neither is later taken for gone.
#[test]
fn files_at_the_top_of_an_input_are_seen_by_updates() {
    let dir = full_mall();
    let d = dir.path();
    let f = "date=2026-03-29/hour=17/probes-3.parquet";
    std::fs::rename(d.join("probes").join(f), d.join("held.parquet")).unwrap();
    ok(d, &["run", "--config", "footfall.toml", "--quiet"]);
    std::fs::rename(d.join("held.parquet"), d.join("probes/top-17.parquet")).unwrap();
    let sale = "transaction_id,shop_code,sold_at,amount\nW1,S001,1774785600,4.50\n";
    std::fs::write(d.join("sales/top.csv"), sale).unwrap();
    let o = ok(d, &["update", "--config", "footfall.toml"]);
    assert!(o.stderr.contains("1 file(s) read (1 new, 0 changed"), "{}", o.explain());
    assert!(o.stderr.contains("sales: 1 file(s) read (1 new, 0 changed)"), "{}", o.explain());
    let o = ok(d, &["update", "--config", "footfall.toml"]);
    assert!(!o.stderr.contains("no longer exist"), "{}", o.explain());
    assert!(o.stderr.contains("0 file(s) read (0 new, 0 changed"), "{}", o.explain());
    assert_same_as_run(d, "files at the top");
}
