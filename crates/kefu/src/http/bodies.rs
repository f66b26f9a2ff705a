//! Request bodies bounded in time and in number: a body that stops, or trickles in a byte at a
//! time, is cut off with `408` within [`BODY_WINDOW`] × 2 of its last progress, and one client
//! address may have at most [`MAX_BODIES_PER_ADDRESS`] bodies in progress.
//!
//! Without this, a request that sent its headers and then one byte a minute stayed open for good,
//! and a few hundred of them took every descriptor (issue: "a request body that trickles in").

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio::time::Instant;

use crate::{AppState, metrics::Limit};

/// Each window of this length a body is still arriving in must bring [`MIN_BYTES_PER_WINDOW`] (or
/// the rest of the body): 4 KiB/s, a slow mobile link, is enough; one byte a minute is not.
pub const BODY_WINDOW: Duration = Duration::from_secs(10);
pub const MIN_BYTES_PER_WINDOW: u64 = 40 * 1024;
/// Bodies in progress from one client address; more are answered `429` without being read.
pub const MAX_BODIES_PER_ADDRESS: usize = 32;

/// Bodies in progress per client address.
#[derive(Clone, Default)]
pub struct BodiesInProgress(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct InProgress {
    counts: BodiesInProgress,
    ip: IpAddr,
}

impl BodiesInProgress {
    fn enter(&self, ip: IpAddr) -> Option<InProgress> {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(ip).or_default();
        if *count >= MAX_BODIES_PER_ADDRESS {
            return None;
        }
        *count += 1;
        Some(InProgress {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Puts every request body under the time bound and its address under the cap. Long-polling
/// uploads pass by here too (a trickle is cut at its first 10 s window), and also have a deadline
/// of their own for the whole body ([`super::guard_polling`]: 20 s).
pub async fn guard_bodies(
    State((app, in_progress)): State<(AppState, BodiesInProgress)>,
    request: Request,
    next: Next,
) -> Response {
    if !has_body(&request) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let ip = app.limits.client_ip(&parts);
    let Some(guard) = in_progress.enter(ip) else {
        app.metrics.limited(Limit::Bodies);
        let mut response = refusal(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests in progress from this address; try again later",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        return response;
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let cut = Arc::new(AtomicBool::new(false));
    let body = Body::from_stream(paced(body, declared, cut.clone()));
    let response = next.run(Request::from_parts(parts, body)).await;
    drop(guard);
    if cut.load(Ordering::Relaxed) {
        app.metrics.limited(Limit::SlowBodies);
        return refusal(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_payload",
            "the request body stopped or came too slowly (at least 4 KiB/s are needed)",
        );
    }
    response
}

fn has_body(request: &Request) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// The protocol's error shape; the connection is closed after it, since what is left of the body
/// was never read.
fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[derive(Debug, thiserror::Error)]
#[error("the request body stopped or came too slowly")]
struct TooSlow;

/// The body's chunks, as long as each [`BODY_WINDOW`] brings enough of them; otherwise an error
/// (and `cut` is set, for the answer).
fn paced(
    body: Body,
    declared: Option<u64>,
    cut: Arc<AtomicBool>,
) -> impl Stream<Item = Result<Bytes, Box<dyn std::error::Error + Send + Sync>>> {
    struct Pace {
        chunks: axum::body::BodyDataStream,
        window_ends: Instant,
        /// Bytes still due in this window.
        due: u64,
        /// Bytes still to come, when the length was declared.
        remaining: Option<u64>,
        cut: Arc<AtomicBool>,
        done: bool,
    }
    let first = MIN_BYTES_PER_WINDOW.min(declared.unwrap_or(u64::MAX));
    let pace = Pace {
        chunks: body.into_data_stream(),
        window_ends: Instant::now() + BODY_WINDOW,
        due: first,
        remaining: declared,
        cut,
        done: false,
    };
    futures_util::stream::unfold(pace, |mut pace| async move {
        if pace.done {
            return None;
        }
        loop {
            match tokio::time::timeout_at(pace.window_ends, pace.chunks.next()).await {
                Ok(Some(Ok(chunk))) => {
                    let len = chunk.len() as u64;
                    pace.due = pace.due.saturating_sub(len);
                    pace.remaining = pace.remaining.map(|r| r.saturating_sub(len));
                    return Some((Ok(chunk), pace));
                }
                Ok(Some(Err(error))) => {
                    pace.done = true;
                    return Some((Err(error.into()), pace));
                }
                Ok(None) => return None,
                Err(_) if pace.due == 0 => {
                    // Enough came in this window: the next one starts.
                    pace.window_ends += BODY_WINDOW;
                    pace.due = MIN_BYTES_PER_WINDOW.min(pace.remaining.unwrap_or(u64::MAX));
                }
                Err(_) => {
                    pace.cut.store(true, Ordering::Relaxed);
                    pace.done = true;
                    return Some((Err(TooSlow.into()), pace));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trickle(
        every: Duration,
        chunks: usize,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        futures_util::stream::unfold(0, move |sent| async move {
            if sent == chunks {
                return None;
            }
            tokio::time::sleep(every).await;
            Some((Ok(Bytes::from_static(b"x")), sent + 1))
        })
    }

    async fn read_all(body: Body, declared: Option<u64>) -> (Result<usize, String>, bool) {
        let cut = Arc::new(AtomicBool::new(false));
        let mut stream = std::pin::pin!(paced(body, declared, cut.clone()));
        let mut total = 0;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => total += bytes.len(),
                Err(error) => return (Err(error.to_string()), cut.load(Ordering::Relaxed)),
            }
        }
        (Ok(total), cut.load(Ordering::Relaxed))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_is_cut_off_after_one_window() {
        let body = Body::from_stream(trickle(Duration::from_secs(60), 5));
        let started = Instant::now();
        let (read, cut) = read_all(body, Some(5)).await;
        assert!(read.is_err() && cut);
        assert_eq!(started.elapsed(), BODY_WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_trickles_is_cut_off_even_though_bytes_keep_coming() {
        let body = Body::from_stream(trickle(Duration::from_secs(1), 100_000));
        let (read, cut) = read_all(body, None).await;
        assert!(read.is_err() && cut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_small_body_that_arrives_within_its_window_passes() {
        let body = Body::from_stream(trickle(Duration::from_secs(1), 9));
        assert_eq!(read_all(body, Some(9)).await, (Ok(9), false));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_upload_passes() {
        // 8 KiB every second: twice the minimum, for 40 s.
        let chunks = futures_util::stream::unfold(0, |sent| async move {
            if sent == 40 {
                return None;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some((
                Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 8192])),
                sent + 1,
            ))
        });
        let (read, cut) = read_all(Body::from_stream(chunks), Some(40 * 8192)).await;
        assert_eq!((read, cut), (Ok(40 * 8192), false));
    }

    #[test]
    fn an_address_may_have_a_bounded_number_of_bodies_in_progress() {
        let bodies = BodiesInProgress::default();
        let ip: IpAddr = "203.0.113.5".parse().unwrap();
        let held: Vec<_> = (0..MAX_BODIES_PER_ADDRESS)
            .map(|_| bodies.enter(ip).expect("within the cap"))
            .collect();
        assert!(bodies.enter(ip).is_none());
        assert!(bodies.enter("203.0.113.6".parse().unwrap()).is_some());
        drop(held);
        assert!(bodies.enter(ip).is_some());
        assert!(
            bodies.0.lock().unwrap().is_empty(),
            "addresses are forgotten once done"
        );
    }
}
