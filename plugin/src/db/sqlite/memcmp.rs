//! SQLite's `memcmp` inside the component. The wasm build renames SQLite's
//! calls to `leasedb_sqlite_memcmp` (`-Dmemcmp=…`, `artifacts/wasm_build.rs`):
//! wasi-libc's compares a byte at a time, and SQLite's record compares (index
//! seeks over 16-byte storage indexes) spent ~8% of a renewal's time in the
//! component in it.

/// `memcmp`'s answer: below, at or above zero as the `n` bytes at `a` sort
/// before, with or after those at `b`, compared as unsigned.
///
/// # Safety
/// `a` and `b` are readable for `n` bytes.
unsafe fn compare_raw(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    // Eight bytes a step; on a difference, its first byte decides.
    while i + 8 <= n {
        let x = u64::from_le(a.add(i).cast::<u64>().read_unaligned());
        let y = u64::from_le(b.add(i).cast::<u64>().read_unaligned());
        if x != y {
            let at = i + ((x ^ y).trailing_zeros() / 8) as usize;
            return i32::from(*a.add(at)) - i32::from(*b.add(at));
        }
        i += 8;
    }
    while i < n {
        let (x, y) = (*a.add(i), *b.add(i));
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// `memcmp(a, b, n)` for SQLite's C code.
///
/// # Safety
/// `a` and `b` are readable for `n` bytes (any pointers when `n` is 0).
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub unsafe extern "C" fn leasedb_sqlite_memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    compare_raw(a, b, n)
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::*;

    fn compare(a: &[u8], b: &[u8]) -> i32 {
        assert_eq!(a.len(), b.len());
        // SAFETY: both are readable for their length.
        unsafe { compare_raw(a.as_ptr(), b.as_ptr(), a.len()) }
    }

    /// Its sign is the slices' order, wherever the first difference falls
    /// and whatever the bytes' high bits, for every length up to three words.
    #[test]
    fn the_sign_is_the_order_of_the_bytes() {
        for len in 0..=24 {
            let base: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(compare(&base, &base), 0, "equal, {len} bytes");
            for at in 0..len {
                for delta in [1u8, 0x7f, 0x80, 0xff] {
                    let mut other = base.clone();
                    other[at] = other[at].wrapping_add(delta);
                    // A later byte that differs the other way must not decide.
                    if at + 1 < len {
                        other[at + 1] = other[at + 1].wrapping_sub(1);
                    }
                    let want = base.cmp(&other);
                    let got = compare(&base, &other).cmp(&0);
                    assert_eq!(got, want, "{len} bytes, differing at {at} by {delta}");
                    assert_eq!(compare(&other, &base).cmp(&0), want.reverse());
                    assert_ne!(want, Ordering::Equal);
                }
            }
        }
    }
}
