//! Command-line definitions (clap). Commands live in `cmd/`, one file each.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::config::Overrides;
use crate::print::Format;
use crate::progress::ProgressMode;

#[derive(Parser, Debug)]
#[command(
    name = "footfall",
    version,
    about = "Foot-traffic analytics from shopping-mall WiFi-probe logs",
    after_help = "Exit codes: 0 success, 1 differences found (diff/check), 2 usage or configuration error, 3 input or output error."
)]
pub struct Cli {
    /// Print nothing but data and errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Progress bars on stderr: auto shows them only when stderr is a terminal.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// Config file (default: ./footfall.toml if present).
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    /// Output format of data (default: table on a terminal, CSV when piped).
    #[arg(long, global = true, value_enum)]
    pub format: Option<Format>,
    #[command(subcommand)]
    pub command: Command,
}

/// Where to read and write; overrides footfall.toml.
#[derive(Args, Debug, Clone, Default)]
pub struct PlanArgs {
    /// Probe logs (path or s3://, gs://, az://, file:// URL); overrides input.probes.
    #[arg(long)]
    pub probes: Option<String>,
    /// Dimension tables folder; overrides input.dims.
    #[arg(long)]
    pub dims: Option<String>,
    /// Output directory; overrides output.dir.
    #[arg(long)]
    pub out: Option<String>,
    /// Mall timezone (IANA name); overrides mall.timezone.
    #[arg(long)]
    pub timezone: Option<String>,
    /// Number of shops in top_shops_daily; overrides metrics.top_shops.
    #[arg(long)]
    pub top_shops: Option<i64>,
    #[command(flatten)]
    pub malls: MallArgs,
}

/// Which malls of a chain (a config with `[[malls]]`).
#[derive(Args, Debug, Clone, Default)]
pub struct MallArgs {
    /// A mall of the chain, by id (repeatable; default: every mall, or the one a command needs).
    #[arg(long = "mall", value_name = "ID")]
    pub ids: Vec<String>,
    /// The N-th mall of the config, from 0 (an orchestrator's job index).
    #[arg(long, value_name = "N", conflicts_with = "ids")]
    pub mall_index: Option<usize>,
}

impl MallArgs {
    pub fn apply(&self, ov: Overrides) -> Overrides {
        Overrides { malls: self.ids.clone(), mall_index: self.mall_index, ..ov }
    }
}

