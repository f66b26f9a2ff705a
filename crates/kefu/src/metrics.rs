//! Prometheus metrics: counters and histograms kept in atomics (nothing takes a lock on the hot
//! path), rendered in the text exposition format at `GET /metrics`.
//!
//! The names are documented in docs/ops/metrics.md with the alert rules that use them; a renamed
//! metric breaks someone's dashboard, so names only ever get added.

use std::{
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// A monotonically increasing count.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Observations counted into fixed buckets (cumulative when rendered, as Prometheus wants).
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, plus the last for +Inf.
    buckets: Box<[AtomicU64]>,
    /// The sum, in millionths of the unit, so that it fits an integer atomic.
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// Latency buckets, in seconds: from 100 µs (a cached read) to 10 s (a database in trouble).
const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Messages per transaction of the group commit.
const BATCH_SIZES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let i = self.bounds.partition_point(|b| *b < value);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value * 1e6).max(0.0) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(elapsed.as_secs_f64());
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            match self.bounds.get(i) {
                Some(bound) => writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}"),
                None => writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}"),
            }
            .expect("writing to a String");
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {}", self.count());
    }
}

/// Why a request or an event was refused by an abuse limit: the `limit` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `private_message` over the per-connection rate.
    Messages,
    /// Any event over the per-connection event rate.
    Events,
    /// `POST /api/visitors` over the per-address rate.
    Visitors,
    /// `POST /api/login` over the per-address rate, or an account locked after failures.
    Login,
    /// Socket.IO handshakes over the per-address rate.
    Handshakes,
    /// A user over its maximum of simultaneous connections.
    ConnectionsPerUser,
    /// A new long-polling session over the cap of open ones.
    PollingSessions,
    /// A request with a body over the per-address cap of bodies in progress.
    Bodies,
    /// An upload over the per-user cap of uploads in progress.
    Uploads,
    /// A request body that stalled or trickled, cut off.
    SlowBodies,
}

impl Limit {
    const ALL: [Limit; 10] = [
        Limit::Messages,
        Limit::Events,
        Limit::Visitors,
        Limit::Login,
        Limit::Handshakes,
        Limit::ConnectionsPerUser,
        Limit::PollingSessions,
        Limit::Bodies,
        Limit::Uploads,
        Limit::SlowBodies,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Messages => "messages",
            Limit::Events => "events",
            Limit::Visitors => "visitors",
            Limit::Login => "login",
            Limit::Handshakes => "handshakes",
            Limit::ConnectionsPerUser => "connections_per_user",
            Limit::PollingSessions => "polling_sessions",
            Limit::Bodies => "bodies",
            Limit::Uploads => "uploads",
            Limit::SlowBodies => "slow_bodies",
        }
    }
}

/// How a Socket.IO handshake ended: the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    Accepted,
    Unauthorized,
    Unavailable,
    Limited,
}

impl Handshake {
    const ALL: [Handshake; 4] = [
        Handshake::Accepted,
        Handshake::Unauthorized,
        Handshake::Unavailable,
        Handshake::Limited,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Handshake::Accepted => "accepted",
            Handshake::Unauthorized => "unauthorized",
            Handshake::Unavailable => "unavailable",
            Handshake::Limited => "limited",
        }
    }
}

/// Everything counted by one server.
pub struct Metrics {
    handshakes: [Counter; Handshake::ALL.len()],
    rate_limited: [Counter; Limit::ALL.len()],
    /// `login` events answered with success.
    pub logins: Counter,
    /// The offline path's timers: conversations ended as abandoned, kept for the next agent as
    /// left offline, resolved as idle, and handed back to the queue because their agent left.
    pub abandoned: Counter,
    pub kept_offline: Counter,
    pub idle_resolved: Counter,
    pub requeued: Counter,
    /// `POST /api/login` with a wrong password (or an unknown user).
    pub login_failures: Counter,
    /// Messages accepted for storing (validated, authorised, within the rate).
    pub messages_received: Counter,
    /// Messages committed to the database.
    pub messages_stored: Counter,
    /// `new_private_message` events handed to this node's connections.
    pub messages_delivered: Counter,
    /// From a message's arrival to its ack (after the commit).
    pub message_ack_seconds: Histogram,
    /// One transaction of the group commit.
    pub store_write_seconds: Histogram,
    pub store_batch_size: Histogram,
    /// Transactions of the group commit that failed (the senders got an error, not an ack).
    pub store_write_errors: Counter,
    /// Connections closed because their send buffer was full.
    pub slow_consumer_disconnects: Counter,
    /// Connections closed because their token expired or was revoked.
    pub revoked_disconnects: Counter,
    /// API and Socket.IO requests refused for their `Origin`.
    pub forbidden_origins: Counter,
    /// E-mail: the outbox's sends.
    pub mail: MailMetrics,
}

