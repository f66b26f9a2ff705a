//! Storage: one [`Store`] over sqlx's `Any` driver, so SQLite, MySQL/MariaDB and PostgreSQL share
//! every query. The few places where the dialects differ (placeholders, `RETURNING`, how a
//! transaction takes the write lock) are decided by [`Dialect`]. Each dialect has its own embedded
//! migrations in `migrations/<dialect>/`.
//!
//! Database errors are translated here, at the boundary, into [`StoreError`]: callers see
//! `NotFound`, `Conflict` or `Unavailable`, never a driver error.

mod append;
mod attachments;
mod batched;
mod canned;
mod conversations;
mod events;
pub mod gate;
mod leases;
mod lookup;
mod mail;
mod messages;
mod notes;
mod queue;
mod reports;
mod routing;
pub mod sealing;
mod settings;
mod timers;
mod users;

use std::{borrow::Cow, str::FromStr, sync::OnceLock, time::Duration};

use sqlx::{
    AnyPool, Row,
    any::{AnyConnectOptions, AnyPoolOptions, AnyRow},
    migrate::Migrator,
};

pub use append::{Appended, Start, Started};
pub use attachments::{Attachment, NewAttachment};
pub use canned::CannedReply;
pub use conversations::{Conversation, Member};
pub use events::ConversationEvent;
pub use lookup::{ConversationQuery, ConversationRecord};
pub use mail::{GoneCustomer, MailMark, NewMail, OutboxMail, Unanswered, WaitingUnmailed};
pub use messages::{HistoryPage, NewMessage, Page, StoredMessage};
pub use notes::Note;
pub use queue::{Queued, Waiting};
pub use reports::{ConversationFacts, Rated};
pub use routing::{AgentLoad, Assignment, ConversationSummary, Created};
pub use timers::{Abandoned, OpenPresence};
pub use users::{NewUser, Revocation, UserRecord};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/mysql");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database is reachable but every connection has been taken for longer than any
    /// statement should take, or too many statements are waiting ([`gate`]).
    #[error("the database is busy")]
    Busy,
    /// The database cannot write: its disk is full or failing (SQLite's FULL and IOERR).
    #[error("database cannot write: {0}")]
    CannotWrite(String),
    /// The database aborted the transaction for a deadlock or a serialization conflict with
    /// another: running it again is expected to work ([`retry_contended`]).
    #[error("transaction aborted by a conflicting one: {0}")]
    Contended(String),
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match error {
            E::RowNotFound => StoreError::NotFound,
            E::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_owned())
            }
            E::Database(db) => {
                let dialect = if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    Dialect::Sqlite
                } else if db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    Dialect::Postgres
                } else {
                    Dialect::MySql
                };
                if contended(dialect, db.code().as_deref()) {
                    return StoreError::Contended(db.message().to_owned());
                }
                match unavailability(dialect, db.code().as_deref()) {
                    Some(Unavailability::CannotWrite) => {
                        StoreError::CannotWrite(db.message().to_owned())
                    }
                    Some(Unavailability::Unavailable) => {
                        StoreError::Unavailable(db.message().to_owned())
                    }
                    None => StoreError::Other(E::Database(db)),
                }
            }
            E::Io(_)
            | E::PoolTimedOut
            | E::PoolClosed
            | E::Tls(_)
            | E::WorkerCrashed
            | E::Protocol(_) => StoreError::Unavailable(error.to_string()),
            other => StoreError::Other(other),
        }
    }
}

impl StoreError {
    /// The same failure for another caller of a read that was shared ([`batched`]).
    fn again(&self) -> StoreError {
        match self {
            StoreError::NotFound => StoreError::NotFound,
            StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
            StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
            StoreError::Busy => StoreError::Busy,
            StoreError::CannotWrite(m) => StoreError::CannotWrite(m.clone()),
            StoreError::Contended(m) => StoreError::Contended(m.clone()),
            StoreError::Other(e) => StoreError::Other(sqlx::Error::Protocol(e.to_string())),
        }
    }
}

/// A deadlock or a serialization failure: PostgreSQL's 40P01 and 40001, MySQL's 1213 (SQLSTATE
/// 40001, which is what sqlx reports).
fn contended(dialect: Dialect, code: Option<&str>) -> bool {
    match (dialect, code) {
        (Dialect::Postgres, Some(code)) => matches!(code, "40P01" | "40001"),
        (Dialect::MySql, Some(code)) => matches!(code, "40001" | "1213"),
        _ => false,
    }
}

/// How many times a transaction aborted by a conflicting one is run again.
const CONTENDED_ATTEMPTS: u32 = 5;

