//! The adapter end: serves the protocol over any in-process [`Harness`], so a
//! host written in Rust is an adapter in one call.

use std::io::{self, BufRead, Write};
use std::time::Duration;

use leasedb_types::base64::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::{ErrorReply, Request};
use crate::wit::{Account, AdvisedType, ByteRange, CrawlerConfig, ShareNumber, ShareWrites};
use crate::{CallError, Harness, Host, Operations};

/// Answers requests read from `input` on `output` until `input` ends; the
/// running instance, if any, is stopped at the end.
pub fn serve<H: Harness>(
    harness: &H,
    input: impl BufRead,
    mut output: impl Write,
) -> io::Result<()> {
    let mut running: Option<H::Host> = None;
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let (id, answer) = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(mut request)) => {
                let id = request.remove("id").unwrap_or(Value::Null);
                let answer = match serde_json::from_value::<Request>(Value::Object(request)) {
                    Ok(request) => handle(harness, &mut running, request),
                    Err(e) => Err(adapter_error(format!("not a request: {e}"))),
                };
                (id, answer)
            }
            Ok(_) => (
                Value::Null,
                Err(adapter_error("a request is a JSON object".into())),
            ),
            Err(e) => (Value::Null, Err(adapter_error(format!("not JSON: {e}")))),
        };
        let reply = match answer {
            Ok(ok) => json!({"id": id, "ok": ok}),
            Err(err) => json!({"id": id, "err": err}),
        };
        serde_json::to_writer(&mut output, &reply)?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
    drop(running);
    Ok(())
}

fn adapter_error(message: String) -> ErrorReply {
    ErrorReply::Adapter { message }
}

fn ok<T: Serialize>(value: T) -> Result<Value, ErrorReply> {
    serde_json::to_value(value).map_err(|e| adapter_error(format!("unrepresentable answer: {e}")))
}

fn handle<H: Harness>(
    h: &H,
    running: &mut Option<H::Host>,
    request: Request,
) -> Result<Value, ErrorReply> {
    match request {
        Request::Start { options } => {
            *running = None;
            let host = h
                .start(&options.into())
                .map_err(|message| ErrorReply::Unavailable { message })?;
            let report = host.init_report();
            *running = Some(host);
            ok(report)
        }
        Request::Stop {} => {
            *running = None;
            ok(())
        }
        Request::ComponentImports { component } => ok(h.component_imports(component)),
        Request::PutObject { key, data } => ok(h.put_object(&key, &data)),
        Request::Object { key } => ok(h.object(&key).map(Bytes)),
        Request::DeleteObject { key } => ok(h.delete_object(&key)),
        Request::ObjectKeys {} => ok(h.object_keys()),
        Request::Fail {
            op,
            key_prefix,
            error,
        } => ok(h.fail(op, &key_prefix, error)),
        Request::ClearFaults {} => ok(h.clear_faults()),
        Request::Calls { op } => ok(h.calls(op)),
        Request::CrashDuring { op, key_prefix } => ok(h.crash_during(op, &key_prefix)),
        Request::Now {} => ok(h.now()),
        Request::SetNow { secs } => ok(h.set_now(secs)),
        Request::RemoveDatabase {} => {
            if running.is_some() {
                return Err(adapter_error(
                    "remove-database while an instance runs".into(),
                ));
            }
            ok(h.remove_database())
        }
        Request::Call { func, params } => match running {
            Some(host) => call(host, &func, params),
            None => Err(adapter_error(format!(
                "call {func} with no instance started"
            ))),
        },
    }
}

/// The parameters of a call, as the tuple `P` of their types.
fn params<P: DeserializeOwned>(func: &str, params: Value) -> Result<P, ErrorReply> {
    serde_json::from_value(params).map_err(|e| adapter_error(format!("bad params of {func}: {e}")))
}

fn answer<T: Serialize>(result: Result<T, CallError>) -> Result<Value, ErrorReply> {
    ok(result.map_err(ErrorReply::from)?)
}

