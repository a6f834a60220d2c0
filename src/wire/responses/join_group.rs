//! JoinGroup, versions 2 to 7 (flexible from 6): the generation a member joined under,
//! and, for the leader alone, every member's subscription, which it must turn into
//! assignments. Version 5 is the first to name each member's group.instance.id, which
//! static membership needs. Version 8 changes only the request, and 9 can tell a
//! rejoining leader not to assign at all; dropping that flag would have the leader assign
//! anyway, so 9 is left unread until a caller can honour it.

use kafka_protocol::messages::JoinGroupRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupMember {
    pub member_id: String,
    /// Always `None` before v5.
    pub group_instance_id: Option<String>,
    /// The member's subscription, opaque to the coordinator; null reads as empty.
    pub metadata: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupResponse {
    pub error_code: i16,
    pub generation_id: i32,
    /// Null from v7 when the join failed before a protocol was chosen.
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Empty for every member but the leader.
    pub members: Vec<JoinGroupMember>,
}

impl Decode for JoinGroupResponse {
    const API: &'static str = "JoinGroup";
    const WHAT: &'static str = "JoinGroup response";
    const VERSIONS: (i16, i16) = (2, 7);
    const FIRST_FLEXIBLE: i16 = 6;

    fn read(b: &mut Body<'_>, version: i16) -> Result<Self, WireError> {
        let _throttle_time_ms = b.i32()?;
        let error_code = b.i16()?;
        let generation_id = b.i32()?;
        if version >= 7 {
            b.skip_string()?; // protocol type
        }
        let protocol_name = b.string()?;
        let leader = b.string()?.unwrap_or_default();
        let member_id = b.string()?.unwrap_or_default();
        let strings = if version >= 5 { 2 } else { 1 };
        let count = b.array_len(strings * b.min_string() + b.min_bytes() + b.min_tags())?;
        let mut members = Vec::new();
        for _ in 0..count {
            members.push(read_member(b, version)?);
        }
        Ok(JoinGroupResponse {
            error_code,
            generation_id,
            protocol_name,
            leader,
            member_id,
            members,
        })
    }
}

fn read_member(b: &mut Body<'_>, version: i16) -> Result<JoinGroupMember, WireError> {
    let member_id = b.string()?.unwrap_or_default();
    let group_instance_id = if version >= 5 { b.string()? } else { None };
    let metadata = b.bytes()?;
    b.tagged_fields()?;
    Ok(JoinGroupMember {
        member_id,
        group_instance_id,
        metadata,
    })
}

impl Answered for JoinGroupRequest {
    type Answer = JoinGroupResponse;
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;

    use super::super::testing::*;
    use super::*;

    const METADATA: &[u8] = b"\x00\x03\x00\x00\x00\x01\x00\x06orders\xff\xff\xff\xff";

    fn sample(version: i16) -> kafka_protocol::messages::JoinGroupResponse {
        let members = [("strait-1", "replica-a"), ("strait-2", "replica-b")]
            .iter()
            .map(|(id, instance)| {
                JoinGroupResponseMember::default()
                    .with_member_id(s(id))
                    .with_group_instance_id((version >= 5).then(|| s(instance)))
                    .with_metadata(Bytes::from_static(METADATA))
            })
            .collect();
        let mut sample = kafka_protocol::messages::JoinGroupResponse::default()
            .with_throttle_time_ms(30)
            .with_error_code(0)
            .with_generation_id(17)
            .with_protocol_type((version >= 7).then(|| s("consumer")))
            .with_protocol_name(Some(s("range")))
            .with_leader(s("strait-1"))
            .with_member_id(s("strait-2"))
            .with_members(members);
        if version >= 6 {
            sample = sample.with_unknown_tagged_field(5, Bytes::from_static(b"later"));
        }
        sample
    }

    fn expected(version: i16) -> JoinGroupResponse {
        let member = |id: &str, instance: &str| JoinGroupMember {
            member_id: id.into(),
            group_instance_id: (version >= 5).then(|| instance.into()),
            metadata: METADATA.to_vec(),
        };
        JoinGroupResponse {
            error_code: 0,
            generation_id: 17,
            protocol_name: Some("range".into()),
            leader: "strait-1".into(),
            member_id: "strait-2".into(),
            members: vec![member("strait-1", "replica-a"), member("strait-2", "replica-b")],
        }
    }

    #[test]
    fn every_version_reads_the_generation_and_each_subscription() {
        for version in 2..=7 {
            let r: JoinGroupResponse = decode_all(&encode(&sample(version), version), version);
            assert_eq!(r, expected(version), "v{version}");
        }
    }

    #[test]
    fn a_follower_sees_no_members_and_a_failed_join_no_protocol() {
        let sample = kafka_protocol::messages::JoinGroupResponse::default()
            .with_error_code(79)
            .with_generation_id(-1)
            .with_protocol_type(None)
            .with_protocol_name(None)
            .with_member_id(s("strait-3"));
        let r: JoinGroupResponse = decode_all(&encode(&sample, 7), 7);
        assert_eq!(r.error_code, 79);
        assert_eq!(r.protocol_name, None);
        assert_eq!(r.leader, "");
        assert_eq!(r.member_id, "strait-3");
        assert!(r.members.is_empty());
    }

    #[test]
    fn versions_outside_the_range_are_refused() {
        let body = encode(&sample(7), 7);
        for version in [1, 8, 9] {
            assert!(matches!(
                refused::<JoinGroupResponse>(&body, version),
                WireError::UnsupportedVersion { .. }
            ));
        }
    }

    #[test]
    fn huge_counts_are_refused() {
        // Throttle, error and generation, then the (empty or null) strings before the
        // members: protocol name, leader and member id, and the protocol type from v7.
        assert_huge_counts_refused::<JoinGroupResponse>(|v| {
            let strings = if v >= 7 { 4 } else { 3 };
            let string = if v >= 6 { 1 } else { 2 };
            vec![0; 10 + strings * string]
        });
    }

    #[test]
    fn hostile_metadata_lengths_are_refused() {
        // v5: throttle, error, generation, three empty strings, one member with empty
        // id and instance id, then its metadata length.
        let mut prefix = vec![0; 16];
        prefix.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
        let mut huge = prefix.clone();
        huge.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]);
        assert!(matches!(
            refused::<JoinGroupResponse>(&huge, 5),
            WireError::Truncated { .. }
        ));
        let mut negative = prefix;
        negative.extend_from_slice(&[0xff, 0xff, 0xff, 0xfe, 1, 2, 3]);
        assert!(matches!(
            refused::<JoinGroupResponse>(&negative, 5),
            WireError::Malformed { .. }
        ));
        // v6: the same with compact lengths, and a metadata length of u32::MAX - 1.
        let compact = [
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2,
        ];
        assert!(matches!(
            refused::<JoinGroupResponse>(&compact, 6),
            WireError::Truncated { .. }
        ));
    }
}
