//! Thin entry point: parse arguments, dispatch, map errors to exit codes once.
//!
//! Errors go to stderr with their full context chain (`{:#}`); a closed stdout (e.g.
//! `footfall show … | head`) is not an error and exits 0.

use clap::Parser;
use footfall::cli::Cli;
use footfall::error::{exit_code, is_stdout_closed, EXIT_OK};

// A run frees and reallocates each day's columns across the rayon workers; glibc's arenas
// spent ~1.5 s of kernel time per 20 M records in page faults and munmap, mimalloc reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A day's columns are freed and allocated again the next day, and mimalloc asks for
/// transparent huge pages: each is zeroed 2 MiB at a time on first touch, ~2 s of kernel time
/// per 20 M records on a VM (BENCHMARKS.md, step 6). So this process asks for no huge pages.
fn tune_memory() {
    // SAFETY: a prctl flag of this process, set before any worker thread exists.
    unsafe {
        #[cfg(target_os = "linux")]
        libc::prctl(
            libc::PR_SET_THP_DISABLE,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
    }
}

/// mimalloc purges a freed page 10 ms after it is freed, and a day's columns are freed and
/// allocated again a few seconds apart, each page faulted back in. Commands that end when
/// their work does purge only when asked: the data path asks at day boundaries once the
/// process holds more than `pipeline::KEEP_RESIDENT` (`release_memory`),
/// so the bound on memory holds and what is saved is the faults below it.
/// `serve` lives on: it keeps the default.
fn keep_freed_pages() {
    // mimalloc's C API (mimalloc.h), linked in by the `mimalloc` crate.
    extern "C" {
        fn mi_option_set(option: libc::c_int, value: libc::c_long);
    }
    const MI_OPTION_PURGE_DELAY: libc::c_int = 15;
    // Not -1 ("never"): mimalloc then marks its segments unpurgeable for good and a forced
    // collection returns nothing. A day is the longest a freed page waits.
    const PURGE_DELAY_MS: libc::c_long = 24 * 3600 * 1000;
    // SAFETY: an option of the allocator, set before any worker thread exists.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    footfall::pipeline::set_collector(return_freed_pages);
}

/// Returns every freed page to the OS: a forced collection from one thread also purges the
/// pages other threads (Polars' pool, rayon's) freed.
fn return_freed_pages() {
    extern "C" {
        fn mi_collect(force: bool);
    }
    // SAFETY: `mi_collect` may be called from any thread at any time.
    unsafe { mi_collect(true) }
}

fn main() {
    tune_memory();
    let cli = Cli::parse();
    if !matches!(cli.command, footfall::cli::Command::Serve(_)) {
        keep_freed_pages();
    }
    let code = match footfall::cmd::dispatch(cli) {
        Ok(code) => code,
        Err(err) if is_stdout_closed(&err) => EXIT_OK,
        Err(err) => {
            eprintln!("footfall: {err:#}");
            exit_code(&err)
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    fn resident_mib() -> u64 {
        footfall::pipeline::resident_bytes().expect("resident memory (/proc/self/statm)") >> 20
    }

    /// Touches and frees 128 MiB in 4 KiB blocks on the calling thread, keeping a small block
    /// now and then (returned): the thread's segments stay in use, as a day's long-lived
    /// values keep them.
    fn churn() -> Vec<Vec<u8>> {
        let (mut freed, mut live) = (Vec::new(), Vec::new());
        for i in 0..32768 {
            freed.push(vec![i as u8; 4096]);
            if i % 256 == 0 {
                live.push(vec![i as u8; 64]);
            }
        }
        std::hint::black_box(&freed);
        live
    }

    // The bug this guards: with mimalloc's purge delay at -1 a forced collection returned
    // nothing, so a 51 M week kept every freed page and passed the 2 GB bound.
    #[test]
    fn freed_pages_stay_until_collected_then_go_back_to_the_os() {
        keep_freed_pages();
        let before = resident_mib();
        // Four live threads (as a pool's are) free their pages; the collection runs here.
        let (churned, collected) = (Barrier::new(5), Barrier::new(5));
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let live = churn();
                    churned.wait();
                    collected.wait();
                    drop(live);
                });
            }
            churned.wait();
            let kept = resident_mib();
            return_freed_pages();
            let after = resident_mib();
            collected.wait();
            assert!(kept >= before + 400, "freed pages were returned at once: {before} MiB, then {kept} MiB");
            assert!(after + 400 < kept, "collecting kept the freed pages: {before} -> {kept} -> {after} MiB");
        });
    }
}
