//! Request routing under arbitrary input (issue 10): seeded random paths.
//! Bounded by a count, so it runs in the normal suite; `LEASEDB_FUZZ_STEPS`
//! and `LEASEDB_FUZZ_SEED` run it longer or replay a seed. The wire format's
//! own fuzzing is in `gbs-wire`.

use super::{route, Route};

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

fn text(rng: &mut fastrand::Rng) -> String {
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

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn arbitrary_paths_route_sensibly() {
    let steps = env("LEASEDB_FUZZ_STEPS", 20_000);
    let seed = env("LEASEDB_FUZZ_SEED", 10);
    let mut rng = fastrand::Rng::with_seed(seed);
    for _ in 0..steps {
        // Whatever the path, a route or none.
        let path = text(&mut rng);
        if let Some(Route::ImmutableShare(_, n) | Route::MutableShare(_, n)) = route(&path) {
            assert!(path.ends_with(&n.to_string()), "{path:?}");
        }
    }
}
