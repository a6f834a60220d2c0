//! The value of a probe record: which run sent it, its number, and when, so a reader
//! can tell its own records from anything else on the topic.

use std::time::{SystemTime, UNIX_EPOCH};

const PREFIX: &str = "strait-probe";

pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

pub fn encode(run: u64, seq: u64, sent_micros: u64) -> Vec<u8> {
    format!("{PREFIX} {run} {seq} {sent_micros}").into_bytes()
}

/// The sequence number and send time of a record of run `run`; `None` for any other.
pub fn decode(value: &[u8], run: u64) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut words = text.split(' ');
    if words.next()? != PREFIX || words.next()?.parse::<u64>().ok()? != run {
        return None;
    }
    let seq = words.next()?.parse().ok()?;
    let sent = words.next()?.parse().ok()?;
    words.next().is_none().then_some((seq, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_run_and_nothing_else() {
        let value = encode(42, 7, 1_000_000);
        assert_eq!(decode(&value, 42), Some((7, 1_000_000)));
        assert_eq!(decode(&value, 43), None);
        assert_eq!(decode(b"strait-probe 42 7", 42), None);
        assert_eq!(decode(b"strait-probe 42 7 1 extra", 42), None);
        assert_eq!(decode(b"hello", 42), None);
        assert_eq!(decode(&[0xff, 0xfe], 42), None);
    }
}
