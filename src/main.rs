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

fn main() {
    let cli = Cli::parse();
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
