//! Seeded inputs for the protocol's fuzz tests: text built from protocol
//! tokens and numbers, byte mutations, and the step and seed settings. Shared
//! by the wire format's test (`main.rs`) and the host's routing test
//! (`host-runner/src/server/gbs/fuzz.rs`, included by path).

/// Pieces of paths and header values that parsers treat specially.
const TOKENS: &[&str] = &[
    "/storage/v1/",
    "immutable",
    "mutable",
    "lease",
    "version",
    "shares",
    "abort",
    "corrupt",
    "read-test-write",
    "/",
    "//",
    "aaaaaaaaaaaaaaaaaaaaaaaaaa",
    "0",
    "255",
    "256",
    "-1",
    "18446744073709551616",
    "bytes=",
    "bytes ",
    "-",
    "*",
    ",",
    " ",
    "9",
    "%2F",
    "\u{0}",
    "é",
];

/// A string of random tokens and numbers.
pub fn text(rng: &mut fastrand::Rng) -> String {
    (0..rng.usize(0..8))
        .map(|_| {
            if rng.bool() {
                TOKENS[rng.usize(..TOKENS.len())].to_owned()
            } else {
                rng.u64(..).to_string()
            }
        })
        .collect()
}

/// `bytes` with a few random bytes changed, cut, inserted or spliced in.
pub fn mutate(rng: &mut fastrand::Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.usize(0..6) {
        match rng.u8(0..4) {
            0 if !bytes.is_empty() => {
                let i = rng.usize(..bytes.len());
                bytes[i] = rng.u8(..);
            }
            1 if !bytes.is_empty() => bytes.truncate(rng.usize(..bytes.len())),
            2 => {
                let i = rng.usize(..=bytes.len());
                bytes.insert(i, rng.u8(..));
            }
            _ => {
                let i = rng.usize(..=bytes.len());
                let extra: Vec<u8> = (0..rng.usize(0..16)).map(|_| rng.u8(..)).collect();
                bytes.splice(i..i, extra);
            }
        }
    }
    bytes
}

/// A numeric setting from the environment, or `default`.
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
