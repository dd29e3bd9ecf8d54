//! `LeaseDb`: the engine. One method per operation of SPEC §9; each validates
//! its arguments, then touches the database and the backend.

use std::collections::HashMap;
use std::fmt;

use crate::account::Account;
use crate::backend::{keys, Backend, Retrying};
use crate::container;
use crate::container::immutable::DATA_OFFSET;
use crate::crawler::config::CrawlerConfig;
use crate::crawler::lookahead::Lookahead;
use crate::db::leases::{self, LeaseRow};
use crate::db::schema::{self, SchemaError};
use crate::db::shares;
use crate::db::sqlite::{Connection, DbError};
use crate::discovery;
use crate::error::{BadInput, Error, Result};
use crate::ids::{SessionId, ShareNum, StorageIndex, Timestamp};
use crate::latencies::Latencies;
use crate::session::Sessions;
use crate::share::{ShareRow, ShareState, ShareType};
use crate::staging::StagingLog;
use crate::upload::Upload;

/// Largest read answered in one call.
pub const MAX_READ_LENGTH: u64 = 64 << 20;
/// Bytes of partial chunks held across all uploads in flight: an honest
/// client writing in order holds at most one chunk per share, while one
/// scattering single bytes would otherwise hold a chunk per byte written.
pub const MAX_BUFFERED_BYTES: u64 = 64 << 20;
/// Partial chunks one upload may hold: an in-order writer needs one.
pub const MAX_PARTIAL_CHUNKS_PER_UPLOAD: u64 = 4;
/// Smallest chunk size accepted: chunk 0 must hold any container header.
pub const MIN_CHUNK_SIZE: u64 = 4096;

/// Settings from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Preferred backend chunk length for new shares.
    pub chunk_size: u64,
    /// Seconds a lease lasts from its add or renewal.
    pub lease_duration: u64,
    /// Largest immutable share data accepted.
    pub max_immutable_size: u64,
    /// Largest mutable share data accepted.
    pub max_mutable_size: u64,
    /// This server's node id, recorded in the mutable containers it creates.
    pub node_id: [u8; 20],
}

impl Default for Config {
    fn default() -> Self {
        Config {
            chunk_size: 512 << 10,
            lease_duration: 31 * 24 * 3600,
            max_immutable_size: 64 << 30,
            max_mutable_size: 64 << 30,
            node_id: [0; 20],
        }
    }
}

/// What opening found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitReport {
    /// Schema version after migrations.
    pub schema_version: u32,
    /// Unfinished uploads removed with their objects.
    pub uploads_removed: u32,
    /// Unfinished uploads found complete and made STABLE.
    pub uploads_recovered: u32,
    /// Where an unreadable database file was moved (it is rebuilt by crawling).
    pub moved_aside: Option<String>,
}

/// Why the engine could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// A setting is unusable.
    Config(String),
    /// The database could not be opened.
    Db(DbError),
    /// The schema could not be brought up to date.
    Schema(SchemaError),
    /// Resolving unfinished uploads failed.
    Recovery(Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Config(m) => write!(f, "bad configuration: {m}"),
            OpenError::Db(e) => write!(f, "opening the lease database: {e}"),
            OpenError::Schema(e) => write!(f, "{e}"),
            OpenError::Recovery(e) => write!(f, "resolving unfinished uploads: {e}"),
        }
    }
}

/// What an allocate request got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocation {
    /// Complete shares already held.
    pub already_have: Vec<ShareNum>,
    /// Shares the caller may now write.
    pub allocated: Vec<ShareNum>,
}

/// What the server offers; leases always ignore renew and cancel secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Largest immutable share data accepted.
    pub max_immutable_size: u64,
    /// Largest mutable share data accepted.
    pub max_mutable_size: u64,
    /// Backend space left after in-flight allocations.
    pub available_space: u64,
}

/// The wall clock, replaceable in tests.
pub type Clock = Box<dyn Fn() -> Timestamp>;

/// The host's wall clock (WASI inside the component).
pub fn system_clock() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as Timestamp)
        .unwrap_or(0)
}