/// Calls the plugin function named `func` (its WIT name) with `raw` parameters.
pub fn call<O: Operations<Error = CallError>>(
    ops: &mut O,
    func: &str,
    raw: Value,
) -> Result<Value, ErrorReply> {
    match func {
        "allocate" => {
            let (session, account, si, shnums, size): (u64, Account, Bytes, Vec<ShareNumber>, u64) =
                params(func, raw)?;
            answer(ops.allocate(session, &account, &si.0, &shnums, size))
        }
        "write" => {
            let (si, shnum, offset, data): (Bytes, ShareNumber, u64, Bytes) = params(func, raw)?;
            answer(ops.write(&si.0, shnum, offset, &data.0))
        }
        "close" => {
            let (si, shnum): (Bytes, ShareNumber) = params(func, raw)?;
            answer(ops.close(&si.0, shnum))
        }
        "abort" => {
            let (si, shnum): (Bytes, ShareNumber) = params(func, raw)?;
            answer(ops.abort(&si.0, shnum))
        }
        "list-shares" => {
            let (si,): (Bytes,) = params(func, raw)?;
            answer(ops.list_shares(&si.0))
        }
        "read" => {
            let (si, shnum, offset, length): (Bytes, ShareNumber, u64, u64) = params(func, raw)?;
            answer(ops.read(&si.0, shnum, offset, length).map(Bytes))
        }
        "add-lease" => {
            let (account, si): (Account, Bytes) = params(func, raw)?;
            answer(ops.add_lease(&account, &si.0))
        }
        "list-leases" => {
            let (si,): (Bytes,) = params(func, raw)?;
            answer(ops.list_leases(&si.0))
        }
        "list-all-shares" => {
            let (after, limit): (Option<(Bytes, ShareNumber)>, u32) = params(func, raw)?;
            answer(ops.list_all_shares(after.as_ref().map(|(si, n)| (&si.0[..], *n)), limit))
        }
        "read-test-write" => {
            let (account, si, enabler, writes, reads): (
                Account,
                Bytes,
                Bytes,
                Vec<ShareWrites>,
                Vec<ByteRange>,
            ) = params(func, raw)?;
            answer(ops.read_test_write(&account, &si.0, &enabler.0, &writes, &reads))
        }
        "mutable-read" => {
            let (si, shnums, reads): (Bytes, Vec<ShareNumber>, Vec<ByteRange>) = params(func, raw)?;
            answer(ops.mutable_read(&si.0, &shnums, &reads))
        }
        "get-capabilities" => {
            let []: [(); 0] = params(func, raw)?;
            answer(ops.get_capabilities())
        }
        "advise-corrupt" => {
            let (account, share_type, si, shnum, reason): (
                Account,
                AdvisedType,
                Bytes,
                ShareNumber,
                String,
            ) = params(func, raw)?;
            answer(ops.advise_corrupt(&account, share_type, &si.0, shnum, &reason))
        }
        "list-advisories" => {
            let (after, limit): (i64, u32) = params(func, raw)?;
            answer(ops.list_advisories(after, limit))
        }
        "get-usage" => {
            let (account,): (Option<Account>,) = params(func, raw)?;
            answer(ops.get_usage(account.as_ref()))
        }
        "usage-by-account" => {
            let []: [(); 0] = params(func, raw)?;
            answer(ops.usage_by_account())
        }
        "get-stats" => {
            let []: [(); 0] = params(func, raw)?;
            answer(ops.get_stats())
        }
        "session-opened" => {
            let (session,): (u64,) = params(func, raw)?;
            answer(ops.session_opened(session))
        }
        "session-closed" => {
            let (session,): (u64,) = params(func, raw)?;
            answer(ops.session_closed(session))
        }
        "crawler-configure" => {
            let (config,): (CrawlerConfig,) = params(func, raw)?;
            answer(ops.crawler_configure(config))
        }
        "crawler-run-slice" => {
            let (budget_ms, force): (u32, bool) = params(func, raw)?;
            answer(ops.crawler_run_slice(Duration::from_millis(budget_ms.into()), force))
        }
        "crawler-status" => {
            let []: [(); 0] = params(func, raw)?;
            answer(ops.crawler_status())
        }
        "info" => {
            let []: [(); 0] = params(func, raw)?;
            answer(ops.info())
        }
        other => Err(adapter_error(format!("no plugin function {other:?}"))),
    }
}
