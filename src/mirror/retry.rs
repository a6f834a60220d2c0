//! How a flow retries what may succeed later: exponential back-off with jitter, so that
//! many partitions or flows failing together do not retry in step, and log lines about
//! a failure that repeats limited to one per interval, with the count of those left out.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The pause before the next try: the current step, with up to half of it taken off
    /// at random; the step then doubles up to the maximum.
    pub fn pause(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        step - step.mul_f64(jitter() / 2.0)
    }

    /// Back to the first step, after a success.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// A number in [0, 1) that differs between calls and processes.
fn jitter() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Says when a repeating failure should be logged again.
#[derive(Debug)]
pub struct LogThrottle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogThrottle {
    pub fn new(every: Duration) -> LogThrottle {
        LogThrottle {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when this occurrence should be logged, `n` being how many were left out
    /// since the last logged one; `None` to stay quiet.
    pub fn allow(&mut self) -> Option<u64> {
        let due = self.last.map_or(true, |t| t.elapsed() >= self.every);
        if !due {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_maximum_with_jitter_below_each_step() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let steps: Vec<Duration> = (0..6).map(|_| b.pause()).collect();
        let ceilings = [100, 200, 400, 800, 800, 800];
        for (pause, ceiling) in steps.iter().zip(ceilings) {
            let ceiling = Duration::from_millis(ceiling);
            assert!(*pause <= ceiling && *pause >= ceiling / 2, "{pause:?} vs {ceiling:?}");
        }
        b.reset();
        assert!(b.pause() <= Duration::from_millis(100));
    }

    #[test]
    fn a_throttle_logs_once_per_interval_and_counts_the_rest() {
        let mut t = LogThrottle::new(Duration::from_millis(200));
        assert_eq!(t.allow(), Some(0));
        assert_eq!(t.allow(), None);
        assert_eq!(t.allow(), None);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(t.allow(), Some(2));
    }
}
