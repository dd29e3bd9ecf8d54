//! Storage indexes and their text form: RFC 4648 base32, lowercase, unpadded,
//! 26 characters for 16 bytes (SPEC §2).

use std::fmt;
use std::str::FromStr;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Characters in the text form of a storage index.
pub const TEXT_LEN: usize = 26;

/// A 16-byte storage index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorageIndex(pub [u8; 16]);

impl StorageIndex {
    /// The raw bytes, as the plugin takes them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The 2-character prefix that names its backend directory.
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
        // 26 characters carry 130 bits; the last 2 must be zero.
        let mut acc: u128 = 0;
        let mut last = 0;
        for (position, found) in text.chars().enumerate() {
            let value = ALPHABET
                .iter()
                .position(|&c| c as char == found)
                .ok_or(SiParseError::Character { position, found })?
                as u128;
            if position + 1 < TEXT_LEN {
                acc = (acc << 5) | value;
            } else {
                last = value;
            }
        }
        if last & 0b11 != 0 {
            return Err(SiParseError::TrailingBits);
        }
        Ok(StorageIndex(((acc << 3) | (last >> 2)).to_be_bytes()))
    }
}

impl fmt::Display for StorageIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = u128::from_be_bytes(self.0);
        let mut text = String::with_capacity(TEXT_LEN);
        for i in 0..TEXT_LEN {
            // Character i covers bits [5i, 5i+5) of the 130-bit zero-padded value.
            let shift = 130 - 5 * (i + 1);
            let value = if shift >= 2 {
                (bits >> (shift - 2)) & 31
            } else {
                (bits << 2) & 31
            };
            text.push(ALPHABET[value as usize] as char);
        }
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_rfc4648() {
        // RFC 4648 base32 of "abcdefghijklmnop", lowercased and unpadded.
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
            Err(SiParseError::Character { found: '1', .. })
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
