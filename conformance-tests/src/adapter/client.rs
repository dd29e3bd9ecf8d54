//! The runner's end: a [`Harness`] whose server is an adapter process. Every
//! harness method and plugin call is one request; an answer the protocol does
//! not allow, an `adapter` error, a dead adapter or one that does not answer in
//! time fails the case (a panic, like any failed assertion).

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use leasedb_types::base64::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{ErrorReply, Request};
use crate::wit::{
    Account, AccountUsage, AdvisedType, Advisory, Allocation, BackendError, ByteRange,
    Capabilities, CrawlerConfig, CrawlerStatus, InitReport, LeaseInfo, PluginInfo,
    ReadTestWriteResult, ShareInfo, ShareNumber, ShareReads, ShareWrites, SliceOutcome, Stats,
    Usage,
};
use crate::{BackendOp, CallError, Component, Harness, Host, Operations, Options};

/// How to start an adapter.
#[derive(Debug, Clone)]
pub struct AdapterCommand {
    /// The program and its first arguments; the component options are appended.
    pub command: Vec<String>,
    /// The shipped component.
    pub component: PathBuf,
    /// The test-faults component.
    pub test_faults_component: PathBuf,
    /// Longest wait for one answer.
    pub answer_timeout: Duration,
}

/// One adapter process: one fresh server.
pub struct AdapterHarness {
    connection: Rc<RefCell<Connection>>,
}

struct Connection {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<std::io::Result<String>>,
    stderr: std::fs::File,
    next_id: u64,
    timeout: Duration,
}

impl AdapterHarness {
    /// Starts the adapter.
    pub fn spawn(adapter: &AdapterCommand) -> std::io::Result<Self> {
        let (program, args) = adapter
            .command
            .split_first()
            .ok_or_else(|| std::io::Error::other("an empty adapter command"))?;
        let stderr = tempfile::tempfile()?;
        let mut child = Command::new(program)
            .args(args)
            .arg("--component")
            .arg(&adapter.component)
            .arg("--test-faults-component")
            .arg(&adapter.test_faults_component)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.try_clone()?)
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = mpsc::channel();
        // A thread reads, so that a silent adapter cannot block the runner past its timeout.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let end = line.is_err();
                if send.send(line).is_err() || end {
                    break;
                }
            }
        });
        Ok(AdapterHarness {
            connection: Rc::new(RefCell::new(Connection {
                stdin: child.stdin.take(),
                child,
                lines,
                stderr,
                next_id: 1,
                timeout: adapter.answer_timeout,
            })),
        })
    }

    /// What the adapter wrote on stderr so far.
    pub fn stderr(&self) -> String {
        let mut connection = self.connection.borrow_mut();
        let mut text = String::new();
        let file = &mut connection.stderr;
        if file.rewind().is_ok() {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// A harness request whose failure fails the case.
    fn expect<T: DeserializeOwned>(&self, request: Request) -> T {
        let what = format!("{request:?}");
        match self.connection.borrow_mut().request(&request) {
            Ok(value) => decode(value, &what),
            Err(error) => panic!("the adapter failed {what}: {error:?}"),
        }
    }
}

impl Drop for AdapterHarness {
    fn drop(&mut self) {
        let mut connection = self.connection.borrow_mut();
        // End of input asks the adapter to exit; a kill makes sure it does.
        connection.stdin = None;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = connection.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = connection.child.kill();
        let _ = connection.child.wait();
    }
}

fn decode<T: DeserializeOwned>(value: Value, what: &str) -> T {
    serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("the adapter's answer to {what} is malformed ({e}): {value}"))
}

impl Connection {
    /// Sends one request and waits for its answer.
    fn request(&mut self, request: &Request) -> Result<Value, ErrorReply> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_value(request).expect("a request is JSON");
        line["id"] = id.into();
        let mut text = serde_json::to_string(&line).expect("a request is JSON");
        text.push('\n');
        let stdin = self.stdin.as_mut().expect("the adapter's input is open");
        if let Err(e) = stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush())
        {
            panic!("the adapter does not take requests (it exited?): {e}");
        }
        let line = match self.lines.recv_timeout(self.timeout) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => panic!("reading the adapter's answer: {e}"),
            Err(RecvTimeoutError::Timeout) => {
                panic!("the adapter did not answer within {:?}", self.timeout)
            }
            Err(RecvTimeoutError::Disconnected) => panic!("the adapter exited without answering"),
        };
        let mut answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the adapter's answer is not JSON ({e}): {line}"));
        if answer.get("id") != Some(&Value::from(id)) {
            panic!("the adapter answered request {id} with {line}");
        }
        if let Some(err) = answer.get_mut("err") {
            let err: ErrorReply = serde_json::from_value(err.take())
                .unwrap_or_else(|e| panic!("the adapter's error is malformed ({e}): {line}"));
            return Err(err);
        }
        match answer.get_mut("ok") {
            Some(ok) => Ok(ok.take()),
            None => panic!("the adapter's answer has neither ok nor err: {line}"),
        }
    }
}

