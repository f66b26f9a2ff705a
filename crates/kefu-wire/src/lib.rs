//! A minimal Socket.IO v5 client (Engine.IO v4 over WebSocket only) for kefu's tests and load
//! generator: connect with an auth payload, emit, emit with an ack, receive events. It answers
//! the server's pings by itself and can stop reading to play a slow consumer.

use std::{
    collections::{HashMap, VecDeque},
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::Poll,
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt, task::AtomicWaker};
use serde_json::{Value, json};
use tokio::{
    net::{TcpSocket, TcpStream},
    sync::{mpsc, oneshot},
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, protocol::WebSocketConfig},
};

/// An event pushed by the server: its name and first argument.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

/// The server refused the namespace connection (`connect_error`).
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connection refused by the server: {}", self.0)
    }
}

impl std::error::Error for Refused {}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Shrinks the socket's receive buffer, so that a client that stops reading is felt quickly.
    pub recv_buffer: Option<u32>,
}

/// Everything [`Client::dial`] can be told: [`Options`] plus what a load generator needs.
#[derive(Debug, Clone, Default)]
pub struct Dial {
    /// Shrinks the socket's receive buffer (see [`Options::recv_buffer`]).
    pub recv_buffer: Option<u32>,
    /// The source address to connect from (the port is the kernel's choice). One source address
    /// reaches about 28,000 ports of one server; spreading over 127.0.0.x reaches more.
    pub local_addr: Option<IpAddr>,
    /// Drops the events the server pushes instead of queueing them, for connections whose events
    /// nobody reads: acks still arrive, pings are still answered.
    pub discard_events: bool,
}

impl From<Options> for Dial {
    fn from(options: Options) -> Self {
        Self {
            recv_buffer: options.recv_buffer,
            ..Self::default()
        }
    }
}

/// What the caller's handle and the connection's task share.
#[derive(Default)]
struct Shared {
    pending: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
    reading: AtomicBool,
    resume: AtomicWaker,
    closed: AtomicBool,
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Value>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The read buffer of a connection. tungstenite's default (128 KiB) is zero-filled on every read,
/// so each connection would hold 128 KiB of resident memory; messages here are small.
const READ_BUFFER: usize = 4096;

pub struct Client {
    out: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
    next_ack: AtomicU64,
    events: mpsc::UnboundedReceiver<Event>,
}

/// The client port a connection from a chosen source address tries next.
static NEXT_PORT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
/// Client ports taken in turn: Linux's default ephemeral range.
const CLIENT_PORTS: std::ops::Range<u32> = 32768..61000;
/// Ports tried for one connection before giving up.
const PORT_TRIES: usize = 64;

fn new_socket(addr: SocketAddr, recv_buffer: Option<u32>) -> std::io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    Ok(socket)
}

