//! footfall: foot-traffic analytics from shopping-mall WiFi-probe logs.
//!
//! The engine lives here; `src/cmd/` holds one thin file per subcommand. The data path is
//! described in [`engine`]; the column truth of every table in [`schema`] (from `schemas/`);
//! every metric's rule in [`metrics`].

pub mod cli;
pub mod cmd;
pub mod config;
pub mod diff;
pub mod dims;
pub mod engine;
pub mod error;
pub mod fault;
pub mod generate;
pub mod ingest;
pub mod mac;
pub mod metrics;
pub mod output;
pub mod par;
pub mod progress;
pub mod publish;
pub mod read;
pub mod schema;
pub mod sources;
pub mod state;
pub mod store;
pub mod timeutil;
