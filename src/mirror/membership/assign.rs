//! The leader's assignment: every source partition to one member, balanced by count
//! (no member more than one partition above another) and, within that, by the bytes
//! per second the members measured (a partition that moves goes to the least loaded
//! member with room, the busiest partitions first), sticky (a member keeps what it
//! owns unless the balance needs it elsewhere; one above its share gives up its
//! quietest partitions, the cheapest to move), and cooperative: a partition that must
//! move from one live member to another is first only taken from its owner. The owner
//! commits its progress and releases it, joins again, and the next rebalance gives it
//! to its new owner; so no partition is ever worked on by two members at once, and the
//! partitions that do not move never stop.

use std::collections::{BTreeMap, BTreeSet};

use crate::mirror::in_flight::Key;

/// What the leader decided: each member's partitions, and how many partitions wait for
/// their owner's release before they can move.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub assigned: BTreeMap<String, BTreeSet<Key>>,
    pub withheld: usize,
}

/// `owned` is what each member said it owns when it joined, `rates` the bytes per
/// second they measured (partitions without one count as 0); `partitions` every source
/// partition the flow copies. Members are taken in id order, so every leader decides
/// alike on the same input.
pub fn assign(owned: &BTreeMap<String, BTreeSet<Key>>, rates: &BTreeMap<Key, u64>, partitions: &BTreeSet<Key>) -> Plan {
    if owned.is_empty() {
        return Plan::default();
    }
    let current = current_owners(owned, partitions);
    let mut keep: BTreeMap<&str, BTreeSet<Key>> = owned.keys().map(|m| (m.as_str(), BTreeSet::new())).collect();
    for (key, member) in &current {
        keep.get_mut(member).expect("owners are members").insert(key.clone());
    }
    let quotas = quotas(&keep, partitions.len());
    let mut pool: Vec<Key> = partitions
        .iter()
        .filter(|k| !current.contains_key(*k))
        .cloned()
        .collect();
    let rate = |k: &Key| rates.get(k).copied().unwrap_or(0);
    for (member, keys) in keep.iter_mut() {
        while keys.len() > quotas[member] {
            let quietest = keys
                .iter()
                .min_by_key(|k| (rate(k), std::cmp::Reverse(*k)))
                .cloned()
                .expect("above a quota, so not empty");
            keys.remove(&quietest);
            pool.push(quietest);
        }
    }
    pool.sort_by(|a, b| rate(b).cmp(&rate(a)).then_with(|| a.cmp(b)));
    let mut load: BTreeMap<&str, u64> = keep.iter().map(|(m, keys)| (*m, keys.iter().map(rate).sum())).collect();
    for key in pool {
        let member = *quotas
            .iter()
            .filter(|(m, quota)| keep[**m].len() < **quota)
            .map(|(m, _)| m)
            .min_by_key(|m| (load[**m], keep[**m].len(), **m))
            .expect("the quotas add up to the partitions");
        *load.get_mut(member).expect("a member") += rate(&key);
        keep.get_mut(member).expect("a member").insert(key);
    }
    let mut plan = Plan::default();
    for (member, keys) in keep {
        let mine: BTreeSet<Key> = keys
            .into_iter()
            .filter(|k| match current.get(k) {
                Some(owner) if *owner != member => {
                    plan.withheld += 1;
                    false
                }
                _ => true,
            })
            .collect();
        plan.assigned.insert(member.to_owned(), mine);
    }
    plan
}

/// Each partition's one owner: a partition two members claim (one of them has not
/// noticed it lost it yet) goes to the first of them.
fn current_owners<'a>(
    owned: &'a BTreeMap<String, BTreeSet<Key>>,
    partitions: &BTreeSet<Key>,
) -> BTreeMap<Key, &'a str> {
    let mut current = BTreeMap::new();
    for (member, keys) in owned {
        for key in keys.iter().filter(|k| partitions.contains(*k)) {
            current.entry(key.clone()).or_insert(member.as_str());
        }
    }
    current
}

