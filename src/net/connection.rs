//! A pipelined connection to one broker.
//!
//! One writer task owns the write half and writes whole frames, never cancelled half way;
//! one reader task owns the read half and hands each response to the request waiting for
//! its correlation id. Any failure poisons the connection: every waiter gets the error
//! and the cluster layer dials a new one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use kafka_protocol::protocol::StrBytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::dial;
use super::frames::FrameReader;
use super::sasl::{self, SaslConfig};
use super::tls::TlsSettings;
use super::versions::ApiVersionTable;
use super::write::write_all_parts;
use super::NetError;
use crate::wire::frame::DEFAULT_MAX_FRAME;
use crate::wire::header::split_response;
use crate::wire::message::{api_key_name, encode_request, response_header_version};
use crate::wire::responses::{decode, Answered};

/// How to reach and talk to a broker.
#[derive(Clone)]
pub struct ConnectOptions {
    pub client_id: String,
    pub tls: Option<TlsSettings>,
    pub sasl: Option<SaslConfig>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_frame: usize,
    pub buffers: super::dial::SocketBuffers,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            client_id: "strait".into(),
            tls: None,
            sasl: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_frame: DEFAULT_MAX_FRAME,
            buffers: Default::default(),
        }
    }
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Reply = oneshot::Sender<Result<Bytes, NetError>>;
type Pending = Arc<Mutex<HashMap<i32, Reply>>>;

struct Outgoing {
    parts: Vec<Bytes>,
    correlation_id: i32,
    reply: Reply,
}

/// Set once, when the connection dies, with why.
#[derive(Default)]
struct Poison {
    reason: Mutex<Option<String>>,
}

impl Poison {
    fn set(&self, reason: String) {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        r.get_or_insert(reason);
    }

    fn get(&self) -> Option<String> {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub struct Connection {
    broker: Arc<str>,
    writer: mpsc::Sender<Outgoing>,
    poison: Arc<Poison>,
    next_id: AtomicI32,
    versions: ApiVersionTable,
    options: ConnectOptions,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Bound of the queue of frames waiting for the writer.
const WRITE_QUEUE: usize = 64;

impl Connection {
    /// Dials `addr` ("host:port"), sets up TLS, negotiates api versions and authenticates,
    /// all within `connect_timeout`: a broker that accepts and then stalls at any step
    /// costs that deadline and no more.
    pub async fn connect(addr: &str, options: ConnectOptions) -> Result<Connection, NetError> {
        let within = options.connect_timeout;
        let steps = "TCP connect, TLS, ApiVersions and SASL";
        tokio::time::timeout(within, Connection::open(addr, options))
            .await
            .map_err(|_| dial::timed_out(addr, within, steps))?
    }

    async fn open(addr: &str, options: ConnectOptions) -> Result<Connection, NetError> {
        let broker: Arc<str> = Arc::from(addr);
        let io = dial::open(addr, options.tls.as_ref(), options.buffers).await?.boxed();
        let (read, write) = tokio::io::split(io);
        let pending: Pending = Arc::default();
        let poison = Arc::new(Poison::default());
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let reader = tokio::spawn(read_loop(
            read,
            pending.clone(),
            poison.clone(),
            broker.clone(),
            options.max_frame,
        ));
        let writer = tokio::spawn(write_loop(write, rx, pending, poison.clone(), broker.clone()));
        let mut conn = Connection {
            broker,
            writer: tx,
            poison,
            next_id: AtomicI32::new(1),
            versions: ApiVersionTable::default(),
            options,
            tasks: [reader, writer],
        };
        conn.versions = conn.negotiate_versions().await?;
        if let Some(config) = conn.options.sasl.clone() {
            sasl::authenticate(&conn, &config).await?;
        }
        Ok(conn)
    }

    pub fn broker(&self) -> &str {
        &self.broker
    }

    pub fn is_closed(&self) -> bool {
        self.poison.get().is_some()
    }

    pub fn versions(&self) -> &ApiVersionTable {
        &self.versions
    }

    /// The version to use for `key`: the highest within `ours` the broker also speaks.
    pub fn pick_version(&self, key: ApiKey, ours: (i16, i16)) -> Result<i16, NetError> {
        self.versions.pick(&self.broker, key, ours)
    }

    pub fn next_correlation_id(&self) -> i32 {
        self.next_id.fetch_add(1, Ordering::Relaxed) & i32::MAX
    }

    pub fn client_id(&self) -> &str {
        &self.options.client_id
    }

    fn closed_error(&self) -> NetError {
        NetError::Closed {
            broker: self.broker.to_string(),
            reason: self.poison.get(),
        }
    }

    /// Queues a request frame given as buffers; the returned reply resolves to the
    /// response frame. Requests are written in the order they are submitted, which is
    /// what pipelined idempotent produces rely on.
    pub async fn submit(
        &self,
        parts: Vec<Bytes>,
        correlation_id: i32,
        api: &'static str,
    ) -> Result<PendingReply<'_>, NetError> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let (reply, response) = oneshot::channel();
        let out = Outgoing {
            parts,
            correlation_id,
            reply,
        };
        self.writer.send(out).await.map_err(|_| self.closed_error())?;
        Ok(PendingReply {
            conn: self,
            response,
            api,
        })
    }

    /// Sends a request frame given as buffers and waits for the response frame.
    pub async fn round_trip(
        &self,
        parts: Vec<Bytes>,
        correlation_id: i32,
        api: &'static str,
    ) -> Result<Bytes, NetError> {
        self.submit(parts, correlation_id, api).await?.wait().await
    }

    /// Sends a typed request at `version` and decodes its response with strait's own
    /// bounded decoder for it.
    pub async fn request<R: Answered>(&self, request: &R, version: i16) -> Result<R::Answer, NetError> {
        let api = ApiKey::try_from(R::KEY).map(api_key_name).unwrap_or("unknown");
        let id = self.next_correlation_id();
        let frame = encode_request(request, version, id, &self.options.client_id).map_err(|e| self.wire_error(e))?;
        let response = self.round_trip(vec![frame], id, api).await?;
        let (_, body) =
            split_response(&response, response_header_version::<R>(version)).map_err(|e| self.wire_error(e))?;
        decode::<R::Answer>(&body, version).map_err(|e| self.wire_error(e))
    }

    /// Sends a typed request at the best version within `ours`.
    pub async fn request_best<R: Answered>(&self, request: &R, ours: (i16, i16)) -> Result<(R::Answer, i16), NetError> {
        let key =
            ApiKey::try_from(R::KEY).map_err(|_| self.wire_error(crate::wire::WireError::UnknownApiKey(R::KEY)))?;
        let version = self.pick_version(key, ours)?;
        Ok((self.request(request, version).await?, version))
    }

    /// Sends a request built for the best version within `ours`, for requests whose
    /// fields depend on the version (a field set that a version lacks cannot be encoded).
    pub async fn request_built<R: Answered>(
        &self,
        ours: (i16, i16),
        build: impl FnOnce(i16) -> R,
    ) -> Result<(R::Answer, i16), NetError> {
        let key =
            ApiKey::try_from(R::KEY).map_err(|_| self.wire_error(crate::wire::WireError::UnknownApiKey(R::KEY)))?;
        let version = self.pick_version(key, ours)?;
        Ok((self.request(&build(version), version).await?, version))
    }

    pub fn wire_error(&self, source: crate::wire::WireError) -> NetError {
        NetError::Wire {
            broker: self.broker.to_string(),
            source,
        }
    }

    /// ApiVersions v3, or v0 for brokers that answer v3 with UNSUPPORTED_VERSION.
    async fn negotiate_versions(&self) -> Result<ApiVersionTable, NetError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strait"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response = match self.request(&request, 3).await {
            Ok(r) if r.error_code == 0 => r,
            Ok(_) | Err(NetError::Wire { .. }) => self.request(&ApiVersionsRequest::default(), 0).await?,
            Err(e) => return Err(e),
        };
        if response.error_code != 0 {
            return Err(NetError::Closed {
                broker: self.broker.to_string(),
                reason: Some(format!("ApiVersions failed with error code {}", response.error_code)),
            });
        }
        Ok(ApiVersionTable::new(
            response
                .api_keys
                .into_iter()
                .map(|k| (k.api_key, k.min_version, k.max_version)),
        ))
    }
}

