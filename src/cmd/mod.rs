//! One file per subcommand, each thin over the library; [`dispatch`] is the one table.

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::progress::Progress;

mod chain;
mod check;
mod customer;
mod demo;
mod diff;
mod export;
mod generate;
mod report;
mod run;
mod schema;
mod serve;
mod show;
mod sql;
mod status;
mod tables;

/// Global options every command may use.
pub struct Ctx {
    pub quiet: bool,
    pub progress: Progress,
    /// `--config`, wherever it was given.
    pub config: Option<std::path::PathBuf>,
    /// `--format`, wherever it was given.
    pub format: Option<crate::print::Format>,
}

impl Ctx {
    /// A message for people (stderr), unless `--quiet`.
    pub fn say(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", msg.as_ref());
        }
    }
}

/// Runs a parsed command line; returns the exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    let ctx = Ctx {
        quiet: cli.quiet,
        progress: Progress::new(cli.progress, cli.quiet),
        config: cli.config,
        format: cli.format,
    };
    match cli.command {
        Command::Run(a) => run::run(&ctx, a),
        Command::Update(a) => run::update(&ctx, a),
        Command::Status(a) => status::run(&ctx, a),
        Command::Generate(a) => generate::run(&ctx, a),
        Command::Demo(a) => demo::run(&ctx, a),
        Command::Serve(a) => serve::run(&ctx, a),
        Command::Tables => tables::run(&ctx),
        Command::Schema(a) => schema::run(&ctx, a),
        Command::Show(a) => show::run(&ctx, a),
        Command::Diff(a) => diff::run(&ctx, a),
        Command::Check(a) => check::run(&ctx, a),
        Command::Sql(a) => sql::run(&ctx, a),
        Command::Customer(a) => customer::run(&ctx, a),
        Command::Report(a) => report::run(&ctx, a),
        Command::Export(a) => export::run(&ctx, a),
        Command::Malls => chain::malls(&ctx),
        Command::Chain(a) => chain::run(&ctx, a),
    }
}
