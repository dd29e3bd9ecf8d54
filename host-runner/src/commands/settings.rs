//! Where `serve`'s settings come from besides its flags: every flag can also
//! be given as `LEASEDB_<FLAG>` in the environment (`--reserved-space` is
//! `LEASEDB_RESERVED_SPACE`) or as `<flag> = value` in a TOML file named by
//! `--config FILE` (or `LEASEDB_CONFIG`). A flag beats the environment, which
//! beats the file, which beats the default.

use std::ffi::OsString;
use std::fs;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Arg, ArgAction, CommandFactory, FromArgMatches};

use super::cli::Cli;

/// The environment variable a `serve` flag can also be set by.
pub fn env_name(flag: &str) -> String {
    format!("LEASEDB_{}", flag.replace('-', "_").to_ascii_uppercase())
}

/// The `clap` command with `serve`'s flags bound to the environment and `--config` added.
fn command() -> clap::Command {
    Cli::command().mut_subcommand("serve", |serve| {
        serve
            .mut_args(|arg| {
                let env = arg.get_long().map(env_name);
                match env {
                    Some(env) => arg.env(env),
                    None => arg,
                }
            })
            .arg(
                Arg::new("config")
                    .long("config")
                    .value_name("FILE")
                    .env("LEASEDB_CONFIG")
                    .action(ArgAction::Set)
                    .help(
                        "Read settings from this TOML file: `flag-name = value` for any flag above",
                    ),
            )
    })
}

/// The value of `--config FILE` among `args`, or `LEASEDB_CONFIG`.
fn config_path(args: &[OsString]) -> Option<OsString> {
    if args.get(1).is_none_or(|a| a != "serve") {
        return None;
    }
    let mut it = args.iter().skip(2);
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().cloned();
        }
        if let Some(v) = a.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(v.into());
        }
    }
    std::env::var_os("LEASEDB_CONFIG")
}

/// A TOML value as a flag's text.
fn flag_text(key: &str, value: &toml::Value) -> Result<String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => bail!("{key}: a {} is not a flag value", other.type_str()),
    })
}

/// Reads the config file into the environment variables of the flags it
/// sets, where the environment does not set them already.
fn load_config(path: &Path, serve: &clap::Command) -> Result<()> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not a TOML file", path.display()))?;
    for (key, value) in &table {
        let flag = key.replace('_', "-");
        if flag == "config" || !serve.get_arguments().any(|a| a.get_long() == Some(&flag)) {
            bail!("{}: {key:?} is not a `serve` flag", path.display());
        }
        let env = env_name(&flag);
        if std::env::var_os(&env).is_none() {
            let text = flag_text(key, value).map_err(|e| anyhow!("{}: {e}", path.display()))?;
            // Still single-threaded: nothing else reads the environment yet.
            std::env::set_var(env, text);
        }
    }
    Ok(())
}

/// Parses the command line, with `serve`'s environment and config file.
pub fn parse() -> Result<Cli> {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(path) = config_path(&args) {
        let plain = Cli::command();
        let serve = plain.find_subcommand("serve").expect("serve exists");
        load_config(Path::new(&path), serve)?;
    }
    // Only now: clap reads each variable when the argument is bound to it.
    let mut cmd = command();
    let matches = cmd
        .try_get_matches_from_mut(args)
        .unwrap_or_else(|e| e.exit());
    Cli::from_arg_matches(&matches).map_err(|e| anyhow!(e.format(&mut cmd)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_serve_flag_has_its_environment_variable() {
        let cmd = command();
        let serve = cmd.find_subcommand("serve").unwrap();
        for arg in serve.get_arguments().filter(|a| a.get_long().is_some()) {
            let long = arg.get_long().unwrap();
            if long == "help" {
                continue;
            }
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(env_name(long).as_str()),
                "--{long}"
            );
        }
        assert_eq!(env_name("reserved-space"), "LEASEDB_RESERVED_SPACE");
    }
}