impl Harness for AdapterHarness {
    type Host = AdapterHost;

    fn start(&self, options: &Options) -> Result<AdapterHost, String> {
        let request = Request::Start {
            options: options.into(),
        };
        let answer = self.connection.borrow_mut().request(&request);
        match answer {
            Ok(report) => Ok(AdapterHost {
                connection: self.connection.clone(),
                init_report: decode(report, "start"),
            }),
            Err(ErrorReply::Adapter { message }) => panic!("the adapter failed start: {message}"),
            Err(other) => Err(format!("{other:?}")),
        }
    }

    fn component_imports(&self, component: Component) -> Vec<String> {
        self.expect(Request::ComponentImports { component })
    }

    fn put_object(&self, key: &str, data: &[u8]) {
        self.expect(Request::PutObject {
            key: key.into(),
            data: data.to_vec(),
        })
    }

    fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.expect::<Option<Bytes>>(Request::Object { key: key.into() })
            .map(|b| b.0)
    }

    fn delete_object(&self, key: &str) {
        self.expect(Request::DeleteObject { key: key.into() })
    }

    fn object_keys(&self) -> Vec<String> {
        self.expect(Request::ObjectKeys {})
    }

    fn fail(&self, op: BackendOp, key_prefix: &str, error: BackendError) {
        self.expect(Request::Fail {
            op,
            key_prefix: key_prefix.into(),
            error,
        })
    }

    fn clear_faults(&self) {
        self.expect(Request::ClearFaults {})
    }

    fn calls(&self, op: BackendOp) -> u64 {
        self.expect(Request::Calls { op })
    }

    fn crash_during(&self, op: BackendOp, key_prefix: &str) {
        self.expect(Request::CrashDuring {
            op,
            key_prefix: key_prefix.into(),
        })
    }

    fn now(&self) -> i64 {
        self.expect(Request::Now {})
    }

    fn set_now(&self, secs: i64) {
        self.expect(Request::SetNow { secs })
    }

    fn remove_database(&self) {
        self.expect(Request::RemoveDatabase {})
    }
}

/// A started instance inside the adapter; dropping it stops the instance.
pub struct AdapterHost {
    connection: Rc<RefCell<Connection>>,
    init_report: InitReport,
}

impl AdapterHost {
    /// Calls plugin function `func` with `params` (a tuple: a JSON array).
    fn call<T: DeserializeOwned>(
        &mut self,
        func: &str,
        params: impl Serialize,
    ) -> Result<T, CallError> {
        let request = Request::Call {
            func: func.into(),
            params: serde_json::to_value(params).expect("parameters are JSON"),
        };
        match self.connection.borrow_mut().request(&request) {
            Ok(value) => Ok(decode(value, func)),
            Err(error) => Err(error
                .into_call_error()
                .unwrap_or_else(|message| panic!("the adapter failed {func}: {message}"))),
        }
    }
}

impl Drop for AdapterHost {
    fn drop(&mut self) {
        // A case that failed may have left the adapter dead or hung: stopping is then moot.
        if std::thread::panicking() {
            return;
        }
        let _ = self.connection.borrow_mut().request(&Request::Stop {});
    }
}

/// No parameters: an empty array.
const NONE: [(); 0] = [];

fn bytes(b: &[u8]) -> Bytes {
    Bytes(b.to_vec())
}

impl Host for AdapterHost {
    fn init_report(&self) -> InitReport {
        self.init_report.clone()
    }
}

impl Operations for AdapterHost {
    type Error = CallError;

