//! Black-box harness: a real kefu server on port 0 with a fresh database of each kind, driven over
//! HTTP and Socket.IO.
#![allow(dead_code)]

use std::{path::PathBuf, time::Duration};

use kefu::Settings;
use kefu_wire::Client;
use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinHandle};

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::MySql => "mysql",
            Backend::Postgres => "postgres",
        }
    }

    /// `KEFU_TEST_BACKENDS=sqlite,postgres` narrows the run; by default every backend runs, and a
    /// backend that cannot be reached fails its tests.
    pub fn enabled(self) -> bool {
        match std::env::var("KEFU_TEST_BACKENDS") {
            Ok(list) => list.split(',').any(|b| b.trim() == self.name()),
            Err(_) => true,
        }
    }
}

/// Generates one `#[tokio::test]` per backend for each story `async fn story(backend: Backend)`.
#[macro_export]
macro_rules! on_every_backend {
    ($($story:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $story() { if $crate::common::Backend::Sqlite.enabled() { super::$story($crate::common::Backend::Sqlite).await } } )* }
        mod mysql { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $story() { if $crate::common::Backend::MySql.enabled() { super::$story($crate::common::Backend::MySql).await } } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $story() { if $crate::common::Backend::Postgres.enabled() { super::$story($crate::common::Backend::Postgres).await } } )* }
    };
}

/// A fresh database, dropped by [`TestDatabase::drop_now`].
pub struct TestDatabase {
    pub backend: Backend,
    pub url: Option<String>,
    name: String,
}

