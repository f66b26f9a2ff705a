//! One typed [`Settings`], layered: built-in defaults, then an optional TOML file, then `KEFU_*`
//! environment variables, then command-line flags (the last one wins).

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address of the HTTP + Socket.IO listener.
    pub listen: SocketAddr,
    /// TLS certificate chain and private key (PEM files): with both, the listener speaks HTTPS and
    /// WSS itself, without a proxy in front.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Where the SQLite database, the generated JWT secret and uploads live.
    pub data_dir: PathBuf,
    /// `sqlite://…`, `mysql://…` or `postgres://…`; default: `sqlite://<data_dir>/kefu.db`.
    pub database_url: Option<String>,
    /// Connections in the database pool; by default 8 for SQLite, 16 for MySQL and PostgreSQL.
    pub database_max_connections: Option<u32>,
    /// Redis for several nodes (not used by a single node).
    pub redis_url: Option<String>,
    /// Prefix of kefu's Redis keys and channels: clusters sharing one Redis need distinct ones.
    pub redis_prefix: String,
    /// This node's name on the admin page; default `<hostname>-<pid>`. Unique in a cluster.
    pub node_id: Option<String>,
    /// With Redis: a node that has not refreshed its liveness for this long is taken for dead by
    /// the others, and its users go offline.
    pub node_timeout_ms: u64,
    /// Password of the `admin` user, created on first start when no admin exists.
    pub admin_password: Option<Secret>,
    /// Encryption at rest of message and note content: keys written `id:base64` (32 bytes), the
    /// first sealing new content, every one opening what it sealed. Empty: content is stored as
    /// it is.
    pub encryption_keys: Vec<Secret>,
    /// HS256 secret; default: generated once and kept in `<data_dir>/jwt-secret`.
    pub jwt_secret: Option<Secret>,
    /// Lifetime of visitor tokens, in seconds (default 30 days).
    pub customer_token_ttl: u64,
    /// Lifetime of agent and admin tokens, in seconds (default 12 hours).
    pub staff_token_ttl: u64,
    /// Largest message content in bytes of UTF-8.
    pub max_message_bytes: usize,
    /// Messages per second per connection; 0 turns the limit off.
    pub message_rate_limit: u32,
    /// How many messages a connection may send at once before the rate applies.
    pub message_rate_burst: u32,
    /// Events of any other kind per second per connection, and at once; a rate of 0 turns it off.
    pub event_rate_limit: u32,
    pub event_rate_burst: u32,
    /// Visitor sessions (`POST /api/visitors`) one client address may create per minute (and at
    /// once); 0 turns the limit off.
    pub visitor_rate_per_minute: u32,
    /// Socket.IO handshakes per second per client address, and at once; 0 turns it off.
    pub handshake_rate_limit: u32,
    pub handshake_rate_burst: u32,
    /// Failed sign-ins one client address may make per minute, after a first `login_failures_burst`;
    /// then every sign-in from it is refused until it waited. One account takes `login_failures_burst`
    /// failures from anywhere, then one a minute. 0 turns both off.
    pub login_failures_per_minute: u32,
    pub login_failures_burst: u32,
    /// Connections one user may hold on one node; 0 means no limit.
    pub max_connections_per_user: usize,
    /// Long-polling requests open at once, beyond which new long-polling sessions are refused
    /// (WebSocket ones are not); 0 means no limit.
    pub max_polling_requests: usize,
    /// Addresses of reverse proxies (nginx) whose `X-Forwarded-For` names the client; from anyone
    /// else the header is ignored. Per-address limits count the client, not the proxy.
    pub trusted_proxies: Vec<IpAddr>,
    /// Origins (`https://shop.example`) whose pages may use the API and open sockets, and frame
    /// the chat; the server's own origin always may. Empty: any origin (set it in production).
    pub allowed_origins: Vec<String>,
    /// How often open connections are checked for an expired or revoked token, in milliseconds.
    pub token_recheck_ms: u64,
    /// A separate listener for `GET /metrics` (Prometheus); without it, `/metrics` is served on the
    /// main listener.
    pub metrics_listen: Option<SocketAddr>,
    /// A connection that sent a `heartbeat` and then stays silent this long is disconnected.
    pub heartbeat_timeout_ms: u64,
    /// Outgoing packets buffered per connection before it counts as a slow consumer.
    pub socket_buffer_packets: usize,
    /// Engine.IO ping interval and timeout in milliseconds (Socket.IO's defaults: 25 s and 20 s).
    /// A connection whose buffer is full is closed at its next ping.
    pub ping_interval_ms: u64,
    pub ping_timeout_ms: u64,
    /// Messages written in one database transaction at most.
    pub write_batch_max: usize,
    /// Largest attachment in bytes.
    pub attachment_max_bytes: u64,
    /// Media types an attachment may have (checked against the file's first bytes).
    pub attachment_types: Vec<String>,
    /// Where attachments are stored; default `<data_dir>/attachments`.
    pub attachment_dir: Option<PathBuf>,
    /// A waiting conversation whose customer has had no connection for this many seconds leaves
    /// the queue as abandoned (one whose customer left an e-mail, or came through the offline
    /// form, stays for the next agent).
    pub queue_abandon_after: u64,
    /// An assigned conversation whose customer has gone and where nothing was said for this many
    /// seconds is resolved by kefu; 0 turns it off.
    pub idle_resolve_after: u64,
    /// The conversations of an agent offline this many seconds go back to the queue (signing out
    /// sends them back at once); 0 turns it off.
    pub agent_offline_requeue_after: u64,
    /// A customer who asks for an agent (`csId`) who is offline waits this many seconds
    /// for that agent only, then for anyone.
    pub requested_agent_wait: u64,
    /// How often the offline path's timers look (milliseconds); one node of a cluster runs them.
    pub timers_every_ms: u64,
    /// Outgoing mail (docs/mail.md): `smtps://user:pass@host` (TLS from the first byte),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS or nothing), `smtp://host:port` (plain,
    /// for a relay on the same machine). Without it kefu sends no mail at all.
    pub smtp_url: Option<Secret>,
    /// The sender of kefu's mails, `Shop <support@shop.example>`.
    pub smtp_from: Option<String>,
    /// Where customers' replies go (`Reply-To`): the mailbox kefu polls, or the provider's
    /// inbound address. Default: `smtp_from`.
    pub mail_reply_to: Option<String>,
    /// The mailbox of customers' replies: `imap://user:pass@host:port/INBOX` or `imaps://…`.
    pub imap_url: Option<Secret>,
    /// How often that mailbox is polled, in milliseconds.
    pub imap_poll_ms: u64,
    /// The shared secret of the inbound webhook (`POST /api/mail/inbound`); without it the
    /// webhook refuses everything.
    pub mail_inbound_secret: Option<Secret>,
    /// The base of links in mails (`https://chat.shop.example`); default derived from `listen`.
    pub public_url: Option<String>,
    /// An assigned conversation whose customer has had no answer this long (seconds) is mailed
    /// to its agent; 0 turns it off.
    pub mail_unanswered_after: u64,
    /// An agent's reply the customer has not seen since leaving is mailed after this many
    /// seconds (at most 120).
    pub mail_reply_delay: u64,
    /// At most one mail per recipient in this many seconds; what comes in between goes as one
    /// digest when the time is up.
    pub mail_recipient_interval: u64,
    /// How often the mail triggers and the outbox run, in milliseconds.
    pub mail_every_ms: u64,
    /// The pause after a first failed attempt to send, in milliseconds; it doubles with each
    /// failure, up to an hour, and a mail is given up after 24 hours.
    pub mail_retry_ms: u64,
    /// Create the demo agents `alice` and `bob` on start.
    #[serde(deserialize_with = "flexible_bool")]
    pub demo: bool,
    /// A tracing filter, e.g. `info` or `kefu=debug,warn`.
    pub log: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            tls_cert: None,
            tls_key: None,
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: None,
            redis_url: None,
            redis_prefix: "kefu".into(),
            node_id: None,
            node_timeout_ms: 3000,
            admin_password: None,
            jwt_secret: None,
            encryption_keys: Vec::new(),
            customer_token_ttl: 30 * 24 * 3600,
            staff_token_ttl: 12 * 3600,
            max_message_bytes: 8 * 1024,
            message_rate_limit: 20,
            message_rate_burst: 40,
            event_rate_limit: 50,
            event_rate_burst: 200,
            visitor_rate_per_minute: 30,
            handshake_rate_limit: 20,
            handshake_rate_burst: 200,
            login_failures_per_minute: 5,
            login_failures_burst: 10,
            max_connections_per_user: 20,
            max_polling_requests: 10_000,
            trusted_proxies: Vec::new(),
            allowed_origins: Vec::new(),
            token_recheck_ms: 30_000,
            metrics_listen: None,
            heartbeat_timeout_ms: 4000,
            socket_buffer_packets: 1024,
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            write_batch_max: 256,
            attachment_max_bytes: 10 * 1024 * 1024,
            attachment_types: [
                "image/png",
                "image/jpeg",
                "image/gif",
                "image/webp",
                "application/pdf",
                "text/plain",
            ]
            .map(String::from)
            .to_vec(),
            attachment_dir: None,
            queue_abandon_after: 300,
            idle_resolve_after: 1800,
            agent_offline_requeue_after: 300,
            requested_agent_wait: 120,
            timers_every_ms: 5000,
            smtp_url: None,
            smtp_from: None,
            mail_reply_to: None,
            imap_url: None,
            imap_poll_ms: 30_000,
            mail_inbound_secret: None,
            public_url: None,
            mail_unanswered_after: 600,
            mail_reply_delay: 60,
            mail_recipient_interval: 300,
            mail_every_ms: 1000,
            mail_retry_ms: 30_000,
            demo: false,
            log: "info".into(),
            log_format: LogFormat::Text,
        }
    }
}

