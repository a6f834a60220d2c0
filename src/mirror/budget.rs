//! The flow's memory bound: every source byte between the fetch that asked for it and the
//! target's acknowledgement is counted here, whether a fetch may still bring it, it waits
//! behind its partition's forward, or it is being forwarded. Fetches are sized to what
//! is left, so the bound holds at any distance and whatever the batch sizes.
//!
//! Forwarded batches are slices of the fetch answer they came in, which stays in memory
//! until its last batch is acknowledged; so an answer is counted whole, by a `Charge`
//! that every part of it carries and that gives its bytes back when the last is dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;

/// Shared by the flow's parts; each gives back what it took, also when dropped.
#[derive(Clone)]
pub struct Budget {
    used: Arc<AtomicU64>,
    limit: u64,
    /// The flow's in-flight bytes metric, kept equal to `used`.
    gauge: Gauge,
}

impl Budget {
    pub fn new(limit: u64, gauge: Gauge) -> Budget {
        Budget {
            used: Arc::new(AtomicU64::new(0)),
            limit,
            gauge,
        }
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// What is left under the bound.
    pub fn left(&self) -> u64 {
        self.limit.saturating_sub(self.used())
    }

    /// Holds `bytes` for a fetch that may bring that much: counted against the bound,
    /// not shown as held, since nothing arrived yet.
    pub fn reserve(&self, bytes: u64) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn unreserve(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    fn take(&self, bytes: u64) {
        self.reserve(bytes);
        self.gauge.inc_by(bytes as i64);
    }

    fn give_back(&self, bytes: u64) {
        self.unreserve(bytes);
        self.gauge.dec_by(bytes as i64);
    }
}

/// One fetch answer's bytes, held in the budget while any of its batches is queued or
/// being forwarded.
pub struct Charge {
    budget: Budget,
    bytes: u64,
}

impl Charge {
    /// Takes `bytes` from `budget` until the charge is dropped.
    pub fn new(budget: &Budget, bytes: u64) -> Arc<Charge> {
        budget.take(bytes);
        Arc::new(Charge {
            budget: budget.clone(),
            bytes,
        })
    }
}

impl Charge {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_count_against_the_bound_and_charges_show_as_held() {
        let gauge = Gauge::default();
        let budget = Budget::new(100, gauge.clone());
        budget.reserve(60);
        assert_eq!((budget.used(), budget.left(), gauge.get()), (60, 40, 0));
        let charge = Charge::new(&budget, 50);
        assert_eq!((budget.left(), gauge.get()), (0, 50), "over the bound nothing is left");
        budget.unreserve(60);
        drop(charge);
        assert_eq!((budget.used(), gauge.get()), (0, 0));
    }

    #[test]
    fn a_charge_lasts_as_long_as_its_last_holder() {
        let budget = Budget::new(100, Gauge::default());
        let charge = Charge::new(&budget, 30);
        let held = [charge.clone(), charge.clone()];
        drop(charge);
        assert_eq!(budget.used(), 30);
        drop(held);
        assert_eq!(budget.used(), 0);
    }
}