pub const MYSQL_ADMIN_URL: &str = "mysql://root@127.0.0.1:3306/test";
pub const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        let name = format!("kefu_test_{}", kefu::services::auth::random_hex(6));
        let url = match backend {
            Backend::Sqlite => None,
            Backend::MySql => {
                admin_execute(MYSQL_ADMIN_URL, &format!("CREATE DATABASE {name}")).await;
                Some(format!("mysql://root@127.0.0.1:3306/{name}"))
            }
            Backend::Postgres => {
                admin_execute(POSTGRES_ADMIN_URL, &format!("CREATE DATABASE {name}")).await;
                Some(format!("postgres://postgres@127.0.0.1:5432/{name}"))
            }
        };
        Self { backend, url, name }
    }

    pub async fn drop_now(&self) {
        match self.backend {
            Backend::Sqlite => {}
            Backend::MySql => {
                admin_execute(
                    MYSQL_ADMIN_URL,
                    &format!("DROP DATABASE IF EXISTS {}", self.name),
                )
                .await
            }
            Backend::Postgres => {
                admin_execute(
                    POSTGRES_ADMIN_URL,
                    &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                )
                .await
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

pub async fn admin_execute(url: &str, statement: &str) {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    conn.execute(statement)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    let _ = conn.close().await;
}

/// The one integer (or NULL) that `query` gives, read straight from the database at `url`: a
/// test checks there what no API shows (`COUNT(*)` of events, a recorded time).
pub async fn scalar(url: &str, query: &str) -> Option<i64> {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    let value = sqlx::query(query)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .try_get::<Option<i64>, _>(0)
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    let _ = conn.close().await;
    value
}

pub fn temp_dir() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("kefu-test-{}", kefu::services::auth::random_hex(6)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn settings(data_dir: PathBuf, database_url: Option<String>) -> Settings {
    Settings {
        data_dir,
        database_url,
        admin_password: Some(kefu::config::Secret::new(ADMIN_PASSWORD)),
        log: std::env::var("KEFU_LOG").unwrap_or_else(|_| "warn".into()),
        // Every client of a test comes from 127.0.0.1: tests of the per-address limits turn
        // them on.
        visitor_rate_per_minute: 0,
        handshake_rate_limit: 0,
        login_failures_per_minute: 0,
        ..Settings::default()
    }
}

pub struct TestServer {
    pub base: String,
    pub state: kefu::AppState,
    pub db: TestDatabase,
    pub data_dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    http: reqwest::Client,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Self {
        let db = TestDatabase::create(backend).await;
        let data_dir = temp_dir();
        let mut settings = settings(data_dir.clone(), db.url.clone());
        configure(&mut settings);
        let (base, state, tx, handle) = Self::launch(settings).await;
        Self {
            base,
            state,
            db,
            data_dir,
            shutdown: Some(tx),
            handle: Some(handle),
            http: reqwest::Client::new(),
        }
    }

    async fn launch(
        settings: Settings,
    ) -> (
        String,
        kefu::AppState,
        oneshot::Sender<()>,
        JoinHandle<anyhow::Result<()>>,
    ) {
        kefu::telemetry::init(&settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let server = kefu::Server::open(settings).await.expect("server opens");
        let state = server.state().clone();
        let handle = tokio::spawn(server.serve(listener, async move {
            let _ = rx.await;
        }));
        (base, state, tx, handle)
    }

    /// Stops gracefully and starts again on the same database and data directory (on a new
    /// port), with settings changed by `configure`.
    pub async fn restart_with(&mut self, configure: impl FnOnce(&mut Settings)) {
        self.stop_keep_database().await;
        let mut settings = settings(self.data_dir.clone(), self.db.url.clone());
        configure(&mut settings);
        let (base, state, tx, handle) = Self::launch(settings).await;
        self.base = base;
        self.state = state;
        self.shutdown = Some(tx);
        self.handle = Some(handle);
    }

    /// The URL of the server's database, to read it directly.
    pub fn database_url(&self) -> String {
        self.db
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("kefu.db").display()))
    }

    /// Graceful stop; the database stays.
    pub async fn stop_keep_database(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(20), handle)
                .await
                .expect("the server stops within 20 s")
                .expect("the server task does not panic")
                .expect("the server stops cleanly");
        }
    }

    pub async fn stop(mut self) {
        self.stop_keep_database().await;
        self.db.drop_now().await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("HTTP request");
        (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        )
    }

    pub async fn admin_token(&self) -> String {
        let (status, body) = self
            .post(
                "/api/login",
                json!({"username": "admin", "password": ADMIN_PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// A new agent: (token, id).
    pub async fn agent(&self, username: &str) -> (String, String) {
        let admin = self.admin_token().await;
        let password = "agent-password";
        let (status, body) = self
            .post(
                "/api/agents",
                json!({"username": username, "password": password}),
                Some(&admin),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = self
            .post(
                "/api/login",
                json!({"username": username, "password": password}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        (
            body["token"].as_str().unwrap().to_owned(),
            body["user"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// Lets an agent hold `capacity` open conversations at once (the default is 5).
    pub async fn set_capacity(&self, agent_id: &str, capacity: i64) {
        let admin = self.admin_token().await;
        let (status, body) = self
            .request(
                reqwest::Method::PATCH,
                &format!("/api/agents/{agent_id}"),
                Some(json!({ "capacity": capacity })),
                Some(&admin),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// The staff member `id` as `GET /api/agents` lists it to an admin.
    pub async fn listed_agent(&self, id: &str) -> Value {
        let admin = self.admin_token().await;
        let (status, body) = self
            .request(reqwest::Method::GET, "/api/agents", None, Some(&admin))
            .await;
        assert_eq!(status, 200, "{body}");
        body["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} is not listed: {body}"))
    }

    /// A new visitor: (token, id).
    pub async fn visitor(&self) -> (String, String) {
        let (status, body) = self.post("/api/visitors", json!({}), None).await;
        assert_eq!(status, 201, "{body}");
        (
            body["token"].as_str().unwrap().to_owned(),
            body["user"]["id"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn connect(&self, token: &str) -> Client {
        Client::connect(&self.base, json!({ "token": token }))
            .await
            .expect("socket connects")
    }

    /// Connects and logs in.
    pub async fn login(&self, token: &str, user_id: &str) -> (Client, Value) {
        let client = self.connect(token).await;
        let ack = client
            .call("login", json!({ "userId": user_id }))
            .await
            .unwrap();
        assert_eq!(ack["ok"], true, "{ack}");
        (client, ack)
    }

    /// A customer arrives: connects, logs in (asking for `cs_id` if given) and writes its first
    /// message, `content`, which starts its conversation. The client, and where the conversation
    /// went as `{csId, queued, conversationId, seq}` (the first message's `seq`).
    pub async fn arrive_with(
        &self,
        token: &str,
        user_id: &str,
        cs_id: Option<&str>,
        content: &str,
    ) -> (Client, Value) {
        let client = self.connect(token).await;
        let mut login = json!({ "userId": user_id });
        if let Some(cs_id) = cs_id {
            login["csId"] = json!(cs_id);
        }
        let ack = client.call("login", login).await.unwrap();
        assert_eq!(ack["ok"], true, "{ack}");
        let sent = client
            .call("private_message", json!({ "content": content }))
            .await
            .unwrap();
        assert_eq!(sent["ok"], true, "{sent}");
        let started = &sent["started"];
        assert!(
            started.is_object(),
            "the first message starts a conversation: {sent}"
        );
        let outcome = json!({
            "csId": started["csId"],
            "queued": started["queued"],
            "conversationId": sent["conversationId"],
            "seq": sent["seq"],
        });
        (client, outcome)
    }

    /// [`TestServer::arrive_with`] the message "hello", asking for nobody.
    pub async fn arrive(&self, token: &str, user_id: &str) -> (Client, Value) {
        self.arrive_with(token, user_id, None, "hello").await
    }
}

/// The `kefu` binary as a child process, for what needs a real process: kill -9, signals.
pub struct Process {
    pub child: std::process::Child,
    pub base: String,
    /// What it logged (standard error), line by line.
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Process {
    pub fn spawn(data_dir: &std::path::Path, database_url: Option<&str>) -> Self {
        Self::spawn_with(data_dir, database_url, &[])
    }

    /// With extra `KEFU_*` settings in the environment.
    pub fn spawn_with(
        data_dir: &std::path::Path,
        database_url: Option<&str>,
        env: &[(&str, String)],
    ) -> Self {
        Self::spawn_wrapped(&[], data_dir, database_url, env)
    }

    /// Through `wrapper` (a program and its arguments, to which the kefu binary and its own
    /// arguments are appended): `sh -c '…; exec "$0" "$@"'`, say.
    pub fn spawn_wrapped(
        wrapper: &[&str],
        data_dir: &std::path::Path,
        database_url: Option<&str>,
        env: &[(&str, String)],
    ) -> Self {
        use std::io::BufRead;
        let kefu = env!("CARGO_BIN_EXE_kefu");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = std::process::Command::new(program);
                command.args(args).arg(kefu);
                command
            }
            None => std::process::Command::new(kefu),
        };
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("KEFU_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("KEFU_MESSAGE_RATE_LIMIT", "0")
            .env("KEFU_VISITOR_RATE_PER_MINUTE", "0")
            .env("KEFU_HANDSHAKE_RATE_LIMIT", "0")
            .env("KEFU_LOG", "warn")
            .env_remove("KEFU_DATABASE_URL")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(url) = database_url {
            command.env("KEFU_DATABASE_URL", url);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the kefu binary starts");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let kept = logs.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("{line}");
                kept.lock().unwrap().push(line);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("kefu prints its address");
        Self { child, base, logs }
    }

    /// The lines it logged so far that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "kefu did not exit within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP relay in front of a database server that can be cut, to play an outage: every relayed
/// connection drops and new ones are refused until it is restored.
pub struct Outage {
    pub port: u16,
    down: tokio::sync::watch::Sender<bool>,
}

impl Outage {
    pub async fn relay_to(target: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (down, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if *watch.borrow() {
                    continue;
                }
                let mut watch = watch.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Self { port, down }
    }

    pub fn cut(&self) {
        self.down.send_replace(true);
    }

    pub fn restore(&self) {
        self.down.send_replace(false);
    }
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// `POST` with a JSON body to any server: (status, body).
pub async fn post_json(base: &str, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("HTTP request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Any method with a JSON body and a bearer token, to any server: (status, body).
pub async fn request_json(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
    token: &str,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .json(&body)
        .bearer_auth(token)
        .send()
        .await
        .expect("HTTP request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `GET` from any server: (status, body as JSON or null).
pub async fn get_json(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("HTTP request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A Redis server of a test's own, on a free port, that keeps nothing on disk: stopping it loses
/// everything, as a restarted production Redis without persistence does.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port and waits until it answers.
    pub async fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts (Debian package redis-server)");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not listen on {} within 5 s", self.port);
    }

    /// Kills it (SIGKILL): connections drop at once, the data is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
