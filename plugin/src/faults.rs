//! Misbehaviour on cue, only in the `test-faults` fixture build: the host's
//! sandbox tests need a plugin that traps, runs away, or eats memory.

use crate::account::Account;

/// Named accounts `fault-trap`, `fault-loop` and `fault-oom` trigger a fault.
pub fn on_add_lease(account: &Account) {
    let Account::Named(name) = account else {
        return;
    };
    match name.as_str() {
        "fault-trap" => panic!("test-faults: trap on request"),
        "fault-loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "fault-oom" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(std::hint::black_box(vec![1u8; 16 << 20]));
            }
        }
        _ => {}
    }
}
