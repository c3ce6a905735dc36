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

/// mimalloc purges a freed page after 1 s by default, and a day's columns are freed and
/// allocated again a few seconds apart: ~1 s of kernel time per 20 M records went to faulting
/// them back in. Commands that end when their work does keep freed pages instead; the data
/// path gives them back at day boundaries once the process holds more than
/// `pipeline::KEEP_RESIDENT` (`release_memory`). `serve` lives on: it keeps the default.
fn keep_freed_pages() {
    // mimalloc's C API (mimalloc.h), linked in by the `mimalloc` crate.
    extern "C" {
        fn mi_option_set(option: libc::c_int, value: libc::c_long);
        fn mi_collect(force: bool);
    }
    const MI_OPTION_PURGE_DELAY: libc::c_int = 15;
    // SAFETY: an option of the allocator, set before any worker thread exists; `mi_collect`
    // may be called from any thread at any time.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    footfall::pipeline::set_collector(|| unsafe { mi_collect(true) });
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
