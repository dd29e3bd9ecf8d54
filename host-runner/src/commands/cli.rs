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
    /// Log lines on stderr as `text` or `json` (one object a line); `RUST_LOG`
    /// filters them (default `info`; `debug` adds one line per request).
    #[arg(long, global = true, value_name = "FORMAT", default_value = "text")]
    pub log_format: host_runner::logging::LogFormat,
}

/// Where data and state live, and which plugin runs; every command takes these.
#[derive(Debug, Args)]
pub struct Place {
    /// Backend root: shares live here as `shares/<prefix>/<si>/<shnum>`, so a Tahoe
    /// `storage/` directory can be used as it is.
    #[arg(long, value_name = "DIR", default_value = "./data/storage")]
    pub storage: PathBuf,
    /// A stopped Tahoe-LAFS node to take over instead of --storage: its identity
    /// is imported into --state (as `import-tahoe-node` does) and its storage
    /// directory served in place.
    #[arg(long, value_name = "NODEDIR", conflicts_with = "storage")]
    pub node_dir: Option<PathBuf>,
    /// Host state: the plugin's private directory (its lease database) and
    /// the node's identity.
    #[arg(long, value_name = "DIR", default_value = "./data/state")]
    pub state: PathBuf,
    /// Where compiled plugins are kept. By default the user's cache
    /// (`$XDG_CACHE_HOME/leasedb` or `~/.cache/leasedb`), so a binary compiles
    /// its plugin once, not once per state directory; `<state>/cache` when
    /// that directory cannot be made private to this user.
    #[arg(long, value_name = "DIR", env = "LEASEDB_COMPILE_CACHE")]
    pub compile_cache: Option<PathBuf>,
    /// Run this plugin component instead of the one built into this binary.
    #[arg(long, value_name = "FILE.wasm")]
    pub plugin: Option<PathBuf>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Which store holds the shares when it is not the --storage directory.
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Keep shares here instead of in --storage: a directory (`file:DIR` or a path),
    /// `s3://BUCKET[/PREFIX]`, `gs://BUCKET[/PREFIX]`, `az://CONTAINER[/PREFIX]` or
    /// `memory:`. Credentials and endpoints come from the environment
    /// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL,
    /// AWS_ALLOW_HTTP; GOOGLE_*; AZURE_*).
    #[arg(long, value_name = "URL")]
    pub backend: Option<String>,
    /// Object stores only: the most bytes to keep (e.g. `500G`, `2TiB`); clients
    /// are told the quota less what is stored. Default: unlimited.
    #[arg(long, value_name = "BYTES", value_parser = host_runner::backend::parse_size)]
    pub quota: Option<u64>,
    /// S3 endpoint, overriding AWS_ENDPOINT_URL (e.g. `http://127.0.0.1:3900`).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region, overriding AWS_REGION.
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Allow a plain-HTTP S3 endpoint (as AWS_ALLOW_HTTP=true does).
    #[arg(long)]
    pub s3_allow_http: bool,
    /// The longest one backend call may take, retries included.
    #[arg(long, value_name = "DURATION", default_value = "2min")]
    pub backend_timeout: String,
}

