//! The GBS wire protocol against an in-process `serve`, over HTTPS with the
//! certificate pinned by SPKI as a Tahoe 1.20 client pins it: every error
//! status a client can meet, and the exact CBOR of the happy paths.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::tahoe::https_client::*;
use ciborium::Value;
use host_runner::server::{ServeOptions, Server};

struct Fixture {
    _dir: tempfile::TempDir,
    server: Server,
}

/// One server for the whole file: compiling the plugin is the slow part.
fn server() -> &'static Server {
    static SERVER: OnceLock<Fixture> = OnceLock::new();
    &SERVER
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let mut opts = ServeOptions::new(dir.path().join("storage"), dir.path().join("state"));
            opts.listen = Some("127.0.0.1:0".into());
            opts.status = Some("127.0.0.1:0".into());
            opts.crawler = None;
            opts.host.max_mutable_size = 4 << 20;
            let server = Server::start(opts).unwrap();
            Fixture { _dir: dir, server }
        })
        .server
}

fn client() -> Client {
    Client::new(&server().nurl)
}

fn h(hex: &str) -> Vec<u8> {
    hex::decode(hex.replace(' ', "")).unwrap()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn allocate(c: &Client, si: &str, shnums: &[u64], size: u64, secret: u8) -> Reply {
    c.send(
        "POST",
        &format!("/storage/v1/immutable/{si}"),
        &[renew(1), cancel(1), upload(secret), cbor_ct()],
        allocate_body(shnums, size),
    )
}

fn patch(c: &Client, si: &str, n: u32, first: u64, bytes: &[u8], secret: u8) -> Reply {
    let last = first + bytes.len() as u64 - 1;
    c.send(
        "PATCH",
        &format!("/storage/v1/immutable/{si}/{n}"),
        &[
            upload(secret),
            ("content-range", format!("bytes {first}-{last}/*")),
        ],
        bytes.to_vec(),
    )
}

fn read(c: &Client, si: &str, n: u32, range: &str) -> Reply {
    c.send(
        "GET",
        &format!("/storage/v1/immutable/{si}/{n}"),
        &[("range", range.into())],
        vec![],
    )
}

/// Uploads `bytes` as share 0 of `si` in one PATCH.
fn put(c: &Client, si: &str, bytes: &[u8]) {
    let r = allocate(c, si, &[0], bytes.len() as u64, 9);
    assert_eq!(r.status, 200);
    let r = patch(c, si, 0, 0, bytes, 9);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn version_reply_has_bstr_keys_and_is_cbor() {
    let r = client().send("GET", "/storage/v1/version", &[], vec![]);
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type(), Some("application/cbor"));
    // a2, bstr(47) "http://allmydata.org/tahoe/protocols/storage/v1", a3, bstr(28) "maximum-immutable-share-size"
    let head = cat(&[
        &h("a2 582f"),
        b"http://allmydata.org/tahoe/protocols/storage/v1",
        &h("a3 581c"),
        b"maximum-immutable-share-size",
    ]);
    assert!(r.body.starts_with(&head), "{:02x?}", &r.body[..40]);
    let Value::Map(top) = dec(&r.body) else {
        panic!("not a map")
    };
    assert_eq!(top.len(), 2);
    assert_eq!(top[1].0, Value::Bytes(b"application-version".to_vec()));
    assert!(matches!(&top[1].1, Value::Bytes(v) if v.starts_with(b"host-runner/")));
    let Value::Map(inner) = &top[0].1 else {
        panic!()
    };
    let keys: Vec<&Value> = inner.iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            &Value::Bytes(b"maximum-immutable-share-size".to_vec()),
            &Value::Bytes(b"maximum-mutable-share-size".to_vec()),
            &Value::Bytes(b"available-space".to_vec()),
        ]
    );
    assert_eq!(inner[1].1, Value::Integer((4u64 << 20).into()));
}

