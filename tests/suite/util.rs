//! Test harness in the style of ripgrep's `tests/util.rs`: run the real binary in a temp
//! dir; on failure print the command, its exit code, stdout and stderr.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Out {
    pub code: i32,
    pub stdout: String,
    /// stdout as bytes (binary formats).
    pub raw: Vec<u8>,
    pub stderr: String,
    pub cmd: String,
}

impl Out {
    pub fn explain(&self) -> String {
        format!(
            "command: {}\nexit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_footfall"))
}

/// Runs footfall with `args` in `cwd` and extra environment.
pub fn run_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut c = Command::new(bin());
    c.args(args).current_dir(cwd).env_remove("FOOTFALL_FAIL_AT").env_remove("FOOTFALL_MAC_KEY");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("cannot start footfall");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        raw: o.stdout,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        cmd: format!("footfall {}", args.join(" ")),
    }
}

pub fn run(cwd: &Path, args: &[&str]) -> Out {
    run_env(cwd, args, &[])
}

/// Runs and asserts the exit code.
pub fn expect(cwd: &Path, args: &[&str], code: i32) -> Out {
    let o = run(cwd, args);
    assert_eq!(o.code, code, "unexpected exit code\n{}", o.explain());
    o
}

pub fn ok(cwd: &Path, args: &[&str]) -> Out {
    expect(cwd, args, 0)
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// A temp dir holding a copy of the committed golden dataset, with a config.
pub fn golden_mall() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("data/golden/probes"), &dir.path().join("probes"));
    copy_dir(&root().join("data/golden/dims"), &dir.path().join("dims"));
    copy_dir(&root().join("data/golden/sales"), &dir.path().join("sales"));
    std::fs::copy(root().join("data/golden/footfall.toml"), dir.path().join("footfall.toml")).unwrap();
    dir
}

/// Every file below `dir`, relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                v.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    v.sort();
    v
}

/// The golden dataset's probe files, relative to its probes folder.
pub fn golden_files() -> Vec<PathBuf> {
    files_under(&root().join("data/golden/probes"))
}

/// Waits (at most 30 s) until `path` exists — e.g. a lock taken by a background run.
pub fn wait_for(path: &Path) {
    let t0 = std::time::Instant::now();
    while !path.exists() {
        assert!(t0.elapsed().as_secs() < 30, "{} never appeared", path.display());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Rewrites a probe file with only its first half of rows (a collector re-upload).
pub fn shrink(path: &Path) {
    use polars::prelude::*;
    let mut df = ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap();
    let half = df.height() / 2;
    df = df.head(Some(half));
    ParquetWriter::new(std::fs::File::create(path).unwrap()).finish(&mut df).unwrap();
}

/// Starts `n` runs of footfall `args` at once, each told to pause right after taking the lock
/// (src/fault.rs); waits until each has either reached that pause (it holds the lock) or ended,
/// then lets the holders finish. Returns the number that held the lock at the same time and the
/// outputs of all runs.
pub fn race_for_lock(cwd: &Path, args: &[&str], n: usize) -> (usize, Vec<Out>) {
    let mut runs = Vec::new();
    for i in 0..n {
        let (hold, reached) = (cwd.join(format!("race-hold-{i}")), cwd.join(format!("race-reached-{i}")));
        std::fs::write(&hold, "").unwrap();
        let _ = std::fs::remove_file(&reached);
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(cwd)
            .env_remove("FOOTFALL_FAIL_AT")
            .env("FOOTFALL_PAUSE_AT", "after-lock")
            .env("FOOTFALL_PAUSE_WHILE", &hold)
            .env("FOOTFALL_PAUSE_REACHED", &reached)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        runs.push((c.spawn().expect("cannot start footfall"), hold, reached));
    }
    let t0 = std::time::Instant::now();
    let mut holders = 0;
    let mut pending: Vec<usize> = (0..n).collect();
    while !pending.is_empty() {
        assert!(t0.elapsed().as_secs() < 60, "runs neither reached the lock nor ended");
        pending.retain(|&i| {
            let (child, _, reached) = &mut runs[i];
            if reached.exists() {
                holders += 1;
                false
            } else {
                child.try_wait().unwrap().is_none()
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let outs = runs
        .into_iter()
        .map(|(child, hold, _)| {
            let _ = std::fs::remove_file(&hold);
            let o = child.wait_with_output().unwrap();
            Out {
                code: o.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                raw: o.stdout,
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                cmd: format!("footfall {}", args.join(" ")),
            }
        })
        .collect();
    (holders, outs)
}

/// Headless Chromium's flags in every browser test: no GPU, no background traffic, and every
/// network request sent to a closed port (nothing reaches the internet).
pub const CHROMIUM_ARGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--proxy-server=127.0.0.1:9",
];

/// The Chromium the browser tests run (`FOOTFALL_CHROMIUM`, set by .ci/run).
pub fn chromium() -> String {
    let p = std::env::var("FOOTFALL_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&p).exists(), "{p} is missing (apt-get install chromium, or set FOOTFALL_CHROMIUM)");
    p
}
