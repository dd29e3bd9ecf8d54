//! Converting a WIT value between two sets of Rust types that stand for the
//! same WIT types: an older interface's bindings and the latest's
//! (`since_v0_1`), the latest bindings and the shared vocabulary
//! (`vocabulary`). Each set of types lists its records and variants; this
//! module gives the rest (primitives, lists, options, results, tuples).

/// A WIT value in one set of Rust types becoming the same value in another.
pub trait Convert<T> {
    /// The same value, as a `T`.
    fn convert(self) -> T;
}

/// `a` as the same value in the other set of types.
pub fn convert<A: Convert<B>, B>(a: A) -> B {
    a.convert()
}

/// Types both sets share: converting is the identity.
macro_rules! same {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::plugin::bindings::convert::Convert<$t> for $t {
            fn convert(self) -> $t {
                self
            }
        }
    )*};
}
pub(crate) use same;

same!((), u8, u32, u64, i64, bool, String);

impl<A: Convert<B>, B> Convert<Vec<B>> for Vec<A> {
    fn convert(self) -> Vec<B> {
        self.into_iter().map(Convert::convert).collect()
    }
}

impl<A: Convert<B>, B> Convert<Option<B>> for Option<A> {
    fn convert(self) -> Option<B> {
        self.map(Convert::convert)
    }
}

impl<A: Convert<B>, B, E: Convert<F>, F> Convert<Result<B, F>> for Result<A, E> {
    fn convert(self) -> Result<B, F> {
        self.map(Convert::convert).map_err(Convert::convert)
    }
}

impl<A: Convert<B>, B, C: Convert<D>, D> Convert<(B, D)> for (A, C) {
    fn convert(self) -> (B, D) {
        (self.0.convert(), self.1.convert())
    }
}
