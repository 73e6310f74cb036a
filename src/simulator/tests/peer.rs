//! The server engine as the peer under test: an in-memory [`Transport`] that feeds each device
//! message to `dm::session::handle`, keeps the session states, device records and queues like
//! the HTTP layer would, and logs replies and effects for assertions. Also served over a tiny
//! HTTP server so `HttpTransport` and `run` can be tested end to end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::dm::auth::{AuthType, CredentialHash, NonceSource, StoredSecret};
use crate::dm::message::{Command, SyncML};
use crate::dm::session::{
    ClientCredentials, DeviceRecord, Effect, Inbound, Operation, QueuedOperation, ServerConfig,
    ServerCredentials, SessionState, handle,
};
use crate::dm::{Limits, decode};
use crate::simulator::http1::{read_request, write_response};
use crate::simulator::{HttpReply, HttpRequest, SimError, Transport};

/// Deterministic nonce source.
pub struct Counter(pub u8);

impl NonceSource for Counter {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.0;
            self.0 = self.0.wrapping_add(7);
        }
    }
}

type Provision = Box<dyn Fn(&str) -> DeviceRecord + Send>;

pub struct PeerState {
    pub server: ServerConfig,
    pub devices: HashMap<String, DeviceRecord>,
    pub queues: HashMap<String, Vec<QueuedOperation>>,
    pub sessions: HashMap<(String, String), SessionState>,
    /// (dev_id, effect) in order.
    pub effects: Vec<(String, Effect)>,
    /// (dev_id, device message, server reply) in order.
    pub log: Vec<(String, SyncML, SyncML)>,
    pub urls: Vec<String>,
    pub provision: Option<Provision>,
    rng: Counter,
    clock: i64,
}

pub struct EnginePeer {
    pub state: Mutex<PeerState>,
}

pub const SERVER_URL: &str = "http://dm.test/dm";

pub fn server_config(max_msg: usize) -> ServerConfig {
    ServerConfig {
        server_uri: SERVER_URL.into(),
        resp_uri_base: None,
        limits: Limits {
            max_message_bytes: max_msg,
            ..Limits::default()
        },
        max_obj_size: 4 * 1024 * 1024,
        default_device_max_msg_size: 16_384,
        max_auth_attempts: 3,
    }
}

/// A device record with CLCRED (name = dev id) and optional SRVCRED.
pub fn record(
    dev_id: &str,
    auth: AuthType,
    secret: &str,
    server: Option<(AuthType, &str, &str)>,
) -> DeviceRecord {
    DeviceRecord {
        dev_id: dev_id.into(),
        client: Some(ClientCredentials {
            auth_type: auth,
            name: dev_id.into(),
            secret: StoredSecret::Hash(CredentialHash::compute(dev_id, secret)),
            nonce: None,
        }),
        server: server.map(|(a, id, s)| ServerCredentials {
            auth_type: a,
            name: id.into(),
            secret: StoredSecret::Cleartext(s.into()),
            nonce: None,
        }),
        large_object_support: None,
        max_obj_size: None,
    }
}

pub fn op(id: &str, operation: Operation, group: Option<&str>) -> QueuedOperation {
    QueuedOperation {
        id: id.into(),
        operation,
        sequence_group: group.map(str::to_owned),
    }
}

