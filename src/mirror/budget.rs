//! The flow's memory bound: every source byte between the fetch that asked for it and the
//! target's acknowledgement is counted here, whether a fetch may still bring it, it waits
//! behind its partition's forward, or it is being forwarded. Fetches are sized to what
//! is left, so the bound holds at any distance and whatever the batch sizes.

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

    pub fn take(&self, bytes: u64) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
        self.gauge.inc_by(bytes as i64);
    }

    pub fn give_back(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
        self.gauge.dec_by(bytes as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_taken_is_counted_until_given_back() {
        let gauge = Gauge::default();
        let budget = Budget::new(100, gauge.clone());
        budget.take(60);
        assert_eq!((budget.used(), budget.left(), gauge.get()), (60, 40, 60));
        budget.take(50);
        assert_eq!(budget.left(), 0, "over the bound nothing is left");
        budget.give_back(110);
        assert_eq!((budget.used(), gauge.get()), (0, 0));
    }
}
