//! The engine's entry points, coverage-guided: each input is a sequence of
//! operations on a fresh database (the driver the seeded test runs too).
#![no_main]

#[path = "../../plugin/tests/fuzz/ops.rs"]
mod ops;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut run = ops::Run::new();
    let mut u = Unstructured::new(data);
    while !u.is_empty() {
        if run.step(&mut u).is_err() {
            break;
        }
    }
    run.finish();
});