impl EnginePeer {
    pub fn new(server: ServerConfig) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(PeerState {
                server,
                devices: HashMap::new(),
                queues: HashMap::new(),
                sessions: HashMap::new(),
                effects: Vec::new(),
                log: Vec::new(),
                urls: Vec::new(),
                provision: None,
                rng: Counter(1),
                clock: 0,
            }),
        })
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut PeerState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    pub fn add_device(&self, r: DeviceRecord, queue: Vec<QueuedOperation>) {
        self.with(|s| {
            s.queues.insert(r.dev_id.clone(), queue);
            s.devices.insert(r.dev_id.clone(), r);
        });
    }

    pub fn queue(&self, dev_id: &str, ops: Vec<QueuedOperation>) {
        self.with(|s| s.queues.entry(dev_id.into()).or_default().extend(ops));
    }

    pub fn effects(&self) -> Vec<Effect> {
        self.with(|s| s.effects.iter().map(|(_, e)| e.clone()).collect())
    }

    /// True when any server reply carried a command other than Status.
    pub fn sent_management_commands(&self) -> bool {
        self.with(|s| {
            s.log.iter().any(|(_, _, r)| {
                r.body
                    .commands
                    .iter()
                    .any(|c| !matches!(c, Command::Status(_)))
            })
        })
    }

    fn exchange(&self, req: &HttpRequest) -> HttpReply {
        let mut guard = self.state.lock().unwrap();
        let st = &mut *guard;
        st.urls.push(req.url.clone());
        let (msg, enc) = match decode(&req.body, &st.server.limits) {
            Ok(x) => x,
            Err(e) => {
                return HttpReply {
                    status: e.http_status(),
                    content_type: None,
                    body: Vec::new(),
                    hmac: None,
                };
            }
        };
        let dev_id = msg.hdr.source.loc_uri.clone();
        if !st.devices.contains_key(&dev_id) {
            let r = match &st.provision {
                Some(p) => p(&dev_id),
                None => DeviceRecord {
                    dev_id: dev_id.clone(),
                    ..DeviceRecord::default()
                },
            };
            st.devices.insert(dev_id.clone(), r);
        }
        let key = (dev_id.clone(), msg.hdr.session_id.clone());
        let state = st.sessions.remove(&key).unwrap_or_default();
        let device = st.devices[&dev_id].clone();
        let queue = st.queues.get(&dev_id).cloned().unwrap_or_default();
        st.clock += 1;
        let (out, fx) = handle(
            state,
            Inbound {
                message: &msg,
                encoding: enc,
                body: &req.body,
                hmac_header: req.hmac.as_deref(),
                device: &device,
                queue: &queue,
                window: None,
                server: &st.server,
            },
            st.clock,
            &mut st.rng,
        );
        for e in fx {
            apply(st, &dev_id, &e);
            st.effects.push((dev_id.clone(), e));
        }
        if !out.session_over {
            st.sessions.insert(key, out.state.clone());
        }
        st.log.push((dev_id, msg, out.message.clone()));
        HttpReply {
            status: 200,
            content_type: Some(out.content_type.to_owned()),
            body: out.body,
            hmac: out.hmac_header,
        }
    }
}

/// What the HTTP layer does with effects: persist nonces, limits and inventory; drop
/// finished operations from the queue.
fn apply(st: &mut PeerState, dev_id: &str, e: &Effect) {
    let Some(dev) = st.devices.get_mut(dev_id) else {
        return;
    };
    let queue = st.queues.entry(dev_id.to_owned()).or_default();
    match e {
        Effect::StoreClientNonce(n) => {
            if let Some(c) = &mut dev.client {
                c.nonce = Some(n.clone());
            }
        }
        Effect::StoreServerNonce(n) => {
            if let Some(s) = &mut dev.server {
                s.nonce = Some(n.clone());
            }
        }
        Effect::DeviceLimits {
            max_obj_size: Some(m),
            ..
        } => dev.max_obj_size = Some(*m),
        Effect::Inventory { uri, value } if uri == "./DevDetail/LrgObj" => {
            dev.large_object_support = Some(value.trim() == "true");
        }
        Effect::OperationStatus { op_id, .. }
        | Effect::OperationNotDelivered {
            op_id,
            retry_later: false,
            ..
        } => queue.retain(|q| q.id != *op_id),
        _ => {}
    }
}

impl Transport for EnginePeer {
    async fn post(&self, req: HttpRequest) -> Result<HttpReply, SimError> {
        Ok(self.exchange(&req))
    }
}

/// Serves the peer over HTTP on 127.0.0.1:0; returns the DM URL.
pub async fn serve_http(peer: Arc<EnginePeer>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let peer = peer.clone();
            tokio::spawn(async move {
                let Ok(req) = read_request(&mut stream, 1 << 20).await else {
                    return;
                };
                let reply = peer.exchange(&HttpRequest {
                    url: req.path.clone(),
                    content_type: req.header("content-type").unwrap_or_default().to_owned(),
                    hmac: req.header("x-syncml-hmac").map(str::to_owned),
                    body: req.body,
                });
                let ct = reply.content_type.unwrap_or_default();
                let mut headers = vec![("Content-Type", ct.as_str())];
                if let Some(h) = &reply.hmac {
                    headers.push(("x-syncml-hmac", h.as_str()));
                }
                let _ = write_response(&mut stream, reply.status, &headers, &reply.body).await;
            });
        }
    });
    format!("http://{addr}/dm")
}
