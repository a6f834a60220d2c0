//! Latency samples and their percentiles (nearest rank), for one second or a whole run.

use std::time::Duration;

/// At most this many samples are kept per run (a day at 100 records a second); later
/// ones still count in `count` and `max`.
const MAX_SAMPLES: usize = 10_000_000;

#[derive(Debug, Default, Clone)]
pub struct Latencies {
    micros: Vec<u64>,
    count: u64,
    max: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latencies {
    pub fn add(&mut self, micros: u64) {
        self.count += 1;
        self.max = self.max.max(micros);
        if self.micros.len() < MAX_SAMPLES {
            self.micros.push(micros);
        }
    }

    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.micros.is_empty() {
            return None;
        }
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        let rank = |p: f64| {
            let at = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            Duration::from_micros(sorted[at - 1])
        };
        Some(Percentiles {
            count: self.count,
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: Duration::from_micros(self.max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut l = Latencies::default();
        assert_eq!(l.percentiles(), None);
        for v in (1..=100).rev() {
            l.add(v * 1000);
        }
        let p = l.percentiles().unwrap();
        assert_eq!(p.count, 100);
        assert_eq!(p.p50, Duration::from_millis(50));
        assert_eq!(p.p90, Duration::from_millis(90));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.max, Duration::from_millis(100));
        let mut one = Latencies::default();
        one.add(5);
        assert_eq!(one.percentiles().unwrap().p99, Duration::from_micros(5));
    }
}
