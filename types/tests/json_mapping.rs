//! The JSON the adapter protocol (conformance-tests/ADAPTER.md) specifies, value by value.

use leasedb_types::backend::BackendError;
use leasedb_types::plugin::{
    Account, BadInput, ByteRange, CrawlerConfig, ExpirationPolicy, PluginError, ShareInfo,
    ShareReads, ShareState, ShareType, SliceOutcome, TestOperator,
};
use serde_json::{json, Value};

fn round_trip<T>(value: T, expected: Value)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    assert_eq!(serde_json::to_value(&value).unwrap(), expected);
    assert_eq!(serde_json::from_value::<T>(expected).unwrap(), value);
}

#[test]
fn variants_are_tag_and_val() {
    round_trip(Account::Anonymous, json!({"tag": "anonymous"}));
    round_trip(
        Account::Named("alice".into()),
        json!({"tag": "named", "val": "alice"}),
    );
    round_trip(
        PluginError::BadInput(BadInput::StorageIndexLength(15)),
        json!({"tag": "bad-input", "val": {"tag": "storage-index-length", "val": 15}}),
    );
    round_trip(
        PluginError::BadInput(BadInput::RangeOverflow(ByteRange {
            offset: u64::MAX,
            length: 1,
        })),
        json!({"tag": "bad-input", "val": {"tag": "range-overflow", "val": {"offset": u64::MAX, "length": 1}}}),
    );
    round_trip(
        SliceOutcome::Progressed((3, true)),
        json!({"tag": "progressed", "val": [3, true]}),
    );
    round_trip(
        ExpirationPolicy::Age(None),
        json!({"tag": "age", "val": null}),
    );
    round_trip(
        ExpirationPolicy::CutoffDate(-5),
        json!({"tag": "cutoff-date", "val": -5}),
    );
    round_trip(TestOperator::Eq, json!({"tag": "eq"}));
    round_trip(
        BackendError::InvalidKey("x".into()),
        json!({"tag": "invalid-key", "val": "x"}),
    );
    round_trip(BackendError::NotFound, json!({"tag": "not-found"}));
}

#[test]
fn records_have_kebab_case_keys_and_bytes_are_base64() {
    round_trip(
        CrawlerConfig {
            policy: ExpirationPolicy::Disabled,
            history_limit: 10,
            min_cycle_seconds: 43200,
        },
        json!({"policy": {"tag": "disabled"}, "history-limit": 10, "min-cycle-seconds": 43200}),
    );
    round_trip(
        ShareInfo {
            storage_index: (0..16).collect(),
            share_number: 4,
            share_type: ShareType::Immutable,
            state: ShareState::Stable,
            used_space: 1 << 40,
        },
        json!({"storage-index": "AAECAwQFBgcICQoLDA0ODw==", "share-number": 4,
               "share-type": {"tag": "immutable"}, "state": {"tag": "stable"}, "used-space": 1u64 << 40}),
    );
    round_trip(
        ShareReads {
            share_number: 0,
            data: vec![b"ab".to_vec(), vec![]],
        },
        json!({"share-number": 0, "data": ["YWI=", ""]}),
    );
}
