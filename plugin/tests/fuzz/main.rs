//! The engine's entry points under arbitrary input (issue 10), seeded and
//! bounded by a number of steps so it runs in the normal suite;
//! `LEASEDB_FUZZ_STEPS` and `LEASEDB_FUZZ_SEED` run it longer or replay one
//! seed. `scripts/fuzz.sh` runs the same driver coverage-guided.

mod ops;

use arbitrary::Unstructured;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn arbitrary_operation_sequences_never_panic_or_break_the_engine() {
    let steps = env("LEASEDB_FUZZ_STEPS", 3000);
    let seeds = match std::env::var("LEASEDB_FUZZ_SEED") {
        Ok(s) => vec![s.parse().expect("a number")],
        Err(_) => (1..=4).collect::<Vec<u64>>(),
    };
    for seed in seeds {
        let mut run = ops::Run::new();
        let mut rng = fastrand::Rng::with_seed(seed);
        for _ in 0..steps {
            let raw: Vec<u8> = (0..512).map(|_| rng.u8(..)).collect();
            // Running out of bytes ends a step early; that is fine.
            let _ = run.step(&mut Unstructured::new(&raw));
        }
        run.finish();
    }
}
