//! [`lock`]: the crate's one poison-tolerant way to take a `Mutex`.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, carrying on with its data if a thread panicked while holding it: every
/// value kept behind the crate's mutexes (counters, throttle windows, session owners) stays
/// usable after an interrupted update.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