/// Runs `attempt` until it is not aborted by a conflicting transaction (a deadlock, a
/// serialization failure), at most [`CONTENDED_ATTEMPTS`] times, pausing a few random
/// milliseconds in between so that the two do not meet again.
pub(crate) async fn retry_contended<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(StoreError::Contended(reason)) if tries < CONTENDED_ATTEMPTS => {
                tracing::debug!(%reason, tries, "running a transaction again");
                let pause = rand::random::<u64>() % (5 * u64::from(tries)) + 1;
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                tries += 1;
            }
            outcome => return outcome,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unavailability {
    /// Busy, locked, unreachable, shutting down: try again.
    Unavailable,
    /// The disk is full or failing.
    CannotWrite,
}

/// Error codes that mean "the database cannot take writes right now", as opposed to a bad query,
/// read in the dialect that gave them (a PostgreSQL SQLSTATE is no SQLite code).
fn unavailability(dialect: Dialect, code: Option<&str>) -> Option<Unavailability> {
    let code = code?;
    let unavailable = match dialect {
        Dialect::Sqlite => match code.parse::<u32>().ok()? & 0xff {
            // IOERR(10) and FULL(13), with their extended codes
            10 | 13 => return Some(Unavailability::CannotWrite),
            // BUSY(5), LOCKED(6), NOMEM(7), READONLY(8), CANTOPEN(14)
            c => matches!(c, 5 | 6 | 7 | 8 | 14),
        },
        // Connection exceptions (08), insufficient resources (53; 53100 is a full disk),
        // operator intervention (57)
        Dialect::Postgres if code == "53100" => return Some(Unavailability::CannotWrite),
        Dialect::Postgres => {
            code.len() == 5
                && ["08", "53", "57"]
                    .iter()
                    .any(|class| code.starts_with(class))
        }
        // Disk full (1021, 1114 table full), server gone or shutting down, lock wait timeout,
        // too many connections
        Dialect::MySql if matches!(code, "1021" | "1114") => {
            return Some(Unavailability::CannotWrite);
        }
        Dialect::MySql => matches!(
            code,
            "HY000" | "08S01" | "1040" | "1053" | "1205" | "2006" | "2013"
        ),
    };
    unavailable.then_some(Unavailability::Unavailable)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    MySql,
    Postgres,
}

impl Dialect {
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Dialect::Sqlite),
            "mysql" | "mariadb" => Ok(Dialect::MySql),
            "postgres" | "postgresql" => Ok(Dialect::Postgres),
            _ => anyhow::bail!(
                "unsupported database URL scheme {scheme:?}: use sqlite://, mysql:// or postgres://"
            ),
        }
    }

    /// How many message writers commit in parallel: SQLite has one writer at a time anyway; the
    /// servers take a few transactions at once.
    pub fn writers(self) -> usize {
        match self {
            Dialect::Sqlite => 1,
            Dialect::MySql | Dialect::Postgres => 4,
        }
    }

    /// The pool's size when none is configured (docs/benchmarks.md, "Pool sizes").
    pub fn default_connections(self) -> u32 {
        match self {
            Dialect::Sqlite => 8,
            Dialect::MySql | Dialect::Postgres => 16,
        }
    }

    /// The pool of `configured` connections (or this dialect's default) split into lanes.
    pub fn lanes(self, configured: Option<u32>) -> gate::Lanes {
        gate::Lanes::split(
            configured.unwrap_or(self.default_connections()),
            self.writers(),
        )
    }

    /// PostgreSQL and SQLite return rows from `INSERT`/`UPDATE`; MySQL does not.
    fn has_returning(self) -> bool {
        !matches!(self, Dialect::MySql)
    }
}

/// Writes `?` placeholders as `$1, $2, …` for PostgreSQL. The queries of this module never contain
/// a `?` inside a string literal.
fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// The text of a fixed query in this store's dialect, converted once per call site.
macro_rules! sql {
    ($store:expr, $query:expr) => {{
        static NUMBERED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        $store.dialect.fixed(&NUMBERED, $query)
    }};
}
pub(crate) use sql;

impl Dialect {
    fn fixed(self, cache: &'static OnceLock<String>, query: &'static str) -> &'static str {
        match self {
            Dialect::Postgres => cache.get_or_init(|| numbered_placeholders(query)),
            _ => query,
        }
    }

    /// A query built at run time (a batch of rows), converted on each use.
    fn dynamic(self, query: String) -> Cow<'static, str> {
        match self {
            Dialect::Postgres => Cow::Owned(numbered_placeholders(&query)),
            _ => Cow::Owned(query),
        }
    }
}

