//! Runs the shared conformance cases against any host through its adapter
//! process (`ADAPTER.md`): a fresh adapter per case, one line per case, and
//! `N passed, N failed` at the end.

use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use clap::Parser;
use conformance_tests::adapter::client::{AdapterCommand, AdapterHarness};
use conformance_tests::Harness;

/// Runs the conformance cases against a host's adapter.
#[derive(Parser)]
#[command(name = "conformance")]
struct Args {
    /// Prints the case names, one per line, and runs nothing.
    #[arg(long)]
    list: bool,
    /// The plugin component to test (default: the shipped build).
    #[arg(long)]
    component: Option<PathBuf>,
    /// The test-faults build of the component (default: this checkout's).
    #[arg(long)]
    test_faults_component: Option<PathBuf>,
    /// Longest wait for one answer of the adapter, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Runs only the cases whose name contains this.
    filter: Option<String>,
    /// The adapter's command line (after `--`).
    #[arg(last = true)]
    adapter: Vec<String>,
}

/// The message of the latest panic, kept instead of printed.
static PANIC: Mutex<Option<String>> = Mutex::new(None);

/// One case: its name (`file::case`, the same for every host) and how to run it.
struct Case<H> {
    name: &'static str,
    run: fn(&H),
}

/// Every case, in the order the case files and their cases are declared.
fn cases<H: Harness>() -> Vec<Case<H>> {
    let mut list = Vec::new();
    macro_rules! push {
        ($module:ident: $($name:ident)*) => {
            $(
                list.push(Case {
                    name: concat!(stringify!($module), "::", stringify!($name)),
                    run: conformance_tests::cases::$module::$name::<H>,
                });
            )*
        };
    }
    conformance_tests::foreach_case!(push);
    list
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cases: Vec<_> = cases::<AdapterHarness>()
        .into_iter()
        .filter(|c| {
            args.filter
                .as_ref()
                .is_none_or(|f| c.name.contains(f.as_str()))
        })
        .collect();
    if args.list {
        let mut out = std::io::stdout().lock();
        for case in &cases {
            // A closed pipe (`| head`) ends the list quietly.
            if writeln!(out, "{}", case.name).is_err() {
                break;
            }
        }
        return ExitCode::SUCCESS;
    }
    if args.adapter.is_empty() {
        eprintln!("conformance: give the adapter's command after `--`");
        return ExitCode::from(2);
    }
    let adapter = AdapterCommand {
        command: args.adapter,
        component: args
            .component
            .unwrap_or_else(|| leasedb_plugin_artifacts::PLUGIN_WASM.into()),
        test_faults_component: args
            .test_faults_component
            .unwrap_or_else(|| leasedb_plugin_fixtures::PLUGIN_TEST_FAULTS_WASM.into()),
        answer_timeout: Duration::from_secs(args.timeout),
    };

    panic::set_hook(Box::new(|info| {
        let message = match info.payload().downcast_ref::<&str>() {
            Some(s) => s.to_string(),
            None => match info.payload().downcast_ref::<String>() {
                Some(s) => s.clone(),
                None => "a panic".into(),
            },
        };
        let at = info
            .location()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default();
        *PANIC.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{message}{at}"));
    }));

    let (mut passed, mut failed) = (0, 0);
    for case in &cases {
        let harness = match AdapterHarness::spawn(&adapter) {
            Ok(harness) => harness,
            Err(e) => {
                println!(
                    "FAILED {}: cannot start the adapter {:?}: {e}",
                    case.name, adapter.command
                );
                failed += 1;
                continue;
            }
        };
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| (case.run)(&harness)));
        match outcome {
            Ok(()) => {
                println!("ok {}", case.name);
                passed += 1;
            }
            Err(_) => {
                let why = PANIC.lock().unwrap_or_else(|p| p.into_inner()).take();
                println!("FAILED {}: {}", case.name, why.unwrap_or_default());
                let stderr = harness.stderr();
                let lines: Vec<&str> = stderr.lines().collect();
                for line in &lines[lines.len().saturating_sub(30)..] {
                    println!("    | {line}");
                }
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
