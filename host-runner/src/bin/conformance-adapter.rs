//! The wasmtime host's conformance adapter: serves the protocol of
//! `conformance-tests/ADAPTER.md` on stdin/stdout, one fresh server per process.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use host_runner::backend::{BackendConfig, Location};
use host_runner::conformance::{Bundled, Components};

/// Serves the conformance adapter protocol with the wasmtime host.
#[derive(Parser)]
struct Args {
    /// The shipped component.
    #[arg(long)]
    component: PathBuf,
    /// The test-faults component.
    #[arg(long)]
    test_faults_component: PathBuf,
    /// Where compiled components are kept between adapter processes.
    #[arg(long, default_value_os_t = std::env::temp_dir().join("leasedb-conformance-compiled"))]
    compile_cache: PathBuf,
    /// Keep the case's objects in a fresh prefix of this store (`s3://BUCKET[/PREFIX]`,
    /// `az://…`, `memory:`, a directory) instead of in memory; settings from the environment.
    #[arg(long, value_name = "URL")]
    backend: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Warnings and the plugin's stderr (panics of the fault cases) on stderr, as before.
    host_runner::logging::init(host_runner::logging::LogFormat::Text)?;
    let components = Components {
        shipped: args.component,
        test_faults: args.test_faults_component,
    };
    let harness = match &args.backend {
        None => Bundled::new(components, args.compile_cache),
        Some(url) => {
            let config = BackendConfig::new(Location::parse(url)?);
            Bundled::over(components, args.compile_cache, &config)
                .with_context(|| format!("opening {url}"))?
        }
    };
    conformance_tests::adapter::server::serve(
        &harness,
        std::io::stdin().lock(),
        std::io::stdout().lock(),
    )?;
    Ok(())
}
