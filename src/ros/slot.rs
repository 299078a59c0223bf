//! Small thread tools of the node: a latest-wins mailbox between threads, a mutex lock that
//! survives a panicked holder, and rate-limited warnings.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Least time between two warnings of the same kind; the ones in between are counted.
pub const WARN_INTERVAL: Duration = Duration::from_secs(5);

/// Locks `m`, also after a panic in another holder: the node's shared data are counters and
/// queues that stay usable, and one failed frame must not take the node down.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A one-value mailbox between threads: the producer overwrites, the consumer takes.
pub struct Slot<T> {
    state: Mutex<SlotState<T>>,
    changed: Condvar,
}

struct SlotState<T> {
    value: Option<T>,
    busy: bool,
    closed: bool,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Slot<T> {
    pub fn new() -> Self {
        Self { state: Mutex::new(SlotState { value: None, busy: false, closed: false }), changed: Condvar::new() }
    }

    pub fn update(&self, f: impl FnOnce(&mut Option<T>)) {
        let mut s = lock(&self.state);
        f(&mut s.value);
        self.changed.notify_all();
    }

    /// Blocks until a value is there (marking the consumer busy) or the slot is closed.
    pub fn take(&self) -> Option<T> {
        let mut s = lock(&self.state);
        s.busy = false;
        self.changed.notify_all();
        loop {
            if s.closed {
                return None;
            }
            if let Some(v) = s.value.take() {
                s.busy = true;
                return Some(v);
            }
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    pub fn is_idle(&self) -> bool {
        let s = lock(&self.state);
        s.value.is_none() && !s.busy
    }

    pub fn wait_idle(&self, deadline: Instant) -> bool {
        let mut s = lock(&self.state);
        while s.value.is_some() || s.busy {
            let now = Instant::now();
            if now >= deadline || s.closed {
                return false;
            }
            s = self.changed.wait_timeout(s, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }

    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.changed.notify_all();
    }
}

/// Logs a warning per kind at most once per [`WARN_INTERVAL`], with the number suppressed.
#[derive(Default)]
pub struct Warner {
    last: HashMap<&'static str, (Instant, u64)>,
}

impl Warner {
    /// Returns whether the warning was logged (not suppressed).
    pub fn warn(&mut self, kind: &'static str, message: impl FnOnce() -> String) -> bool {
        let now = Instant::now();
        match self.last.get_mut(kind) {
            Some((at, suppressed)) if now.duration_since(*at) < WARN_INTERVAL => {
                *suppressed += 1;
                false
            }
            Some((at, suppressed)) => {
                let n = std::mem::take(suppressed);
                *at = now;
                log::warn!("{} ({n} more like this since the last report)", message());
                true
            }
            None => {
                self.last.insert(kind, (now, 0));
                log::warn!("{}", message());
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_rate_limited_per_kind() {
        let mut w = Warner::default();
        let logged: Vec<bool> = (0..5).map(|_| w.warn("a", String::new)).collect();
        assert_eq!(logged, [true, false, false, false, false]);
        assert!(w.warn("b", String::new));
        assert_eq!(w.last["a"].1, 4);
        // After the interval the next one is logged and the suppressed count restarts.
        let (at, _) = w.last.get_mut("a").unwrap();
        *at = at.checked_sub(WARN_INTERVAL).unwrap();
        assert!(w.warn("a", String::new));
        assert_eq!(w.last["a"].1, 0);
    }

    #[test]
    fn slot_keeps_the_latest_value_and_reports_idle() {
        let slot = Slot::new();
        slot.update(|v| *v = Some(1));
        slot.update(|v| *v = Some(2));
        assert!(!slot.is_idle());
        assert_eq!(slot.take(), Some(2));
        assert!(!slot.is_idle(), "busy until the consumer asks again");
        slot.close();
        assert_eq!(slot.take(), None);
    }
}