impl Settings {
    /// Layers the sources in order. `file` is the TOML file named by `--config` or `KEFU_CONFIG`;
    /// `flags` holds only the flags given on the command line.
    pub fn load(
        file: Option<&std::path::Path>,
        flags: impl Serialize,
    ) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(
                Env::prefixed("KEFU_")
                    .ignore(&["config", "bin"])
                    .filter(|key| !key.is_empty()),
            )
            .merge(Serialized::globals(flags))
            .extract::<Settings>()
            .map(Settings::normalized)
            .map_err(Box::new)
    }

    /// Empty strings in the environment mean "not set".
    fn normalized(mut self) -> Self {
        for value in [
            &mut self.database_url,
            &mut self.redis_url,
            &mut self.smtp_from,
            &mut self.mail_reply_to,
            &mut self.public_url,
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                *value = None;
            }
        }
        for secret in [
            &mut self.admin_password,
            &mut self.jwt_secret,
            &mut self.smtp_url,
            &mut self.imap_url,
            &mut self.mail_inbound_secret,
        ] {
            if secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
                *secret = None;
            }
        }
        self
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("kefu.db").display()
            ),
        }
    }

    pub fn attachment_dir(&self) -> PathBuf {
        self.attachment_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("attachments"))
    }

    /// The base of links in mails, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let scheme = if self.tls_cert.is_some() {
                    "https"
                } else {
                    "http"
                };
                let host = match self.listen.ip() {
                    ip if ip.is_unspecified() => "localhost".to_owned(),
                    IpAddr::V6(ip) => format!("[{ip}]"),
                    ip => ip.to_string(),
                };
                format!("{scheme}://{host}:{}", self.listen.port())
            }
        }
    }

    pub fn node_timeout(&self) -> Duration {
        Duration::from_millis(self.node_timeout_ms.max(400))
    }

    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat_timeout_ms)
    }

    /// The offline path's timers, as the chat service takes them.
    pub fn timers(&self) -> Timers {
        let seconds = |s: u64| Duration::from_secs(s);
        Timers {
            every: Duration::from_millis(self.timers_every_ms.clamp(50, 60_000)),
            abandon_after: seconds(self.queue_abandon_after),
            idle_resolve_after: (self.idle_resolve_after > 0)
                .then(|| seconds(self.idle_resolve_after)),
            agent_offline_requeue_after: (self.agent_offline_requeue_after > 0)
                .then(|| seconds(self.agent_offline_requeue_after)),
            requested_agent_wait: seconds(self.requested_agent_wait),
        }
    }
}