/// Connects from `ip` on a port of its own choosing, in turn round [`CLIENT_PORTS`]: the port
/// taken is the one this process used longest ago. A bind to port 0 would make the kernel search
/// for a port no socket on `ip` holds, TIME_WAIT ones included, which slows every connect down
/// (to ~450 a second) once tens of thousands of earlier connections linger in TIME_WAIT, as they
/// do after a run that closed them. With `SO_REUSEADDR` a port in TIME_WAIT binds again; one in
/// use is skipped.
async fn connect_from(
    ip: std::net::IpAddr,
    addr: SocketAddr,
    recv_buffer: Option<u32>,
) -> anyhow::Result<TcpStream> {
    use std::io::ErrorKind::{AddrInUse, AddrNotAvailable};
    let span = CLIENT_PORTS.end - CLIENT_PORTS.start;
    let mut last = None;
    for _ in 0..PORT_TRIES {
        let port = CLIENT_PORTS.start
            + NEXT_PORT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % span;
        let socket = new_socket(addr, recv_buffer)?;
        socket.set_reuseaddr(true)?;
        let local = SocketAddr::new(ip, port as u16);
        if let Err(error) = socket.bind(local) {
            if error.kind() == AddrInUse {
                last = Some(error);
                continue;
            }
            return Err(error).with_context(|| format!("binding to {ip}"));
        }
        match socket.connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(error) if matches!(error.kind(), AddrInUse | AddrNotAvailable) => {
                last = Some(error);
            }
            Err(error) => return Err(error).context("TCP connect"),
        }
    }
    Err(anyhow!(
        "no free client port on {ip} after {PORT_TRIES} tries: {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

impl Client {
    /// Connects to `base` (`http://host:port`) with `auth` as the handshake payload.
    pub async fn connect(base: &str, auth: Value) -> anyhow::Result<Self> {
        Self::dial(base, auth, &Dial::default()).await
    }

    pub async fn connect_with(base: &str, auth: Value, options: Options) -> anyhow::Result<Self> {
        Self::dial(base, auth, &options.into()).await
    }

    /// Connects with every setting of [`Dial`]. One task per connection drives both directions.
    pub async fn dial(base: &str, auth: Value, dial: &Dial) -> anyhow::Result<Self> {
        let url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            base.replacen("http", "ws", 1)
        );
        let addr = base.trim_start_matches("http://").trim_end_matches('/');
        let addr: SocketAddr = match addr.parse() {
            Ok(addr) => addr,
            Err(_) => tokio::net::lookup_host(addr)
                .await?
                .next()
                .ok_or_else(|| anyhow!("cannot resolve {addr}"))?,
        };
        let stream = match dial.local_addr {
            Some(ip) => connect_from(ip, addr, dial.recv_buffer).await?,
            None => new_socket(addr, dial.recv_buffer)?
                .connect(addr)
                .await
                .context("TCP connect")?,
        };
        stream.set_nodelay(true)?;
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .context("WebSocket handshake")?;

        // Engine.IO open packet, then the Socket.IO CONNECT for the default namespace.
        let open = next_text(&mut ws).await?;
        if !open.starts_with('0') {
            bail!("expected an Engine.IO open packet, got {open:?}");
        }
        ws.send(Message::text(format!("40{auth}"))).await?;
        loop {
            let packet = next_text(&mut ws).await?;
            if packet == "2" {
                ws.send(Message::text("3")).await?;
            } else if packet.starts_with("40") {
                break;
            } else if let Some(error) = packet.strip_prefix("44") {
                let message = serde_json::from_str::<Value>(error)
                    .ok()
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_else(|| error.to_owned());
                return Err(Refused(message).into());
            } else {
                bail!("unexpected packet during connect: {packet:?}");
            }
        }

        let (out, out_rx) = mpsc::unbounded_channel::<Message>();
        let (events_tx, events) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            reading: AtomicBool::new(true),
            ..Shared::default()
        });
        let events_tx = (!dial.discard_events).then_some(events_tx);
        tokio::spawn(drive(ws, out_rx, shared.clone(), events_tx));
        Ok(Self {
            out,
            shared,
            next_ack: AtomicU64::new(1),
            events,
        })
    }

    /// Emits an event without an ack callback.
    pub fn emit(&self, event: &str, data: Value) -> anyhow::Result<()> {
        let packet = format!("42{}", json!([event, data]));
        self.out
            .send(Message::text(packet))
            .map_err(|_| anyhow!("connection closed"))
    }

    /// Sends a raw Engine.IO text packet, for hostile-input tests.
    pub fn send_raw(&self, packet: impl Into<String>) -> anyhow::Result<()> {
        self.out
            .send(Message::text(packet.into()))
            .map_err(|_| anyhow!("connection closed"))
    }

    /// Emits an event with an ack callback and waits (up to 10 s) for the ack's first argument.
    pub async fn call(&self, event: &str, data: Value) -> anyhow::Result<Value> {
        let rx = self.call_later(event, data)?;
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .map_err(|_| anyhow!("no ack for {event} within 10 s"))?
            .map_err(|_| anyhow!("connection closed before the ack of {event}"))
    }

    /// Emits with an ack callback; the ack arrives on the returned channel.
    pub fn call_later(&self, event: &str, data: Value) -> anyhow::Result<oneshot::Receiver<Value>> {
        self.call_raw(event, &data.to_string())
    }

    /// Like [`Client::call_later`] with the argument as raw JSON text, which may be anything,
    /// including what `serde_json` would refuse to build.
    pub fn call_raw(
        &self,
        event: &str,
        raw_data: &str,
    ) -> anyhow::Result<oneshot::Receiver<Value>> {
        let id = self.next_ack.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared.pending().insert(id, tx);
        let packet = format!("42{id}[{},{raw_data}]", Value::from(event));
        self.out
            .send(Message::text(packet))
            .map_err(|_| anyhow!("connection closed"))?;
        Ok(rx)
    }

    /// The next event the server pushed, or `None` after `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        tokio::time::timeout(timeout, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits for the named event, skipping others.
    pub async fn expect(&mut self, name: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await {
                Some(event) if event.name == name => return Ok(event.data),
                Some(_) => continue,
                None => bail!("no {name} event within {timeout:?}"),
            }
        }
    }

    /// Stops (or resumes) reading from the socket: the server's writes then pile up.
    pub fn set_reading(&self, reading: bool) {
        self.shared.reading.store(reading, Ordering::Release);
        self.shared.resume.wake();
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    pub fn close(&self) {
        let _ = self.out.send(Message::text("41"));
        let _ = self.out.send(Message::Close(None));
    }
}

