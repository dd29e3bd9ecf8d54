//! The `backend` import: delegates to the host's `ObjectStore`, on a view that
//! borrows only the store, and bounds what the guest can make the host allocate.

use wasmtime::component::HasData;

use crate::backend::{BackendError, ObjectStore};
use crate::plugin::bindings::since_v0_2::leasedb::plugin::{backend as wit, types};
use crate::plugin::bindings::vocabulary::convert;
use crate::plugin::state::HostState;

/// Most entries one `list` call returns; `next` tells the plugin to ask again.
pub const MAX_LIST_LIMIT: u32 = 10_000;

/// Most bytes one `read` call returns, so a guest cannot make the host allocate
/// an arbitrarily large buffer outside the guest's own memory cap.
pub const MAX_READ_LENGTH: u64 = 64 << 20;

/// What the backend import may touch: the object store, nothing else of the host.
pub struct BackendView<'a> {
    store: &'a dyn ObjectStore,
}

/// Projects `HostState` onto `BackendView` for the linker.
pub struct BackendImport;

impl HasData for BackendImport {
    type Data<'a> = BackendView<'a>;
}

impl BackendImport {
    /// The projection `add_to_linker` takes.
    pub fn view(state: &mut HostState) -> BackendView<'_> {
        BackendView {
            store: &*state.backend,
        }
    }
}

impl wit::Host for BackendView<'_> {
    fn list_objects(
        &mut self,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> Result<wit::ListPage, wit::BackendError> {
        self.store
            .list(&prefix, start_after.as_deref(), limit.min(MAX_LIST_LIMIT))
            .map(convert)
            .map_err(convert)
    }

    fn read(
        &mut self,
        key: String,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, wit::BackendError> {
        if length > MAX_READ_LENGTH {
            // Plugins may ask for "everything" with a huge length; that is fine while
            // what is actually there fits. Truncating silently would look like the end.
            let remaining = self
                .store
                .size(&key)
                .map_err(convert)?
                .saturating_sub(offset);
            if remaining > MAX_READ_LENGTH {
                return Err(convert(BackendError::Permanent(format!(
                    "reading {key}: {remaining} bytes requested at once, the host returns at most {MAX_READ_LENGTH} per read"
                ))));
            }
        }
        self.store.read(&key, offset, length).map_err(convert)
    }

    fn write(&mut self, key: String, data: Vec<u8>) -> Result<(), wit::BackendError> {
        self.store.write(&key, &data).map_err(convert)
    }

    fn delete(&mut self, key: String) -> Result<(), wit::BackendError> {
        self.store.delete(&key).map_err(convert)
    }

    fn size(&mut self, key: String) -> Result<u64, wit::BackendError> {
        self.store.size(&key).map_err(convert)
    }

    fn available_space(&mut self) -> Result<u64, wit::BackendError> {
        self.store.available_space().map_err(convert)
    }
}

/// `types` has no functions; the world still asks for a host of it.
impl types::Host for BackendView<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryStore;
    use wit::Host;

    #[test]
    fn oversized_reads_are_refused_only_when_the_object_is_that_large() {
        let store = MemoryStore::new();
        store.write("small", b"abc").unwrap();
        let mut view = BackendView { store: &store };
        assert_eq!(view.read("small".into(), 0, u64::MAX).unwrap(), b"abc");
        store
            .write("big", &vec![0; MAX_READ_LENGTH as usize + 1])
            .unwrap();
        assert!(matches!(
            view.read("big".into(), 0, u64::MAX),
            Err(wit::BackendError::Permanent(_))
        ));
        assert_eq!(
            view.read("big".into(), 1, u64::MAX).unwrap().len(),
            MAX_READ_LENGTH as usize
        );
    }

    #[test]
    fn list_limit_is_capped() {
        let store = MemoryStore::new();
        for i in 0..MAX_LIST_LIMIT + 5 {
            store.write(&format!("k/{i:06}"), b"").unwrap();
        }
        let mut view = BackendView { store: &store };
        let page = view.list_objects("k/".into(), None, u32::MAX).unwrap();
        assert_eq!(page.entries.len(), MAX_LIST_LIMIT as usize);
        assert!(page.next.is_some());
    }
}