/// How the accounting crawler expires leases and paces its cycles.
#[derive(Debug, Clone, Args)]
pub struct CrawlerArgs {
    /// Lease expiration: `disabled` (scan only), `age` (expiration time passed, or
    /// renewal older than --expire-override) or `cutoff-date` (renewed before --expire-cutoff).
    /// Default: disabled (or, with --node-dir, what the node's tahoe.cfg says).
    #[arg(long, value_name = "MODE", value_parser = ["disabled", "age", "cutoff-date"])]
    pub expire: Option<String>,
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
    /// Run the Tahoe-LAFS 1.20 HTTPS storage server over the plugin. Prints the NURL
    /// alone on the first line of stdout, then a servers.yaml document for clients.
    Serve(ServeArgs),
    /// Print the NURL and servers.yaml document clients need (anonymous, or --account).
    ClientConfig {
        /// Host state directory (as given to `serve`).
        #[arg(long, value_name = "DIR", default_value = "./data/state")]
        state: PathBuf,
        /// A named account instead of the anonymous one.
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// The address clients reach the server at (default: where `serve` last listened).
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<String>,
    },
    /// Manage named accounts: each has its own swissnum (NURL) and its own leases.
    Accounts {
        /// Host state directory (as given to `serve`).
        #[arg(
            long,
            value_name = "DIR",
            default_value = "./data/state",
            global = true
        )]
        state: PathBuf,
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Show leased shares and bytes per account (asks the running server if there is one).
    Usage {
        #[command(flatten)]
        place: Place,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Take over a stopped Tahoe-LAFS 1.20 storage node: its TLS key and
    /// certificate, tubid, swissnum, seeds and address become --state's, so its
    /// clients keep working unchanged; then `serve --node-dir NODEDIR`.
    ImportTahoeNode {
        /// The node directory (`tahoe.cfg`, `private/`, `storage/`).
        node_dir: PathBuf,
        /// Host state directory to import into (new, or this node's already).
        #[arg(long, value_name = "DIR", default_value = "./data/state")]
        state: PathBuf,
    },
    /// Hot-swap the plugin of a running `serve --admin HOST:PORT` for PLUGIN.wasm.
    ///
    /// Exits 0 once the new version serves, printing the old and new versions;
    /// non-zero with the reason when the server refused it or rolled back.
    Swap {
        /// The server's admin address (loopback).
        #[arg(long, value_name = "HOST:PORT")]
        admin: String,
        /// The server's state directory: the admin token is read from it.
        #[arg(long, value_name = "DIR", default_value = "./data/state")]
        state: PathBuf,
        /// The plugin component to run from now on.
        plugin: PathBuf,
        /// Print the server's JSON report instead of a summary.
        #[arg(long)]
        json: bool,
    },
}

/// `serve`'s flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub place: Place,
    /// HTTPS address (default: the one used last time, else 127.0.0.1 on a free port).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Status page address (plain HTTP; `off` disables it). Loopback only
    /// unless --status-public.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:0")]
    pub status: String,
    /// Allow the status page (every account's usage) on a non-loopback address.
    #[arg(long)]
    pub status_public: bool,
    /// The address clients are told to reach (NURLs, servers.yaml), like
    /// Tahoe's tub.location; remembered. Needed when --listen is a wildcard.
    #[arg(long, value_name = "HOST:PORT")]
    pub location: Option<String>,
    /// Most client connections served at once (default: 1024, or half the
    /// file-descriptor limit if lower); further ones wait.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Admin address, loopback only (plain HTTP: `POST /swap` hot-swaps the plugin,
    /// as `host-runner swap --admin HOST:PORT PLUGIN.wasm` does; `GET /version`).
    #[arg(long, value_name = "HOST:PORT")]
    pub admin: Option<String>,
    #[command(flatten)]
    pub crawler: CrawlerArgs,
    /// Share of one core the background crawler may use (0 turns it off).
    #[arg(long, value_name = "PERCENT", default_value_t = 10.0)]
    pub crawler_cpu_percent: f64,
    /// An upload with no write for this long is aborted.
    #[arg(long, value_name = "DURATION", default_value = "30min")]
    pub upload_idle_timeout: String,
    /// A keep-alive connection idle this long is closed.
    #[arg(long, value_name = "DURATION", default_value = "15min")]
    pub connection_idle_timeout: String,
    /// Largest mutable share data accepted (a read-test-write body may be this large).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_mutable_size: u64,
    /// Disk space never given to shares, as Tahoe's reserved_space (`1G`, `500MB`, `0`).
    #[arg(long, value_name = "SIZE")]
    pub reserved_space: Option<String>,
    /// Accept no new shares (clients are told no space is available), as Tahoe's readonly.
    #[arg(long)]
    pub readonly: bool,
}

/// `accounts` subcommands.
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Mint a swissnum (and NURL) bound to account NAME; prints its client configuration.
    Add {
        /// 1 to 64 characters of A-Z a-z 0-9 . _ -
        name: String,
        /// The address clients reach the server at (default: where `serve` last listened).
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<String>,
    },
    /// Refuse NAME's requests from now on (401); its leases stay until they expire.
    Revoke {
        /// The account.
        name: String,
    },
    /// List the named accounts.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}
