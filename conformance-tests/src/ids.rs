//! Storage indexes and backend keys as SPEC §2–3 define them, computed here
//! independently of the plugin's key code so the cases check its key scheme
//! (the base32 is the shared vocabulary's).

pub use leasedb_types::base32;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A storage index made from `seed` (distinct seeds, distinct indexes).
pub fn si(seed: u8) -> [u8; 16] {
    std::array::from_fn(|i| {
        seed.wrapping_mul(37)
            .wrapping_add(i as u8 * 11)
            .wrapping_add(1)
    })
}

/// A storage index whose text form starts with `prefix` (two base32 characters).
pub fn si_with_prefix(prefix: &str, seed: u8) -> [u8; 16] {
    let value = |c: u8| {
        ALPHABET
            .iter()
            .position(|&a| a == c)
            .expect("base32 prefix") as u16
    };
    let p = prefix.as_bytes();
    let top10 = (value(p[0]) << 5) | value(p[1]);
    let mut si = si(seed);
    si[0] = (top10 >> 2) as u8;
    si[1] = (((top10 & 3) as u8) << 6) | (si[1] & 0x3f);
    debug_assert!(text(&si).starts_with(prefix));
    si
}

/// The 26-character text form of a storage index.
pub fn text(si: &[u8; 16]) -> String {
    base32(si)
}

/// The backend key of chunk 0 of a share: `shares/<prefix>/<si>/<shnum>`.
pub fn share_key(si: &[u8; 16], shnum: u32) -> String {
    let t = text(si);
    format!("shares/{}/{t}/{shnum}", &t[..2])
}

/// The backend key of chunk `k` of a share (`k` ≥ 1: `<shnum>.<k>`).
pub fn chunk_key(si: &[u8; 16], shnum: u32, k: u64) -> String {
    if k == 0 {
        share_key(si, shnum)
    } else {
        format!("{}.{k}", share_key(si, shnum))
    }
}

/// The directory of a storage index: `shares/<prefix>/<si>/`.
pub fn si_dir(si: &[u8; 16]) -> String {
    let t = text(si);
    format!("shares/{}/{t}/", &t[..2])
}

/// The directory of a prefix: `shares/<prefix>/`.
pub fn prefix_dir(prefix: &str) -> String {
    format!("shares/{prefix}/")
}

/// Crawl position of a prefix: ascending byte order of the 1024 prefix strings (SPEC §2).
pub fn crawl_index(prefix: &str) -> u32 {
    let mut all: Vec<String> = ALPHABET
        .iter()
        .flat_map(|&a| {
            ALPHABET
                .iter()
                .map(move |&b| String::from_utf8(vec![a, b]).unwrap())
        })
        .collect();
    all.sort();
    all.iter().position(|p| p == prefix).expect("a prefix") as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_and_prefixes_match_the_spec() {
        assert_eq!(base32(b"foobar"), "mzxw6ytboi"); // RFC 4648 test vector, lowercased
        assert_eq!(text(&[0; 16]), "aaaaaaaaaaaaaaaaaaaaaaaaaa");
        for p in ["22", "aa", "ae", "zz", "7q"] {
            assert!(text(&si_with_prefix(p, 9)).starts_with(p));
        }
        assert_eq!(crawl_index("22"), 0);
        assert_eq!(crawl_index("aa"), 198);
        assert_eq!(crawl_index("zz"), 1023);
        assert_eq!(
            chunk_key(&[0; 16], 1, 1),
            "shares/aa/aaaaaaaaaaaaaaaaaaaaaaaaaa/1.1"
        );
    }
}
