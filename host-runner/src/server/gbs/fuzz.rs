//! Request routing under arbitrary input (issue 10): seeded random paths.
//! Bounded by a count, so it runs in the normal suite; `LEASEDB_FUZZ_STEPS`
//! and `LEASEDB_FUZZ_SEED` run it longer or replay a seed. The wire format's
//! own fuzzing is in `gbs-wire`.

use super::{route, Route};

#[path = "../../../../gbs-wire/tests/fuzz/inputs.rs"]
#[allow(dead_code)] // `mutate` serves the wire format's test only
mod inputs;
use inputs::{env, text};

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
