//! A partition's decided batches that wait while its previous forward is under way.
//! The partition keeps being fetched meanwhile, so at distance a fetch and a produce
//! overlap; the next forward takes everything queued at once, in source order, which
//! also lets one forward fill the produce pipeline.

use super::budget::Budget;
use crate::wire::batch::Batch;

pub struct Queued {
    batches: Vec<Batch>,
    /// The source offset after what is queued: the progress once it is acknowledged.
    /// Set also when only skipped batches (control, aborted) were decided.
    next: Option<i64>,
    bytes: u64,
    budget: Budget,
}

impl Queued {
    pub fn new(budget: Budget) -> Queued {
        Queued {
            batches: Vec::new(),
            next: None,
            bytes: 0,
            budget,
        }
    }

    /// Source bytes queued.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.next.is_none()
    }

    /// Appends batches decided after those queued, up to `next`; their bytes are
    /// counted in the flow's budget until taken.
    pub fn push(&mut self, next: i64, batches: Vec<Batch>) {
        let bytes: u64 = batches.iter().map(|b| b.len() as u64).sum();
        self.budget.take(bytes);
        self.bytes += bytes;
        self.batches.extend(batches);
        self.next = Some(next);
    }

    /// Everything queued and the progress after it; its bytes leave the budget, for
    /// the forward that takes them to count.
    pub fn take(&mut self) -> Option<(i64, Vec<Batch>)> {
        let next = self.next.take()?;
        self.budget.give_back(std::mem::take(&mut self.bytes));
        Some((next, std::mem::take(&mut self.batches)))
    }

    /// Forgets what is queued: it is fetched again.
    pub fn clear(&mut self) {
        drop(self.take());
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::build::batch_of;
    use prometheus_client::metrics::gauge::Gauge;

    #[test]
    fn queued_batches_count_in_the_budget_until_taken_or_dropped() {
        let budget = Budget::new(1 << 20, Gauge::default());
        let mut queued = Queued::new(budget.clone());
        assert!(queued.take().is_none());
        queued.push(1, vec![batch_of(&[b"a"], 0).unwrap()]);
        queued.push(2, vec![batch_of(&[b"b"], 0).unwrap()]);
        queued.push(5, Vec::new());
        assert!(budget.used() > 0 && budget.used() == queued.bytes());
        let (next, batches) = queued.take().unwrap();
        assert_eq!((next, batches.len(), budget.used()), (5, 2, 0));
        queued.push(6, vec![batch_of(&[b"c"], 0).unwrap()]);
        drop(queued);
        assert_eq!(budget.used(), 0, "a dropped queue gives its bytes back");
    }
}
