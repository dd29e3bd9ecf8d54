//! Mutable shares (SPEC §9): read-test-write for one storage index, and
//! mutable reads.

use std::collections::BTreeMap;

use crate::account::Account;
use crate::backend::Backend;
use crate::container::chunked::ChunkedContainer;
use crate::container::mutable::{self, DATA_LENGTH_OFFSET, DATA_OFFSET, EXTRA_LEASE_OFFSET_OFFSET};
use crate::container::{self, Container};
use crate::db::{leases, shares};
use crate::engine::{LeaseDb, MAX_READ_LENGTH};
use crate::error::{BadInput, Error, Result};
use crate::ids::{base32, ShareNum, StorageIndex};
use crate::share::{ShareRow, ShareState, ShareType};

/// How a test vector compares the share's bytes with its specimen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestOperator {
    /// Less than (legacy).
    Lt,
    /// Less or equal (legacy).
    Le,
    /// Equal: what current clients send.
    Eq,
    /// Not equal (legacy).
    Ne,
    /// Greater or equal (legacy).
    Ge,
    /// Greater than (legacy).
    Gt,
}

impl TestOperator {
    fn holds(self, actual: &[u8], specimen: &[u8]) -> bool {
        match self {
            TestOperator::Lt => actual < specimen,
            TestOperator::Le => actual <= specimen,
            TestOperator::Eq => actual == specimen,
            TestOperator::Ne => actual != specimen,
            TestOperator::Ge => actual >= specimen,
            TestOperator::Gt => actual > specimen,
        }
    }
}

/// One test: share data [offset, offset + length) against `specimen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestVector {
    /// Where the compared bytes start.
    pub offset: u64,
    /// How many bytes (fewer at the end of the data).
    pub length: u64,
    /// The comparison.
    pub operator: TestOperator,
    /// What to compare with.
    pub specimen: Vec<u8>,
}

/// One write of share data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteVector {
    /// Where to write.
    pub offset: u64,
    /// What to write (empty is allowed).
    pub data: Vec<u8>,
}

/// Tests and writes for one share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareWrites {
    /// Share number (validated).
    pub shnum: u32,
    /// All must hold for any write to happen.
    pub tests: Vec<TestVector>,
    /// Applied in order; later ones win.
    pub writes: Vec<WriteVector>,
    /// 0 deletes the share; smaller than the data truncates; larger is ignored.
    pub new_length: Option<u64>,
}

/// What a read-test-write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadTestWrite {
    /// Whether every test held (and so the writes were applied).
    pub success: bool,
    /// Read results over every existing share, taken before the writes.
    pub reads: BTreeMap<ShareNum, Vec<Vec<u8>>>,
}

/// A validated (offset, length) range of share data.
fn checked_range(offset: u64, length: u64) -> Result<()> {
    offset
        .checked_add(length)
        .and_then(|end| end.checked_add(DATA_OFFSET + 4))
        .map(|_| ())
        .ok_or(Error::BadInput(BadInput::RangeOverflow { offset, length }))
}

/// A valid mutable share and its header.
struct MutableShare {
    row: ShareRow,
    header: mutable::Header,
}

/// Share data bytes `read_vector` returns from `share`.
fn bytes_read(share: &MutableShare, read_vector: &[(u64, u64)]) -> u64 {
    read_vector
        .iter()
        .map(|&(offset, length)| {
            offset
                .saturating_add(length)
                .min(share.header.data_length)
                .saturating_sub(offset)
        })
        .fold(0, u64::saturating_add)
}

/// Refuses a request whose reads would hold more than one read may.
fn check_read_total(total: u64) -> Result<()> {
    if total > MAX_READ_LENGTH {
        return Err(BadInput::TooLarge {
            what: "bytes read by one request",
            requested: total,
            limit: MAX_READ_LENGTH,
        }
        .into());
    }
    Ok(())
}