    fn allocate(
        &mut self,
        session: u64,
        account: &Account,
        si: &[u8],
        share_numbers: &[ShareNumber],
        allocated_size: u64,
    ) -> Result<Allocation, CallError> {
        self.call(
            "allocate",
            (session, account, bytes(si), share_numbers, allocated_size),
        )
    }
    fn write(
        &mut self,
        si: &[u8],
        share_number: ShareNumber,
        offset: u64,
        data: &[u8],
    ) -> Result<(), CallError> {
        self.call("write", (bytes(si), share_number, offset, bytes(data)))
    }
    fn close(&mut self, si: &[u8], share_number: ShareNumber) -> Result<(), CallError> {
        self.call("close", (bytes(si), share_number))
    }
    fn abort(&mut self, si: &[u8], share_number: ShareNumber) -> Result<(), CallError> {
        self.call("abort", (bytes(si), share_number))
    }
    fn list_shares(&mut self, si: &[u8]) -> Result<Vec<ShareNumber>, CallError> {
        self.call("list-shares", (bytes(si),))
    }
    fn read(
        &mut self,
        si: &[u8],
        share_number: ShareNumber,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, CallError> {
        self.call::<Bytes>("read", (bytes(si), share_number, offset, length))
            .map(|b| b.0)
    }
    fn add_lease(&mut self, account: &Account, si: &[u8]) -> Result<u32, CallError> {
        self.call("add-lease", (account, bytes(si)))
    }
    fn list_leases(&mut self, si: &[u8]) -> Result<Vec<LeaseInfo>, CallError> {
        self.call("list-leases", (bytes(si),))
    }
    fn list_all_shares(
        &mut self,
        after: Option<(&[u8], ShareNumber)>,
        limit: u32,
    ) -> Result<Vec<ShareInfo>, CallError> {
        let after = after.map(|(si, n)| (bytes(si), n));
        self.call("list-all-shares", (after, limit))
    }
    fn read_test_write(
        &mut self,
        account: &Account,
        si: &[u8],
        write_enabler: &[u8],
        writes: &[ShareWrites],
        read_vector: &[ByteRange],
    ) -> Result<ReadTestWriteResult, CallError> {
        self.call(
            "read-test-write",
            (
                account,
                bytes(si),
                bytes(write_enabler),
                writes,
                read_vector,
            ),
        )
    }
    fn mutable_read(
        &mut self,
        si: &[u8],
        share_numbers: &[ShareNumber],
        read_vector: &[ByteRange],
    ) -> Result<Vec<ShareReads>, CallError> {
        self.call("mutable-read", (bytes(si), share_numbers, read_vector))
    }
    fn get_capabilities(&mut self) -> Result<Capabilities, CallError> {
        self.call("get-capabilities", NONE)
    }
    fn advise_corrupt(
        &mut self,
        account: &Account,
        share_type: AdvisedType,
        si: &[u8],
        share_number: ShareNumber,
        reason: &str,
    ) -> Result<(), CallError> {
        self.call(
            "advise-corrupt",
            (account, share_type, bytes(si), share_number, reason),
        )
    }
    fn list_advisories(&mut self, after: i64, limit: u32) -> Result<Vec<Advisory>, CallError> {
        self.call("list-advisories", (after, limit))
    }
    fn get_usage(&mut self, account: Option<&Account>) -> Result<Usage, CallError> {
        self.call("get-usage", (account,))
    }
    fn usage_by_account(&mut self) -> Result<Vec<AccountUsage>, CallError> {
        self.call("usage-by-account", NONE)
    }
    fn get_stats(&mut self) -> Result<Stats, CallError> {
        self.call("get-stats", NONE)
    }
    fn session_opened(&mut self, session: u64) -> Result<(), CallError> {
        self.call("session-opened", (session,))
    }
    fn session_closed(&mut self, session: u64) -> Result<u32, CallError> {
        self.call("session-closed", (session,))
    }
    fn crawler_configure(&mut self, config: CrawlerConfig) -> Result<(), CallError> {
        self.call("crawler-configure", (config,))
    }
    fn crawler_run_slice(
        &mut self,
        budget: Duration,
        force: bool,
    ) -> Result<SliceOutcome, CallError> {
        let budget_ms = u32::try_from(budget.as_millis()).unwrap_or(u32::MAX);
        self.call("crawler-run-slice", (budget_ms, force))
    }
    fn crawler_status(&mut self) -> Result<CrawlerStatus, CallError> {
        self.call("crawler-status", NONE)
    }
    fn info(&mut self) -> Result<PluginInfo, CallError> {
        self.call("info", NONE)
    }
}