impl PlanArgs {
    /// The overrides, with the global `--config`.
    pub fn overrides(&self, config: Option<&PathBuf>) -> Overrides {
        Overrides {
            config: config.cloned(),
            probes: self.probes.clone(),
            dims: self.dims.clone(),
            out: self.out.clone(),
            timezone: self.timezone.clone(),
            top_shops: self.top_shops,
            malls: self.malls.ids.clone(),
            mall_index: self.malls.mall_index,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Rebuild every result table and the state from all probe files.
    #[command(after_help = "Example:\n  footfall run --config demo/footfall.toml")]
    Run(RunArgs),
    /// Process only new or changed probe files and republish the dates they change.
    #[command(after_help = "Example (hourly cron):\n  footfall update --config /etc/footfall.toml --progress off")]
    Update(UpdateArgs),
    /// Processed and pending files, dates covered, and the last run.
    #[command(after_help = "Example:\n  footfall status --config demo/footfall.toml")]
    Status(StatusArgs),
    /// Write a synthetic mall: probe logs, dimension tables and a footfall.toml.
    #[command(after_help = "Example:\n  footfall generate --out /tmp/mall --days 7 --visitors 5000 --seed 42")]
    Generate(GenerateArgs),
    /// Serve the live big screen (page and JSON API) over the published tables.
    #[command(
        after_help = "Examples:\n  footfall serve --config demo/footfall.toml\n  FOOTFALL_TOKEN=… footfall serve --listen 0.0.0.0:8080 --token-env FOOTFALL_TOKEN --update-every 60s"
    )]
    Serve(ServeArgs),
    /// Generate a demo week under ./demo, run everything and print a summary.
    #[command(after_help = "Example:\n  footfall demo")]
    Demo(DemoArgs),
    /// List the result tables.
    #[command(after_help = "Example:\n  footfall tables")]
    Tables,
    /// Print a table's columns.
    #[command(after_help = "Example:\n  footfall schema top_shops_daily")]
    Schema(SchemaArgs),
    /// Print rows of a published result table.
    #[command(
        after_help = "Examples:\n  footfall show top_shops_daily --date 2026-03-02\n  footfall show shop_daily_visitors --from 2026-03-01 --to 2026-03-07 --where shop_code=S001 --format csv"
    )]
    Show(ShowArgs),
    /// Compare two output directories table by table, row by row (exit 1 on differences).
    #[command(after_help = "Example:\n  footfall diff golden/ out/ --tables mall_daily_visitors,top_shops_daily")]
    Diff(DiffArgs),
    /// Polars SQL over result tables, dimensions (area_shop, place_info, ap_info) and `probes`.
    #[command(
        after_help = "Example:\n  footfall sql \"SELECT shop_code, SUM(visitors) AS v FROM shop_daily_visitors WHERE date >= '2026-03-07' GROUP BY shop_code ORDER BY v DESC LIMIT 3\""
    )]
    Sql(SqlArgs),
    /// One device's story: first/last seen, visits that day, favourite shop.
    #[command(after_help = "Example:\n  footfall customer AA-BB-CC-DD-EE-FF --date 2026-03-07")]
    Customer(CustomerArgs),
    /// Data-quality report; exit 1 when a threshold is crossed.
    #[command(after_help = "Example:\n  footfall check --config demo/footfall.toml --max-rejected-share 0.01")]
    Check(CheckArgs),
    /// One self-contained HTML file with charts of the result tables (opens offline).
    #[command(after_help = "Example:\n  footfall report --config demo/footfall.toml --out report.html")]
    Report(ReportArgs),
    /// Copy the result tables into PostgreSQL or MySQL/MariaDB (only what changed since the last export).
    #[command(
        after_help = "Examples:\n  footfall export --config /etc/footfall.toml --to postgresql://footfall@db:5432/mall\n  MYSQL_PWD=… footfall export --to mysql://footfall@db:3306/mall --tables mall_daily_visitors,customers\n\nThe password comes from the URL or from PGPASSWORD / MYSQL_PWD; it is never printed or stored."
    )]
    Export(ExportArgs),
    /// The malls of a chain config (`[[malls]]`), for scripts and orchestrators.
    #[command(
        after_help = "Example (an Argo fan-out's parameter list):\n  footfall malls --config chain.toml --format json"
    )]
    Malls,
    /// Recompute the chain tables from every mall's state (after malls were updated apart).
    #[command(after_help = "Example (after a fan-out):\n  footfall chain --config chain.toml")]
    Chain(ChainArgs),
}

/// How many malls of a chain at once.
#[derive(Args, Debug, Clone, Default)]
pub struct JobsArgs {
    /// Malls processed at once (default: the number of cores, at most the number of malls).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
}

#[derive(Args, Debug)]
pub struct ChainArgs {
    /// Output directory of the chain; overrides output.dir.
    #[arg(long)]
    pub out: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    #[command(flatten)]
    pub jobs: JobsArgs,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    #[command(flatten)]
    pub jobs: JobsArgs,
    /// List what would be processed, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// List every partition, not only the late window (input.lookback_days) before the newest
    /// processed one: picks up files that arrived later than the window (e.g. nightly).
    #[arg(long)]
    pub full: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
}

/// A `YYYY-MM-DD` flag, parsed once here: a bad date is a usage error (exit 2) before any work.
fn date_arg(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("invalid date '{s}' (expected YYYY-MM-DD)"))
}

#[derive(Args, Debug, Clone)]
pub struct GenerateArgs {
    /// Folder to write (probes/, dims/, footfall.toml).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of days.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Average visitors per day.
    #[arg(long, default_value_t = 5000)]
    pub visitors: u32,
    /// Number of shops.
    #[arg(long, default_value_t = 40)]
    pub shops: u32,
    /// Staff devices present all day (default: one per two shops).
    #[arg(long)]
    pub staff: Option<u32>,
    /// Mall timezone (IANA).
    #[arg(long, default_value = "Asia/Shanghai")]
    pub timezone: String,
    /// First local date (YYYY-MM-DD).
    #[arg(long, value_parser = date_arg, default_value = "2026-03-02")]
    pub start: NaiveDate,
    /// Random seed (same seed, same files).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the last N days as one file per minute with records (a collector flushing every
    /// minute) instead of one per hour.
    #[arg(long, default_value_t = 0)]
    pub minute_files_days: u32,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; other than loopback it needs --token-env.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Run `update` on this interval (e.g. 60s, 5m); without it, follow what cron publishes.
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub update_every: Option<u64>,
    /// The environment variable holding the access token (bearer header, or ?token= once).
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// Data older than this is shown as stale (e.g. 15m).
    #[arg(long, value_name = "DURATION", value_parser = duration_arg, default_value = "15m")]
    pub stale_after: u64,
    #[command(flatten)]
    pub plan: PlanArgs,
}

