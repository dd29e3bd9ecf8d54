//! Storage indexes and their text form: RFC 4648 base32, lowercase, unpadded,
//! 26 characters for 16 bytes (SPEC §2). The one base32 of the project.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use data_encoding::{DecodeKind, Encoding, Specification};

/// Characters in the text form of a storage index.
pub const TEXT_LEN: usize = 26;

/// A share number: 0..=255 when valid; wider so that bad input can be named (WIT `share-number`).
pub type ShareNumber = u32;

/// Tahoe's base32: RFC 4648's alphabet in lowercase, no padding.
static BASE32: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = Specification::new();
    spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
    spec.encoding().expect("a valid base32 specification")
});

/// Lowercase unpadded RFC 4648 base32 of any bytes (storage indexes, node ids, swissnums).
pub fn base32(bytes: &[u8]) -> String {
    BASE32.encode(bytes)
}

/// A 16-byte storage index.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct StorageIndex(pub [u8; 16]);

impl StorageIndex {
    /// The raw bytes, as the plugin takes them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Exactly 16 bytes; otherwise how many there were.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, usize> {
        bytes.try_into().map(StorageIndex).map_err(|_| bytes.len())
    }

    /// The 2-character prefix that names its backend directory and crawl bucket.
    pub fn prefix(&self) -> String {
        self.to_string()[..2].to_owned()
    }
}

/// Why a text is not a storage index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiParseError {
    /// Not 26 characters long.
    Length(usize),
    /// A character outside `a-z2-7` at this (0-based) position.
    Character {
        /// 0-based position in the text.
        position: usize,
        /// The character found there.
        found: char,
    },
    /// The last character carries bits beyond the 128 of a storage index.
    TrailingBits,
}

impl fmt::Display for SiParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiParseError::Length(n) => {
                write!(
                    f,
                    "a storage index is {TEXT_LEN} base32 characters, this one has {n}"
                )
            }
            SiParseError::Character { position, found } => write!(
                f,
                "character {found:?} at position {} is not lowercase base32 (a-z, 2-7)",
                position + 1
            ),
            SiParseError::TrailingBits => {
                write!(f, "the last character does not end a 16-byte storage index (its low 2 bits must be zero)")
            }
        }
    }
}

impl std::error::Error for SiParseError {}

impl FromStr for StorageIndex {
    type Err = SiParseError;

    fn from_str(text: &str) -> Result<Self, SiParseError> {
        let count = text.chars().count();
        if count != TEXT_LEN {
            return Err(SiParseError::Length(count));
        }
        // Byte positions are character positions only while the text is ASCII.
        if let Some((position, found)) = text.chars().enumerate().find(|(_, c)| !c.is_ascii()) {
            return Err(SiParseError::Character { position, found });
        }
        let bytes = BASE32.decode(text.as_bytes()).map_err(|e| match e.kind {
            DecodeKind::Trailing => SiParseError::TrailingBits,
            _ => SiParseError::Character {
                position: e.position,
                found: text.as_bytes()[e.position] as char,
            },
        })?;
        StorageIndex::from_bytes(&bytes).map_err(|_| SiParseError::Length(count))
    }
}

impl fmt::Display for StorageIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_lowercased() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "my");
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
        assert_eq!(base32(&[0u8; 20]).len(), 32);
    }

    #[test]
    fn round_trips_and_matches_rfc4648() {
        let si = StorageIndex(*b"abcdefghijklmnop");
        assert_eq!(si.to_string(), "mfrggzdfmztwq2lknnwg23tpoa");
        assert_eq!("mfrggzdfmztwq2lknnwg23tpoa".parse::<StorageIndex>(), Ok(si));
        for seed in 0u8..=255 {
            let si = StorageIndex(std::array::from_fn(|i| {
                seed.wrapping_mul(31).wrapping_add(i as u8 * 7)
            }));
            assert_eq!(si.to_string().parse::<StorageIndex>(), Ok(si));
        }
        assert_eq!(StorageIndex([0; 16]).to_string(), "a".repeat(26));
        assert_eq!(
            StorageIndex([0xff; 16]).to_string(),
            format!("{}4", "7".repeat(25))
        );
        assert_eq!(StorageIndex(*b"abcdefghijklmnop").prefix(), "mf");
    }

    #[test]
    fn bad_text_is_named() {
        assert_eq!("abc".parse::<StorageIndex>(), Err(SiParseError::Length(3)));
        assert_eq!(
            "Mfrggzdfmztwq2lknnwg23tpoa".parse::<StorageIndex>(),
            Err(SiParseError::Character {
                position: 0,
                found: 'M'
            })
        );
        assert!(matches!(
            "mfrggzdfmztwq2lknnwg23tp1a".parse::<StorageIndex>(),
            Err(SiParseError::Character {
                found: '1',
                position: 24
            })
        ));
        assert!(matches!(
            "mfrggzdfmztwq2lknnwg23tpéa".parse::<StorageIndex>(),
            Err(SiParseError::Character {
                found: 'é',
                position: 24
            })
        ));
        assert_eq!(
            "mfrggzdfmztwq2lknnwg23tpob".parse::<StorageIndex>(),
            Err(SiParseError::TrailingBits)
        );
        let text = SiParseError::Character {
            position: 0,
            found: 'M',
        }
        .to_string();
        assert!(text.contains("position 1"), "{text}");
    }
}
