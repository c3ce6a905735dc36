//! Thin entry point: parse arguments, dispatch, map errors to exit codes once.
//!
//! Errors go to stderr with their full context chain (`{:#}`); a closed stdout (e.g.
//! `footfall show … | head`) is not an error and exits 0.

use clap::Parser;
use footfall::cli::Cli;
use footfall::error::{exit_code, is_stdout_closed, EXIT_OK};

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
