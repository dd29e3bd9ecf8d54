//! Whether the crawler looks past empty prefixes: kept in memory, per instance.

/// Whether the crawler looks for a run of empty prefixes before listing a
/// prefix the database has no row in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Lookahead {
    /// Looks.
    #[default]
    On,
    /// The last look found objects in its prefix: in a store with shares in
    /// most prefixes looking would double the listings, so it waits until a
    /// prefix lists empty.
    Occupied,
    /// A look failed: off until the next cycle, so that a failing backend
    /// costs a prefix one listing, not two.
    Failed,
}