impl<B: Backend> LeaseDb<B> {
    /// The valid mutable shares of `si`, with the rows of all its shares;
    /// `creating` are share numbers about to be written (discovery before
    /// harm). A rewrite a failure left COMING is finished or undone first,
    /// so nothing reads a container mid-rewrite.
    fn mutable_shares(
        &mut self,
        si: &StorageIndex,
        creating: &[ShareNum],
    ) -> Result<(Vec<ShareRow>, BTreeMap<ShareNum, MutableShare>)> {
        let mut rows = if creating.is_empty() {
            self.shares_of(si)?
        } else {
            self.shares_before_creating(si, creating)?
        };
        let interrupted: Vec<ShareRow> = rows
            .iter()
            .filter(|r| r.share_type == ShareType::Mutable && self.is_orphaned(r))
            .cloned()
            .collect();
        if !interrupted.is_empty() {
            for row in &interrupted {
                self.resolve_coming(row)?;
            }
            rows = shares::for_storage_index(&self.conn, si)?;
        }
        let mut valid = BTreeMap::new();
        for row in &rows {
            if row.share_type != ShareType::Mutable || row.state == ShareState::Going {
                continue;
            }
            let mut c = ChunkedContainer::open(row.si, row.shnum, row.chunk_size, row.used_space);
            let head = c.read(&self.backend, 0, container::SNIFF_LENGTH)?;
            // The database said mutable; the container decides.
            if let Container::Mutable(header) = container::sniff(&head, row.used_space) {
                valid.insert(
                    row.shnum,
                    MutableShare {
                        row: row.clone(),
                        header,
                    },
                );
            }
        }
        Ok((rows, valid))
    }

    fn read_data(&self, share: &MutableShare, offset: u64, length: u64) -> Result<Vec<u8>> {
        let mut c = ChunkedContainer::open(
            share.row.si,
            share.row.shnum,
            share.row.chunk_size,
            share.row.used_space,
        );
        let end = offset.saturating_add(length).min(share.header.data_length);
        if offset >= end {
            return Ok(Vec::new());
        }
        c.read(&self.backend, DATA_OFFSET + offset, end - offset)
    }

    /// Read-test-write on the shares of one storage index (SPEC §9).
    pub fn read_test_write(
        &mut self,
        account: &Account,
        si: &[u8],
        write_enabler: &[u8],
        writes: &[ShareWrites],
        read_vector: &[(u64, u64)],
    ) -> Result<ReadTestWrite> {
        let si = StorageIndex::from_bytes(si)?;
        let write_enabler: [u8; 32] = write_enabler.try_into().map_err(|_| BadInput::TooLarge {
            what: "write enabler length (must be 32)",
            requested: write_enabler.len() as u64,
            limit: 32,
        })?;
        let mut seen = Vec::new();
        for w in writes {
            let shnum = ShareNum::new(w.shnum)?;
            if seen.contains(&shnum) {
                return Err(BadInput::DuplicateShareNumber(w.shnum).into());
            }
            seen.push(shnum);
            for t in &w.tests {
                checked_range(t.offset, t.length)?;
            }
            for v in &w.writes {
                checked_range(v.offset, v.data.len() as u64)?;
                let end = v.offset + v.data.len() as u64;
                if end > self.config.max_mutable_size {
                    return Err(BadInput::TooLarge {
                        what: "mutable share size",
                        requested: end,
                        limit: self.config.max_mutable_size,
                    }
                    .into());
                }
            }
        }
        for &(offset, length) in read_vector {
            checked_range(offset, length)?;
        }

        let (rows, valid) = self.mutable_shares(&si, &seen)?;
        // The write enabler is checked against every existing share first.
        if let Some(other) = valid
            .values()
            .find(|s| s.header.write_enabler != write_enabler)
        {
            return Err(Error::BadWriteEnabler {
                node_id: base32(&other.header.node_id),
            });
        }
        let tested = writes.iter().map(|w| {
            let share = valid.get(&ShareNum(w.shnum as u8));
            let ranges: Vec<_> = w.tests.iter().map(|t| (t.offset, t.length)).collect();
            share.map_or(0, |s| bytes_read(s, &ranges))
        });
        check_read_total(
            valid
                .values()
                .map(|s| bytes_read(s, read_vector))
                .chain(tested)
                .fold(0, u64::saturating_add),
        )?;
        let mut reads = BTreeMap::new();
        for (shnum, share) in &valid {
            let mut results = Vec::with_capacity(read_vector.len());
            for &(offset, length) in read_vector {
                results.push(self.read_data(share, offset, length)?);
            }
            reads.insert(*shnum, results);
        }
        for w in writes {
            let shnum = ShareNum(w.shnum as u8);
            for t in &w.tests {
                let holds = match (valid.get(&shnum), rows.iter().find(|r| r.shnum == shnum)) {
                    (Some(share), _) => t
                        .operator
                        .holds(&self.read_data(share, t.offset, t.length)?, &t.specimen),
                    // A share that does not exist reads as empty.
                    (None, None) => t.operator.holds(&[], &t.specimen),
                    // Corrupted, or not a mutable share: no test on it can pass.
                    (None, Some(_)) => false,
                };
                if !holds {
                    return Ok(ReadTestWrite {
                        success: false,
                        reads,
                    });
                }
            }
        }
        for w in writes {
            let shnum = ShareNum(w.shnum as u8);
            if let Some(row) = rows.iter().find(|r| r.shnum == shnum) {
                if !valid.contains_key(&shnum) {
                    return Err(match row.share_type {
                        ShareType::Corrupted => {
                            Error::Corrupted(format!("share {si}/{shnum} cannot be written"))
                        }
                        _ if row.state == ShareState::Going => {
                            Error::ShareBusy(format!("share {si}/{shnum} is being deleted"))
                        }
                        _ => Error::Conflict(format!("share {si}/{shnum} is not a mutable share")),
                    });
                }
            }
        }
        self.check_growth(&valid, writes)?;
        let account_id = leases::account_id(&self.conn, account, self.now())?;
        for w in writes {
            self.apply(&si, &valid, w, &write_enabler, account_id)?;
        }
        Ok(ReadTestWrite {
            success: true,
            reads,
        })
    }

