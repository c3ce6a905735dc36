//! Progress bars on stderr, only where a person watches: `auto` shows them when stderr is a
//! terminal, so cron logs and CI output stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ProgressMode {
    #[default]
    Auto,
    On,
    Off,
}

/// Decides once whether bars are drawn.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    pub fn new(mode: ProgressMode, quiet: bool) -> Self {
        let enabled = !quiet
            && match mode {
                ProgressMode::On => true,
                ProgressMode::Off => false,
                ProgressMode::Auto => std::io::stderr().is_terminal(),
            };
        Progress { enabled }
    }

    /// A bar of `len` steps (hidden when disabled).
    pub fn bar(&self, len: u64, what: &str) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new(len);
        pb.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {elapsed_precise} {msg}")
                .unwrap()
                .progress_chars("=> "),
        );
        pb.set_prefix(what.to_string());
        pb
    }
}
