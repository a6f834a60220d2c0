//! What strait's members tell each other through the coordinator: each member's
//! settings and the partitions it owns (in its JoinGroup metadata), and each member's
//! partitions or why it was refused (in the leader's SyncGroup assignment). Both are
//! short lines of text, so a coordinator's dump or a packet capture reads plainly.
//! Lines of kinds a reader does not know are skipped, so a later version can add some.

use std::collections::{BTreeMap, BTreeSet};

use crate::mirror::in_flight::Key;

const MEMBER_HEADER: &str = "strait member 1";
const ASSIGNMENT_HEADER: &str = "strait assignment 1";

/// What one member said when it joined.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberData {
    /// The flow settings that must agree across members, by name.
    pub settings: BTreeMap<String, String>,
    pub owned: BTreeSet<Key>,
    /// Bytes per second the member copies of each partition it owns, as it measured.
    pub rates: BTreeMap<Key, u64>,
}

/// What the leader gave one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    Partitions(BTreeSet<Key>),
    /// The member's settings differ from the leader's: it must not copy anything.
    Refused(String),
}

pub fn encode_member(data: &MemberData) -> Vec<u8> {
    let mut out = String::from(MEMBER_HEADER);
    for (name, value) in &data.settings {
        out.push_str(&format!("\nsetting\t{}\t{}", escape(name), escape(value)));
    }
    push_partitions(&mut out, "owned", &data.owned);
    let mut by_topic: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((topic, partition), rate) in &data.rates {
        by_topic.entry(topic).or_default().push(format!("{partition}={rate}"));
    }
    for (topic, rates) in by_topic {
        out.push_str(&format!("\nrate\t{}\t{}", escape(topic), rates.join(",")));
    }
    out.into_bytes()
}

pub fn decode_member(bytes: &[u8]) -> Result<MemberData, String> {
    let mut data = MemberData::default();
    for fields in lines(bytes, MEMBER_HEADER)? {
        match fields.as_slice() {
            ["setting", name, value] => {
                data.settings.insert(unescape(name), unescape(value));
            }
            ["owned", topic, partitions] => add_partitions(&mut data.owned, topic, partitions)?,
            ["rate", topic, rates] => add_rates(&mut data.rates, topic, rates)?,
            _ => {}
        }
    }
    Ok(data)
}

pub fn encode_assignment(assignment: &Assignment) -> Vec<u8> {
    let mut out = String::from(ASSIGNMENT_HEADER);
    match assignment {
        Assignment::Partitions(keys) => push_partitions(&mut out, "topic", keys),
        Assignment::Refused(why) => out.push_str(&format!("\nrefused\t{}", escape(why))),
    }
    out.into_bytes()
}

pub fn decode_assignment(bytes: &[u8]) -> Result<Assignment, String> {
    let mut keys = BTreeSet::new();
    for fields in lines(bytes, ASSIGNMENT_HEADER)? {
        match fields.as_slice() {
            ["refused", why] => return Ok(Assignment::Refused(unescape(why))),
            ["topic", topic, partitions] => add_partitions(&mut keys, topic, partitions)?,
            _ => {}
        }
    }
    Ok(Assignment::Partitions(keys))
}

/// One line per topic: its name, then its partitions separated by commas.
fn push_partitions(out: &mut String, kind: &str, keys: &BTreeSet<Key>) {
    let mut by_topic: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (topic, partition) in keys {
        by_topic.entry(topic).or_default().push(partition.to_string());
    }
    for (topic, partitions) in by_topic {
        out.push_str(&format!("\n{kind}\t{}\t{}", escape(topic), partitions.join(",")));
    }
}

fn add_partitions(keys: &mut BTreeSet<Key>, topic: &str, partitions: &str) -> Result<(), String> {
    let topic = unescape(topic);
    for p in partitions.split(',').filter(|p| !p.is_empty()) {
        let partition: i32 = p.parse().map_err(|_| format!("bad partition {p:?} of {topic}"))?;
        if partition < 0 {
            return Err(format!("bad partition {partition} of {topic}"));
        }
        keys.insert((topic.clone(), partition));
    }
    Ok(())
}

fn add_rates(rates: &mut BTreeMap<Key, u64>, topic: &str, list: &str) -> Result<(), String> {
    let topic = unescape(topic);
    for pair in list.split(',').filter(|p| !p.is_empty()) {
        let parsed = pair
            .split_once('=')
            .and_then(|(p, r)| Some((p.parse::<i32>().ok()?, r.parse::<u64>().ok()?)));
        match parsed {
            Some((partition, rate)) if partition >= 0 => rates.insert((topic.clone(), partition), rate),
            _ => return Err(format!("bad rate {pair:?} of {topic}")),
        };
    }
    Ok(())
}

/// The tab-separated fields of each line after the header, which must be `header`.
fn lines<'a>(bytes: &'a [u8], header: &str) -> Result<Vec<Vec<&'a str>>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let mut lines = text.split('\n');
    match lines.next() {
        Some(first) if first == header => {}
        _ => return Err(format!("not a strait message (expected {header:?})")),
    }
    Ok(lines.map(|line| line.split('\t').collect()).collect())
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[(&str, i32)]) -> BTreeSet<Key> {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn member_data_survives_the_trip_with_awkward_settings() {
        let data = MemberData {
            settings: [
                ("topics".to_owned(), "a\\.b\t.*\nx".to_owned()),
                ("rename".to_owned(), "{source}.{topic}".to_owned()),
            ]
            .into(),
            owned: keys(&[("a", 0), ("a", 7), ("b.c", 2)]),
            rates: [(("a".to_owned(), 0), 1_500_000), (("b.c".to_owned(), 2), 0)].into(),
        };
        assert_eq!(decode_member(&encode_member(&data)), Ok(data));
    }

    #[test]
    fn assignments_survive_the_trip_and_unknown_lines_are_skipped() {
        let a = Assignment::Partitions(keys(&[("t", 1), ("t", 2), ("u", 0)]));
        assert_eq!(decode_assignment(&encode_assignment(&a)), Ok(a));
        let r = Assignment::Refused("compression: zstd here, none on the leader".into());
        assert_eq!(decode_assignment(&encode_assignment(&r)), Ok(r));
        let later = b"strait assignment 1\nweight\tt\t9\ntopic\tt\t3";
        assert_eq!(decode_assignment(later), Ok(Assignment::Partitions(keys(&[("t", 3)]))));
    }

    #[test]
    fn foreign_or_broken_bytes_are_errors() {
        assert!(decode_member(b"").is_err());
        assert!(decode_member(&[0xff, 0xfe]).is_err());
        assert!(decode_member(b"\x00\x01consumer").is_err());
        assert!(decode_assignment(b"strait assignment 1\ntopic\tt\t1,x").is_err());
        assert!(decode_assignment(b"strait assignment 1\ntopic\tt\t-4").is_err());
        assert!(decode_member(b"strait member 1\nrate\tt\t1=x").is_err());
        assert!(decode_member(b"strait member 1\nrate\tt\t-1=5").is_err());
        assert_eq!(
            decode_assignment(b"strait assignment 1"),
            Ok(Assignment::Partitions(BTreeSet::new()))
        );
    }
}
