//! Accepting clients when descriptors run out. `accept` then fails with EMFILE or
//! ENFILE while the client waits in the listen backlog, and a loop that retries at
//! once spins and floods its log. Instead the loop backs off, and a descriptor held in
//! reserve is given up for a moment to accept the waiting clients and close them, so
//! that they learn they were refused rather than wait unanswered. Refusals are counted
//! and logged at a bounded rate.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

/// Waiting clients refused in one round, before the loop backs off.
const REFUSED_PER_ROUND: u64 = 256;
/// At most one refusal line per this long; the others are counted in the next.
const LOG_EVERY: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Whether an accept failed for want of descriptors (the process's or the system's).
pub fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == EMFILE || code == ENFILE)
}

const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// The pause after each round of refusals: 100 ms, doubling up to 1 s, and back to
/// the start once a client is accepted.
pub struct Backoff(Duration);

impl Backoff {
    pub fn new() -> Self {
        Backoff(FIRST_BACKOFF)
    }

    pub fn pause(&mut self) -> Duration {
        let now = self.0;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
        now
    }

    pub fn reset(&mut self) {
        self.0 = FIRST_BACKOFF;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// A descriptor held for the moment there are none: freed, it lets `accept` take a
/// waiting client, to close it.
pub struct Reserve(Option<std::fs::File>);

impl Reserve {
    pub fn new() -> Self {
        Reserve(std::fs::File::open("/dev/null").ok())
    }

    /// Accepts and closes the clients waiting on `listener`; how many.
    pub async fn refuse_waiting(&mut self, listener: &TcpListener) -> u64 {
        let mut refused = 0;
        while refused < REFUSED_PER_ROUND {
            self.0 = None;
            // Zero time: only a client already waiting is taken.
            let taken = tokio::time::timeout(Duration::ZERO, listener.accept()).await;
            let took = matches!(taken, Ok(Ok(_)));
            // Closed before the reserve is taken again, which needs its descriptor.
            drop(taken);
            self.0 = std::fs::File::open("/dev/null").ok();
            if !took {
                break;
            }
            refused += 1;
        }
        refused
    }
}

impl Default for Reserve {
    fn default() -> Self {
        Self::new()
    }
}

/// Refusal log lines, at most one per `LOG_EVERY`, each saying how many refusals went
/// unlogged since the last.
#[derive(Default)]
pub struct RefusalLog {
    state: Mutex<(Option<Instant>, u64)>,
}

impl RefusalLog {
    /// Notes `count` refusals for `why`, logging if the last line is old enough.
    pub fn note(&self, proxy: &str, why: &str, count: u64, peer: Option<SocketAddr>) {
        let suppressed = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let (last, unlogged) = &mut *state;
            if last.is_some_and(|at| at.elapsed() < LOG_EVERY) {
                *unlogged += count;
                return;
            }
            *last = Some(Instant::now());
            std::mem::take(unlogged)
        };
        let peer = peer.map(|p| p.to_string()).unwrap_or_default();
        tracing::warn!(proxy, refused = count, %peer, suppressed, "{why}; refusing (at most one such line per {LOG_EVERY:?}, `suppressed` counts those not logged since the last)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_to_a_second_and_starts_over() {
        let mut b = Backoff::new();
        let waits: Vec<_> = (0..6).map(|_| b.pause().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.pause().as_millis(), 100);
    }

    #[test]
    fn refusals_are_logged_at_most_once_per_period_and_counted_in_between() {
        let log = RefusalLog::default();
        log.note("p", "why", 1, None);
        for _ in 0..1000 {
            log.note("p", "why", 2, None);
        }
        let state = log.state.lock().unwrap();
        assert_eq!(state.1, 2000, "the suppressed ones wait for the next line");
    }

    #[test]
    fn emfile_and_enfile_are_running_out_of_descriptors() {
        assert!(out_of_descriptors(&std::io::Error::from_raw_os_error(24)));
        assert!(out_of_descriptors(&std::io::Error::from_raw_os_error(23)));
        assert!(!out_of_descriptors(&std::io::Error::from_raw_os_error(104)));
    }
}
