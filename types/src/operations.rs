//! The plugin's exported operations as a plain-Rust trait: what a host
//! offers its callers, and what the conformance cases call.

use std::time::Duration;

use crate::plugin::{
    Account, AccountUsage, AdvisedType, Advisory, Allocation, ByteRange, Capabilities,
    CrawlerConfig, CrawlerStatus, LeaseInfo, PluginInfo, ReadTestWriteResult, SessionId, ShareInfo,
    ShareReads, ShareWrites, SliceOutcome, Stats, Usage,
};
use crate::ShareNumber;

/// One method per operation the plugin exports (its `storage`, `mutable`,
/// `accounting` and `crawler` functions and the session and `info` functions
/// of `lifecycle`); start-up, hot swap, group commit and shutdown belong to
/// the host. Storage indexes are raw bytes, as the WIT takes them, so that bad
/// input can be passed on and refused by the plugin.
#[allow(
    missing_docs,
    reason = "each method is the WIT function of the same name"
)]
pub trait Operations {
    /// How a call fails: the plugin's error, and whatever the host adds.
    type Error;

    fn allocate(
        &mut self,
        session: SessionId,
        account: &Account,
        si: &[u8],
        share_numbers: &[ShareNumber],
        allocated_size: u64,
    ) -> Result<Allocation, Self::Error>;
    fn write(
        &mut self,
        si: &[u8],
        share_number: ShareNumber,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Self::Error>;
    fn close(&mut self, si: &[u8], share_number: ShareNumber) -> Result<(), Self::Error>;
    fn abort(&mut self, si: &[u8], share_number: ShareNumber) -> Result<(), Self::Error>;
    fn list_shares(&mut self, si: &[u8]) -> Result<Vec<ShareNumber>, Self::Error>;
    fn read(
        &mut self,
        si: &[u8],
        share_number: ShareNumber,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, Self::Error>;
    fn add_lease(&mut self, account: &Account, si: &[u8]) -> Result<u32, Self::Error>;
    fn list_leases(&mut self, si: &[u8]) -> Result<Vec<LeaseInfo>, Self::Error>;
    fn list_all_shares(
        &mut self,
        after: Option<(&[u8], ShareNumber)>,
        limit: u32,
    ) -> Result<Vec<ShareInfo>, Self::Error>;
    fn read_test_write(
        &mut self,
        account: &Account,
        si: &[u8],
        write_enabler: &[u8],
        writes: &[ShareWrites],
        read_vector: &[ByteRange],
    ) -> Result<ReadTestWriteResult, Self::Error>;
    /// WIT `mutable.read`.
    fn mutable_read(
        &mut self,
        si: &[u8],
        share_numbers: &[ShareNumber],
        read_vector: &[ByteRange],
    ) -> Result<Vec<ShareReads>, Self::Error>;
    fn get_capabilities(&mut self) -> Result<Capabilities, Self::Error>;
    fn advise_corrupt(
        &mut self,
        account: &Account,
        share_type: AdvisedType,
        si: &[u8],
        share_number: ShareNumber,
        reason: &str,
    ) -> Result<(), Self::Error>;
    fn list_advisories(&mut self, after: i64, limit: u32) -> Result<Vec<Advisory>, Self::Error>;
    fn get_usage(&mut self, account: Option<&Account>) -> Result<Usage, Self::Error>;
    fn usage_by_account(&mut self) -> Result<Vec<AccountUsage>, Self::Error>;
    fn get_stats(&mut self) -> Result<Stats, Self::Error>;
    fn session_opened(&mut self, session: SessionId) -> Result<(), Self::Error>;
    fn session_closed(&mut self, session: SessionId) -> Result<u32, Self::Error>;
    /// WIT `crawler.configure`.
    fn crawler_configure(&mut self, config: CrawlerConfig) -> Result<(), Self::Error>;
    /// WIT `crawler.run-slice`; the WIT takes the budget in whole milliseconds.
    fn crawler_run_slice(
        &mut self,
        budget: Duration,
        force: bool,
    ) -> Result<SliceOutcome, Self::Error>;
    /// WIT `crawler.status`.
    fn crawler_status(&mut self) -> Result<CrawlerStatus, Self::Error>;
    fn info(&mut self) -> Result<PluginInfo, Self::Error>;
}