/// The offline path's timers ([`Settings::timers`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    pub every: Duration,
    pub abandon_after: Duration,
    pub idle_resolve_after: Option<Duration>,
    pub agent_offline_requeue_after: Option<Duration>,
    pub requested_agent_wait: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Settings::default().timers()
    }
}

/// A switch as people write it in a file or the environment: `true`/`false`, `1`/`0`, `yes`/`no`,
/// `on`/`off`, in any case. (The environment gives `KEFU_DEMO=1` to serde as a number.)
fn flexible_bool<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Bool(bool),
        Number(i64),
        Text(String),
    }
    let invalid = |shown: &dyn fmt::Display| {
        serde::de::Error::custom(format!(
            "expected a boolean (true/false, 1/0, yes/no, on/off), found {shown}"
        ))
    };
    match Written::deserialize(deserializer)? {
        Written::Bool(b) => Ok(b),
        Written::Number(1) => Ok(true),
        Written::Number(0) => Ok(false),
        Written::Number(n) => Err(invalid(&n)),
        Written::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" | "" => Ok(false),
            _ => Err(invalid(&format_args!("{text:?}"))),
        },
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A value that must never reach a log line: `Debug` prints `***`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail wants its own error type
mod tests {
    use super::*;

    #[derive(Serialize, Default)]
    struct NoFlags {}

