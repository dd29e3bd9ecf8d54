//! WIT `mutable`: read-test-write and reads of mutable shares.

use serde::{Deserialize, Serialize};

use crate::ShareNumber;

/// How a test compares share bytes with its specimen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tag", rename_all = "kebab-case")]
pub enum TestOperator {
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
    /// Equal (what current clients send).
    Eq,
    /// Not equal.
    Ne,
    /// Greater than or equal.
    Ge,
    /// Greater than.
    Gt,
}

/// Share data [offset, offset + length) compared with `specimen`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TestVector {
    /// Where the compared bytes start.
    pub offset: u64,
    /// How many bytes are compared.
    pub length: u64,
    /// The comparison.
    pub operator: TestOperator,
    /// What they are compared with.
    #[serde(with = "crate::base64")]
    pub specimen: Vec<u8>,
}

/// One write of share data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WriteVector {
    /// Where the write starts.
    pub offset: u64,
    /// The bytes written.
    #[serde(with = "crate::base64")]
    pub data: Vec<u8>,
}

/// Tests and writes for one share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ShareWrites {
    /// The share.
    pub share_number: ShareNumber,
    /// Every one must hold for any write to happen.
    pub tests: Vec<TestVector>,
    /// Applied in order.
    pub writes: Vec<WriteVector>,
    /// 0 deletes the share; smaller than the data truncates; larger is ignored.
    pub new_length: Option<u64>,
}

/// Read results for one share, one entry per range of the read vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ShareReads {
    /// The share.
    pub share_number: ShareNumber,
    /// One entry per range.
    #[serde(with = "crate::base64::list")]
    pub data: Vec<Vec<u8>>,
}

/// What a read-test-write did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ReadTestWriteResult {
    /// Every test held, and the writes were applied.
    pub success: bool,
    /// Reads over every existing share, taken before any write.
    pub reads: Vec<ShareReads>,
}
