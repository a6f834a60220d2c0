//! A failure switch for the tests of panic containment, which run the release binary:
//! with `STRAIT_TEST_PANIC=PLACE:N` in the environment, the process's Nth pass through
//! PLACE panics (`forward`: a flow's forward; `connection`: a proxy's client
//! connection). Read once; without the variable it costs one comparison.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Whether this pass through `place` is the one to panic.
pub fn reached(place: &str) -> bool {
    static SWITCH: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static PASSES: AtomicU64 = AtomicU64::new(0);
    let switch = SWITCH.get_or_init(|| {
        let value = std::env::var("STRAIT_TEST_PANIC").ok()?;
        let (place, n) = value.split_once(':')?;
        Some((place.to_owned(), n.parse().ok()?))
    });
    match switch {
        Some((at, n)) if at == place => PASSES.fetch_add(1, Ordering::Relaxed) + 1 == *n,
        _ => false,
    }
}