fn open_and_migrate(
    db_path: &str,
    wal_index: Option<&[u8]>,
) -> std::result::Result<(Connection, u32), OpenError> {
    let conn = Connection::open_with_wal_index(db_path, wal_index).map_err(OpenError::Db)?;
    let version = schema::migrate(&conn).map_err(OpenError::Schema)?;
    crate::db::advisories::ensure_index(&conn)
        .map_err(|e| OpenError::Schema(SchemaError::Db(e)))?;
    Ok((conn, version))
}

/// Whether SQLite says the file is not a database it can read (as opposed
/// to an I/O failure, where moving the file would lose nothing but help nothing).
fn is_unreadable(e: &DbError) -> bool {
    const SQLITE_CORRUPT: i32 = 11;
    const SQLITE_NOTADB: i32 = 26;
    matches!(e.primary_code(), SQLITE_CORRUPT | SQLITE_NOTADB)
}

/// Renames the database (and its WAL) to a timestamped name, kept for
/// inspection; returns the new name.
fn move_aside(db_path: &str, now: Timestamp) -> std::result::Result<String, String> {
    let aside = format!("{db_path}.unreadable-{now}");
    std::fs::rename(db_path, &aside).map_err(|e| e.to_string())?;
    let wal = format!("{db_path}-wal");
    if std::fs::metadata(&wal).is_ok() {
        std::fs::rename(&wal, format!("{aside}-wal")).map_err(|e| e.to_string())?;
    }
    Ok(aside)
}

/// The lease-and-share engine over one database and one backend.
pub struct LeaseDb<B: Backend> {
    pub(crate) conn: Connection,
    pub(crate) backend: Retrying<B>,
    pub(crate) config: Config,
    pub(crate) uploads: HashMap<(StorageIndex, ShareNum), Upload>,
    pub(crate) sessions: Sessions,
    /// The uploads in flight as a fresh instance would take them over.
    pub(crate) staging: StagingLog,
    clock: Clock,
    /// Recent call durations, recorded by the component's entry points.
    pub latencies: Latencies,
    /// How the crawler runs.
    pub(crate) crawler: CrawlerConfig,
    /// Whether the crawler looks past empty prefixes (kept in memory only).
    pub(crate) lookahead: Lookahead,
}

impl<B: Backend> LeaseDb<B> {
    /// Opens (creating or migrating) the database at `db_path` and resolves
    /// the uploads a previous run left unfinished (a cold start, SPEC §6).
    pub fn open(
        db_path: &str,
        backend: B,
        config: Config,
    ) -> std::result::Result<(Self, InitReport), OpenError> {
        Self::open_with_clock(db_path, backend, config, Box::new(system_clock))
    }

    /// As `open`, with a given clock.
    pub fn open_with_clock(
        db_path: &str,
        backend: B,
        config: Config,
        clock: Clock,
    ) -> std::result::Result<(Self, InitReport), OpenError> {
        Self::start(db_path, backend, config, clock, None)
    }

    /// Opens the database and either takes over the state a previous
    /// version handed over (a hot swap: its uploads continue) or, without
    /// one, resolves unfinished uploads (a cold start).
    pub fn start(
        db_path: &str,
        backend: B,
        config: Config,
        clock: Clock,
        handover: Option<&[u8]>,
    ) -> std::result::Result<(Self, InitReport), OpenError> {
        if config.chunk_size < MIN_CHUNK_SIZE || config.chunk_size > u32::MAX as u64 {
            return Err(OpenError::Config(format!(
                "chunk size {} is outside {MIN_CHUNK_SIZE}..={}",
                config.chunk_size,
                u32::MAX
            )));
        }
        if config.lease_duration == 0 || config.lease_duration > i64::MAX as u64 / 2 {
            return Err(OpenError::Config(format!(
                "lease duration {} s is unusable",
                config.lease_duration
            )));
        }
        let now = clock();
        // Decoded first: a hot swap's blob also carries the WAL index to open from.
        let received = handover
            .map(Self::decode_handover)
            .transpose()
            .map_err(OpenError::Recovery)?;
        let wal_index = received.as_ref().and_then(|r| r.wal_index());
        let (conn, schema_version, moved_aside) = match open_and_migrate(db_path, wal_index) {
            Err(OpenError::Db(e)) | Err(OpenError::Schema(SchemaError::Db(e)))
                if is_unreadable(&e) =>
            {
                let aside = move_aside(db_path, now).map_err(|m| {
                    OpenError::Db(DbError::new(
                        e.code,
                        format!("{e}; moving it aside failed: {m}"),
                    ))
                })?;
                crate::log(&format!("the database at {db_path} is unreadable ({e}); moved it to {aside} and starting afresh"));
                let (conn, version) = open_and_migrate(db_path, None)?;
                (conn, version, Some(aside))
            }
            other => {
                let (conn, version) = other?;
                (conn, version, None)
            }
        };
        let mut engine = LeaseDb {
            conn,
            backend: Retrying::new(backend),
            config,
            uploads: HashMap::new(),
            sessions: Sessions::default(),
            staging: StagingLog::beside(db_path),
            clock,
            latencies: Latencies::default(),
            crawler: CrawlerConfig::default(),
            lookahead: Lookahead::default(),
        };
        let swapped = match received {
            Some(received) => engine.take_over(received).map_err(OpenError::Recovery)?,
            None => false,
        };
        // After a handover this settles only what the blob and the database
        // disagree on (a batch whose commit failed): nothing, on a clean swap.
        let (uploads_removed, uploads_recovered) = engine.resolve_unfinished_uploads()?;
        if swapped {
            // Rewriting the log would lengthen the swap's pause by every buffered byte.
            if let Err(e) = engine.staging.reopen(engine.uploads.values()) {
                crate::log(&format!("staging the uploads in flight: {e}"));
            }
        } else {
            engine.restage();
        }
        Ok((
            engine,
            InitReport {
                schema_version,
                uploads_removed,
                uploads_recovered,
                moved_aside,
            },
        ))
    }

