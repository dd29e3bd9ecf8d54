//! `list<u8>` in JSON: a base64 string (standard alphabet, padded), as the
//! adapter protocol maps it. Use as `#[serde(with = "leasedb_types::base64")]`.

use data_encoding::BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serialises bytes as base64.
pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&BASE64.encode(bytes))
}

/// Deserialises bytes from base64.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(deserializer)?;
    BASE64
        .decode(text.as_bytes())
        .map_err(serde::de::Error::custom)
}

/// Bytes that serialise as base64: for `list<u8>` values outside a record field.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Bytes(#[serde(with = "self")] pub Vec<u8>);

/// `list<list<u8>>`: an array of base64 strings.
pub mod list {
    use super::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises each element as base64.
    pub fn serialize<S: Serializer>(lists: &[Vec<u8>], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(lists.iter().map(|l| super::BASE64.encode(l)))
    }

    /// Deserialises an array of base64 strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Vec<u8>>, D::Error> {
        let lists = Vec::<Bytes>::deserialize(deserializer)?;
        Ok(lists.into_iter().map(|b| b.0).collect())
    }
}
