//! `host-runner`: the command line over `PluginHost`. This file parses and
//! dispatches; the commands are in `commands/`. Errors end here, as one
//! `error: …` line on stderr and a non-zero exit.

mod commands;

use std::process::ExitCode;

use anyhow::Result;

use commands::cli::{Cli, Command};
use commands::{accounts, crawl, demo, inspect, serve, shares, swap, tahoe_node, usage};

fn main() -> ExitCode {
    let cli = match commands::settings::parse() {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("error: {}", format!("{error:#}").replace('\n', " "));
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = host_runner::logging::init(cli.log_format) {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, however many causes the chain has.
            let text = format!("{error:#}").replace('\n', " ");
            eprintln!("error: {text}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut cli: Cli) -> Result<()> {
    tahoe_node::take_over(&mut cli.command)?;
    match cli.command {
        Command::Put {
            place,
            si,
            shnum,
            file,
            hold,
        } => shares::put_command(&place, &si, shnum, &file, hold),
        Command::Read {
            place,
            si,
            shnum,
            offset,
            length,
        } => shares::read_command(&place, &si, shnum, offset, length),
        Command::Shares { place, json } => shares::shares(&place, json),
        Command::Leases { place, si, json } => shares::leases(&place, &si, json),
        Command::Demo { place } => demo::demo(&place),
        Command::Crawl {
            place,
            crawler,
            once,
            json,
        } => crawl::crawl(&place, &crawler, once, json),
        Command::CrawlerStatus { place, json } => crawl::status(&place, json),
        Command::MutableWrite {
            place,
            si,
            shnum,
            file,
            write_enabler,
            offset,
            expect,
            new_length,
        } => inspect::mutable_write(
            &place,
            &si,
            shnum,
            &file,
            &write_enabler,
            offset,
            expect.as_deref(),
            new_length,
        ),
        Command::MutableRead {
            place,
            si,
            shnum,
            offset,
            length,
        } => inspect::mutable_read(&place, &si, shnum, offset, length),
        Command::Advisories { place, json } => inspect::advisories(&place, json),
        Command::Stats { place, json } => inspect::stats(&place, json),
        Command::Serve(args) => serve::serve(args),
        Command::ClientConfig {
            state,
            account,
            listen,
        } => {
            print!(
                "{}",
                serve::client_config(&state, account.as_deref(), listen.as_deref())?
            );
            Ok(())
        }
        Command::Accounts { state, command } => accounts::accounts(&state, command),
        Command::Usage { place, json } => usage::usage_command(&place, json),
        Command::ImportTahoeNode { node_dir, state } => {
            tahoe_node::import_command(&node_dir, &state)
        }
        Command::Swap {
            admin,
            state,
            plugin,
            json,
        } => swap::swap(&admin, &state, &plugin, json),
    }
}