    pub(crate) fn now(&self) -> Timestamp {
        (self.clock)()
    }

    pub(crate) fn lease_expiry(&self, now: Timestamp) -> Option<Timestamp> {
        Some(now + self.config.lease_duration as i64)
    }

    /// Opens a group commit: operations until `commit_batch` share one
    /// durable commit. The host must not report their success before then.
    pub fn begin_batch(&mut self) -> Result<()> {
        Ok(self.conn.begin_batch()?)
    }

    /// Makes the batch's operations durable together (one sync). On failure
    /// none of them is, and the host should restart the plugin.
    pub fn commit_batch(&mut self) -> Result<()> {
        Ok(self.conn.commit_batch()?)
    }

    /// Uploads in progress and the bytes allocated to them.
    pub fn in_flight(&self) -> (u64, u64) {
        (
            self.uploads.len() as u64,
            self.uploads.values().map(|u| u.allocated_size).sum(),
        )
    }

    /// Backend space left once every upload in flight has its whole
    /// container: what allocate grants from and what clients are told.
    pub(crate) fn free_space(&self) -> Result<u64> {
        let reserved: u64 = self
            .uploads
            .values()
            .map(|u| DATA_OFFSET + u.allocated_size)
            .sum();
        Ok(self.backend.available_space()?.saturating_sub(reserved))
    }

    /// Settings and limits a client sees (SPEC §9 "version").
    pub fn capabilities(&self) -> Result<Capabilities> {
        Ok(Capabilities {
            max_immutable_size: self.config.max_immutable_size,
            max_mutable_size: self.config.max_mutable_size,
            available_space: self.free_space()?,
        })
    }

    /// The backend, for tests.
    pub fn backend(&self) -> &B {
        self.backend.inner()
    }

    /// Rows of `si`, discovering its shares in the backend when the database
    /// has none (SPEC §7). Costs one listing only in that uncommon case.
    pub(crate) fn shares_of(&self, si: &StorageIndex) -> Result<Vec<ShareRow>> {
        let rows = shares::for_storage_index(&self.conn, si)?;
        if !rows.is_empty() {
            return Ok(rows);
        }
        discovery::discover(
            &self.conn,
            &self.backend,
            si,
            &[],
            self.now(),
            self.config.lease_duration,
        )
    }