    #[test]
    fn defaults_listen_on_localhost_3000_with_sqlite_in_the_data_dir() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            let settings = Settings::load(None, NoFlags::default()).map_err(|e| *e)?;
            assert_eq!(settings.listen.to_string(), "127.0.0.1:3000");
            assert!(
                settings
                    .database_url()
                    .starts_with("sqlite://./data/kefu.db")
            );
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_file_and_flags_override_environment() {
        #[derive(Serialize)]
        struct Flags {
            listen: &'static str,
        }
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "kefu.toml",
                "listen = \"0.0.0.0:1\"\nmax_message_bytes = 100\nlog = \"debug\"",
            )?;
            jail.set_env("KEFU_MAX_MESSAGE_BYTES", "200");
            jail.set_env("KEFU_LISTEN", "0.0.0.0:2");
            jail.set_env("KEFU_DATABASE_URL", "");
            let settings = Settings::load(
                Some("kefu.toml".as_ref()),
                Flags {
                    listen: "127.0.0.1:3",
                },
            )
            .map_err(|e| *e)?;
            assert_eq!(settings.max_message_bytes, 200);
            assert_eq!(settings.log, "debug");
            assert_eq!(settings.listen.to_string(), "127.0.0.1:3");
            assert_eq!(settings.database_url, None);
            Ok(())
        });
    }

    #[test]
    fn lists_of_origins_and_proxies_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env(
                "KEFU_ALLOWED_ORIGINS",
                r#"["https://shop.example","https://www.shop.example:8443"]"#,
            );
            jail.set_env("KEFU_TRUSTED_PROXIES", r#"["127.0.0.1","::1"]"#);
            jail.set_env("KEFU_METRICS_LISTEN", "127.0.0.1:9100");
            let no_flags = std::collections::BTreeMap::<String, String>::new();
            let settings = Settings::load(None, no_flags).map_err(|e| *e)?;
            assert_eq!(
                settings.allowed_origins,
                ["https://shop.example", "https://www.shop.example:8443"]
            );
            let proxies: Vec<String> = settings
                .trusted_proxies
                .iter()
                .map(|p| p.to_string())
                .collect();
            assert_eq!(proxies, ["127.0.0.1", "::1"]);
            assert_eq!(
                settings.metrics_listen.unwrap().to_string(),
                "127.0.0.1:9100"
            );
            Ok(())
        });
    }

    #[test]
    fn switches_take_the_usual_spellings_of_a_boolean() {
        for (written, expected) in [
            ("1", true),
            ("true", true),
            ("TRUE", true),
            ("yes", true),
            ("on", true),
            ("0", false),
            ("false", false),
            ("No", false),
            ("off", false),
        ] {
            figment::Jail::expect_with(|jail| {
                jail.clear_env();
                jail.set_env("KEFU_DEMO", written);
                let settings = Settings::load(None, NoFlags::default()).map_err(|e| *e)?;
                assert_eq!(settings.demo, expected, "KEFU_DEMO={written}");
                Ok(())
            });
        }
    }

    #[test]
    fn a_switch_that_is_not_a_boolean_is_refused_with_the_spellings_it_takes() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("KEFU_DEMO", "maybe");
            let error = Settings::load(None, NoFlags::default()).unwrap_err();
            assert!(error.to_string().contains("1/0, yes/no"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn a_switch_in_the_settings_file_may_be_a_boolean_or_a_number() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("kefu.toml", "demo = 1")?;
            let settings =
                Settings::load(Some("kefu.toml".as_ref()), NoFlags::default()).map_err(|e| *e)?;
            assert!(settings.demo);
            jail.create_file("kefu.toml", "demo = true")?;
            let settings =
                Settings::load(Some("kefu.toml".as_ref()), NoFlags::default()).map_err(|e| *e)?;
            assert!(settings.demo);
            Ok(())
        });
    }

    #[test]
    fn secrets_are_hidden_in_debug_output() {
        let settings = Settings {
            jwt_secret: Some(Secret::new("hunter2")),
            smtp_url: Some(Secret::new("smtps://shop:mailpass@mail.example")),
            imap_url: Some(Secret::new("imaps://shop:imappass@mail.example/INBOX")),
            mail_inbound_secret: Some(Secret::new("hooksecret")),
            ..Settings::default()
        };
        let shown = format!("{settings:?}");
        for secret in ["hunter2", "mailpass", "imappass", "hooksecret"] {
            assert!(!shown.contains(secret), "{secret} shown");
        }
    }
}
