//! Command-line flags shared by every way of starting a shop process (`shoplab serve ...`,
//! the `monolith` binary). Only flags actually given override the other layers.

use std::path::PathBuf;

use serde::Serialize;

#[derive(Clone, Debug, Default, clap::Args, Serialize)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long)]
    #[serde(skip)]
    pub port: Option<u16>,
    /// Address to bind (default 127.0.0.1; 0.0.0.0 inside a container).
    #[arg(long)]
    #[serde(skip)]
    pub bind: Option<String>,
    /// Settings file (TOML); `SHOPLAB_*` variables and these flags override it.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Database: sqlite://PATH (default, created when missing) or postgres://...
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    /// Wipe and seed the shop at start with this seed.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl ServeArgs {
    pub fn settings(&self) -> anyhow::Result<crate::Settings> {
        crate::Settings::load(self.config.as_deref(), self)
    }

    pub fn address(&self, default_port: u16) -> String {
        format!(
            "{}:{}",
            self.bind.as_deref().unwrap_or("127.0.0.1"),
            self.port.unwrap_or(default_port)
        )
    }
}
