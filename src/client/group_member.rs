//! Membership of a group through Kafka's classic group protocol: JoinGroup, SyncGroup,
//! Heartbeat and LeaveGroup with the group's coordinator. What the members' metadata and
//! assignments mean is the caller's business (the protocol type is its own); this file
//! only speaks the protocol.
//!
//! The coordinator holds a JoinGroup until the whole rebalance is done, and a broker
//! answers one request per connection at a time, so a member talks to its coordinator
//! over a connection of its own, with a deadline as long as a rebalance may take.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest};
use kafka_protocol::protocol::StrBytes;

use super::error::{ClientError, KafkaCode};
use super::group_offsets::coordinator_address;
use super::Cluster;
use crate::net::Connection;
use crate::wire::responses::join_group::JoinGroupMember;

// The newest versions before each api turned flexible, which are what Kafka's own
// clients send and carry everything a member needs (static membership included):
// librdkafka's mock cluster advertises the flexible ones but misreads them.
pub(crate) const JOIN_GROUP: (i16, i16) = (2, 5);
pub(crate) const SYNC_GROUP: (i16, i16) = (1, 3);
pub(crate) const HEARTBEAT: (i16, i16) = (1, 3);
/// Versions 3 on leave by instance id, which a static member never does (it keeps its
/// place for a restart); the older ones leave by member id.
pub(crate) const LEAVE_GROUP: (i16, i16) = (1, 2);

/// The first versions that carry a group instance id.
const JOIN_WITH_INSTANCE: i16 = 5;
const SYNC_WITH_INSTANCE: i16 = 3;
const HEARTBEAT_WITH_INSTANCE: i16 = 3;
/// A coordinator's request that a new member join again with the id it hands out
/// (KIP-394).
pub const MEMBER_ID_REQUIRED: i16 = 79;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const FENCED_INSTANCE_ID: i16 = 82;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;

/// How a member joins: its group, protocol and timeouts.
#[derive(Debug, Clone)]
pub struct MemberOptions {
    pub group: String,
    /// A stable id across restarts (static membership): a member that comes back
    /// within the session timeout under the same id takes its place without a
    /// rebalance, and one that joins under an id in use fences the other.
    pub instance_id: Option<String>,
    pub session_timeout: Duration,
    /// How long the coordinator waits for every member to join again in a rebalance.
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocol_name: String,
}

/// Who a member is in one generation of its group: what its commits carry, so that the
/// coordinator refuses those of a member that fell out of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub id: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
}

/// A finished JoinGroup: the generation, and for the leader every member's metadata.
#[derive(Debug)]
pub struct Joined {
    pub generation: Generation,
    pub leader: bool,
    pub members: Vec<JoinGroupMember>,
}

pub struct GroupMember {
    cluster: Arc<Cluster>,
    options: MemberOptions,
    member_id: String,
    conn: Option<Connection>,
}

impl GroupMember {
    pub fn new(cluster: Arc<Cluster>, options: MemberOptions) -> GroupMember {
        GroupMember {
            cluster,
            options,
            member_id: String::new(),
            conn: None,
        }
    }

    pub fn options(&self) -> &MemberOptions {
        &self.options
    }

    /// The coordinator's connection, found and dialled again when there is none or the
    /// last one closed.
    async fn coordinator(&mut self) -> Result<&Connection, ClientError> {
        if self.conn.as_ref().map_or(true, Connection::is_closed) {
            let address = coordinator_address(&self.cluster, &self.options.group).await?;
            let deadline = self.options.rebalance_timeout + Duration::from_secs(10);
            self.conn = Some(self.cluster.dedicated(&address, deadline).await?);
        }
        Ok(self.conn.as_ref().expect("dialled above"))
    }

    /// Checks an answer's error code; an error that says the coordinator moved or went
    /// away drops the connection, so the next call finds the new one.
    fn check(&mut self, api: &'static str, code: i16) -> Result<(), ClientError> {
        if code == 0 {
            return Ok(());
        }
        if matches!(code, NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE) {
            self.conn = None;
        }
        if code == UNKNOWN_MEMBER_ID {
            self.member_id.clear();
        }
        Err(ClientError::Kafka {
            cluster: self.cluster.name().to_owned(),
            api,
            topic: None,
            partition: None,
            code: KafkaCode(code),
            message: None,
        })
    }

    fn net(&mut self, e: crate::net::NetError) -> ClientError {
        self.conn = None;
        self.cluster.net_error(e)
    }

    /// Joins (or joins again), waiting for the rebalance to finish.
    pub async fn join(&mut self, metadata: Bytes) -> Result<Joined, ClientError> {
        // A coordinator that wants members to carry an id it hands out answers the
        // first join with that id and MEMBER_ID_REQUIRED: join again with it, once.
        for _ in 0..2 {
            let (options, member_id) = (self.options.clone(), self.member_id.clone());
            let conn = self.coordinator().await?;
            let answer = conn
                .request_built(JOIN_GROUP, |v| join_request(&options, &member_id, metadata.clone(), v))
                .await;
            let (response, _) = answer.map_err(|e| self.net(e))?;
            if response.error_code == MEMBER_ID_REQUIRED && !response.member_id.is_empty() {
                self.member_id = response.member_id;
                continue;
            }
            self.check("JoinGroup", response.error_code)?;
            self.member_id = response.member_id.clone();
            return Ok(Joined {
                generation: Generation {
                    id: response.generation_id,
                    member_id: response.member_id.clone(),
                    instance_id: self.options.instance_id.clone(),
                },
                leader: response.leader == response.member_id,
                members: response.members,
            });
        }
        Err(ClientError::Protocol {
            cluster: self.cluster.name().to_owned(),
            what: "JoinGroup answer",
            detail: "the coordinator asked twice for a member id".into(),
        })
    }