async fn next_text<S>(stream: &mut S) -> anyhow::Result<String>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .map_err(|_| anyhow!("timed out waiting for the server"))?
            .ok_or_else(|| anyhow!("connection closed"))??;
        match message {
            Message::Text(text) => return Ok(text.as_str().to_owned()),
            Message::Close(frame) => bail!("connection closed: {frame:?}"),
            _ => continue,
        }
    }
}

type Ws = WebSocketStream<TcpStream>;

/// Drives one connection: moves the caller's packets to the socket, answers pings, routes acks
/// and events. A single task polling both directions (rather than a reader and a writer task)
/// keeps a connection light enough for tens of thousands of them in one process.
async fn drive(
    mut ws: Ws,
    mut out_rx: mpsc::UnboundedReceiver<Message>,
    shared: Arc<Shared>,
    events: Option<mpsc::UnboundedSender<Event>>,
) {
    // Packets the task itself owes the server (pongs, a close), sent before the caller's.
    let mut owed: VecDeque<Message> = VecDeque::new();
    // Once every handle is dropped, the connection stays up (answering pings) until the server
    // closes it, as it always has.
    let mut caller_open = true;
    let mut server_closed = false;
    std::future::poll_fn(|cx| {
        loop {
            // Writes: as much as the sink takes, then one flush.
            loop {
                if owed.is_empty() && !caller_open {
                    break;
                }
                match ws.poll_ready_unpin(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => break,
                }
                let message = match owed.pop_front() {
                    Some(message) => message,
                    None => match out_rx.poll_recv(cx) {
                        Poll::Ready(Some(message)) => message,
                        Poll::Ready(None) => {
                            caller_open = false;
                            break;
                        }
                        Poll::Pending => break,
                    },
                };
                if ws.start_send_unpin(message).is_err() {
                    return Poll::Ready(());
                }
            }
            match ws.poll_flush_unpin(cx) {
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) if server_closed && owed.is_empty() => return Poll::Ready(()),
                _ => {}
            }
            if server_closed {
                return Poll::Pending;
            }

            // Reads, unless the caller plays a slow consumer.
            if !shared.reading.load(Ordering::Acquire) {
                shared.resume.register(cx.waker());
                if !shared.reading.load(Ordering::Acquire) {
                    return Poll::Pending;
                }
            }
            let text = match ws.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => {
                    return Poll::Ready(());
                }
                Poll::Ready(Some(Ok(Message::Text(text)))) => text,
                Poll::Ready(Some(Ok(_))) => continue,
            };
            let text = text.as_str();
            if text == "2" {
                owed.push_back(Message::text("3"));
            } else if text.starts_with("41") {
                // The server closed the namespace: what the official client calls
                // "io server disconnect".
                shared.closed.store(true, Ordering::Release);
                owed.push_back(Message::Close(None));
                server_closed = true;
            } else {
                handle_packet(text, &shared, events.as_ref());
            }
        }
    })
    .await;
    shared.closed.store(true, Ordering::Release);
    shared.pending().clear();
}

fn handle_packet(text: &str, shared: &Shared, events: Option<&mpsc::UnboundedSender<Event>>) {
    if let Some(rest) = text.strip_prefix("42") {
        // The server sends events without ack ids.
        let Some(events) = events else {
            return;
        };
        if let Ok(Value::Array(mut items)) = serde_json::from_str::<Value>(rest)
            && let Some(Value::String(name)) = items.first().cloned()
        {
            let data = if items.len() > 1 {
                items.swap_remove(1)
            } else {
                Value::Null
            };
            let _ = events.send(Event { name, data });
        }
    } else if let Some(rest) = text.strip_prefix("43") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (id, body) = rest.split_at(digits);
        if let (Ok(id), Ok(Value::Array(mut items))) =
            (id.parse::<u64>(), serde_json::from_str::<Value>(body))
        {
            let data = if items.is_empty() {
                Value::Null
            } else {
                items.swap_remove(0)
            };
            if let Some(tx) = shared.pending().remove(&id) {
                let _ = tx.send(data);
            }
        }
    }
}
