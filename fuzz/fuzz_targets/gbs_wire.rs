//! The wire format, coverage-guided: header values, secrets, content types
//! and CBOR bodies from arbitrary bytes (the checks the seeded test runs too).
#![no_main]

#[path = "../../gbs-wire/tests/fuzz/checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::from_bytes(data));