    /// Rows of `si` before creating any of `shnums` (SPEC §12, discovery
    /// before harm): when one of them is unknown to the database, one
    /// listing adopts every untracked share of the index, so none is
    /// clobbered, and removes headless leftovers under the share numbers
    /// about to be created, so their stale chunks cannot join the new share.
    pub(crate) fn shares_before_creating(
        &mut self,
        si: &StorageIndex,
        shnums: &[ShareNum],
    ) -> Result<Vec<ShareRow>> {
        let mut rows = shares::for_storage_index(&self.conn, si)?;
        if !rows.is_empty() && shnums.iter().all(|n| rows.iter().any(|r| r.shnum == *n)) {
            return Ok(rows);
        }
        let known: Vec<ShareNum> = rows.iter().map(|r| r.shnum).collect();
        let listing = discovery::listing_with_journals_applied(&self.backend, si)?;
        let mut adopted = Vec::new();
        for ((found_si, shnum), chunks) in discovery::group_by_share(&listing) {
            if found_si != *si || known.contains(&shnum) {
                continue;
            }
            if discovery::is_published(&chunks) {
                adopted.push(discovery::examine_with_leases(
                    &self.backend,
                    found_si,
                    shnum,
                    &chunks,
                )?);
            } else if shnums.contains(&shnum) {
                crate::log(&format!(
                    "removing leftovers of an unfinished upload of {si}/{shnum} before reusing it"
                ));
                for &chunk in chunks.keys() {
                    self.backend.delete(&keys::chunk_key(si, shnum, chunk))?;
                }
            }
        }
        if !adopted.is_empty() {
            let now = self.now();
            let tx = self.conn.transaction()?;
            discovery::register(&tx, &adopted, now, self.config.lease_duration)?;
            tx.commit()?;
            rows.extend(adopted.into_iter().map(|(row, _)| row));
            rows.sort_by_key(|r| r.shnum);
        }
        Ok(rows)
    }

    /// Makes every state change so far durable before a backend change that
    /// must follow it, also inside a group commit (SPEC §12).
    pub(crate) fn make_durable(&self) -> Result<()> {
        Ok(self.conn.make_durable()?)
    }

    /// Deletes every chunk of one share.
    pub(crate) fn delete_share_objects(&self, si: &StorageIndex, shnum: ShareNum) -> Result<()> {
        self.delete_share_objects_head_first(si, shnum, 0)
            .map_err(|(_, e)| e)
    }

    /// Deletes every chunk of one share, chunk 0 first, so the share stops
    /// being one before any of its data goes: the chunks listed, and the
    /// first `known` chunks whether listed or not (an object store's listing
    /// may lag a recent write; a chunk it missed would be left behind with
    /// no row). On failure, says whether the head is gone.
    fn delete_share_objects_head_first(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        known: u64,
    ) -> std::result::Result<(), (bool, Error)> {
        let listing = self
            .backend
            .list_all(&keys::storage_index_dir(si))
            .map_err(|e| (false, e.into()))?;
        let mut chunks: std::collections::BTreeSet<u64> = (0..known).collect();
        chunks.extend(
            listing
                .iter()
                .filter_map(|entry| keys::parse_chunk_key(&entry.key))
                .filter(|k| k.shnum == shnum)
                .map(|k| k.chunk),
        );
        let mut head_gone = false;
        for chunk in chunks {
            self.backend
                .delete(&keys::chunk_key(si, shnum, chunk))
                .map_err(|e| (head_gone, e.into()))?;
            head_gone |= chunk == 0;
        }
        Ok(())
    }

    /// Deletes a share (SPEC §6): STABLE → GOING → objects deleted → row
    /// removed with its leases; back to STABLE if the objects cannot be
    /// deleted, so a later cycle retries. A row no longer STABLE is left alone.
    pub(crate) fn delete_share(&mut self, row: &ShareRow) -> Result<()> {
        let tx = self.conn.transaction()?;
        if !shares::transition(
            &tx,
            &row.si,
            row.shnum,
            ShareState::Stable,
            ShareState::Going,
        )? {
            return Ok(());
        }
        tx.commit()?;
        self.finish_deletion(row)
    }

    /// The rest of a deletion from GOING: objects, then the row; back to
    /// STABLE when the objects cannot be deleted and the head is still there.
    pub(crate) fn finish_deletion(&mut self, row: &ShareRow) -> Result<()> {
        self.make_durable()?;
        let known = row.used_space.div_ceil(row.chunk_size.max(1));
        if let Err((head_gone, e)) = self.delete_share_objects_head_first(&row.si, row.shnum, known)
        {
            if head_gone {
                // No longer a share: it stays GOING for the crawler to finish.
                return Err(e);
            }
            let tx = self.conn.transaction()?;
            shares::transition(
                &tx,
                &row.si,
                row.shnum,
                ShareState::Going,
                ShareState::Stable,
            )?;
            tx.commit()?;
            return Err(e);
        }
        let tx = self.conn.transaction()?;
        shares::delete(&tx, &row.si, row.shnum)?;
        tx.commit()?;
        Ok(())
    }

