//! The api versions a broker announced, and the choice of version per request.

use std::collections::HashMap;

use kafka_protocol::messages::ApiKey;

use super::NetError;
use crate::wire::message::api_key_name;

#[derive(Debug, Clone, Default)]
pub struct ApiVersionTable {
    ranges: HashMap<i16, (i16, i16)>,
}

impl ApiVersionTable {
    pub fn new(ranges: impl IntoIterator<Item = (i16, i16, i16)>) -> Self {
        ApiVersionTable {
            ranges: ranges.into_iter().map(|(k, lo, hi)| (k, (lo, hi))).collect(),
        }
    }

    pub fn range(&self, key: ApiKey) -> Option<(i16, i16)> {
        self.ranges.get(&(key as i16)).copied()
    }

    /// The highest version both sides speak within `ours`.
    pub fn pick(&self, broker: &str, key: ApiKey, ours: (i16, i16)) -> Result<i16, NetError> {
        let (lo, hi) = self.range(key).unwrap_or((-1, -1));
        let best = hi.min(ours.1);
        if best < ours.0 || best < lo {
            return Err(NetError::NoCommonVersion {
                broker: broker.to_owned(),
                api: api_key_name(key),
                broker_min: lo,
                broker_max: hi,
                ours_min: ours.0,
                ours_max: ours.1,
            });
        }
        Ok(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_highest_common_version_or_refuses() {
        let t = ApiVersionTable::new([(1, 4, 16), (0, 3, 8)]);
        assert_eq!(t.pick("b", ApiKey::Fetch, (4, 11)).unwrap(), 11);
        assert_eq!(t.pick("b", ApiKey::Produce, (3, 9)).unwrap(), 8);
        assert!(t.pick("b", ApiKey::Metadata, (1, 12)).is_err());
        assert!(t.pick("b", ApiKey::Fetch, (0, 3)).is_err());
    }
}
