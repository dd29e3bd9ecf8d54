//! Identifiers of SPEC §2. Parsing is validation: a value of these types is
//! always in range.

use std::fmt;

use crate::error::BadInput;

/// RFC 4648 base32 alphabet, lowercase (Tahoe's text form of a storage index).
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Lowercase unpadded RFC 4648 base32 of any bytes (Tahoe's node id text form).
pub use leasedb_types::base32;

/// A 16-byte storage index.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct StorageIndex(pub [u8; 16]);

impl StorageIndex {
    /// Accepts exactly 16 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BadInput> {
        let array: [u8; 16] = bytes
            .try_into()
            .map_err(|_| BadInput::StorageIndexLength(bytes.len() as u32))?;
        Ok(StorageIndex(array))
    }

    /// Parses the 26-character lowercase unpadded base32 text form.
    pub fn from_text(text: &str) -> Option<Self> {
        text.parse::<leasedb_types::StorageIndex>()
            .ok()
            .map(|si| StorageIndex(si.0))
    }

    /// The 26-character base32 text form.
    pub fn to_text(&self) -> String {
        base32(&self.0)
    }

    /// The first two characters of the text form: the crawl bucket.
    pub fn prefix(&self) -> Prefix {
        let idx = (self.0[0] >> 3) as usize * 32
            + (((self.0[0] & 0b111) << 2) | (self.0[1] >> 6)) as usize;
        Prefix(idx as u16)
    }
}

impl fmt::Display for StorageIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl fmt::Debug for StorageIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageIndex({self})")
    }
}

/// One of the 1024 two-character prefixes, by its index in crawl order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Prefix(u16);

impl Prefix {
    /// Number of prefixes.
    pub const COUNT: u16 = 1024;

    /// The prefix at `index` in crawl order (ascending byte order of the text).
    pub fn from_crawl_index(index: u16) -> Option<Prefix> {
        // Crawl order sorts the text, where digits come before letters; the
        // alphabet index does not, so map through the sorted alphabet.
        if index >= Self::COUNT {
            return None;
        }
        let sorted = sorted_alphabet();
        let a = sorted[(index / 32) as usize];
        let b = sorted[(index % 32) as usize];
        Some(Prefix(
            alphabet_value(a) as u16 * 32 + alphabet_value(b) as u16,
        ))
    }

    /// This prefix's position in crawl order.
    pub fn crawl_index(&self) -> u16 {
        let text = self.to_text();
        let sorted = sorted_alphabet();
        let pos = |c: u8| sorted.iter().position(|&s| s == c).unwrap() as u16;
        pos(text.as_bytes()[0]) * 32 + pos(text.as_bytes()[1])
    }

    /// The first and the last storage index of this prefix: it names the
    /// top 10 bits, so its storage indexes are one range of the byte order.
    pub fn storage_indexes(&self) -> (StorageIndex, StorageIndex) {
        let (b0, b1) = ((self.0 >> 2) as u8, ((self.0 & 0b11) << 6) as u8);
        let mut first = [0u8; 16];
        let mut last = [0xffu8; 16];
        (first[0], first[1]) = (b0, b1);
        (last[0], last[1]) = (b0, b1 | 0x3f);
        (StorageIndex(first), StorageIndex(last))
    }

    /// The two-character text.
    pub fn to_text(&self) -> String {
        let a = ALPHABET[(self.0 / 32) as usize] as char;
        let b = ALPHABET[(self.0 % 32) as usize] as char;
        format!("{a}{b}")
    }
}

fn sorted_alphabet() -> [u8; 32] {
    let mut sorted = *ALPHABET;
    sorted.sort_unstable();
    sorted
}

fn alphabet_value(c: u8) -> u8 {
    ALPHABET.iter().position(|&a| a == c).unwrap() as u8
}

/// A share number, 0..=255.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize, serde::Deserialize,
)]
pub struct ShareNum(pub u8);

impl ShareNum {
    /// Accepts 0..=255.
    pub fn new(n: u32) -> Result<Self, BadInput> {
        u8::try_from(n)
            .map(ShareNum)
            .map_err(|_| BadInput::ShareNumber(n))
    }
}

impl fmt::Display for ShareNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A host session (a connection, or one upload).
pub type SessionId = u64;

/// Seconds since the Unix epoch.
pub type Timestamp = i64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_holds_exactly_the_storage_indexes_between_its_first_and_last() {
        let mut rng = fastrand::Rng::with_seed(3);
        for index in 0..Prefix::COUNT {
            let prefix = Prefix::from_crawl_index(index).unwrap();
            let (first, last) = prefix.storage_indexes();
            assert_eq!((first.prefix(), last.prefix()), (prefix, prefix));
            // Just outside the range is another prefix.
            let mut below = first.0;
            let mut above = last.0;
            if let Some(b) = below.iter_mut().rev().find(|b| **b != 0) {
                *b -= 1;
                assert!(StorageIndex(below).prefix() != prefix);
            }
            if let Some(b) = above.iter_mut().rev().find(|b| **b != 0xff) {
                *b += 1;
                assert!(StorageIndex(above).prefix() != prefix);
            }
        }
        for _ in 0..1000 {
            let mut si = [0u8; 16];
            rng.fill(&mut si);
            let (first, last) = StorageIndex(si).prefix().storage_indexes();
            assert!(first.0 <= si && si <= last.0);
        }
    }

    #[test]
    fn text_form_round_trips_and_matches_rfc4648() {
        let si = StorageIndex([0; 16]);
        assert_eq!(si.to_text(), "aaaaaaaaaaaaaaaaaaaaaaaaaa");
        let si = StorageIndex([0xff; 16]);
        assert_eq!(si.to_text(), "77777777777777777777777774");
        let si = StorageIndex(*b"0123456789abcdef");
        assert_eq!(StorageIndex::from_text(&si.to_text()), Some(si));
        assert_eq!(si.prefix().to_text(), si.to_text()[..2]);
    }

    #[test]
    fn bad_text_is_refused() {
        assert_eq!(StorageIndex::from_text("aaaa"), None);
        assert_eq!(StorageIndex::from_text("AAAAAAAAAAAAAAAAAAAAAAAAAA"), None);
        assert_eq!(
            StorageIndex::from_text("aaaaaaaaaaaaaaaaaaaaaaaaab"),
            None,
            "non-zero trailing bits"
        );
    }

    #[test]
    fn crawl_order_starts_with_digits() {
        assert_eq!(Prefix::from_crawl_index(0).unwrap().to_text(), "22");
        assert_eq!(Prefix::from_crawl_index(1).unwrap().to_text(), "23");
        assert_eq!(Prefix::from_crawl_index(198).unwrap().to_text(), "aa");
        assert_eq!(Prefix::from_crawl_index(1023).unwrap().to_text(), "zz");
        for i in 0..Prefix::COUNT {
            assert_eq!(Prefix::from_crawl_index(i).unwrap().crawl_index(), i);
        }
    }

    #[test]
    fn share_numbers_above_255_are_refused() {
        assert_eq!(ShareNum::new(255), Ok(ShareNum(255)));
        assert_eq!(ShareNum::new(256), Err(BadInput::ShareNumber(256)));
    }
}
