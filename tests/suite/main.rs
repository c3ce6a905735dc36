//! The integration suite, one test binary (like ripgrep's and cargo's), so Polars is linked
//! once: a module per area. `cargo test --test suite <module>::` runs one area.

mod frames;
mod util;

mod chain;
mod cli;
mod crosscheck;
mod export;
mod golden;
mod history;
mod incremental;
mod metrics;
mod presence;
mod privacy;
mod properties;
mod readers;
mod report;
mod s3;
mod sales;
mod serve;
