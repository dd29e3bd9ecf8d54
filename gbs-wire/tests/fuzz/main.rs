//! The wire format under arbitrary input (issue 10): seeded header values,
//! secrets and CBOR bodies, many derived from valid ones by mutation. Bounded
//! by a count, so it runs in the normal suite; `LEASEDB_FUZZ_STEPS` and
//! `LEASEDB_FUZZ_SEED` run it longer or replay a seed. `scripts/fuzz.sh` runs
//! the same checks coverage-guided.

mod checks;
mod inputs;

use ciborium::cbor;
use inputs::{env, mutate, text};
use leasedb_gbs_wire as wire;

#[test]
fn arbitrary_values_secrets_and_bodies_never_panic_and_parse_sensibly() {
    let steps = env("LEASEDB_FUZZ_STEPS", 20_000);
    let seed = env("LEASEDB_FUZZ_SEED", 10);
    let mut rng = fastrand::Rng::with_seed(seed);
    let valid_bodies: Vec<Vec<u8>> = vec![
        wire::encode(&cbor!({"share-numbers" => ciborium::Value::Tag(258, Box::new(ciborium::Value::Array(vec![0.into(), 1.into()]))), "allocated-size" => 100}).unwrap()),
        wire::encode(&cbor!({"reason" => "bad hash"}).unwrap()),
        wire::encode(&cbor!({
            "test-write-vectors" => { 0 => { "test" => [{"offset" => 0, "size" => 1, "specimen" => ciborium::Value::Bytes(vec![])}],
                                             "write" => [{"offset" => 0, "data" => ciborium::Value::Bytes(b"hi".to_vec())}],
                                             "new-length" => ciborium::Value::Null } },
            "read-vector" => [{"offset" => 0, "size" => 57}]
        }).unwrap()),
    ];
    for _ in 0..steps {
        let value = text(&mut rng);
        let headers: Vec<Vec<u8>> = (0..rng.usize(0..4))
            .map(|_| {
                let value = format!("upload-secret {}", text(&mut rng)).into_bytes();
                mutate(&mut rng, value)
            })
            .collect();
        let content_type = mutate(&mut rng, b"application/cbor".to_vec());
        let body = if rng.bool() {
            let valid = valid_bodies[rng.usize(..valid_bodies.len())].clone();
            mutate(&mut rng, valid)
        } else {
            (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect()
        };
        checks::fields(&value, &headers, &content_type, &body);
        // And raw bytes, split as the coverage-guided target splits them.
        let raw: Vec<u8> = (0..rng.usize(0..128)).map(|_| rng.u8(..)).collect();
        checks::from_bytes(&raw);
    }
}
