//! `import-tahoe-node` and `--node-dir`: taking over a stopped Tahoe-LAFS
//! node, so the clients configured for it keep working unchanged.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

#[cfg(test)]
use super::cli::Cli;
use super::cli::{Command, Place, ServeArgs};
use host_runner::server::identity::Identity;
use host_runner::tahoe_node::{Expiration, TahoeNode};

/// Reads the node in `node_dir` and makes it `state`'s identity: its keys,
/// ids and swissnum, the address it listened on and the one it advertised.
/// Doing it again for the same node changes nothing.
pub fn import(node_dir: &Path, state: &Path) -> Result<(TahoeNode, Identity)> {
    let node = TahoeNode::read(node_dir)?;
    let identity = Identity::adopt(state, &node.identity)?;
    if let Some(listen) = &node.config.listen {
        identity.remember_listen(listen)?;
    }
    if let Some(location) = &node.config.location {
        identity.set_location(location)?;
    }
    // New mutable containers record the writer's node id; Tahoe's is its tubid.
    let node_id = state.join("node-id");
    if !node_id.exists() {
        let tubid = leasedb_types::base32_decode(&node.identity.tubid).expect("checked on read");
        fs::write(&node_id, format!("{}\n", hex::encode(tubid)))
            .with_context(|| format!("writing {}", node_id.display()))?;
    }
    Ok((node, identity))
}

/// `import-tahoe-node NODEDIR --state S`: imports and says what was taken
/// and how to serve it.
pub fn import_command(node_dir: &Path, state: &Path) -> Result<()> {
    let (node, identity) = import(node_dir, state)?;
    let c = &node.config;
    println!("imported Tahoe node {}", node.dir.display());
    println!("  tubid            {}", identity.tubid);
    println!("  server id        {}", identity.server_id);
    println!(
        "  NURL             {}",
        node.nurl().as_deref().unwrap_or("(no tcp: location)")
    );
    println!(
        "  listen           {}",
        c.listen.as_deref().unwrap_or("(not set)")
    );
    println!("  storage          {}", node.storage_dir.display());
    println!("  reserved space   {} bytes", c.reserved_space);
    println!("  readonly         {}", c.readonly);
    println!("  expiration       {}", describe(&c.expiration));
    println!(
        "serve it with: host-runner serve --node-dir {} --state {}",
        node.dir.display(),
        state.display()
    );
    println!(
        "its shares are adopted by the crawler with the leases their files record \
         (`crawl --once --node-dir … --state …` does it at once)"
    );
    Ok(())
}

fn describe(e: &Expiration) -> String {
    match e {
        Expiration::Disabled => "disabled".into(),
        Expiration::Age {
            override_duration: None,
        } => "age".into(),
        Expiration::Age {
            override_duration: Some(d),
        } => format!("age, override {d}"),
        Expiration::CutoffDate { date } => format!("cutoff-date {date}"),
    }
}

/// The storage arguments of `command`, if it has them.
fn place_of(command: &mut Command) -> Option<&mut Place> {
    match command {
        Command::Put { place, .. }
        | Command::Read { place, .. }
        | Command::Shares { place, .. }
        | Command::Leases { place, .. }
        | Command::Crawl { place, .. }
        | Command::CrawlerStatus { place, .. }
        | Command::MutableWrite { place, .. }
        | Command::MutableRead { place, .. }
        | Command::Advisories { place, .. }
        | Command::Stats { place, .. }
        | Command::Demo { place }
        | Command::Usage { place, .. } => Some(place),
        Command::Serve(args) => Some(&mut args.place),
        _ => None,
    }
}

/// With `--node-dir`: imports the node into `--state` and serves its storage
/// directory in place; `serve` and `crawl` also take its `tahoe.cfg` settings
/// where no flag says otherwise.
pub fn take_over(command: &mut Command) -> Result<()> {
    let Some(place) = place_of(command) else {
        return Ok(());
    };
    let Some(node_dir) = place.node_dir.clone() else {
        return Ok(());
    };
    let (node, _) = import(&node_dir, &place.state)?;
    place.storage = node.storage_dir.clone();
    match command {
        Command::Serve(args) => apply_to_serve(args, &node),
        Command::Crawl { crawler, .. } => apply_expiration(crawler, &node.config.expiration),
        _ => {}
    }
    Ok(())
}

fn apply_expiration(crawler: &mut super::cli::CrawlerArgs, expiration: &Expiration) {
    if crawler.expire.is_some() {
        return; // a flag says otherwise, `--expire disabled` included
    }
    match expiration {
        Expiration::Disabled => {}
        Expiration::Age { override_duration } => {
            crawler.expire = Some("age".into());
            crawler.expire_override = crawler.expire_override.take().or(override_duration.clone());
        }
        Expiration::CutoffDate { date } => {
            crawler.expire = Some("cutoff-date".into());
            crawler.expire_cutoff = crawler.expire_cutoff.take().or(Some(date.clone()));
        }
    }
}

fn apply_to_serve(args: &mut ServeArgs, node: &TahoeNode) {
    let c = &node.config;
    args.listen = args.listen.take().or(c.listen.clone());
    args.location = args.location.take().or(c.location.clone());
    args.reserved_space = args
        .reserved_space
        .take()
        .or(Some(c.reserved_space.to_string()));
    args.readonly |= c.readonly;
    apply_expiration(&mut args.crawler, &c.expiration);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn crawler_of(args: &[&str]) -> super::super::cli::CrawlerArgs {
        let cli = Cli::parse_from(["host-runner", "crawl"].iter().chain(args));
        match cli.command {
            Command::Crawl { crawler, .. } => crawler,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_nodes_expiry_applies_unless_a_flag_says_otherwise() {
        let node = Expiration::Age {
            override_duration: Some("60 days".into()),
        };
        let mut unset = crawler_of(&[]);
        apply_expiration(&mut unset, &node);
        assert_eq!(unset.expire.as_deref(), Some("age"));
        assert_eq!(unset.expire_override.as_deref(), Some("60 days"));
        let mut disabled = crawler_of(&["--expire", "disabled"]);
        apply_expiration(&mut disabled, &node);
        assert_eq!(disabled.expire.as_deref(), Some("disabled"));
        assert_eq!(disabled.expire_override, None);
    }
}
