//! The `shsd` command line: what each subcommand takes, and the code behind the ones that
//! are more than a call into the library (client commands, `certs`, `demo`).

pub mod client_commands;
pub mod demo;
pub mod run;
pub mod telemetry;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// shsd — an SHS 1.2 message broker.
#[derive(Debug, Parser)]
#[command(name = "shsd", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker.
    Serve {
        /// The configuration file.
        #[arg(long, short, default_value = "config/shsd.toml")]
        config: PathBuf,
    },
    /// Check a configuration file and report every problem at once (exit 64 if bad).
    CheckConfig {
        /// The configuration file.
        #[arg(long, short, default_value = "config/shsd.toml")]
        config: PathBuf,
    },
    /// Write an example PKI: CA, CRL, the node's server certificate and client certificates.
    Certs {
        /// The folder to write into.
        #[arg(long, default_value = "certs-example")]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
        /// Validity of the CA and the valid certificates, in days.
        #[arg(long, default_value_t = 3653)]
        validity_days: u64,
    },
    /// Start the broker on the example configuration and run a whole round trip against it:
    /// portal sends, building-permit system lists, fetches and acknowledges, portal gets the
    /// confirm.
    Demo {
        /// The configuration file.
        #[arg(long, short, default_value = "config/shsd.toml")]
        config: PathBuf,
        /// Stop after the round trip instead of serving on.
        #[arg(long)]
        once: bool,
    },
    /// Send a message (a client command).
    Send(client_commands::SendArgs),
    /// List a mailbox (a client command).
    List(client_commands::ListArgs),
    /// Fetch a message and write its label and data parts to files (a client command).
    Fetch(client_commands::FetchArgs),
    /// Acknowledge a message (a client command).
    Ack(client_commands::AckArgs),
}

/// How client commands reach the node: its URL and the caller's certificate.
#[derive(Debug, Args, Clone)]
pub struct Connection {
    /// The node's URL.
    #[arg(long, env = "SHSD_URL", default_value = "https://localhost:8443")]
    pub url: String,
    /// The CA file that the node's server certificate chains to.
    #[arg(long, env = "SHSD_CA", default_value = "certs-example/ca.pem")]
    pub ca: PathBuf,
    /// The caller's certificate (PEM).
    #[arg(
        long,
        env = "SHSD_CERT",
        default_value = "certs-example/client-portal.pem"
    )]
    pub cert: PathBuf,
    /// The caller's private key (PEM).
    #[arg(
        long,
        env = "SHSD_KEY",
        default_value = "certs-example/client-portal-key.pem"
    )]
    pub key: PathBuf,
}
