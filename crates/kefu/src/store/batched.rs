//! Reads by key asked for together are read together.
//!
//! A burst (every widget reconnecting after a restart, thousands of logins at once) asks for the
//! same kind of row thousands of times within milliseconds: each account for its token, each
//! customer's latest conversation. One query per key costs a round trip and, on SQLite, two
//! thread switches each; one query for every key waiting costs them once. A key asked for alone
//! is read at once, as before; keys that arrive while a read is running wait for it to end and
//! go together in the next one.

use std::{
    collections::HashMap,
    future::Future,
    hash::Hash,
    pin::Pin,
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;

use super::{Store, StoreError};

/// Keys in one query at most.
pub(super) const MAX_KEYS: usize = 500;
/// Queries of one kind running at once.
const RUNNING_AT_ONCE: usize = 2;

type Found<K, V> = Result<HashMap<K, V>, StoreError>;
/// A read of the rows of some keys under way.
pub(super) type Reading<K, V> = Pin<Box<dyn Future<Output = Found<K, V>> + Send>>;
/// Reads the rows of these keys; a key without a row is left out.
pub(super) type Fetch<K, V> = fn(Store, Vec<K>) -> Reading<K, V>;
type Answer<V> = oneshot::Sender<Result<Option<V>, StoreError>>;

pub(super) struct Batched<K, V> {
    state: Mutex<State<K, V>>,
    fetch: Fetch<K, V>,
}

struct State<K, V> {
    waiting: Vec<(K, Answer<V>)>,
    running: usize,
}

impl<K, V> Batched<K, V>
where
    K: Copy + Eq + Hash + Send + 'static,
    V: Clone + Send + 'static,
{
    pub(super) fn new(fetch: Fetch<K, V>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                waiting: Vec::new(),
                running: 0,
            }),
            fetch,
        })
    }

    /// The row of `key`, read with the other keys asked for meanwhile.
    pub(super) async fn get(
        self: &Arc<Self>,
        store: &Store,
        key: K,
    ) -> Result<Option<V>, StoreError> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut state = self.lock();
            state.waiting.push((key, answer));
            let start = state.running < RUNNING_AT_ONCE;
            if start {
                state.running += 1;
            }
            start
        };
        if start {
            // A task of its own: a caller that goes away (a closed HTTP request) must not take
            // the others' read with it.
            tokio::spawn(self.clone().run(store.clone()));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the read was dropped".into())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K, V>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads what waits, in queries of at most [`MAX_KEYS`], until nothing does.
    async fn run(self: Arc<Self>, store: Store) {
        loop {
            let batch: Vec<(K, Answer<V>)> = {
                let mut state = self.lock();
                if state.waiting.is_empty() {
                    state.running -= 1;
                    return;
                }
                let take = state.waiting.len().min(MAX_KEYS);
                state.waiting.drain(..take).collect()
            };
            // Each key once, however many asked for it.
            let mut seen = std::collections::HashSet::with_capacity(batch.len());
            let keys: Vec<K> = batch
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| seen.insert(*k))
                .collect();
            match (self.fetch)(store.clone(), keys).await {
                Ok(found) => {
                    for (key, answer) in batch {
                        let _ = answer.send(Ok(found.get(&key).cloned()));
                    }
                }
                Err(error) => {
                    for (_, answer) in batch {
                        let _ = answer.send(Err(error.again()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static QUERIES: AtomicUsize = AtomicUsize::new(0);

    /// Squares, after a pause: long enough for the others to queue behind the first query.
    fn squares(_: Store, keys: Vec<i64>) -> Reading<i64, i64> {
        Box::pin(async move {
            QUERIES.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if keys.contains(&-13) {
                return Err(StoreError::Unavailable("unlucky".into()));
            }
            Ok(keys
                .into_iter()
                .filter(|k| *k >= 0)
                .map(|k| (k, k * k))
                .collect())
        })
    }

    #[tokio::test]
    async fn keys_asked_for_together_are_read_in_a_few_queries() {
        let store = Store::connect("sqlite::memory:", super::super::gate::Lanes::split(2, 1))
            .await
            .unwrap();
        let batched = Batched::new(squares as Fetch<i64, i64>);
        QUERIES.store(0, Ordering::SeqCst);
        let asked: Vec<_> = (0..1200)
            .map(|i| {
                let (batched, store) = (batched.clone(), store.clone());
                tokio::spawn(async move { batched.get(&store, (i % 1000) - 1).await })
            })
            .collect();
        for (i, asked) in asked.into_iter().enumerate() {
            let key = (i as i64 % 1000) - 1;
            let got = asked.await.unwrap().unwrap();
            assert_eq!(got, (key >= 0).then_some(key * key), "key {key}");
        }
        let queries = QUERIES.load(Ordering::SeqCst);
        assert!(
            (3..=8).contains(&queries),
            "1,200 keys in {queries} queries"
        );
        // A failed query fails each of its keys, and the next ones are read again.
        let unlucky = batched.get(&store, -13).await;
        assert!(matches!(unlucky, Err(StoreError::Unavailable(_))));
        assert_eq!(batched.get(&store, 12).await.unwrap(), Some(144));
    }
}
