//! The one poison-tolerant lock of the crate: a panic while a lock was held leaves data
//! that is still consistent here (caches, counters, cookies), so a poisoned lock is used as is.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, also when a panicking thread poisoned it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