struct BatchedReads {
    users: std::sync::Arc<batched::Batched<crate::domain::UserId, UserRecord>>,
    latest: std::sync::Arc<batched::Batched<crate::domain::UserId, Conversation>>,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Turns at the pool's connections ([`gate`]).
    gate: std::sync::Arc<gate::Gate>,
    /// The reads that bursts repeat, batched ([`batched`]).
    reads: std::sync::Arc<BatchedReads>,
    dialect: Dialect,
    /// Encryption at rest of message and note content, when keys are configured.
    sealer: Option<std::sync::Arc<sealing::Sealer>>,
}

impl Store {
    /// Connects and runs the pending migrations of the URL's dialect.
    pub async fn open(url: &str, lanes: gate::Lanes) -> anyhow::Result<Self> {
        let store = Self::connect(url, lanes).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// `lanes`: the connections for reads and for writing transactions; the pool has one more,
    /// for the health check and the migrations, which take no turn.
    pub async fn connect(url: &str, lanes: gate::Lanes) -> anyhow::Result<Self> {
        use anyhow::Context;
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url)?;
        let options = AnyConnectOptions::from_str(url).context("parsing the database URL")?;
        let pool = AnyPoolOptions::new()
            .max_connections(lanes.total() + 1)
            // An unreachable database must turn into `unavailable` quickly, not hang a client.
            // (A statement asks only once it has its turn: a connection is free for it, and
            // waiting for this long means the database cannot be reached.)
            .acquire_timeout(Duration::from_secs(5))
            // When a COMMIT fails (a full disk), SQLite rolls back by itself, sqlx's ROLLBACK then
            // fails and the connection stays "in a transaction": every later BEGIN on it would be
            // refused. Such a connection is dropped instead of reused.
            .before_acquire(|conn, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL lets readers go on during writes; FULL makes a commit survive power loss,
                        // and group commit keeps its cost to one fsync per batch.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA busy_timeout = 5000",
                            "PRAGMA foreign_keys = ON",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("connecting to the {dialect:?} database"))?;
        Ok(Self {
            pool,
            gate: std::sync::Arc::new(gate::Gate::new(lanes)),
            reads: std::sync::Arc::new(BatchedReads {
                users: batched::Batched::new(Store::read_users),
                latest: batched::Batched::new(Store::read_latest_conversations),
            }),
            dialect,
            sealer: None,
        })
    }

    /// Seals message and note content written from now on with the first of `keys` (`id:base64`),
    /// and opens what any of them sealed.
    pub fn with_encryption_keys(mut self, keys: &[String]) -> anyhow::Result<Self> {
        self.sealer = sealing::Sealer::from_keys(keys)?.map(std::sync::Arc::new);
        Ok(self)
    }

    /// Content as it is stored, with the id of the key that sealed it (`None`: plain text).
    fn seal<'a>(
        &'a self,
        plain: &'a str,
        what: sealing::Sealed,
    ) -> Result<(std::borrow::Cow<'a, str>, Option<&'a str>), StoreError> {
        match &self.sealer {
            None => Ok((std::borrow::Cow::Borrowed(plain), None)),
            Some(sealer) => {
                let (sealed, key) = sealer.seal(plain, what)?;
                Ok((std::borrow::Cow::Owned(sealed), Some(key)))
            }
        }
    }

    /// The plain text of a stored content column.
    fn unseal(
        &self,
        stored: String,
        key_id: Option<String>,
        what: sealing::Sealed,
    ) -> Result<String, StoreError> {
        match (key_id, &self.sealer) {
            (None, _) => Ok(stored),
            (Some(key), Some(sealer)) => sealer.open(&stored, &key, what),
            (Some(key), None) => Err(StoreError::Other(sqlx::Error::Decode(
                format!("content sealed with key {key}, and no KEFU_ENCRYPTION_KEYS").into(),
            ))),
        }
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        use anyhow::Context;
        let migrator = match self.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::MySql => &MYSQL_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .context("running database migrations")
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// `true` when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.gate.close();
        self.pool.close().await;
    }

    /// Statements waiting for a turn at the database, by lane.
    pub fn waiting(&self) -> gate::Waiting {
        self.gate.waiting()
    }

    /// A connection for one statement that reads, once it is this statement's turn.
    async fn conn(&self) -> Result<gate::Conn, StoreError> {
        let turn = self.gate.read().await?;
        Ok(gate::Conn::new(self.pool.acquire().await?, turn))
    }

    /// A connection for one statement that writes, in the writers' lane (on SQLite it takes the
    /// write lock: it must not hold up the reads while it waits for it).
    async fn write_conn(&self) -> Result<gate::Conn, StoreError> {
        let turn = self.gate.write().await?;
        Ok(gate::Conn::new(self.pool.acquire().await?, turn))
    }

    /// A transaction that is going to write, in the writers' lane. SQLite takes the write lock at
    /// once, so that a read-then-write transaction cannot fail with `SQLITE_BUSY` halfway.
    async fn begin_write(
        &self,
    ) -> Result<gate::Held<sqlx::Transaction<'static, sqlx::Any>>, StoreError> {
        let turn = self.gate.write().await?;
        let tx = match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            _ => self.pool.begin().await?,
        };
        Ok(gate::Held::new(tx, turn))
    }
}

