//! footfall: foot-traffic analytics from shopping-mall WiFi-probe logs.
//!
//! The engine lives here; `src/cmd/` holds one thin file per subcommand. The data path is
//! [`pipeline`], a module per stage in data-path order (plan → ingest → rollup → visits →
//! statuses → publish); [`state`] keeps what `update` builds on; [`metrics`] is the catalogue
//! (one query per table); [`tables`] the published layout; [`schema`] the column truth of
//! every table (from `schemas/`); [`sales`] the POS stage after the probe days.

pub mod chain;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod diff;
pub mod dims;
pub mod error;
pub mod export;
pub mod fault;
pub mod generate;
pub mod mac;
pub mod metrics;
pub mod par;
pub mod pipeline;
pub mod print;
pub mod progress;
pub mod report;
pub mod rules;
pub mod sales;
pub mod schema;
pub mod serve;
pub mod sql;
pub mod state;
pub mod store;
pub mod tables;
pub mod timeutil;
pub mod views;
