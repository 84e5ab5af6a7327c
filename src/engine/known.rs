//! The transaction ids this process has handled, so that a new one can skip the store look-up.
//!
//! Before scoring, the engine asks the store whether a `txn_id` is stored already (the
//! idempotency check). On SQLite that look-up costs ~25 µs when a commit came in between (a WAL
//! reader drops its page cache whenever the database changed), a quarter of a `/predict`'s CPU
//! (`cargo bench --bench lookup`). [`KnownIds`] says "not stored" without asking the store for
//! a transaction that is newer than everything stored when this process started and that this
//! process has not handled since. Both halves are exact for this process: every id it claims
//! goes in, and when memory is reclaimed the horizon moves past the forgotten ids' event times,
//! so a forgotten id is looked up again. What it cannot see is a transaction another process
//! sharing the store stores after this one started: that one is scored here (moving this
//! process's card state, which never held it) and the store's `ON CONFLICT` then answers the
//! first decision, as it does for two processes inserting at once. The same holds after a
//! restart for an id sent again with a later event time than any stored (a reused id, not a
//! retry: a retry carries its original time, which is behind the horizon, and is looked up).

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

/// Ids kept per generation; two generations at most (~10 MB).
pub(crate) const GENERATION: usize = 1 << 19;

#[derive(Debug)]
struct Generation {
    ids: HashSet<u64>,
    /// The newest event time of an id in `ids` (`i64::MIN` when empty).
    newest: i64,
}

impl Default for Generation {
    fn default() -> Self {
        Self { ids: HashSet::new(), newest: i64::MIN }
    }
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct KnownIds {
    current: Generation,
    previous: Generation,
    /// Every id with a later event time that is stored (by this process) is in a generation.
    horizon: i64,
    capacity: usize,
}

impl KnownIds {
    /// `newest_stored`: the newest event time in the store when this process opened it.
    pub(crate) fn new(newest_stored: Option<i64>, capacity: usize) -> Self {
        Self {
            current: Generation::default(),
            previous: Generation::default(),
            horizon: newest_stored.unwrap_or(i64::MIN),
            capacity: capacity.max(1),
        }
    }

    /// Records that this process handles `txn_id` (event time `timestamp`) and says whether it
    /// may be stored already: `false` only when its event time is past the horizon and this
    /// process had not handled it. (A hash collision answers `true`: one look-up more.)
    pub(crate) fn claim(&mut self, txn_id: &str, timestamp: i64) -> bool {
        let key = key(txn_id);
        let may_be_stored = self.contains(key, timestamp);
        if self.current.ids.len() >= self.capacity {
            // The older generation is forgotten; the horizon moves past its event times.
            let retired = std::mem::replace(&mut self.previous, std::mem::take(&mut self.current));
            self.horizon = self.horizon.max(retired.newest);
        }
        self.current.ids.insert(key);
        self.current.newest = self.current.newest.max(timestamp);
        may_be_stored
    }

    fn contains(&self, key: u64, timestamp: i64) -> bool {
        timestamp <= self.horizon || self.current.ids.contains(&key) || self.previous.ids.contains(&key)
    }
}

/// A fixed 64-bit hash of the id (SipHash with zero keys: the same in every run, which only
/// matters for tests; a collision costs one look-up, never a wrong answer).
fn key(txn_id: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(txn_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `txn_id` may be stored, without claiming it.
    fn may_be_stored(known: &KnownIds, txn_id: &str, timestamp: i64) -> bool {
        known.contains(key(txn_id), timestamp)
    }

    #[test]
    fn only_a_new_id_past_the_horizon_is_known_not_stored() {
        let mut known = KnownIds::new(Some(1_000), 100);
        assert!(known.claim("old", 1_000), "as old as the newest stored row");
        assert!(!known.claim("new", 1_001));
        assert!(known.claim("new", 1_001), "handled by this process");
        assert!(may_be_stored(&known, "new", 5_000), "the id decides, not the event time");
        assert!(!may_be_stored(&known, "other", 1_001));
        let empty = KnownIds::new(None, 100);
        assert!(!may_be_stored(&empty, "any", i64::MIN + 1));
    }

    #[test]
    fn a_forgotten_id_is_behind_the_horizon() {
        // Generations of 10: after 30 inserts the first 10 (and then 20) are forgotten, and
        // every one of the 30 must still read as possibly stored.
        let mut known = KnownIds::new(None, 10);
        let ids: Vec<String> = (0..30).map(|i| format!("t{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            // Event times out of order, as a retried old transaction brings.
            let ts = if i % 7 == 0 { 10 } else { 100 + i as i64 };
            assert!(!known.claim(id, ts) || ts == 10, "{id} is new");
            for (j, seen) in ids[..=i].iter().enumerate() {
                let ts = if j % 7 == 0 { 10 } else { 100 + j as i64 };
                assert!(may_be_stored(&known, seen, ts), "{seen} forgotten after {i} inserts");
            }
        }
        assert!(known.current.ids.len() + known.previous.ids.len() <= 20, "memory is bounded");
        assert!(!may_be_stored(&known, "t-new", 1_000), "a new id past every event time");
    }
}
