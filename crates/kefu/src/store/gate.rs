//! Turns at the database: busy is not down.
//!
//! Every statement waits for a turn before it asks the pool for a connection. A turn is a place in
//! a fair queue, and there are exactly as many turns as connections: once a statement holds one,
//! a connection is free for it, and the pool's short timeout can only mean that the database
//! cannot be reached (`unavailable`). A burst (thousands of logins at once after a restart) waits
//! its turn instead; it is refused as busy only when the queue is very long or a turn takes far
//! longer than any statement should.
//!
//! Two lanes: transactions that write (the message writers, the queue's assignments, transfers)
//! have their own turns, so that a burst of reads never stands between a message and its commit.

use std::{
    ops::{Deref, DerefMut},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::StoreError;

/// Statements waiting for a turn before new ones are refused as busy.
const MAX_WAITING: usize = 100_000;
/// The longest wait for a turn before a statement is refused as busy.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// How many connections each lane has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lanes {
    pub reads: usize,
    pub writes: usize,
}

impl Lanes {
    /// `connections` split between reads and writing transactions: `writers` for the message
    /// writers and one more for the other writing transactions, the rest (at least one) for reads.
    pub fn split(connections: u32, writers: usize) -> Self {
        let connections = (connections as usize).max(2);
        let writes = (writers + 1).min(connections - 1);
        Self {
            reads: connections - writes,
            writes,
        }
    }

    pub fn total(self) -> u32 {
        (self.reads + self.writes) as u32
    }
}

pub struct Gate {
    reads: Lane,
    writes: Lane,
}

struct Lane {
    turns: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// What a lane's queue looks like now (for /metrics).
#[derive(Debug, Clone, Copy, Default)]
pub struct Waiting {
    pub reads: usize,
    pub writes: usize,
}

impl Gate {
    pub fn new(lanes: Lanes) -> Self {
        let lane = |n| Lane {
            turns: Arc::new(Semaphore::new(n)),
            waiting: AtomicUsize::new(0),
        };
        Self {
            reads: lane(lanes.reads),
            writes: lane(lanes.writes),
        }
    }

    pub async fn read(&self) -> Result<Turn, StoreError> {
        self.reads.turn().await
    }

    pub async fn write(&self) -> Result<Turn, StoreError> {
        self.writes.turn().await
    }

    pub fn waiting(&self) -> Waiting {
        Waiting {
            reads: self.reads.waiting.load(Ordering::Relaxed),
            writes: self.writes.waiting.load(Ordering::Relaxed),
        }
    }

    /// No more turns: what waits is refused, what holds one finishes.
    pub fn close(&self) {
        self.reads.turns.close();
        self.writes.turns.close();
    }
}

impl Lane {
    async fn turn(&self) -> Result<Turn, StoreError> {
        if let Ok(permit) = self.turns.clone().try_acquire_owned() {
            return Ok(Turn(permit));
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(StoreError::Busy);
        }
        let waited = tokio::time::timeout(LONGEST_WAIT, self.turns.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match waited {
            Ok(Ok(permit)) => Ok(Turn(permit)),
            Ok(Err(_closed)) => Err(StoreError::Unavailable("the store is closed".into())),
            Err(_elapsed) => Err(StoreError::Busy),
        }
    }
}

/// A place at the database, given back when dropped.
pub struct Turn(#[allow(dead_code)] OwnedSemaphorePermit);

/// A transaction held with its turn.
pub struct Held<T> {
    inner: T,
    _turn: Turn,
}

impl<T> Held<T> {
    pub fn new(inner: T, turn: Turn) -> Self {
        Self { inner, _turn: turn }
    }
}

impl<T> Deref for Held<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for Held<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

/// A connection held with its turn, for one statement: `&mut *conn` is an executor.
pub struct Conn {
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
    _turn: Turn,
}

impl Conn {
    pub fn new(conn: sqlx::pool::PoolConnection<sqlx::Any>, turn: Turn) -> Self {
        Self { conn, _turn: turn }
    }
}

impl Deref for Conn {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.conn
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.conn
    }
}

impl Held<sqlx::Transaction<'static, sqlx::Any>> {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.inner.commit().await
    }

    #[allow(dead_code)]
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.inner.rollback().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_get_their_lane_and_reads_the_rest() {
        assert_eq!(
            Lanes::split(8, 1),
            Lanes {
                reads: 6,
                writes: 2
            }
        );
        assert_eq!(
            Lanes::split(16, 4),
            Lanes {
                reads: 11,
                writes: 5
            }
        );
        // Too small a pool still leaves one for reads.
        assert_eq!(
            Lanes::split(2, 4),
            Lanes {
                reads: 1,
                writes: 1
            }
        );
        assert_eq!(
            Lanes::split(0, 1),
            Lanes {
                reads: 1,
                writes: 1
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_wait_is_busy_not_unavailable() {
        let gate = Gate::new(Lanes {
            reads: 1,
            writes: 1,
        });
        let held = gate.read().await.unwrap();
        let waiting = gate.read();
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_secs(1), &mut waiting)
                .await
                .is_err(),
            "the second read waits for the first"
        );
        assert_eq!(gate.waiting().reads, 1);
        // A write does not wait behind reads.
        assert!(gate.write().await.is_ok());
        match waiting.await {
            Err(StoreError::Busy) => {}
            other => panic!("expected busy, got {:?}", other.map(|_| ())),
        }
        assert_eq!(gate.waiting().reads, 0);
        drop(held);
        assert!(gate.read().await.is_ok(), "a turn given back is taken");
    }

    #[tokio::test]
    async fn turns_are_taken_in_order() {
        let gate = Arc::new(Gate::new(Lanes {
            reads: 1,
            writes: 1,
        }));
        let first = gate.read().await.unwrap();
        let (done, mut order) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..5 {
            let shared = gate.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let _turn = shared.read().await.unwrap();
                done.send(i).unwrap();
            });
            // Each is waiting before the next one comes.
            while gate.waiting().reads < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(order.recv().await.unwrap());
        }
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    }
}
