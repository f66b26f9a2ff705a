//! Group commit: messages from every connection queue up here and are written many per
//! transaction, so throughput is not bound to one commit per message. Conversations are spread
//! over a few writer tasks by their customer, which keeps each conversation's order (its first
//! message, which creates it, included) while one slow transaction only holds back its own shard.
//! After a batch commits, each sender's reply runs and then the message is delivered, in `seq`
//! order.

use std::{sync::Arc, time::Instant};

use tokio::{sync::mpsc, task::JoinSet};
use tokio_util::sync::CancellationToken;

use super::{
    Error,
    delivery::{ConnectionId, Delivery, Notice},
};
use crate::{
    domain::UserId,
    metrics::Metrics,
    store::{Appended, NewMessage, Start, Started, Store, StoreError, StoredMessage},
};

/// What a job's reply learns once its message is stored.
pub struct Written<'a> {
    pub message: &'a StoredMessage,
    /// The conversation the message started (or found open meanwhile), for a customer's first
    /// message.
    pub started: Option<&'a Started>,
}

/// Called once with the outcome, before the message is delivered to anyone.
pub type Reply = Box<dyn FnOnce(Result<Written<'_>, &Error>) + Send>;

pub struct WriteJob {
    pub message: NewMessage,
    /// The conversation's customer: its shard.
    pub customer: UserId,
    /// Set for a customer's first message: its conversation is created with it (and
    /// `message.conversation_id` is not read).
    pub start: Option<Start>,
    /// Who else gets it; for a start, the agent the new conversation went to, if any.
    pub receiver: Option<UserId>,
    pub origin: Option<ConnectionId>,
    pub reply: Reply,
}

/// Jobs waiting per shard before senders wait for room: bounds memory under overload.
const QUEUE_PER_SHARD: usize = 8192;

#[derive(Clone)]
pub struct Writer {
    shards: Arc<Vec<mpsc::Sender<WriteJob>>>,
}

impl Writer {
    /// Starts `shards` writer tasks. On `stop` they refuse new jobs, write the ones already queued,
    /// and end.
    pub fn spawn(
        store: Store,
        delivery: Arc<dyn Delivery>,
        shards: usize,
        batch_max: usize,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
        tasks: &mut JoinSet<()>,
    ) -> Self {
        let senders = (0..shards.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE_PER_SHARD);
                let shard = Shard {
                    store: store.clone(),
                    delivery: delivery.clone(),
                    metrics: metrics.clone(),
                };
                tasks.spawn(shard.run(rx, batch_max.max(1), stop.clone()));
                tx
            })
            .collect();
        Self {
            shards: Arc::new(senders),
        }
    }

    pub async fn submit(&self, job: WriteJob) {
        let shard = job.customer.0.unsigned_abs() as usize % self.shards.len();
        if let Err(mpsc::error::SendError(job)) = self.shards[shard].send(job).await {
            // Only during shutdown: nothing was stored, and the sender hears so.
            (job.reply)(Err(&Error::Unavailable));
        }
    }
}

/// One writer task and what it writes with.
struct Shard {
    store: Store,
    delivery: Arc<dyn Delivery>,
    metrics: Arc<Metrics>,
}

impl Shard {
    async fn run(
        self,
        mut rx: mpsc::Receiver<WriteJob>,
        batch_max: usize,
        stop: CancellationToken,
    ) {
        let mut batch = Vec::with_capacity(batch_max);
        loop {
            tokio::select! {
                received = rx.recv_many(&mut batch, batch_max) => {
                    if received == 0 {
                        return;
                    }
                    self.write_batch(std::mem::take(&mut batch)).await;
                }
                _ = stop.cancelled() => break,
            }
        }
        rx.close();
        while rx.recv_many(&mut batch, batch_max).await > 0 {
            self.write_batch(std::mem::take(&mut batch)).await;
        }
    }

    #[tracing::instrument(skip_all, fields(size = jobs.len()))]
    async fn write_batch(&self, jobs: Vec<WriteJob>) {
        let (store, delivery) = (&self.store, self.delivery.as_ref());
        let messages: Vec<NewMessage> = jobs.iter().map(|j| j.message.clone()).collect();
        let starts: Vec<Option<Start>> = jobs.iter().map(|j| j.start).collect();
        let started = Instant::now();
        let written = store.append_messages(&messages, &starts).await;
        self.metrics
            .store_write_seconds
            .observe_duration(started.elapsed());
        self.metrics.store_batch_size.observe(jobs.len() as f64);
        match written {
            Ok(Appended { messages, started }) => {
                self.metrics.messages_stored.add(messages.len() as u64);
                // Several first messages of one customer in one batch started one conversation:
                // the first of them (the lowest seq) made it; to the others it existed already.
                let mut told = std::collections::HashSet::new();
                for (job, message) in jobs.into_iter().zip(messages) {
                    let started =
                        job.start
                            .and_then(|s| started.get(&s.customer))
                            .map(|s| Started {
                                conversation: s.conversation.clone(),
                                created: s.created && told.insert(s.conversation.customer_id),
                            });
                    finish(delivery, job, Ok((message, started.as_ref())));
                }
            }
            // One bad message (a retry racing another node, say) must not fail the others: write
            // them one by one.
            Err(StoreError::Conflict(_) | StoreError::Other(_)) if jobs.len() > 1 => {
                self.metrics.store_write_errors.inc();
                for job in jobs {
                    let outcome = store
                        .append_messages(std::slice::from_ref(&job.message), &[job.start])
                        .await;
                    match outcome {
                        Ok(mut appended) => {
                            self.metrics.messages_stored.inc();
                            let message = appended.messages.remove(0);
                            let started =
                                job.start.and_then(|s| appended.started.remove(&s.customer));
                            finish(delivery, job, Ok((message, started.as_ref())));
                        }
                        Err(error) => {
                            self.metrics.store_write_errors.inc();
                            finish(delivery, job, Err(Error::from(error)));
                        }
                    }
                }
            }
            Err(e) => {
                self.metrics.store_write_errors.inc();
                let error = Error::from(e);
                error.log("storing messages");
                for job in jobs {
                    (job.reply)(Err(&error));
                }
            }
        }
    }
}

fn finish(
    delivery: &dyn Delivery,
    job: WriteJob,
    outcome: Result<(StoredMessage, Option<&Started>), Error>,
) {
    match outcome {
        Ok((message, started)) => {
            (job.reply)(Ok(Written {
                message: &message,
                started,
            }));
            if message.duplicate {
                return;
            }
            // A first message goes to the agent its conversation went to; the customer's own
            // messages while it waits go to nobody else.
            let receiver = match started {
                Some(started) if message.sender_id == started.conversation.customer_id => {
                    started.conversation.agent_id
                }
                _ => job.receiver,
            };
            let notice = Notice::Message {
                message: &message,
                receiver,
            };
            if let Some(receiver) = receiver {
                delivery.notify(receiver, &notice, None);
            }
            delivery.notify(message.sender_id, &notice, job.origin);
        }
        Err(error) => {
            error.log("storing a message");
            (job.reply)(Err(&error));
        }
    }
}