/// Reads a text column. MySQL reports `TEXT` columns as blobs through the `Any` driver.
fn text(row: &AnyRow, column: &str) -> Result<String, StoreError> {
    match row.try_get::<String, _>(column) {
        Ok(value) => Ok(value),
        Err(_) => {
            let bytes: Vec<u8> = row.try_get(column)?;
            String::from_utf8(bytes)
                .map_err(|e| StoreError::Other(sqlx::Error::Decode(Box::new(e))))
        }
    }
}

fn optional_text(row: &AnyRow, column: &str) -> Result<Option<String>, StoreError> {
    match row.try_get::<Option<String>, _>(column) {
        Ok(value) => Ok(value),
        Err(_) => {
            let bytes: Option<Vec<u8>> = row.try_get(column)?;
            bytes
                .map(String::from_utf8)
                .transpose()
                .map_err(|e| StoreError::Other(sqlx::Error::Decode(Box::new(e))))
        }
    }
}

/// `?, ?, ?` for an `IN (…)` list of `n` values.
impl Store {
    /// The rows of `query` whose one `{}` stands for a list of keys (`… WHERE id IN ({})`): one
    /// placeholder per key, each key bound in order. Nothing is asked for no keys.
    async fn rows_with_keys(&self, query: &str, keys: &[i64]) -> Result<Vec<AnyRow>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let query = self
            .dialect
            .dynamic(query.replacen("{}", &placeholders(keys.len()), 1));
        let mut q = sqlx::query(query.as_ref());
        for key in keys {
            q = q.bind(*key);
        }
        Ok(q.fetch_all(&mut *self.conn().await?).await?)
    }
}

fn placeholders(n: usize) -> String {
    let mut out = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('?');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_placeholders_are_numbered_in_order() {
        assert_eq!(
            numbered_placeholders("a = ? AND b IN (?, ?)"),
            "a = $1 AND b IN ($2, $3)"
        );
    }

    #[test]
    fn the_scheme_picks_the_dialect() {
        assert_eq!(Dialect::from_url("sqlite://x.db").unwrap(), Dialect::Sqlite);
        assert_eq!(
            Dialect::from_url("mariadb://root@h/db").unwrap(),
            Dialect::MySql
        );
        assert_eq!(
            Dialect::from_url("postgresql://h/db").unwrap(),
            Dialect::Postgres
        );
        assert!(Dialect::from_url("oracle://h").is_err());
    }

    #[test]
    fn full_disk_and_lost_connections_count_as_unavailable() {
        use Unavailability::*;
        assert_eq!(
            unavailability(Dialect::Sqlite, Some("13")),
            Some(CannotWrite)
        );
        assert_eq!(
            unavailability(Dialect::Sqlite, Some("778")),
            Some(CannotWrite)
        );
        assert_eq!(
            unavailability(Dialect::Sqlite, Some("5")),
            Some(Unavailable)
        );
        assert_eq!(
            unavailability(Dialect::Postgres, Some("57P01")),
            Some(Unavailable)
        );
        assert_eq!(
            unavailability(Dialect::Postgres, Some("53100")),
            Some(CannotWrite)
        );
        assert_eq!(unavailability(Dialect::Postgres, Some("23505")), None);
        assert_eq!(unavailability(Dialect::Sqlite, None), None);
    }

    #[test]
    fn a_postgres_code_is_not_read_as_an_sqlite_code() {
        // 22021 (a NUL in text) & 0xff is 5, SQLite's BUSY: it must stay a plain error.
        assert_eq!(unavailability(Dialect::Postgres, Some("22021")), None);
        assert_eq!(
            unavailability(Dialect::MySql, Some("1021")),
            Some(Unavailability::CannotWrite)
        );
    }
}
