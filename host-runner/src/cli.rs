//! The command line: what each command takes (clap derive); `main.rs` runs them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The reference leasedb host: runs the lease-and-share plugin in a wasm sandbox
/// over a local storage directory.
#[derive(Debug, Parser)]
#[command(name = "host-runner", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where data and state live, and which plugin runs; every command takes these.
#[derive(Debug, Args)]
pub struct Place {
    /// Backend root: shares live here as `shares/<prefix>/<si>/<shnum>`, so a Tahoe
    /// `storage/` directory can be used as it is.
    #[arg(long, value_name = "DIR", default_value = "./data/storage")]
    pub storage: PathBuf,
    /// Host state: the compiled-plugin cache and the plugin's private directory
    /// (its lease database).
    #[arg(long, value_name = "DIR", default_value = "./data/state")]
    pub state: PathBuf,
    /// Run this plugin component instead of the one built into this binary.
    #[arg(long, value_name = "FILE.wasm")]
    pub plugin: Option<PathBuf>,
}

/// How the accounting crawler expires leases and paces its cycles.
#[derive(Debug, Clone, Args)]
pub struct CrawlerArgs {
    /// Lease expiration: `disabled` (scan only), `age` (expiration time passed, or
    /// renewal older than --expire-override) or `cutoff-date` (renewed before --expire-cutoff).
    #[arg(long, value_name = "MODE", default_value = "disabled", value_parser = ["disabled", "age", "cutoff-date"])]
    pub expire: String,
    /// With `--expire age`: expire leases renewed longer ago than this (e.g. `31 days`, `2mo`).
    #[arg(long, value_name = "DURATION")]
    pub expire_override: Option<String>,
    /// With `--expire cutoff-date`: expire leases renewed before this date (`YYYY-MM-DD`, UTC).
    #[arg(long, value_name = "DATE")]
    pub expire_cutoff: Option<String>,
    /// Finished cycles kept in the history.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub history: u32,
    /// Least time between the end of one cycle and the start of the next.
    #[arg(long, value_name = "DURATION", default_value = "12h")]
    pub min_cycle_time: String,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store FILE as share SHNUM of storage index SI (as the anonymous account).
    ///
    /// If the server already holds that share, nothing is written and the
    /// anonymous lease on it is renewed.
    Put {
        #[command(flatten)]
        place: Place,
        /// Storage index: 26 lowercase base32 characters.
        si: String,
        /// Share number, 0..=255.
        shnum: u32,
        /// The share data to store.
        file: PathBuf,
        /// After reporting success, stay alive without shutting the plugin down
        /// (crash tests kill the process here).
        #[arg(long, hide = true)]
        hold: bool,
    },
    /// Write the data of share SHNUM of SI to stdout.
    Read {
        #[command(flatten)]
        place: Place,
        /// Storage index: 26 lowercase base32 characters.
        si: String,
        /// Share number, 0..=255.
        shnum: u32,
        /// First byte to read.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Most bytes to read (default: to the end of the share).
        #[arg(long)]
        length: Option<u64>,
    },
    /// List every share the lease database knows.
    Shares {
        #[command(flatten)]
        place: Place,
        /// Print a JSON array of {si, shnum, type, state, used_space} instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the leases on the shares of SI.
    Leases {
        #[command(flatten)]
        place: Place,
        /// Storage index: 26 lowercase base32 characters.
        si: String,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the accounting crawler: reconcile the database with the storage directory,
    /// expire leases, collect unleased shares, and print the cycle report.
    Crawl {
        #[command(flatten)]
        place: Place,
        #[command(flatten)]
        crawler: CrawlerArgs,
        /// Run one full cycle now and exit (otherwise keep running cycles, each at
        /// least --min-cycle-time after the last).
        #[arg(long)]
        once: bool,
        /// Print each finished cycle's report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show the crawler's progress through the current cycle and its history.
    CrawlerStatus {
        #[command(flatten)]
        place: Place,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write FILE's bytes into mutable share SHNUM of SI (creating it if missing).
    MutableWrite {
        #[command(flatten)]
        place: Place,
        /// Storage index: 26 lowercase base32 characters.
        si: String,
        /// Share number, 0..=255.
        shnum: u32,
        /// The bytes to write.
        file: PathBuf,
        /// The share's write enabler: 64 hex digits.
        #[arg(long, value_name = "HEX")]
        write_enabler: String,
        /// Where in the share data to write.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Only write if the share's data currently starts with these bytes (hex;
        /// empty: only if the share is new or empty).
        #[arg(long, value_name = "HEX")]
        expect: Option<String>,
        /// Truncate the data to this length after writing (0 deletes the share).
        #[arg(long)]
        new_length: Option<u64>,
    },
    /// Write the data of mutable share SHNUM of SI to stdout.
    MutableRead {
        #[command(flatten)]
        place: Place,
        /// Storage index: 26 lowercase base32 characters.
        si: String,
        /// Share number, 0..=255.
        shnum: u32,
        /// First byte to read.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Most bytes to read (default: to the end).
        #[arg(long)]
        length: Option<u64>,
    },
    /// List the corruption advisories clients have sent.
    Advisories {
        #[command(flatten)]
        place: Place,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show share counts by state and type, uploads in flight and operation latencies.
    Stats {
        #[command(flatten)]
        place: Place,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Walk through storing a generated file, reading it back and listing its lease.
    Demo {
        #[command(flatten)]
        place: Place,
    },
}