    /// Refuses writes that would grow the shares by more than the space left
    /// beside uploads in flight, as allocation does; shrinking is always allowed.
    fn check_growth(
        &self,
        valid: &BTreeMap<ShareNum, MutableShare>,
        writes: &[ShareWrites],
    ) -> Result<()> {
        let mut growth = 0u64;
        for w in writes {
            if w.new_length == Some(0) {
                continue;
            }
            let existing = valid.get(&ShareNum(w.shnum as u8));
            let old_data = existing.map_or(0, |s| s.header.data_length);
            let mut data = w
                .writes
                .iter()
                .map(|v| v.offset + v.data.len() as u64)
                .fold(old_data, u64::max);
            if let Some(n) = w.new_length {
                data = data.min(n);
            }
            let container = DATA_OFFSET + data + 4;
            growth += container.saturating_sub(existing.map_or(0, |s| s.row.used_space));
        }
        if growth > 0 {
            let free = self.free_space()?;
            if growth > free {
                return Err(BadInput::TooLarge {
                    what: "growth of mutable shares (bytes of available space)",
                    requested: growth,
                    limit: free,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Applies one share's writes: STABLE → COMING → STABLE around the
    /// backend writes, so a crash in between is resolved at the next start.
    fn apply(
        &mut self,
        si: &StorageIndex,
        valid: &BTreeMap<ShareNum, MutableShare>,
        w: &ShareWrites,
        write_enabler: &[u8; 32],
        account_id: i64,
    ) -> Result<()> {
        let shnum = ShareNum(w.shnum as u8);
        let existing = valid.get(&shnum);
        if w.new_length == Some(0) {
            if let Some(share) = existing {
                self.delete_share(&share.row)?;
            }
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        let (mut container, data_length) = match existing {
            Some(share) => {
                shares::transition(&tx, si, shnum, ShareState::Stable, ShareState::Coming)?;
                let c =
                    ChunkedContainer::open(*si, shnum, share.row.chunk_size, share.row.used_space);
                (c, share.header.data_length)
            }
            None => {
                shares::insert(
                    &tx,
                    &ShareRow {
                        si: *si,
                        shnum,
                        used_space: 0,
                        data_length: 0,
                        chunk_size: self.config.chunk_size,
                        share_type: ShareType::Mutable,
                        state: ShareState::Coming,
                    },
                )?;
                let mut c = ChunkedContainer::open(*si, shnum, self.config.chunk_size, 0);
                c.write(
                    &self.backend,
                    0,
                    &mutable::new_container(&self.config.node_id, write_enabler)
                        [..DATA_OFFSET as usize],
                )?;
                (c, 0)
            }
        };
        tx.commit()?;
        let coming = ShareRow {
            si: *si,
            shnum,
            used_space: existing.map_or(0, |s| s.row.used_space),
            data_length,
            chunk_size: existing.map_or(self.config.chunk_size, |s| s.row.chunk_size),
            share_type: ShareType::Mutable,
            state: ShareState::Coming,
        };
        if let Err(e) = self.write_container(&mut container, w, data_length, account_id, &coming) {
            // Back to the old container (or the new one, if its journal is
            // whole); a new share is removed, so it can be written again.
            if let Err(again) = self.resolve_coming(&coming) {
                crate::log(&format!(
                    "share {si}/{shnum} stays COMING after a failed write ({again}); the crawler retries"
                ));
            }
            return Err(e);
        }
        Ok(())
    }

    /// The backend half of `apply`, once the row is durably COMING.
    fn write_container(
        &mut self,
        container: &mut ChunkedContainer,
        w: &ShareWrites,
        mut data_length: u64,
        account_id: i64,
        coming: &ShareRow,
    ) -> Result<()> {
        let (si, shnum) = (&coming.si, coming.shnum);
        self.make_durable()?;
        // Drop the old trailer (extra leases live in the database now), so
        // that growing the data zero-fills instead of exposing old bytes.
        container.truncate(&self.backend, DATA_OFFSET + data_length)?;
        for v in &w.writes {
            container.write(&self.backend, DATA_OFFSET + v.offset, &v.data)?;
            data_length = data_length.max(v.offset + v.data.len() as u64);
        }
        if let Some(n) = w.new_length {
            if n < data_length {
                container.truncate(&self.backend, DATA_OFFSET + n)?;
                data_length = n;
            }
        }
        let trailer_at = DATA_OFFSET + data_length;
        container.write(
            &self.backend,
            DATA_LENGTH_OFFSET as u64,
            &data_length.to_be_bytes(),
        )?;
        container.write(
            &self.backend,
            EXTRA_LEASE_OFFSET_OFFSET as u64,
            &trailer_at.to_be_bytes(),
        )?;
        container.write(&self.backend, trailer_at, &0u32.to_be_bytes())?;
        container.flush(&self.backend)?;

        let now = self.now();
        let tx = self.conn.transaction()?;
        shares::finish(
            &tx,
            &ShareRow {
                si: *si,
                shnum,
                used_space: container.len(),
                data_length,
                chunk_size: coming.chunk_size,
                share_type: ShareType::Mutable,
                state: ShareState::Stable,
            },
        )?;
        leases::add_or_renew(&tx, si, shnum, account_id, now, self.lease_expiry(now))?;
        tx.commit()?;
        Ok(())
    }

    /// Reads over the given share numbers (empty: every valid mutable share).
    pub fn mutable_read(
        &mut self,
        si: &[u8],
        shnums: &[u32],
        read_vector: &[(u64, u64)],
    ) -> Result<BTreeMap<ShareNum, Vec<Vec<u8>>>> {
        let si = StorageIndex::from_bytes(si)?;
        let wanted = shnums
            .iter()
            .map(|&n| ShareNum::new(n))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for &(offset, length) in read_vector {
            checked_range(offset, length)?;
        }
        let (_, valid) = self.mutable_shares(&si, &[])?;
        check_read_total(
            valid
                .iter()
                .filter(|(n, _)| wanted.is_empty() || wanted.contains(n))
                .map(|(_, s)| bytes_read(s, read_vector))
                .fold(0, u64::saturating_add),
        )?;
        let mut out = BTreeMap::new();
        for (shnum, share) in &valid {
            if !wanted.is_empty() && !wanted.contains(shnum) {
                continue;
            }
            let mut results = Vec::with_capacity(read_vector.len());
            for &(offset, length) in read_vector {
                results.push(self.read_data(share, offset, length)?);
            }
            out.insert(*shnum, results);
        }
        Ok(out)
    }
}