/// A duration (`90s`, `15m`, `1h`) as seconds.
fn duration_arg(s: &str) -> Result<u64, String> {
    crate::timeutil::parse_duration(s)
        .filter(|v| *v > 0)
        .map(|v| v as u64)
        .ok_or_else(|| format!("'{s}' is not a duration such as 30s, 15m or 1h"))
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder for the demo mall and its outputs.
    #[arg(long, default_value = "demo")]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// Table name (see `footfall tables`).
    pub table: String,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Table name (see `footfall tables`).
    pub table: String,
    #[command(flatten)]
    pub plan: PlanArgs,
    /// One date (YYYY-MM-DD).
    #[arg(long, value_parser = date_arg, conflicts_with_all = ["from", "to"])]
    pub date: Option<NaiveDate>,
    /// First date (inclusive).
    #[arg(long, value_parser = date_arg)]
    pub from: Option<NaiveDate>,
    /// Last date (inclusive).
    #[arg(long, value_parser = date_arg)]
    pub to: Option<NaiveDate>,
    /// Keep rows where COLUMN equals VALUE (repeatable).
    #[arg(long = "where", value_name = "COLUMN=VALUE")]
    pub filters: Vec<String>,
    /// At most this many rows.
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub left: String,
    pub right: String,
    /// Comma-separated tables (default: all).
    #[arg(long, value_delimiter = ',')]
    pub tables: Vec<String>,
    /// Differing rows to print per table.
    #[arg(long, default_value_t = 5)]
    pub show: usize,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// First partition date (inclusive).
    #[arg(long, value_parser = date_arg)]
    pub from: Option<NaiveDate>,
    /// Last partition date (inclusive).
    #[arg(long, value_parser = date_arg)]
    pub to: Option<NaiveDate>,
    /// Exit 1 when rejected rows exceed this share of rows read.
    #[arg(long)]
    pub max_rejected_share: Option<f64>,
}

#[derive(Args, Debug)]
pub struct SqlArgs {
    /// The query.
    pub query: String,
    #[command(flatten)]
    pub plan: PlanArgs,
}

#[derive(Args, Debug)]
pub struct CustomerArgs {
    /// Device MAC (any accepted form).
    pub mac: String,
    /// Day to tell (default: the device's last day).
    #[arg(long, value_parser = date_arg)]
    pub date: Option<NaiveDate>,
    #[command(flatten)]
    pub plan: PlanArgs,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// First date (inclusive); default: the last 7 dates with data.
    #[arg(long, value_parser = date_arg)]
    pub from: Option<NaiveDate>,
    /// Last date (inclusive).
    #[arg(long, value_parser = date_arg)]
    pub to: Option<NaiveDate>,
    /// The HTML file to write.
    #[arg(long, value_name = "FILE", default_value = "report.html")]
    pub out: std::path::PathBuf,
    /// The result tables' folder or URL; overrides output.dir.
    #[arg(long, value_name = "DIR")]
    pub results: Option<String>,
    #[command(flatten)]
    pub malls: MallArgs,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Target database URL (postgresql://user@host:port/db or mysql://…); overrides export.url.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Tables to export, comma-separated; overrides export.tables (default: every result table).
    #[arg(long, value_delimiter = ',')]
    pub tables: Option<Vec<String>>,
    /// First date to export (inclusive); snapshots are always exported whole.
    #[arg(long, value_parser = date_arg, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// Last date to export (inclusive). (`--to` names the target, so the range ends with `--until`.)
    #[arg(long, value_parser = date_arg, value_name = "DATE")]
    pub until: Option<NaiveDate>,
    /// The result tables' folder or URL; overrides output.dir.
    #[arg(long, value_name = "DIR")]
    pub results: Option<String>,
    #[command(flatten)]
    pub malls: MallArgs,
}
