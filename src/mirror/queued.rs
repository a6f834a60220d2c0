//! A partition's decided batches that wait while its previous forward is under way.
//! The partition keeps being fetched meanwhile, so at distance a fetch and a produce
//! overlap; the next forward takes everything queued at once, in source order, which
//! also lets one forward fill the produce pipeline.

use std::sync::Arc;

use super::budget::Charge;
use crate::wire::batch::Batch;

/// What a forward takes: batches in order, the progress after them, and the charges of
/// the fetch answers they came in.
pub struct Taken {
    pub next: i64,
    pub batches: Vec<Batch>,
    pub charges: Vec<Arc<Charge>>,
}

#[derive(Default)]
pub struct Queued {
    batches: Vec<Batch>,
    /// The source offset after what is queued: the progress once it is acknowledged.
    /// Set also when only skipped batches (control, aborted) were decided.
    next: Option<i64>,
    bytes: u64,
    charges: Vec<Arc<Charge>>,
}

impl Queued {
    /// Source bytes of the batches queued.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Bytes of the fetch answers the queue keeps alive.
    pub fn charged(&self) -> u64 {
        self.charges.iter().map(|c| c.bytes()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.next.is_none()
    }

    /// Appends batches decided after those queued, up to `next`, holding the charge of
    /// the answer they came in.
    pub fn push(&mut self, next: i64, batches: Vec<Batch>, charge: &Arc<Charge>) {
        if !batches.is_empty() && !self.charges.last().is_some_and(|c| Arc::ptr_eq(c, charge)) {
            self.charges.push(charge.clone());
        }
        self.bytes += batches.iter().map(|b| b.len() as u64).sum::<u64>();
        self.batches.extend(batches);
        self.next = Some(next);
    }

    /// Everything queued, if anything is.
    pub fn take(&mut self) -> Option<Taken> {
        let next = self.next.take()?;
        self.bytes = 0;
        Some(Taken {
            next,
            batches: std::mem::take(&mut self.batches),
            charges: std::mem::take(&mut self.charges),
        })
    }

    /// Forgets what is queued: it is fetched again.
    pub fn clear(&mut self) {
        drop(self.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::budget::Budget;
    use crate::wire::build::batch_of;
    use prometheus_client::metrics::gauge::Gauge;

    #[test]
    fn queued_batches_hold_their_answers_charges_until_taken_and_dropped() {
        let budget = Budget::new(1 << 20, Gauge::default());
        let (first, second) = (Charge::new(&budget, 100), Charge::new(&budget, 50));
        let mut queued = Queued::default();
        assert!(queued.take().is_none());
        queued.push(1, vec![batch_of(&[b"a"], 0).unwrap()], &first);
        queued.push(2, vec![batch_of(&[b"b"], 0).unwrap()], &first);
        queued.push(3, vec![batch_of(&[b"c"], 0).unwrap()], &second);
        queued.push(5, Vec::new(), &second);
        drop((first, second));
        assert_eq!(budget.used(), 150, "the queue holds both answers");
        assert_eq!(queued.charged(), 150);
        let taken = queued.take().unwrap();
        assert_eq!((taken.next, taken.batches.len(), taken.charges.len()), (5, 3, 2));
        assert_eq!(queued.bytes(), 0);
        drop(taken);
        assert_eq!(budget.used(), 0, "the answers are given back with the last batch");
    }
}
