//! A minimal Socket.IO v5 client (Engine.IO v4 over WebSocket only) for kefu's tests and load
//! generator: connect with an auth payload, emit, emit with an ack, receive events. It answers
//! the server's pings by itself and can stop reading to play a slow consumer.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    net::TcpSocket,
    sync::{Notify, mpsc, oneshot},
};
use tokio_tungstenite::tungstenite::Message;

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

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

pub struct Client {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next_ack: AtomicU64,
    events: mpsc::UnboundedReceiver<Event>,
    reading: Arc<(AtomicBool, Notify)>,
    closed: Arc<AtomicBool>,
}

impl Client {
    /// Connects to `base` (`http://host:port`) with `auth` as the handshake payload.
    pub async fn connect(base: &str, auth: Value) -> anyhow::Result<Self> {
        Self::connect_with(base, auth, Options::default()).await
    }

    pub async fn connect_with(base: &str, auth: Value, options: Options) -> anyhow::Result<Self> {
        let url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            base.replacen("http", "ws", 1)
        );
        let addr = base.trim_start_matches("http://").trim_end_matches('/');
        let addr: std::net::SocketAddr = tokio::net::lookup_host(addr)
            .await?
            .next()
            .ok_or_else(|| anyhow!("cannot resolve {addr}"))?;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(size) = options.recv_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        let stream = socket.connect(addr).await.context("TCP connect")?;
        let (ws, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .context("WebSocket handshake")?;
        let (mut sink, mut stream) = ws.split();

        // Engine.IO open packet, then the Socket.IO CONNECT for the default namespace.
        let open = next_text(&mut stream).await?;
        if !open.starts_with('0') {
            bail!("expected an Engine.IO open packet, got {open:?}");
        }
        sink.send(Message::text(format!("40{auth}"))).await?;
        loop {
            let packet = next_text(&mut stream).await?;
            if packet == "2" {
                sink.send(Message::text("3")).await?;
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

        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (events_tx, events) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let reading = Arc::new((AtomicBool::new(true), Notify::new()));
        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(async move {
            while let Some(message) = out_rx.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let reader_pending = pending.clone();
        let reader_out = out.clone();
        let reader_reading = reading.clone();
        let reader_closed = closed.clone();
        tokio::spawn(async move {
            loop {
                while !reader_reading.0.load(Ordering::Acquire) {
                    reader_reading.1.notified().await;
                }
                let Some(Ok(message)) = stream.next().await else {
                    break;
                };
                let Message::Text(text) = message else {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                    continue;
                };
                // The server closed the namespace: what the official client calls
                // "io server disconnect".
                if text.as_str().starts_with("41") {
                    let _ = reader_out.send(Message::Close(None));
                    break;
                }
                handle_packet(text.as_str(), &reader_out, &reader_pending, &events_tx);
            }
            reader_closed.store(true, Ordering::Release);
            reader_pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        });
        Ok(Self {
            out,
            pending,
            next_ack: AtomicU64::new(1),
            events,
            reading,
            closed,
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
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
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
        self.reading.0.store(reading, Ordering::Release);
        self.reading.1.notify_waiters();
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
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

fn handle_packet(
    text: &str,
    out: &mpsc::UnboundedSender<Message>,
    pending: &Pending,
    events: &mpsc::UnboundedSender<Event>,
) {
    if text == "2" {
        let _ = out.send(Message::text("3"));
        return;
    }
    if let Some(rest) = text.strip_prefix("42") {
        // The server sends events without ack ids.
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
            if let Some(tx) = pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id)
            {
                let _ = tx.send(data);
            }
        }
    }
}