/// A submitted request's response, to await later.
pub struct PendingReply<'a> {
    conn: &'a Connection,
    response: oneshot::Receiver<Result<Bytes, NetError>>,
    api: &'static str,
}

impl<'a> PendingReply<'a> {
    /// The connection the request went out on.
    pub fn connection(&self) -> &'a Connection {
        self.conn
    }

    /// The response frame, or the error that ended the connection; a request without an
    /// answer within the timeout poisons the connection, since a late answer may follow.
    pub async fn wait(self) -> Result<Bytes, NetError> {
        let conn = self.conn;
        let after = conn.options.request_timeout;
        match tokio::time::timeout(after, self.response).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(conn.closed_error()),
            Err(_) => {
                conn.poison.set(format!("{} timed out after {after:?}", self.api));
                conn.tasks.iter().for_each(JoinHandle::abort);
                Err(NetError::Timeout {
                    broker: conn.broker.to_string(),
                    api: self.api,
                    after,
                })
            }
        }
    }
}

fn fail_all(pending: &Pending, poison: &Poison, broker: &str) {
    let drained: Vec<Reply> = {
        let mut map = pending.lock().unwrap_or_else(|e| e.into_inner());
        map.drain().map(|(_, r)| r).collect()
    };
    for reply in drained {
        let _ = reply.send(Err(NetError::Closed {
            broker: broker.to_owned(),
            reason: poison.get(),
        }));
    }
}

async fn read_loop(read: ReadHalf<Box<dyn Io>>, pending: Pending, poison: Arc<Poison>, broker: Arc<str>, max: usize) {
    let mut frames = FrameReader::new(read, max);
    let reason = loop {
        let frame = match frames.next().await {
            Ok(Some(frame)) => frame,
            Ok(None) => break "closed by the broker".to_owned(),
            Err(e) => break format!("reading a response: {e}"),
        };
        let Ok(id) = crate::wire::header::response_correlation_id(&frame) else {
            break "response frame shorter than a correlation id".to_owned();
        };
        let reply = pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        match reply {
            Some(reply) => {
                let _ = reply.send(Ok(frame));
            }
            None => break format!("response with unknown correlation id {id}"),
        }
    };
    tracing::debug!(%broker, %reason, "connection closed");
    poison.set(reason);
    fail_all(&pending, &poison, &broker);
}

async fn write_loop(
    mut write: WriteHalf<Box<dyn Io>>,
    mut queue: mpsc::Receiver<Outgoing>,
    pending: Pending,
    poison: Arc<Poison>,
    broker: Arc<str>,
) {
    while let Some(out) = queue.recv().await {
        // Registered before writing, so a fast answer always finds its waiter.
        pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(out.correlation_id, out.reply);
        if let Err(e) = write_all_parts(&mut write, &out.parts).await {
            poison.set(format!("write failed: {e}"));
            break;
        }
    }
    let _ = write.shutdown().await;
    poison.set("connection shut down".to_owned());
    fail_all(&pending, &poison, &broker);
}
