//! Which proxy port stands for which upstream broker. A port is given once per node id
//! and never changes while the process runs: pinned in the config, or `base + node id`.

use std::collections::{HashMap, HashSet};

/// Upper bound on brokers one proxy serves: a broker answer naming more is not trusted.
pub const MAX_BROKERS: usize = 4096;

#[derive(Debug, Clone)]
pub struct BrokerMap {
    base: u16,
    pinned: HashMap<i32, u16>,
    upstreams: HashMap<i32, (String, u16)>,
    /// Nodes whose listener is bound: only their ports are advertised.
    bound: HashSet<i32>,
}

/// What registering a broker found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// Seen before: its listener was opened (or is being retried).
    Known(u16),
    /// First sight: a listener must open on this port.
    New(u16),
    /// No port can stand for it (beyond the port range or the broker bound).
    Refused,
}

impl BrokerMap {
    pub fn new(base: u16, pinned: HashMap<i32, u16>) -> Self {
        BrokerMap {
            base,
            pinned,
            upstreams: HashMap::new(),
            bound: HashSet::new(),
        }
    }

    pub fn port_for(&self, node: i32) -> Option<u16> {
        if let Some(p) = self.pinned.get(&node) {
            return Some(*p);
        }
        u16::try_from(node).ok().and_then(|n| self.base.checked_add(n))
    }

    /// Records where broker `node` lives upstream; a moved broker keeps its port.
    pub fn register(&mut self, node: i32, upstream: String) -> Registered {
        if let Some((addr, port)) = self.upstreams.get_mut(&node) {
            *addr = upstream;
            return Registered::Known(*port);
        }
        let Some(port) = self.port_for(node) else {
            return Registered::Refused;
        };
        if self.upstreams.len() >= MAX_BROKERS {
            return Registered::Refused;
        }
        self.upstreams.insert(node, (upstream, port));
        Registered::New(port)
    }

    pub fn set_bound(&mut self, node: i32) {
        self.bound.insert(node);
    }

    pub fn is_bound(&self, node: i32) -> bool {
        self.bound.contains(&node)
    }

    pub fn upstream(&self, node: i32) -> Option<&str> {
        self.upstreams.get(&node).map(|(a, _)| a.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stable_pinned_or_offset_and_bounded() {
        let mut m = BrokerMap::new(19093, HashMap::from([(7, 30000)]));
        assert_eq!(m.register(1, "k1:9092".into()), Registered::New(19094));
        assert_eq!(m.register(1, "k1-moved:9092".into()), Registered::Known(19094));
        assert_eq!(m.upstream(1), Some("k1-moved:9092"));
        assert_eq!(m.register(7, "k7:9092".into()), Registered::New(30000));
        assert_eq!(m.register(60000, "far:9092".into()), Registered::Refused);
        assert_eq!(m.register(-1, "neg:9092".into()), Registered::Refused);
    }
}