/// Every member gets `n / m` partitions and `n % m` of them one more: those that own
/// the most already, so the fewest partitions move.
fn quotas<'a>(keep: &BTreeMap<&'a str, BTreeSet<Key>>, n: usize) -> BTreeMap<&'a str, usize> {
    let m = keep.len();
    let mut order: Vec<&str> = keep.keys().copied().collect();
    order.sort_by_key(|member| (std::cmp::Reverse(keep[member].len()), *member));
    order
        .into_iter()
        .enumerate()
        .map(|(i, member)| (member, n / m + usize::from(i < n % m)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn universe(n: i32) -> BTreeSet<Key> {
        (0..n).map(|p| ("t".to_owned(), p)).collect()
    }

    fn members(list: &[(&str, &[i32])]) -> BTreeMap<String, BTreeSet<Key>> {
        list.iter()
            .map(|(m, ps)| (m.to_string(), ps.iter().map(|p| ("t".to_owned(), *p)).collect()))
            .collect()
    }

    fn assign_counts(owned: &BTreeMap<String, BTreeSet<Key>>, partitions: &BTreeSet<Key>) -> Plan {
        assign(owned, &BTreeMap::new(), partitions)
    }

    fn sizes(plan: &Plan) -> Vec<usize> {
        plan.assigned.values().map(BTreeSet::len).collect()
    }

    #[test]
    fn a_fresh_group_is_balanced_and_covers_everything_once() {
        let plan = assign_counts(&members(&[("a", &[]), ("b", &[]), ("c", &[])]), &universe(64));
        assert_eq!(sizes(&plan), vec![22, 21, 21]);
        let all: BTreeSet<Key> = plan.assigned.values().flatten().cloned().collect();
        assert_eq!(all, universe(64));
        assert_eq!(plan.withheld, 0);
    }

    #[test]
    fn a_new_member_gets_partitions_only_after_their_owners_release_them() {
        let all: Vec<i32> = (0..64).collect();
        let (left, right) = all.split_at(32);
        let first = assign_counts(&members(&[("a", left), ("b", right), ("c", &[])]), &universe(64));
        // a and b keep 21 or 22 each; the 21 they give up are withheld, not yet c's.
        assert_eq!(first.assigned["c"].len(), 0);
        assert_eq!(
            first.withheld,
            64 - first.assigned["a"].len() - first.assigned["b"].len()
        );
        assert!(first.assigned["a"].iter().all(|k| k.1 < 32), "sticky");
        // After a and b released them, c gets exactly those.
        let a: Vec<i32> = first.assigned["a"].iter().map(|k| k.1).collect();
        let b: Vec<i32> = first.assigned["b"].iter().map(|k| k.1).collect();
        let second = assign_counts(&members(&[("a", &a), ("b", &b), ("c", &[])]), &universe(64));
        assert_eq!(second.withheld, 0);
        assert_eq!(second.assigned["a"], first.assigned["a"]);
        assert_eq!(second.assigned["b"], first.assigned["b"]);
        let mut sorted = sizes(&second);
        sorted.sort();
        assert_eq!(sorted, vec![21, 21, 22]);
    }

    #[test]
    fn a_dead_members_partitions_go_at_once_and_nothing_else_moves() {
        let all: Vec<i32> = (0..9).collect();
        let plan = assign_counts(&members(&[("a", &all[0..3]), ("b", &all[3..6])]), &universe(9));
        assert_eq!(plan.withheld, 0);
        assert!(plan.assigned["a"].is_superset(&members(&[("x", &all[0..3])])["x"]));
        assert!(plan.assigned["b"].is_superset(&members(&[("x", &all[3..6])])["x"]));
        let mut sorted = sizes(&plan);
        sorted.sort();
        assert_eq!(sorted, vec![4, 5]);
    }

    #[test]
    fn double_claims_and_vanished_partitions_are_settled() {
        let plan = assign_counts(&members(&[("a", &[0, 1, 9]), ("b", &[1, 2])]), &universe(4));
        let all: Vec<Key> = plan.assigned.values().flatten().cloned().collect();
        let unique: BTreeSet<Key> = all.iter().cloned().collect();
        assert_eq!(all.len(), unique.len(), "no partition given twice");
        assert!(unique.is_subset(&universe(4)));
        assert!(
            plan.assigned["a"].contains(&("t".to_owned(), 1)),
            "the first claim wins"
        );
    }

    #[test]
    fn measured_rates_spread_the_load_within_the_count_balance() {
        // Four busy partitions among eight: a fresh pair of members gets two each.
        let rates: BTreeMap<Key, u64> = (0..4).map(|p| (("t".to_owned(), p), 1_000_000)).collect();
        let plan = assign(&members(&[("a", &[]), ("b", &[])]), &rates, &universe(8));
        for keys in plan.assigned.values() {
            assert_eq!(keys.len(), 4);
            assert_eq!(keys.iter().filter(|k| k.1 < 4).count(), 2, "{keys:?}");
        }
        // A member above its share gives up its quietest partitions.
        let all: Vec<i32> = (0..8).collect();
        let plan = assign(&members(&[("a", &all), ("b", &[])]), &rates, &universe(8));
        assert_eq!(plan.withheld, 4);
        assert!(
            plan.assigned["a"].iter().all(|k| k.1 < 4),
            "kept the busy ones: {:?}",
            plan.assigned["a"]
        );
    }

    #[test]
    fn no_members_or_no_partitions() {
        assert_eq!(assign_counts(&BTreeMap::new(), &universe(3)), Plan::default());
        let plan = assign_counts(&members(&[("a", &[])]), &BTreeSet::new());
        assert_eq!(plan.assigned["a"].len(), 0);
    }
}
