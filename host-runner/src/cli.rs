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
    /// Walk through storing a generated file, reading it back and listing its lease.
    Demo {
        #[command(flatten)]
        place: Place,
    },
}
