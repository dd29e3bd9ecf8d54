//! Accounts (SPEC §2): anonymous (0), starter (1), named (≥ 2).

use crate::error::BadInput;

/// Longest accepted account name, in bytes.
const MAX_NAME_LENGTH: usize = 256;

/// Who holds a lease.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Account {
    /// Every client that does not authenticate (id 0).
    Anonymous,
    /// Leases the server grants to shares it discovers (id 1).
    Starter,
    /// A named account, created on first use.
    Named(String),
}

impl Account {
    /// Id of the anonymous account.
    pub const ANONYMOUS_ID: i64 = 0;
    /// Id of the starter account.
    pub const STARTER_ID: i64 = 1;

    /// A named account, if the name is usable: 1..=256 bytes of printable text.
    pub fn named(name: &str) -> Result<Account, BadInput> {
        if name.is_empty() || name.len() > MAX_NAME_LENGTH || name.chars().any(char::is_control) {
            return Err(BadInput::AccountName(name.to_string()));
        }
        Ok(Account::Named(name.to_string()))
    }
}
