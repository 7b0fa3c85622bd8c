//! [`Slot`]: the place of one hot-swappable plugin (a filter or transform of a chain, a name
//! filter, the naming policy). It owns the current version and a generation counter, and nothing
//! else: loading, checking and deciding to install a version is the swapper's business
//! (`flow/swap.rs`).
//!
//! Readers take [`Slot::current`] at every use (metadata path) or compare
//! [`Slot::generation`] at every batch boundary and take the current version only when it
//! changed (data path: one atomic load per batch). A replaced version stays alive as long as a
//! reader still holds it, so a batch that started with the old version finishes with it.
//!
//! A leaf: the aliases for its users are with them (`PluginSlot` in `chain/`, `PolicySlot` in
//! `policy/`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// The current version of one swappable plugin, and how many times it was replaced.
pub struct Slot<T> {
    current: RwLock<Arc<T>>,
    /// Bumped by every replacement, after the new version is in place; tasks compare it (one
    /// atomic load per batch) before taking the lock.
    generation: AtomicU64,
}

impl<T: fmt::Debug> fmt::Debug for Slot<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Slot")
            .field("current", &self.current())
            .field("generation", &self.generation())
            .finish()
    }
}

impl<T> Slot<T> {
    /// A slot holding `value`, at generation 0.
    pub fn new(value: impl Into<Arc<T>>) -> Slot<T> {
        Slot {
            current: RwLock::new(value.into()),
            generation: AtomicU64::new(0),
        }
    }

    /// The current version.
    pub fn current(&self) -> Arc<T> {
        // A panic while the lock is held cannot leave a half-written `Arc`.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// How many times the slot's version was replaced. A reader that saw generation `g` and
    /// sees `g` again holds the current version.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Installs `value`; readers switch to it at their next use (tasks: at their next batch
    /// boundary). Returns the version replaced, which stays alive while a reader still holds
    /// it.
    pub fn replace(&self, value: impl Into<Arc<T>>) -> Arc<T> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let old = std::mem::replace(&mut *current, value.into());
        // Bumped under the lock: a reader that sees the new generation finds the new version.
        self.generation.fetch_add(1, Ordering::Release);
        old
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Slot;

    #[test]
    fn replace_installs_the_new_version_and_bumps_the_generation() {
        let slot = Slot::<String>::new("v1".to_owned());
        assert_eq!(slot.generation(), 0);
        let held = slot.current();
        assert_eq!(*held, "v1");

        let old = slot.replace("v2".to_owned());
        assert_eq!(*old, "v1");
        assert!(
            Arc::ptr_eq(&old, &held),
            "the reader's version is the one replaced"
        );
        assert_eq!(*slot.current(), "v2");
        assert_eq!(slot.generation(), 1);
        assert_eq!(*held, "v1", "a reader keeps the version it holds");

        slot.replace(Arc::new("v3".to_owned()));
        assert_eq!(*slot.current(), "v3");
        assert_eq!(slot.generation(), 2);
    }
}