/// The outbox's counts (services/mail): what went out, what failed and will be tried again, what
/// was given up, and what waits now.
#[derive(Default)]
pub struct MailMetrics {
    /// Mails handed to the SMTP server (a digest counts once).
    pub sent: Counter,
    /// Attempts that failed (each is tried again, until the mail is given up).
    pub failed: Counter,
    /// Attempts that were a retry of a failed one.
    pub retried: Counter,
    /// Mails given up after failing for 24 hours.
    pub given_up: Counter,
    /// Mails neither sent nor given up, as last counted.
    pub pending: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            handshakes: Default::default(),
            rate_limited: Default::default(),
            logins: Counter::default(),
            abandoned: Counter::default(),
            kept_offline: Counter::default(),
            idle_resolved: Counter::default(),
            requeued: Counter::default(),
            login_failures: Counter::default(),
            messages_received: Counter::default(),
            messages_stored: Counter::default(),
            messages_delivered: Counter::default(),
            message_ack_seconds: Histogram::new(SECONDS),
            store_write_seconds: Histogram::new(SECONDS),
            store_batch_size: Histogram::new(BATCH_SIZES),
            store_write_errors: Counter::default(),
            slow_consumer_disconnects: Counter::default(),
            revoked_disconnects: Counter::default(),
            forbidden_origins: Counter::default(),
            mail: MailMetrics::default(),
        }
    }
}

/// What is read at scrape time rather than counted.
pub struct Gauges {
    pub connections: usize,
    pub users_online: usize,
    /// `None` on a single node (no Redis).
    pub redis_connected: Option<bool>,
    /// Statements waiting for a turn at the database, by lane (reads, writing transactions).
    pub database_waiting: (usize, usize),
}

impl Metrics {
    pub fn handshake(&self, outcome: Handshake) {
        self.handshakes[outcome as usize].inc();
    }

    pub fn limited(&self, limit: Limit) {
        self.rate_limited[limit as usize].inc();
    }