#[test]
fn wrong_or_missing_swissnum_is_401_everywhere() {
    let c = client();
    let bad = (
        "authorization",
        authorization_for("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    );
    for (method, path) in [
        ("GET", "/storage/v1/version".to_owned()),
        ("GET", format!("/storage/v1/immutable/{}/shares", si(1))),
        ("GET", format!("/storage/v1/mutable/{}/shares", si(1))),
    ] {
        assert_eq!(
            c.send(method, &path, std::slice::from_ref(&bad), vec![])
                .status,
            401
        );
        assert_eq!(
            c.send(method, &path, &[("authorization", String::new())], vec![])
                .status,
            401
        );
    }
    // Close is not enough: a prefix of the right value.
    let truncated = c.authorization[..c.authorization.len() - 1].to_owned();
    assert_eq!(
        c.send(
            "GET",
            "/storage/v1/version",
            &[("authorization", truncated)],
            vec![]
        )
        .status,
        401
    );
}

fn authorization_for(swissnum: &str) -> String {
    host_runner::server::identity::authorization_value(swissnum)
}

#[test]
fn secrets_must_be_exactly_the_required_kinds_and_sizes() {
    let c = client();
    let si = si(2);
    let path = format!("/storage/v1/immutable/{si}");
    // Missing upload-secret.
    let r = c.send(
        "POST",
        &path,
        &[renew(1), cancel(1), cbor_ct()],
        allocate_body(&[0], 10),
    );
    assert_eq!(r.status, 400);
    // A 31-byte lease secret.
    let short = (
        "x-tahoe-authorization",
        format!("lease-renew-secret {}", b64(&[1; 31])),
    );
    let r = c.send(
        "POST",
        &path,
        &[short, cancel(1), upload(1), cbor_ct()],
        allocate_body(&[0], 10),
    );
    assert_eq!(r.status, 400);
    // A secret where none is allowed.
    let r = c.send("GET", "/storage/v1/version", &[upload(1)], vec![]);
    assert_eq!(r.status, 400);
    // An unknown kind.
    let odd = (
        "x-tahoe-authorization",
        format!("frobnicate {}", b64(&[1; 32])),
    );
    let r = c.send(
        "PUT",
        &format!("/storage/v1/lease/{si}"),
        &[renew(1), cancel(1), odd],
        vec![],
    );
    assert_eq!(r.status, 400);
}

#[test]
fn allocate_patch_read_exact_bytes() {
    let c = client();
    let si = si(3);
    let content = data(5483, 3);
    let r = allocate(&c, &si, &[0], 5483, 3);
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type(), Some("application/cbor"));
    assert_eq!(
        r.body,
        cat(&[
            &h("a2 6c"),
            b"already-have",
            &h("d90102 80 69"),
            b"allocated",
            &h("d90102 81 00")
        ])
    );
    // First half: 200 with the missing range.
    let r = patch(&c, &si, 0, 0, &content[..3000], 3);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        cat(&[
            &h("a1 68"),
            b"required",
            &h("81 a2 65"),
            b"begin",
            &h("19 0bb8 63"),
            b"end",
            &h("19 156b")
        ])
    );
    // Invisible while uploading.
    assert_eq!(read(&c, &si, 0, "bytes=0-10").status, 404);
    let r = patch(&c, &si, 0, 3000, &content[3000..], 3);
    assert_eq!(r.status, 201);
    assert_eq!(r.content_type(), Some("application/cbor"));
    assert_eq!(r.body, cat(&[&h("a1 68"), b"required", &h("80")]));
    // Listed.
    let r = c.send(
        "GET",
        &format!("/storage/v1/immutable/{si}/shares"),
        &[],
        vec![],
    );
    assert_eq!(
        (r.status.as_u16(), r.body.clone()),
        (200, h("d9 0102 81 00"))
    );
    // 206 with Content-Range, truncated at the end.
    let r = read(&c, &si, 0, "bytes=5000-9999");
    assert_eq!(r.status, 206);
    assert_eq!(r.content_type(), Some("application/octet-stream"));
    assert_eq!(r.headers["content-range"], "bytes 5000-5482/*");
    assert_eq!(r.body, &content[5000..]);
    let r = read(&c, &si, 0, "bytes=0-0");
    assert_eq!(
        (r.status.as_u16(), r.body.clone()),
        (206, content[..1].to_vec())
    );
    // 204 past the end.
    let r = read(&c, &si, 0, "bytes=5483-6000");
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    // Allocating again: already have.
    let r = allocate(&c, &si, &[0, 1], 5483, 4);
    assert_eq!(
        r.body,
        cat(&[
            &h("a2 6c"),
            b"already-have",
            &h("d90102 81 00 69"),
            b"allocated",
            &h("d90102 81 01")
        ])
    );
    let r = c.send(
        "PUT",
        &format!("/storage/v1/immutable/{si}/1/abort"),
        &[upload(4)],
        vec![],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn out_of_order_patches_complete_the_share() {
    let c = client();
    let si = si(4);
    let content = data(300_000, 4);
    assert_eq!(allocate(&c, &si, &[2], content.len() as u64, 4).status, 200);
    let r = patch(&c, &si, 2, 200_000, &content[200_000..], 4);
    assert_eq!(r.status, 200);
    let r = patch(&c, &si, 2, 0, &content[..50_000], 4);
    assert_eq!(r.status, 200);
    // Overlapping, identical rewrite of written bytes, filling the hole.
    let r = patch(&c, &si, 2, 40_000, &content[40_000..210_000], 4);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = read(&c, &si, 2, "bytes=0-299999");
    assert_eq!(r.status, 206);
    assert!(r.body == content, "read back differs");
    // The upload is over: PATCH and abort find nothing.
    assert_eq!(patch(&c, &si, 2, 0, &content[..10], 4).status, 404);
    let r = c.send(
        "PUT",
        &format!("/storage/v1/immutable/{si}/2/abort"),
        &[upload(4)],
        vec![],
    );
    assert_eq!(r.status, 405);
}

#[test]
fn conflicting_rewrite_is_409_identical_is_200() {
    let c = client();
    let si = si(5);
    let content = data(2000, 5);
    assert_eq!(allocate(&c, &si, &[0], 2000, 5).status, 200);
    assert_eq!(patch(&c, &si, 0, 0, &content[..1000], 5).status, 200);
    assert_eq!(patch(&c, &si, 0, 0, &content[..1000], 5).status, 200);
    let mut other = content[..1000].to_vec();
    other[500] ^= 1;
    assert_eq!(patch(&c, &si, 0, 0, &other, 5).status, 409);
    assert_eq!(patch(&c, &si, 0, 1000, &content[1000..], 5).status, 201);
}

#[test]
fn patch_errors() {
    let c = client();
    let si = si(6);
    let content = data(1000, 6);
    assert_eq!(allocate(&c, &si, &[0], 1000, 6).status, 200);
    let path = format!("/storage/v1/immutable/{si}/0");
    // No or bad Content-Range: 416.
    assert_eq!(
        c.send("PATCH", &path, &[upload(6)], content.clone()).status,
        416
    );
    let r = c.send(
        "PATCH",
        &path,
        &[upload(6), ("content-range", "bytes 5-6".into())],
        vec![1, 2],
    );
    assert_eq!(r.status, 416);
    // Past the allocated size: 416.
    assert_eq!(patch(&c, &si, 0, 900, &data(200, 1), 6).status, 416);
    // Wrong upload secret: 401; unknown share: 404.
    assert_eq!(patch(&c, &si, 0, 0, &content, 7).status, 401);
    assert_eq!(patch(&c, &si, 1, 0, &content, 6).status, 404);
    // Wrong secret on abort: 401; then abort: 200; then 404.
    let abort = format!("/storage/v1/immutable/{si}/0/abort");
    assert_eq!(c.send("PUT", &abort, &[upload(7)], vec![]).status, 401);
    assert_eq!(c.send("PUT", &abort, &[upload(6)], vec![]).status, 200);
    assert_eq!(c.send("PUT", &abort, &[upload(6)], vec![]).status, 404);
    assert_eq!(patch(&c, &si, 0, 0, &content, 6).status, 404);
    // The share can be allocated again after the abort.
    assert_eq!(
        allocate(&c, &si, &[0], 1000, 8).body,
        cat(&[
            &h("a2 6c"),
            b"already-have",
            &h("d90102 80 69"),
            b"allocated",
            &h("d90102 81 00")
        ])
    );
    c.send("PUT", &abort, &[upload(8)], vec![]);
}

#[test]
fn body_type_size_and_schema_errors() {
    let c = client();
    let si = si(7);
    let path = format!("/storage/v1/immutable/{si}");
    let secrets = [renew(1), cancel(1), upload(1)];
    let with = |extra: (&'static str, String)| {
        let mut v = secrets.to_vec();
        v.push(extra);
        v
    };
    // 415 for JSON.
    let r = c.send(
        "POST",
        &path,
        &with(("content-type", "application/json".into())),
        b"{}".to_vec(),
    );
    assert_eq!(r.status, 415);
    // 413 over 8 KiB.
    let r = c.send("POST", &path, &with(cbor_ct()), vec![0xa0; 9000]);
    assert_eq!(r.status, 413);
    // 400: an untagged set, an extra key.
    let untagged = enc(&Value::Map(vec![
        (
            Value::Text("share-numbers".into()),
            Value::Array(vec![Value::Integer(0.into())]),
        ),
        (
            Value::Text("allocated-size".into()),
            Value::Integer(10.into()),
        ),
    ]));
    assert_eq!(
        c.send("POST", &path, &with(cbor_ct()), untagged).status,
        400
    );
    let Value::Map(mut extra) = dec(&allocate_body(&[0], 10)) else {
        panic!()
    };
    extra.push((Value::Text("surprise".into()), Value::Integer(1.into())));
    assert_eq!(
        c.send("POST", &path, &with(cbor_ct()), enc(&Value::Map(extra)))
            .status,
        400
    );
    // Content-Type with parameters is still CBOR.
    let r = c.send(
        "POST",
        &path,
        &with(("content-type", "application/cbor; charset=binary".into())),
        allocate_body(&[0], 10),
    );
    assert_eq!(r.status, 200);
    c.send("PUT", &format!("{path}/0/abort"), &[upload(1)], vec![]);
    // A mutable body over the configured limit: 413.
    let big = vec![0u8; (6 << 20) as usize];
    let r = c.send(
        "POST",
        &format!("/storage/v1/mutable/{si}/read-test-write"),
        &[renew(1), cancel(1), write_enabler(1), cbor_ct()],
        big,
    );
    assert_eq!(r.status, 413);
}

#[test]
fn reads_404_and_416() {
    let c = client();
    let si = si(8);
    assert_eq!(read(&c, &si, 0, "bytes=0-10").status, 404);
    put(&c, &si, &data(100, 8));
    for bad in [
        "bytes=5-",
        "bytes=-5",
        "bytes=0-1,3-4",
        "bytes=3-2",
        "items=0-1",
    ] {
        assert_eq!(read(&c, &si, 0, bad).status, 416, "{bad}");
    }
    assert_eq!(read(&c, &si, 1, "bytes=0-10").status, 404);
    // Unknown SI lists as the empty set; a malformed SI is not a route.
    let r = c.send(
        "GET",
        &format!("/storage/v1/immutable/{}/shares", si_text(99)),
        &[],
        vec![],
    );
    assert_eq!((r.status.as_u16(), r.body.clone()), (200, h("d9 0102 80")));
    let r = c.send("GET", "/storage/v1/immutable/AAAA/shares", &[], vec![]);
    assert_eq!(r.status, 404);
}

fn si_text(seed: u8) -> String {
    crate::tahoe::https_client::si(seed)
}

#[test]
fn leases_404_for_unknown_204_for_known() {
    let c = client();
    let unknown = si(9);
    let r = c.send(
        "PUT",
        &format!("/storage/v1/lease/{unknown}"),
        &[renew(1), cancel(1)],
        vec![],
    );
    assert_eq!(r.status, 404);
    let known = si(10);
    put(&c, &known, &data(64, 10));
    let r = c.send(
        "PUT",
        &format!("/storage/v1/lease/{known}"),
        &[renew(1), cancel(1)],
        vec![],
    );
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    // Corruption advisories are recorded: 200.
    let body = enc(&Value::Map(vec![(
        Value::Text("reason".into()),
        Value::Text("bad hash".into()),
    )]));
    let r = c.send(
        "POST",
        &format!("/storage/v1/immutable/{known}/0/corrupt"),
        &[cbor_ct()],
        body,
    );
    assert_eq!(r.status, 200);
}

fn rtw_body(
    shnum: u64,
    test_specimen: &[u8],
    test_size: u64,
    writes: &[(u64, &[u8])],
    read_size: u64,
) -> Vec<u8> {
    let text = |s: &str| Value::Text(s.into());
    let int = |n: u64| Value::Integer(n.into());
    enc(&Value::Map(vec![
        (
            text("test-write-vectors"),
            Value::Map(vec![(
                int(shnum),
                Value::Map(vec![
                    (
                        text("test"),
                        Value::Array(vec![Value::Map(vec![
                            (text("offset"), int(0)),
                            (text("size"), int(test_size)),
                            (text("specimen"), Value::Bytes(test_specimen.to_vec())),
                        ])]),
                    ),
                    (
                        text("write"),
                        Value::Array(
                            writes
                                .iter()
                                .map(|(o, d)| {
                                    Value::Map(vec![
                                        (text("offset"), int(*o)),
                                        (text("data"), Value::Bytes(d.to_vec())),
                                    ])
                                })
                                .collect(),
                        ),
                    ),
                    (text("new-length"), Value::Null),
                ]),
            )]),
        ),
        (
            text("read-vector"),
            Value::Array(vec![Value::Map(vec![
                (text("offset"), int(0)),
                (text("size"), int(read_size)),
            ])]),
        ),
    ]))
}

#[test]
fn mutable_read_test_write_and_reads() {
    let c = client();
    let si = si(11);
    let rtw = format!("/storage/v1/mutable/{si}/read-test-write");
    let secrets = [renew(2), cancel(2), write_enabler(2), cbor_ct()];
    // Create share 0 = "hi": reply {success: true, data: {}}.
    let r = c.send(
        "POST",
        &rtw,
        &secrets,
        rtw_body(0, b"", 1, &[(0, b"hi")], 57),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        cat(&[&h("a2 67"), b"success", &h("f5 64"), b"data", &h("a0")])
    );
    // Update with a failing test: data returned, nothing written.
    let r = c.send(
        "POST",
        &rtw,
        &secrets,
        rtw_body(0, b"no", 2, &[(0, b"XX")], 57),
    );
    assert_eq!(
        r.body,
        cat(&[
            &h("a2 67"),
            b"success",
            &h("f4 64"),
            b"data",
            &h("a1 00 81 42"),
            b"hi"
        ])
    );
    // Passing test, a write past the end zero-fills.
    let r = c.send(
        "POST",
        &rtw,
        &secrets,
        rtw_body(0, b"hi", 2, &[(4, b"yo")], 57),
    );
    assert_eq!(
        r.body,
        cat(&[
            &h("a2 67"),
            b"success",
            &h("f5 64"),
            b"data",
            &h("a1 00 81 42"),
            b"hi"
        ])
    );
    // Wrong write enabler: 401.
    let r = c.send(
        "POST",
        &rtw,
        &[renew(2), cancel(2), write_enabler(3), cbor_ct()],
        rtw_body(0, b"", 0, &[], 1),
    );
    assert_eq!(r.status, 401);
    // List and read.
    let r = c.send(
        "GET",
        &format!("/storage/v1/mutable/{si}/shares"),
        &[],
        vec![],
    );
    assert_eq!(r.body, h("d9 0102 81 00"));
    let r = c.send(
        "GET",
        &format!("/storage/v1/mutable/{si}/0"),
        &[("range", "bytes=0-999".into())],
        vec![],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.headers["content-range"], "bytes 0-5/*");
    assert_eq!(r.body, b"hi\0\0yo");
    let r = c.send(
        "GET",
        &format!("/storage/v1/mutable/{si}/0"),
        &[("range", "bytes=6-9".into())],
        vec![],
    );
    assert_eq!(r.status, 204);
    let r = c.send(
        "GET",
        &format!("/storage/v1/mutable/{si}/1"),
        &[("range", "bytes=0-9".into())],
        vec![],
    );
    assert_eq!(r.status, 404);
    // Lease on a mutable SI.
    let r = c.send(
        "PUT",
        &format!("/storage/v1/lease/{si}"),
        &[renew(1), cancel(1)],
        vec![],
    );
    assert_eq!(r.status, 204);
}

#[test]
fn sixteen_mib_patch_streams_in() {
    let c = client();
    let si = si(12);
    let content = data(16 << 20, 12);
    put(&c, &si, &content);
    let r = read(
        &c,
        &si,
        0,
        &format!("bytes={}-{}", (16 << 20) - 100, (16 << 20) - 1),
    );
    assert_eq!(r.body, &content[content.len() - 100..]);
}

#[test]
fn named_accounts_work_after_add_and_401_after_revoke() {
    let s = server();
    let path = s.identity.accounts_path();
    let alice = host_runner::server::identity::add_account(&path, "alice").unwrap();
    let nurl = s.identity.nurl(&s.addr.to_string(), &alice.swissnum);
    let c = Client::new(&nurl);
    let wait_for = |want: u16| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = c
                .send("GET", "/storage/v1/version", &[], vec![])
                .status
                .as_u16();
            if got == want {
                return;
            }
            assert!(Instant::now() < deadline, "still {got}, want {want}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_for(200);
    let si = si(13);
    put(&c, &si, &data(1000, 13));
    let leases = status_json(&format!("/leases/{si}"));
    let names: Vec<&str> = leases
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["account_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice"]);
    host_runner::server::identity::revoke_account(&path, "alice").unwrap();
    wait_for(401);
    // Her lease stays.
    assert_eq!(
        status_json(&format!("/leases/{si}"))
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

fn status_json(path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let addr = server().status_addr.unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.lines().next().unwrap().contains(" 200 "), "{head}");
    serde_json::from_str(body).unwrap()
}

#[test]
fn status_page_and_json() {
    let c = client();
    put(&c, &si(14), &data(500, 14));
    let v = status_json("/status.json");
    assert!(v["usage"]["shares"].as_u64().unwrap() >= 1);
    assert!(v["space"]["available"].as_u64().unwrap() > 0);
    assert!(v["crawler"]["lease_age_histogram"].is_array());
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server().status_addr.unwrap()).unwrap();
    write!(s, "GET /storage HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.contains("<svg") || text.contains("No lease ages yet"));
    assert!(text.contains("Usage by account"));
}

/// An upload nobody writes to is aborted after the idle timeout (through session close).
#[test]
fn idle_upload_is_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::new(dir.path().join("storage"), dir.path().join("state"));
    opts.listen = Some("127.0.0.1:0".into());
    opts.status = None;
    opts.crawler = None;
    opts.upload_idle_timeout = Duration::from_millis(500);
    let server = Server::start(opts).unwrap();
    let c = Client::new(&server.nurl);
    let si = si(15);
    assert_eq!(allocate(&c, &si, &[0], 100, 1).status, 200);
    assert_eq!(patch(&c, &si, 0, 0, &data(50, 1), 1).status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.gbs().uploads().in_flight() > 0 {
        assert!(Instant::now() < deadline, "upload never reaped");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(patch(&c, &si, 0, 50, &data(50, 1), 1).status, 404);
    // The plugin forgot it too: another writer may allocate the share.
    let r = allocate(&c, &si, &[0], 100, 2);
    assert_eq!(
        r.body,
        cat(&[
            &h("a2 6c"),
            b"already-have",
            &h("d90102 80 69"),
            b"allocated",
            &h("d90102 81 00")
        ])
    );
    server.shutdown();
}

/// A client may shut its side of the connection once its request is sent
/// (an HTTP/1.1 half-close) and still reads the answer, here one the plugin
/// gives after its commit.
#[test]
fn a_client_that_half_closes_after_its_request_is_still_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = server();
    let c = Client::new(&s.nurl);
    let si = si(16);
    assert_eq!(allocate_share_0(&c, &si, 10, 16).status, 200);
    assert_eq!(patch_share_0(&c, &si, 0, &[7; 10], 16).status, 201);
    let (addr, _, hash) = parse_nurl(&s.nurl);
    let request = format!(
        "PUT /storage/v1/lease/{si} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\n\
         X-Tahoe-Authorization: {}\r\nX-Tahoe-Authorization: {}\r\nContent-Length: 0\r\n\r\n",
        c.authorization,
        renew(16).1,
        cancel(16).1
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = rt.block_on(async {
        let mut tls = connect_tls(&addr, host_runner::client::tls_config(&hash))
            .await
            .unwrap();
        tls.write_all(request.as_bytes()).await.unwrap();
        // TLS close_notify, then the TCP stream's write side.
        tls.shutdown().await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        // Until the server closes (with or without its own close_notify).
        while let Ok(n @ 1..) = tls.read(&mut buf).await {
            answer.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&answer).into_owned()
    });
    assert!(
        answer.starts_with("HTTP/1.1 204"),
        "the renewal's answer, after the client half-closed: {answer:?}"
    );
}
