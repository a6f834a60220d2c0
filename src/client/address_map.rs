//! Where to dial a broker that advertises an address strait cannot reach: brokers behind
//! a load balancer or inside Kubernetes advertise internal names, and the map replaces
//! each advertised `host:port` with a reachable one. Unmapped addresses are dialled as
//! advertised.

use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressMap {
    map: HashMap<String, String>,
}

impl AddressMap {
    pub fn new(map: HashMap<String, String>) -> Self {
        AddressMap { map }
    }

    pub fn resolve<'a>(&'a self, advertised: &'a str) -> &'a str {
        self.map.get(advertised).map_or(advertised, String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_known_and_passes_unknown() {
        let m = AddressMap::new(HashMap::from([("kafka-0.svc:9092".into(), "lb.example:19092".into())]));
        assert_eq!(m.resolve("kafka-0.svc:9092"), "lb.example:19092");
        assert_eq!(m.resolve("other:9092"), "other:9092");
    }
}
