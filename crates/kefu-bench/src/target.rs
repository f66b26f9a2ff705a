//! The server under test: its REST provisioning routes, and what `/proc` says about its process
//! (and about the load generator's own).

use std::{net::IpAddr, time::Duration};

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
    pub url: String,
    http: reqwest::Client,
    admin_password: Option<String>,
    pub server_pid: Option<u32>,
    source_addrs: u8,
}

impl Target {
    pub fn new(
        url: String,
        admin_password: Option<String>,
        server_pid: Option<u32>,
        source_addrs: u8,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            http,
            admin_password,
            server_pid,
            source_addrs,
        })
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
        let mut request = self.http.post(format!("{}{path}", self.url)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path}: {status} {body}");
        }
        Ok(body)
    }

    /// `GET` with a bearer token; `None` when the route answers anything but success (a server
    /// without it).
    pub async fn get(&self, path: &str, token: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
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

    /// Creates `count` agents with fresh usernames and logs each in.
    pub async fn create_agents(&self, count: usize) -> anyhow::Result<Vec<Session>> {
        let admin = self.admin_token().await?;
        let run = format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis()
                % 0xff_ffff
        );
        let password = "bench-password";
        // Password hashing makes these slow by design: a few at a time.
        stream::iter(0..count)
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
            .try_collect()
            .await
    }

    /// Creates `count` visitors, `concurrency` requests at a time.
    pub async fn create_visitors(
        &self,
        count: usize,
        concurrency: usize,
    ) -> anyhow::Result<Vec<Session>> {
        stream::iter(0..count)
            .map(|_| async {
                let body = self.post("/api/visitors", json!({}), None).await?;
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
fn cpu_of(pid: impl std::fmt::Display) -> Option<Duration> {
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