    pub fn limited_count(&self, limit: Limit) -> u64 {
        self.rate_limited[limit as usize].get()
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let o = &mut out;
        header(o, "kefu_build_info", "gauge", "The running version.");
        line(
            o,
            &format!(
                "kefu_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            ),
            1,
        );
        gauge(
            o,
            "kefu_connections",
            "Open Socket.IO connections on this node.",
            gauges.connections as u64,
        );
        gauge(
            o,
            "kefu_users_online",
            "Users with at least one connection on this node.",
            gauges.users_online as u64,
        );
        header(
            o,
            "kefu_database_waiting",
            "gauge",
            "Statements waiting for a turn at the database's connections, by lane.",
        );
        line(
            o,
            "kefu_database_waiting{lane=\"reads\"}",
            gauges.database_waiting.0 as u64,
        );
        line(
            o,
            "kefu_database_waiting{lane=\"writes\"}",
            gauges.database_waiting.1 as u64,
        );
        if let Some(up) = gauges.redis_connected {
            gauge(
                o,
                "kefu_redis_connected",
                "1 while the link to Redis is up (several nodes only).",
                u64::from(up),
            );
        }
        header(
            o,
            "kefu_handshakes_total",
            "counter",
            "Socket.IO handshakes by outcome.",
        );
        for outcome in Handshake::ALL {
            line(
                o,
                &format!("kefu_handshakes_total{{outcome=\"{}\"}}", outcome.as_str()),
                self.handshakes[outcome as usize].get(),
            );
        }
        header(
            o,
            "kefu_rate_limited_total",
            "counter",
            "Requests, handshakes and events refused by an abuse limit.",
        );
        for limit in Limit::ALL {
            line(
                o,
                &format!("kefu_rate_limited_total{{limit=\"{}\"}}", limit.as_str()),
                self.limited_count(limit),
            );
        }
        let counters: [(&str, &str, &Counter); 13] = [
            (
                "kefu_logins_total",
                "login events answered with success.",
                &self.logins,
            ),
            (
                "kefu_login_failures_total",
                "Sign-ins refused for a wrong user name or password.",
                &self.login_failures,
            ),
            (
                "kefu_messages_received_total",
                "Messages accepted for storing.",
                &self.messages_received,
            ),
            (
                "kefu_messages_stored_total",
                "Messages committed to the database.",
                &self.messages_stored,
            ),
            (
                "kefu_messages_delivered_total",
                "Messages handed to this node's connections.",
                &self.messages_delivered,
            ),
            (
                "kefu_store_write_errors_total",
                "Group-commit transactions that failed.",
                &self.store_write_errors,
            ),
            (
                "kefu_slow_consumer_disconnects_total",
                "Connections closed because they did not keep up.",
                &self.slow_consumer_disconnects,
            ),
            (
                "kefu_revoked_disconnects_total",
                "Connections closed because their token expired or was revoked.",
                &self.revoked_disconnects,
            ),
            (
                "kefu_forbidden_origins_total",
                "API and Socket.IO requests refused for their Origin.",
                &self.forbidden_origins,
            ),
            (
                "kefu_conversations_abandoned_total",
                "Waiting conversations ended because their customer left.",
                &self.abandoned,
            ),
            (
                "kefu_conversations_kept_offline_total",
                "Waiting conversations whose customer left an e-mail, kept for the next agent.",
                &self.kept_offline,
            ),
            (
                "kefu_conversations_idle_resolved_total",
                "Conversations resolved by kefu: silent while their customer was away.",
                &self.idle_resolved,
            ),
            (
                "kefu_conversations_requeued_total",
                "Conversations handed back to the queue because their agent left.",
                &self.requeued,
            ),
        ];
        for (name, help, counter) in counters {
            header(o, name, "counter", help);
            line(o, name, counter.get());
        }
        let histograms: [(&str, &str, &Histogram); 3] = [
            (
                "kefu_message_ack_seconds",
                "From a message's arrival to its ack, after the commit.",
                &self.message_ack_seconds,
            ),
            (
                "kefu_store_write_seconds",
                "One group-commit transaction.",
                &self.store_write_seconds,
            ),
            (
                "kefu_store_batch_size",
                "Messages per group-commit transaction.",
                &self.store_batch_size,
            ),
        ];
        for (name, help, histogram) in histograms {
            header(o, name, "histogram", help);
            histogram.render(o, name);
        }
        self.mail.render(o);
        render_process(o);
        out
    }
}

impl MailMetrics {
    fn render(&self, o: &mut String) {
        let counters: [(&str, &str, &Counter); 4] = [
            (
                "kefu_mail_sent_total",
                "E-mails handed to the SMTP server.",
                &self.sent,
            ),
            (
                "kefu_mail_failed_total",
                "Attempts to send an e-mail that failed.",
                &self.failed,
            ),
            (
                "kefu_mail_retried_total",
                "Attempts that retried a failed e-mail.",
                &self.retried,
            ),
            (
                "kefu_mail_given_up_total",
                "E-mails given up after failing for 24 hours.",
                &self.given_up,
            ),
        ];
        for (name, help, counter) in counters {
            header(o, name, "counter", help);
            line(o, name, counter.get());
        }
        gauge(
            o,
            "kefu_mail_pending",
            "E-mails in the outbox, neither sent nor given up.",
            self.pending.load(Ordering::Relaxed),
        );
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn line(out: &mut String, series: &str, value: u64) {
    let _ = writeln!(out, "{series} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "gauge", help);
    line(out, name, value);
}

/// The standard `process_*` metrics, from /proc (Linux only; elsewhere they are left out).
fn render_process(out: &mut String) {
    let Some(process) = ProcessStats::read() else {
        return;
    };
    header(
        out,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
    );
    line(out, "process_resident_memory_bytes", process.resident_bytes);
    header(
        out,
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time spent in seconds.",
    );
    let _ = writeln!(out, "process_cpu_seconds_total {}", process.cpu_seconds);
    if let Some(fds) = process.open_fds {
        gauge(
            out,
            "process_open_fds",
            "Number of open file descriptors.",
            fds,
        );
    }
}

struct ProcessStats {
    resident_bytes: u64,
    cpu_seconds: f64,
    open_fds: Option<u64>,
}

impl ProcessStats {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name may hold spaces and parentheses: fields are counted after the last ')'.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // Fields 14 and 15 (utime, stime) and 24 (rss), numbered from 1 with pid and comm first.
        let ticks = |i: usize| fields.get(i - 3)?.parse::<u64>().ok();
        let (utime, stime, rss_pages) = (ticks(14)?, ticks(15)?, ticks(24)?);
        // The kernel's USER_HZ and page size are 100 and 4096 on every Linux kefu targets.
        Some(Self {
            resident_bytes: rss_pages * 4096,
            cpu_seconds: (utime + stime) as f64 / 100.0,
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_renders_cumulative_buckets_with_sum_and_count() {
        let h = Histogram::new(&[0.001, 0.01]);
        h.observe(0.0005);
        h.observe(0.001);
        h.observe(0.5);
        let mut out = String::new();
        h.render(&mut out, "x");
        assert_eq!(
            out,
            "x_bucket{le=\"0.001\"} 2\nx_bucket{le=\"0.01\"} 2\nx_bucket{le=\"+Inf\"} 3\n\
             x_sum 0.5015\nx_count 3\n"
        );
    }

    /// Every metric an operator's alert or dashboard names, in the files docs/ops ships.
    fn metric_names_in(text: &str) -> std::collections::BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("kefu_") || word.starts_with("process_"))
            .map(|word| word.to_owned())
            .collect()
    }

    #[test]
    fn the_alerts_and_the_dashboard_use_only_metrics_that_exist() {
        let m = Metrics::default();
        m.handshake(Handshake::Accepted);
        let served = m.render(&Gauges {
            connections: 0,
            users_online: 0,
            redis_connected: Some(true),
            database_waiting: (0, 0),
        });
        // A series, or a metric's name (a histogram's is only in its `# TYPE` line).
        let exists = |name: &str| {
            served.lines().any(|line| {
                let line = line.strip_prefix("# TYPE ").unwrap_or(line);
                line.split([' ', '{'])
                    .next()
                    .is_some_and(|series| series == name)
            })
        };
        for (file, text) in [
            ("alerts.yml", include_str!("../../../docs/ops/alerts.yml")),
            (
                "grafana-dashboard.json",
                include_str!("../../../docs/ops/grafana-dashboard.json"),
            ),
            ("metrics.md", include_str!("../../../docs/ops/metrics.md")),
        ] {
            let names = metric_names_in(text);
            assert!(names.len() > 5, "{file} names few metrics: {names:?}");
            for name in names {
                assert!(
                    exists(&name),
                    "{file} uses {name}, which kefu does not serve"
                );
            }
        }
    }

    #[test]
    fn every_limit_and_outcome_has_its_own_series() {
        let m = Metrics::default();
        m.limited(Limit::Login);
        m.limited(Limit::Login);
        m.handshake(Handshake::Limited);
        let text = m.render(&Gauges {
            connections: 3,
            users_online: 2,
            redis_connected: None,
            database_waiting: (4, 0),
        });
        assert!(text.contains("kefu_rate_limited_total{limit=\"login\"} 2\n"));
        assert!(text.contains("kefu_rate_limited_total{limit=\"visitors\"} 0\n"));
        assert!(text.contains("kefu_handshakes_total{outcome=\"limited\"} 1\n"));
        assert!(text.contains("kefu_connections 3\n"));
        assert!(text.contains("kefu_database_waiting{lane=\"reads\"} 4\n"));
        assert!(!text.contains("kefu_redis_connected"));
        assert!(text.contains("process_resident_memory_bytes "));
    }
}