    /// Starts uploads (SPEC §9). Every share of the index already held
    /// complete is reported and gets the account's lease added or renewed; shares being uploaded, being
    /// deleted or corrupted are neither held nor granted, nor is anything
    /// that does not fit in the available space.
    pub fn allocate(
        &mut self,
        session: SessionId,
        account: &Account,
        si: &[u8],
        shnums: &[u32],
        allocated_size: u64,
    ) -> Result<Allocation> {
        let si = StorageIndex::from_bytes(si)?;
        let mut wanted = Vec::with_capacity(shnums.len());
        for &n in shnums {
            let shnum = ShareNum::new(n)?;
            if wanted.contains(&shnum) {
                return Err(BadInput::DuplicateShareNumber(n).into());
            }
            wanted.push(shnum);
        }
        if allocated_size > self.config.max_immutable_size {
            return Err(BadInput::TooLarge {
                what: "allocated size",
                requested: allocated_size,
                limit: self.config.max_immutable_size,
            }
            .into());
        }
        let existing = self.shares_before_creating(&si, &wanted)?;
        let now = self.now();
        let expires = self.lease_expiry(now);
        let mut space = self.free_space()?;

        let mut result = Allocation::default();
        let mut granted = Vec::new();
        let tx = self.conn.transaction()?;
        let account_id = leases::account_id(&tx, account, now)?;
        // Like Tahoe's own server: "already have" is every complete share of
        // the index, asked for or not, and the requester's lease covers them all.
        for row in existing.iter().filter(|r| r.is_served_immutable()) {
            leases::add_or_renew(&tx, &si, row.shnum, account_id, now, expires)?;
            result.already_have.push(row.shnum);
        }
        for shnum in wanted {
            match existing.iter().find(|r| r.shnum == shnum) {
                Some(_) => {} // held (above), or COMING, GOING, corrupted, mutable: refused
                None => {
                    let need = DATA_OFFSET + allocated_size;
                    if need > space {
                        continue;
                    }
                    space -= need;
                    shares::insert(
                        &tx,
                        &ShareRow {
                            si,
                            shnum,
                            used_space: allocated_size,
                            data_length: 0,
                            chunk_size: self.config.chunk_size,
                            share_type: ShareType::Immutable,
                            state: ShareState::Coming,
                        },
                    )?;
                    granted.push(shnum);
                }
            }
        }
        tx.commit()?;
        for shnum in granted {
            self.uploads.insert(
                (si, shnum),
                Upload::new(
                    si,
                    shnum,
                    session,
                    account_id,
                    allocated_size,
                    self.config.chunk_size,
                ),
            );
            self.sessions.add_upload(session, si, shnum);
            self.staging.allocated(&self.uploads[&(si, shnum)]);
            result.allocated.push(shnum);
        }
        Ok(result)
    }

    /// Writes data into an upload in progress.
    pub fn write(&mut self, si: &[u8], shnum: u32, offset: u64, data: &[u8]) -> Result<()> {
        let key = (StorageIndex::from_bytes(si)?, ShareNum::new(shnum)?);
        let upload = self.uploads.get(&key).ok_or(Error::NoUpload)?;
        let growth = upload.buffer_growth(offset, data.len() as u64);
        if growth > 0 {
            let limit = MAX_PARTIAL_CHUNKS_PER_UPLOAD * upload.chunk_size;
            let mine = upload.buffered_bytes() + growth;
            if mine > limit {
                return Err(BadInput::TooLarge {
                    what: "bytes of partial chunks buffered for one upload",
                    requested: mine,
                    limit,
                }
                .into());
            }
            let held: u64 = self.uploads.values().map(Upload::buffered_bytes).sum();
            if held + growth > MAX_BUFFERED_BYTES {
                return Err(BadInput::TooLarge {
                    what: "bytes of partial chunks buffered across uploads",
                    requested: held + growth,
                    limit: MAX_BUFFERED_BYTES,
                }
                .into());
            }
        }
        let upload = self.uploads.get_mut(&key).ok_or(Error::NoUpload)?;
        let stored = upload.write(&self.backend, offset, data)?;
        self.staging.wrote(upload, offset, data, &stored);
        self.restage_if_grown();
        Ok(())
    }

