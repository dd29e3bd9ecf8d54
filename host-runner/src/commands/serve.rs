//! `serve` and `client-config`: run the storage server until a signal, and
//! print the configuration a Tahoe client needs to use it.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Result};

use super::cli::ServeArgs;
use super::crawl::crawler_config;
use super::dates::parse_duration;
use super::host_config;
use host_runner::server::admin::require_loopback;
use host_runner::server::identity::{self, Identity};
use host_runner::server::{ServeOptions, Server};
use host_runner::service::CrawlerPacing;
use host_runner::tahoe_node::parse_size;

/// `serve`: flags into [`ServeOptions`], then run until a signal.
pub fn serve(args: ServeArgs) -> Result<()> {
    let mut config = host_config(&args.place)?;
    config.crawler = crawler_config(&args.crawler)?;
    config.max_mutable_size = args.max_mutable_size;
    let mut opts = ServeOptions::new(&args.place.storage, &args.place.state);
    opts.host = config;
    opts.backend = Some(super::backend_config(&args.place)?);
    opts.listen = args.listen;
    opts.status = (args.status != "off").then_some(args.status);
    opts.status_public = args.status_public;
    opts.location = args.location;
    if let Some(n) = args.max_connections {
        opts.max_connections = n;
    }
    if let Some(admin) = &args.admin {
        require_loopback(admin).map_err(|e| anyhow!(e))?;
    }
    opts.admin = args.admin;
    opts.crawler = (args.crawler_cpu_percent > 0.0).then(|| CrawlerPacing {
        cpu_percent: args.crawler_cpu_percent.min(100.0),
        ..Default::default()
    });
    if let Some(size) = &args.reserved_space {
        opts.reserved_space = parse_size(size).map_err(|e| anyhow!("--reserved-space: {e}"))?;
    }
    opts.readonly = args.readonly;
    opts.upload_idle_timeout = Duration::from_secs(parse_duration(&args.upload_idle_timeout)?);
    opts.connection_idle_timeout =
        Duration::from_secs(parse_duration(&args.connection_idle_timeout)?);
    run(opts)
}

/// `serve`: starts the server, prints the NURL alone on the first line of stdout,
/// then the `servers.yaml` document, then runs until SIGINT/SIGTERM.
fn run(opts: ServeOptions) -> Result<()> {
    let server = Server::start(opts)?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", server.nurl);
    let _ = write!(out, "{}", server.servers_yaml());
    let _ = writeln!(out, "# plugin: {}", plugin_line(&server));
    if let Some(a) = server.status_addr {
        let _ = writeln!(out, "# status: http://{a}/");
    }
    if let Some(a) = server.admin_addr {
        let _ = writeln!(out, "# admin: http://{a}/");
    }
    let _ = out.flush();
    drop(out);
    tracing::info!(
        "serve: GBS on https://{} (tubid {}); stop with Ctrl-C",
        server.addr,
        server.identity.tubid
    );
    server.wait_for_signal();
    tracing::info!("serve: stopping");
    server.shutdown();
    Ok(())
}

/// The running plugin: `VERSION (interface X) sha256 HEX`.
fn plugin_line(server: &Server) -> String {
    use host_runner::Operations as _;
    let answer = server.gbs().service().call_blocking(|host| {
        let sha256 = host.compile_outcome().component_sha256().to_owned();
        (host.info(), sha256)
    });
    match answer {
        Ok((Ok(info), sha256)) => format!(
            "leasedb-plugin {} (interface {}) sha256 {sha256}",
            info.version, info.interface_version
        ),
        Ok((Err(e), _)) => format!("unknown ({e})"),
        Err(e) => format!("unknown ({e})"),
    }
}

/// `client-config`: the NURL and `servers.yaml` document for the anonymous
/// account or a named one, at the address `serve` last listened on.
pub fn client_config(state: &Path, account: Option<&str>, listen: Option<&str>) -> Result<String> {
    let id = Identity::load_or_create(state)?;
    let swissnum = match account {
        None => id.swissnum.clone(),
        Some(name) => {
            let accounts = identity::list_accounts(&id.accounts_path())?;
            let a = accounts
                .iter()
                .find(|a| a.name == name)
                .ok_or_else(|| anyhow!("no account is named {name:?}"))?;
            if a.revoked {
                return Err(anyhow!("account {name:?} is revoked"));
            }
            a.swissnum.clone()
        }
    };
    let listen = match listen {
        Some(l) => l.to_owned(),
        None => id.advertised()?.ok_or_else(|| {
            anyhow!(
                "no address to advertise: run `serve` once (with --location HOST:PORT if it \
                 listens on every interface), or pass --listen HOST:PORT"
            )
        })?,
    };
    let nurl = id.nurl(&listen, &swissnum);
    Ok(format!("{nurl}\n{}", id.servers_yaml(&nurl)))
}