    /// Sends the leader's assignments (empty from the others) and returns this member's.
    pub async fn sync(
        &mut self,
        generation: &Generation,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<Bytes, ClientError> {
        let options = self.options.clone();
        let conn = self.coordinator().await?;
        let answer = conn
            .request_built(SYNC_GROUP, |v| sync_request(&options, generation, &assignments, v))
            .await;
        let (response, _) = answer.map_err(|e| self.net(e))?;
        self.check("SyncGroup", response.error_code)?;
        Ok(Bytes::from(response.assignment))
    }

    /// Tells the coordinator this member is alive; an error says the group moved on
    /// (REBALANCE_IN_PROGRESS: join again) or dropped the member.
    /// A heartbeat is answered at once: one unanswered for a session timeout means the
    /// coordinator is out of reach, and the connection is dropped for a new one.
    pub async fn heartbeat(&mut self, generation: &Generation) -> Result<(), ClientError> {
        let (group, within) = (self.options.group.clone(), self.options.session_timeout);
        let conn = self.coordinator().await?;
        let broker = conn.broker().to_owned();
        let request = conn.request_built(HEARTBEAT, |v| heartbeat_request(&group, generation, v));
        let answer = match tokio::time::timeout(within, request).await {
            Ok(answer) => answer,
            Err(_) => Err(crate::net::NetError::Timeout {
                broker,
                api: "Heartbeat",
                after: within,
            }),
        };
        let (response, _) = answer.map_err(|e| self.net(e))?;
        self.check("Heartbeat", response.error_code)
    }

    /// Leaves the group, so its partitions move at once rather than after the session
    /// timeout.
    pub async fn leave(&mut self) -> Result<(), ClientError> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let request = leave_request(&self.options.group, &self.member_id);
        let conn = self.coordinator().await?;
        let answer = conn.request_best(&request, LEAVE_GROUP).await;
        let (response, _) = answer.map_err(|e| self.net(e))?;
        self.member_id.clear();
        self.check("LeaveGroup", response.error_code)
    }
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_owned()))
}

/// The instance id, where the version has the field.
fn instance(options: &MemberOptions, version: i16, first: i16) -> Option<StrBytes> {
    options
        .instance_id
        .clone()
        .filter(|_| version >= first)
        .map(StrBytes::from_string)
}

pub(crate) fn join_request(
    options: &MemberOptions,
    member_id: &str,
    metadata: Bytes,
    version: i16,
) -> JoinGroupRequest {
    let protocol = JoinGroupRequestProtocol::default()
        .with_name(StrBytes::from_string(options.protocol_name.clone()))
        .with_metadata(metadata);
    JoinGroupRequest::default()
        .with_group_id(group_id(&options.group))
        .with_session_timeout_ms(millis(options.session_timeout))
        .with_rebalance_timeout_ms(millis(options.rebalance_timeout))
        .with_member_id(StrBytes::from_string(member_id.to_owned()))
        .with_group_instance_id(instance(options, version, JOIN_WITH_INSTANCE))
        .with_protocol_type(StrBytes::from_string(options.protocol_type.clone()))
        .with_protocols(vec![protocol])
}

pub(crate) fn sync_request(
    options: &MemberOptions,
    generation: &Generation,
    assignments: &[(String, Bytes)],
    version: i16,
) -> SyncGroupRequest {
    let assignments = assignments
        .iter()
        .map(|(member, bytes)| {
            SyncGroupRequestAssignment::default()
                .with_member_id(StrBytes::from_string(member.clone()))
                .with_assignment(bytes.clone())
        })
        .collect();
    SyncGroupRequest::default()
        .with_group_id(group_id(&options.group))
        .with_generation_id(generation.id)
        .with_member_id(StrBytes::from_string(generation.member_id.clone()))
        .with_group_instance_id(instance(options, version, SYNC_WITH_INSTANCE))
        .with_assignments(assignments)
}

pub(crate) fn heartbeat_request(group: &str, generation: &Generation, version: i16) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation.id)
        .with_member_id(StrBytes::from_string(generation.member_id.clone()))
        .with_group_instance_id(
            generation
                .instance_id
                .clone()
                .filter(|_| version >= HEARTBEAT_WITH_INSTANCE)
                .map(StrBytes::from_string),
        )
}

pub(crate) fn leave_request(group: &str, member_id: &str) -> LeaveGroupRequest {
    LeaveGroupRequest::default()
        .with_group_id(group_id(group))
        .with_member_id(StrBytes::from_string(member_id.to_owned()))
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