    /// Starts the staging log afresh from the uploads in memory; if that
    /// fails, they just do not survive the instance dying (logged).
    pub(crate) fn restage(&mut self) {
        if let Err(e) = self.staging.rewrite(self.uploads.values()) {
            crate::log(&format!(
                "staging the uploads in flight: {e}; they do not survive the instance dying until it works"
            ));
        }
    }

    /// Rewrites the staging log once it has grown well past what it describes.
    fn restage_if_grown(&mut self) {
        let uploads = &self.uploads;
        let live = || uploads.values().map(Upload::buffered_bytes).sum();
        if self.staging.wants_rewrite(live, uploads.len()) {
            self.restage();
        }
    }

    /// Finishes an upload: container stored, COMING → STABLE and the
    /// writer's lease added in one transaction.
    pub fn close(&mut self, si: &[u8], shnum: u32) -> Result<()> {
        let key = (StorageIndex::from_bytes(si)?, ShareNum::new(shnum)?);
        let upload = self.uploads.get_mut(&key).ok_or(Error::NoUpload)?;
        let (container_length, data_length) = upload.finish(&self.backend)?;
        let (session, account_id, chunk_size) =
            (upload.session, upload.account_id, upload.chunk_size);
        let now = self.now();
        let tx = self.conn.transaction()?;
        let finished = shares::finish(
            &tx,
            &ShareRow {
                si: key.0,
                shnum: key.1,
                used_space: container_length,
                data_length,
                chunk_size,
                share_type: ShareType::Immutable,
                state: ShareState::Stable,
            },
        )?;
        if !finished {
            return Err(Error::Database(format!(
                "share {}/{} was not COMING at close",
                key.0, key.1
            )));
        }
        leases::add_or_renew(&tx, &key.0, key.1, account_id, now, self.lease_expiry(now))?;
        tx.commit()?;
        self.uploads.remove(&key);
        self.sessions.remove_upload(session, key.0, key.1);
        self.staging.ended(key.0, key.1);
        self.restage_if_grown();
        Ok(())
    }

    /// Abandons an upload: objects and row removed (COMING → none).
    pub fn abort(&mut self, si: &[u8], shnum: u32) -> Result<()> {
        let key = (StorageIndex::from_bytes(si)?, ShareNum::new(shnum)?);
        if !self.uploads.contains_key(&key) {
            return Err(Error::NoUpload);
        }
        self.abort_upload(key.0, key.1)
    }

