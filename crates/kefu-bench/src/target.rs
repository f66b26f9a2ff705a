//! The server under test: its REST provisioning routes, and what `/proc` says about its process
//! (and about the load generator's own).

use std::{
    net::IpAddr,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use anyhow::{Context, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A provisioned user: its token for the Socket.IO handshake and its id for `login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub id: String,
}

impl Session {
    fn from_body(body: &Value) -> anyhow::Result<Self> {
        Ok(Self {
            token: body["token"].as_str().context("no token")?.to_owned(),
            id: id_text(&body["user"]["id"]).context("no user id")?,
        })
    }
}

/// Ids are strings in kefu's protocol; a server that answers numbers is read the same way.
pub fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub struct Target {
    /// The nodes' base URLs (one for a single server); REST goes to the first unless said.
    urls: Vec<String>,
    http: reqwest::Client,
    admin_password: Option<String>,
    pub server_pid: Option<u32>,
    source_addrs: u8,
    /// `POST /api/visitors` answered `409 Conflict` and was tried again.
    pub visitor_conflicts: AtomicUsize,
}

/// A REST call the server answered with an error status.
#[derive(Debug)]
pub struct HttpError {
    pub status: reqwest::StatusCode,
    what: String,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for HttpError {}

impl Target {
    pub fn new(
        urls: Vec<String>,
        admin_password: Option<String>,
        server_pid: Option<u32>,
        source_addrs: u8,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build()?;
        if urls.is_empty() {
            bail!("at least one --url is needed");
        }
        Ok(Self {
            urls: urls
                .iter()
                .map(|url| url.trim_end_matches('/').to_owned())
                .collect(),
            http,
            admin_password,
            server_pid,
            source_addrs,
            visitor_conflicts: AtomicUsize::new(0),
        })
    }

    /// How many nodes (`--url`s) connections are spread over.
    pub fn nodes(&self) -> usize {
        self.urls.len()
    }

    /// The base URL of node `node` (counted modulo the number of nodes).
    pub fn node_url(&self, node: usize) -> &str {
        &self.urls[node % self.urls.len()]
    }

    /// The source address of the `i`-th connection: 127.0.0.1 ..= 127.0.0.N in turn, or the
    /// kernel's choice when connections are not spread.
    pub fn source(&self, i: usize) -> Option<IpAddr> {
        (self.source_addrs > 1)
            .then(|| IpAddr::from([127, 0, 0, 1 + (i % self.source_addrs as usize) as u8]))
    }

    pub async fn post(
        &self,
        path: &str,
        body: Value,
        token: Option<&str>,
    ) -> anyhow::Result<Value> {
        self.post_to(0, path, body, token).await
    }

    /// `POST` to node `node`.
    pub async fn post_to(
        &self,
        node: usize,
        path: &str,
        body: Value,
        token: Option<&str>,
    ) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, node, path, body, token)
            .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        node: usize,
        path: &str,
        body: Value,
        token: Option<&str>,
    ) -> anyhow::Result<Value> {
        let url = self.node_url(node);
        let mut request = self
            .http
            .request(method.clone(), format!("{url}{path}"))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(HttpError {
                status,
                what: format!("{method} {path}: {status} {body}"),
            }
            .into());
        }
        Ok(body)
    }

    /// `GET` with a bearer token; `None` when the route answers anything but success (a server
    /// without it).
    pub async fn get(&self, path: &str, token: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.node_url(0)))
            .bearer_auth(token)
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    pub async fn admin_token(&self) -> anyhow::Result<String> {
        let password = self
            .admin_password
            .as_deref()
            .context("--admin-password (or KEFU_ADMIN_PASSWORD) is needed to create agents")?;
        let body = self
            .post(
                "/api/login",
                json!({"username": "admin", "password": password}),
                None,
            )
            .await?;
        Ok(body["token"]
            .as_str()
            .context("admin login gave no token")?
            .to_owned())
    }

    /// Creates `count` agents with fresh usernames and logs each in. On a server that limits the
    /// conversations an agent holds at once (its `GET /api/agents` lists a `capacity`), each
    /// agent's capacity is set to `capacity`; a server without such limits is left as it is.
    pub async fn create_agents(
        &self,
        count: usize,
        capacity: usize,
    ) -> anyhow::Result<Vec<Session>> {
        let admin = self.admin_token().await?;
        // The process id too: load generators started together share the millisecond.
        let run = format!(
            "{:x}-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis()
                % 0xff_ffff,
            std::process::id()
        );
        let password = "bench-password";
        // Password hashing makes these slow by design: a few at a time.
        let sessions = stream::iter(0..count)
            .map(|i| {
                let (admin, username) = (&admin, format!("bench-{run}-{i}"));
                async move {
                    self.post(
                        "/api/agents",
                        json!({"username": username, "password": password}),
                        Some(admin),
                    )
                    .await?;
                    let body = self
                        .post(
                            "/api/login",
                            json!({"username": username, "password": password}),
                            None,
                        )
                        .await?;
                    Session::from_body(&body).context("agent login")
                }
            })
            .buffered(4)
            .try_collect::<Vec<Session>>()
            .await?;
        // The run goes on: visitors beyond an agent's capacity wait in the queue, and the
        // scenario's own checks show it.
        if let Err(error) = self.set_capacity(&admin, &sessions, capacity).await {
            eprintln!("warning: agents' capacity not set to {capacity}: {error:#}");
        }
        Ok(sessions)
    }

    /// Sets each agent's capacity (`PATCH /api/agents/{id}`) on a server that limits the
    /// conversations an agent holds at once (its `GET /api/agents` lists a `capacity`). Returns
    /// whether it does; a server without such limits is left as it is.
    pub async fn set_capacity(
        &self,
        admin: &str,
        agents: &[Session],
        capacity: usize,
    ) -> anyhow::Result<bool> {
        let listed = self.get("/api/agents", admin).await;
        let limited = listed
            .as_ref()
            .and_then(|body| body["agents"].as_array())
            .is_some_and(|list| list.iter().any(|a| a.get("capacity").is_some()));
        if !limited {
            return Ok(false);
        }
        stream::iter(agents)
            .map(|session| {
                let path = format!("/api/agents/{}", session.id);
                async move {
                    self.send(
                        reqwest::Method::PATCH,
                        0,
                        &path,
                        json!({ "capacity": capacity }),
                        Some(admin),
                    )
                    .await
                    .context("setting an agent's capacity")
                }
            })
            .buffered(16)
            .try_collect::<Vec<Value>>()
            .await?;
        Ok(true)
    }

    /// Creates `count` visitors, `concurrency` requests at a time, spread over the nodes. A
    /// `409 Conflict` is tried again (a few times), as a client would: kefu names a visitor with
    /// 32 random bits, which two of 100,000 visitors share about once.
    pub async fn create_visitors(
        &self,
        count: usize,
        concurrency: usize,
    ) -> anyhow::Result<Vec<Session>> {
        stream::iter(0..count)
            .map(|i| async move {
                let mut attempts = 0;
                let body = loop {
                    attempts += 1;
                    match self.post_to(i, "/api/visitors", json!({}), None).await {
                        Err(error)
                            if attempts < 5
                                && error
                                    .downcast_ref::<HttpError>()
                                    .is_some_and(|e| e.status == reqwest::StatusCode::CONFLICT) =>
                        {
                            self.visitor_conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        other => break other?,
                    }
                };
                Session::from_body(&body).context("visitor")
            })
            .buffered(concurrency.max(1))
            .try_collect()
            .await
    }

    /// The server's resident memory in bytes.
    pub fn rss(&self) -> Option<u64> {
        self.server_pid.and_then(|pid| rss_of(&pid.to_string()))
    }

    /// The server's CPU time (user + system, all threads).
    pub fn cpu(&self) -> Option<Duration> {
        self.server_pid.and_then(cpu_of)
    }
}

/// VmRSS of `/proc/<pid>/status`, in bytes (`pid` may be `self`).
pub fn rss_of(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The load generator's own resident memory in bytes.
pub fn own_rss() -> Option<u64> {
    rss_of("self")
}

/// The load generator's own CPU time.
pub fn own_cpu() -> Option<Duration> {
    cpu_of("self")
}

/// utime + stime of a process from `/proc/<pid>/stat` (`pid` may be `self`).
pub fn cpu_of(pid: impl std::fmt::Display) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields after its closing parenthesis are fixed.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // Linux's USER_HZ is 100 on every architecture kefu targets.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// CPU time spent between two readings.
pub fn cpu_between(before: Option<Duration>, after: Option<Duration>) -> Option<Duration> {
    Some(after?.saturating_sub(before?))
}

/// Agents and visitors provisioned once and saved, so that a run can start from a server that
/// has done nothing but start (its memory then owes nothing to the provisioning).
#[derive(Debug, Serialize, Deserialize)]
pub struct Sessions {
    pub agents: Vec<Session>,
    pub visitors: Vec<Session>,
}

impl Sessions {
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn save(&self, path: &std::path::Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_vec(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }
}
