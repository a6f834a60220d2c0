//! LeaveGroup, versions 1 to 4 (flexible from 4): whether the members asked to leave
//! are gone. From version 3 one request can remove several members, named by member id
//! or group.instance.id, so the answer carries an error for each of them as well as one
//! for the whole request; a static member is only removed through those. Version 5
//! changes only the request.

use kafka_protocol::messages::LeaveGroupRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error_code: i16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupResponse {
    pub error_code: i16,
    /// Empty before v3, where the request names one member and `error_code` answers for it.
    pub members: Vec<LeftMember>,
}

impl Decode for LeaveGroupResponse {
    const API: &'static str = "LeaveGroup";
    const WHAT: &'static str = "LeaveGroup response";
    const VERSIONS: (i16, i16) = (1, 4);
    const FIRST_FLEXIBLE: i16 = 4;

    fn read(b: &mut Body<'_>, version: i16) -> Result<Self, WireError> {
        let _throttle_time_ms = b.i32()?;
        let error_code = b.i16()?;
        let mut members = Vec::new();
        if version >= 3 {
            let count = b.array_len(2 * b.min_string() + 2 + b.min_tags())?;
            for _ in 0..count {
                let member_id = b.string()?.unwrap_or_default();
                let group_instance_id = b.string()?;
                let error_code = b.i16()?;
                b.tagged_fields()?;
                members.push(LeftMember {
                    member_id,
                    group_instance_id,
                    error_code,
                });
            }
        }
        Ok(LeaveGroupResponse { error_code, members })
    }
}

impl Answered for LeaveGroupRequest {
    type Answer = LeaveGroupResponse;
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::leave_group_response::MemberResponse;

    use super::super::testing::*;
    use super::*;

    fn sample(version: i16) -> kafka_protocol::messages::LeaveGroupResponse {
        let members = if version >= 3 {
            vec![
                MemberResponse::default()
                    .with_member_id(s("strait-1"))
                    .with_group_instance_id(Some(s("replica-a")))
                    .with_error_code(0),
                MemberResponse::default()
                    .with_member_id(s(""))
                    .with_group_instance_id(Some(s("replica-b")))
                    .with_error_code(82),
                MemberResponse::default()
                    .with_member_id(s("strait-3"))
                    .with_group_instance_id(None)
                    .with_error_code(25),
            ]
        } else {
            Vec::new()
        };
        let mut sample = kafka_protocol::messages::LeaveGroupResponse::default()
            .with_throttle_time_ms(6)
            .with_error_code(if version >= 3 { 0 } else { 25 })
            .with_members(members);
        if version >= 4 {
            sample = sample.with_unknown_tagged_field(2, Bytes::from_static(b"later"));
        }
        sample
    }

    #[test]
    fn every_version_reads_the_request_error_and_each_members() {
        for version in 1..=4 {
            let r: LeaveGroupResponse = decode_all(&encode(&sample(version), version), version);
            if version < 3 {
                assert_eq!(
                    r,
                    LeaveGroupResponse {
                        error_code: 25,
                        members: vec![]
                    },
                    "v{version}"
                );
                continue;
            }
            let left = |id: &str, instance: Option<&str>, error_code| LeftMember {
                member_id: id.into(),
                group_instance_id: instance.map(Into::into),
                error_code,
            };
            assert_eq!(
                r,
                LeaveGroupResponse {
                    error_code: 0,
                    members: vec![
                        left("strait-1", Some("replica-a"), 0),
                        left("", Some("replica-b"), 82),
                        left("strait-3", None, 25),
                    ]
                },
                "v{version}"
            );
        }
    }

    #[test]
    fn versions_outside_the_range_are_refused() {
        for version in [0, 5] {
            assert!(matches!(
                refused::<LeaveGroupResponse>(&[0; 16], version),
                WireError::UnsupportedVersion { .. }
            ));
        }
    }

    #[test]
    fn huge_counts_are_refused() {
        // v1 and v2 have no array to count: a short body is simply truncated.
        for version in 1..=2 {
            assert!(matches!(
                refused::<LeaveGroupResponse>(&[0; 5], version),
                WireError::Truncated { .. }
            ));
        }
        let body = [0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 1, 2, 3, 4, 5];
        assert!(matches!(
            refused::<LeaveGroupResponse>(&body, 3),
            WireError::Truncated { .. }
        ));
        let body = [0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 1, 2, 3, 4, 5];
        assert!(matches!(
            refused::<LeaveGroupResponse>(&body, 4),
            WireError::Truncated { .. }
        ));
    }

    #[test]
    fn hostile_member_lengths_are_refused() {
        // v3: one member whose id has length -2.
        let negative = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xfe, 0, 0, 0, 0];
        assert!(matches!(
            refused::<LeaveGroupResponse>(&negative, 3),
            WireError::Malformed { .. }
        ));
        // v4: one member whose instance id has a compact length of u32::MAX - 1.
        let huge = [0, 0, 0, 0, 0, 0, 2, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0];
        assert!(matches!(
            refused::<LeaveGroupResponse>(&huge, 4),
            WireError::Truncated { .. }
        ));
    }
}