    /// Releases the upload (and its space reservation) at once, then
    /// removes its objects and row. If the objects cannot be removed the row
    /// stays COMING with no upload behind it, and the crawler's next pass
    /// over its prefix (or the next cold start) retries.
    fn abort_upload(&mut self, si: StorageIndex, shnum: ShareNum) -> Result<()> {
        if let Some(upload) = self.uploads.remove(&(si, shnum)) {
            self.sessions.remove_upload(upload.session, si, shnum);
            self.staging.ended(si, shnum);
            self.restage_if_grown();
        }
        // Objects first: the share number stays reserved until they are gone.
        if let Err(e) = self.delete_share_objects(&si, shnum) {
            crate::log(&format!(
                "aborting the upload of {si}/{shnum}: {e}; its leftovers are removed later"
            ));
            return Err(e);
        }
        let tx = self.conn.transaction()?;
        if shares::get(&tx, &si, shnum)?.is_some_and(|r| r.state == ShareState::Coming) {
            shares::delete(&tx, &si, shnum)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Share numbers of the complete, valid immutable shares of `si`.
    pub fn list_shares(&mut self, si: &[u8]) -> Result<Vec<ShareNum>> {
        let si = StorageIndex::from_bytes(si)?;
        Ok(self
            .shares_of(&si)?
            .into_iter()
            .filter(ShareRow::is_served_immutable)
            .map(|r| r.shnum)
            .collect())
    }

    /// Share data from `offset`, truncated at the end of the share.
    pub fn read(&mut self, si: &[u8], shnum: u32, offset: u64, length: u64) -> Result<Vec<u8>> {
        let si = StorageIndex::from_bytes(si)?;
        let shnum = ShareNum::new(shnum)?;
        offset
            .checked_add(length)
            .ok_or(BadInput::RangeOverflow { offset, length })?;
        let row = self
            .shares_of(&si)?
            .into_iter()
            .find(|r| r.shnum == shnum)
            .ok_or(Error::NotFound)?;
        if row.share_type == ShareType::Corrupted {
            return Err(Error::Corrupted(format!(
                "share {si}/{shnum} has a container that cannot be trusted"
            )));
        }
        if !row.is_served_immutable() {
            return Err(Error::NotFound);
        }
        let length = length.min(row.data_length.saturating_sub(offset));
        if length > MAX_READ_LENGTH {
            return Err(BadInput::TooLarge {
                what: "read length",
                requested: length,
                limit: MAX_READ_LENGTH,
            }
            .into());
        }
        self.read_container(&row, DATA_OFFSET + offset, length)
    }

    /// Container bytes [start, start + length) across chunks.
    fn read_container(&self, row: &ShareRow, start: u64, length: u64) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(length as usize);
        for p in container::pieces(start, length, row.chunk_size) {
            let key = keys::chunk_key(&row.si, row.shnum, p.chunk);
            let piece = self.backend.read(&key, p.within, p.len)?;
            if piece.len() as u64 != p.len {
                return Err(Error::Corrupted(format!(
                    "chunk {} of share {}/{} is shorter than the database records",
                    p.chunk, row.si, row.shnum
                )));
            }
            out.extend_from_slice(&piece);
        }
        Ok(out)
    }

    /// Adds or renews the account's lease on every share of `si`, in any
    /// state. Not found when neither the database nor the backend has it.
    pub fn add_lease(&mut self, account: &Account, si: &[u8]) -> Result<u32> {
        let si = StorageIndex::from_bytes(si)?;
        #[cfg(feature = "test-faults")]
        crate::faults::on_add_lease(account);
        let rows = self.shares_of(&si)?;
        if rows.is_empty() {
            return Err(Error::NotFound);
        }
        let now = self.now();
        let expires = self.lease_expiry(now);
        // The common renewal, a known account's lease on an index's one
        // share, changes one row in one statement (the lease's UPDATE, or
        // the insert when it has none), atomic by itself: it runs without the
        // transaction's savepoint (two statements more, and a copy of each
        // page it changes).
        if let [row] = rows.as_slice() {
            if let Ok(account_id) = leases::known_account_id(&self.conn, account)? {
                self.conn.transaction_of_one(|conn| {
                    leases::add_or_renew(conn, &si, row.shnum, account_id, now, expires)
                })?;
                return Ok(1);
            }
        }
        let tx = self.conn.transaction()?;
        let account_id = leases::account_id(&tx, account, now)?;
        for row in &rows {
            leases::add_or_renew(&tx, &si, row.shnum, account_id, now, expires)?;
        }
        tx.commit()?;
        Ok(rows.len() as u32)
    }

    /// Every lease on the shares of `si`.
    pub fn list_leases(&mut self, si: &[u8]) -> Result<Vec<LeaseRow>> {
        let si = StorageIndex::from_bytes(si)?;
        self.shares_of(&si)?;
        Ok(leases::for_storage_index(&self.conn, &si)?)
    }

    /// A page of the shares table in (SI, share number) order.
    pub fn list_all_shares(
        &mut self,
        after: Option<(&[u8], u32)>,
        limit: u32,
    ) -> Result<Vec<ShareRow>> {
        let after = match after {
            Some((si, n)) => Some((StorageIndex::from_bytes(si)?, ShareNum::new(n)?)),
            None => None,
        };
        Ok(shares::page(&self.conn, after, limit.min(10_000))?)
    }

    /// A session began.
    pub fn session_opened(&mut self, session: SessionId) {
        self.sessions.open(session);
    }

    /// A session ended: its unfinished uploads are aborted. Returns how many.
    pub fn session_closed(&mut self, session: SessionId) -> u32 {
        let mut aborted = 0;
        for (si, shnum) in self.sessions.close(session) {
            // Released either way; a failed cleanup is retried by the crawler.
            let _ = self.abort_upload(si, shnum);
            aborted += 1;
        }
        aborted
    }
}
