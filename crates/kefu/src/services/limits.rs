//! Abuse limits: token buckets per connection, per client address and per account.
//!
//! Every limit answers with how long to wait, so that HTTP can say `Retry-After` and a socket's
//! ack can say why. Buckets of idle keys are forgotten, so an attacker cycling addresses costs a
//! bounded amount of memory.

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http::HeaderMap;

/// `rate` tokens per second up to `burst`; a rate of 0 means unlimited.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate,
            burst,
            tokens: burst,
            updated: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now;
    }

    /// Takes one token, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        if self.rate == 0.0 {
            return Ok(());
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }

    /// Whether a token is there, without taking it.
    fn peek(&mut self, now: Instant) -> Result<(), Duration> {
        if self.rate == 0.0 {
            return Ok(());
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }

    /// Full again: nothing would be lost by forgetting it.
    fn is_full(&mut self, now: Instant) -> bool {
        self.rate == 0.0 || {
            self.refill(now);
            self.tokens >= self.burst
        }
    }
}

/// One token bucket per key (a client address, an account).
pub struct KeyedLimiter<K> {
    rate: f64,
    burst: u32,
    buckets: Mutex<HashMap<K, TokenBucket>>,
}

/// Keys tracked before the full (idle) buckets are swept out.
const SWEEP_AT: usize = 4096;

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// `per_minute` tokens a minute, up to `burst` at once; 0 per minute turns it off.
    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        Self::per_second(f64::from(per_minute) / 60.0, burst)
    }

    pub fn per_second(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_off(&self) -> bool {
        self.rate == 0.0
    }

    fn with_bucket<T>(&self, key: &K, f: impl FnOnce(&mut TokenBucket, Instant) -> T) -> T {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= SWEEP_AT && !buckets.contains_key(key) {
            buckets.retain(|_, b| !b.is_full(now));
        }
        let bucket = buckets
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::new(self.rate, self.burst));
        f(bucket, now)
    }

    /// Counts one event of `key`; `Err(wait)` when it is over its limit.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        if self.is_off() {
            return Ok(());
        }
        self.with_bucket(key, |b, now| b.take(now))
    }

    /// Whether `key` may go on, without counting anything (a login checks before it tries and
    /// counts only a failure).
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        if self.is_off() {
            return Ok(());
        }
        self.with_bucket(key, |b, now| b.peek(now))
    }

    pub fn tracked(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }
}

/// At most `max` events per key in any `window`: exact where a bucket's burst plus its refill
/// would let nearly twice as many through in the first window.
pub struct WindowLimiter<K> {
    max: usize,
    window: Duration,
    events: Mutex<HashMap<K, VecDeque<Instant>>>,
}

impl<K: Hash + Eq + Clone> WindowLimiter<K> {
    /// `max` a minute; 0 turns it off.
    pub fn per_minute(max: u32) -> Self {
        Self {
            max: max as usize,
            window: Duration::from_secs(60),
            events: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one event of `key`; `Err(wait)` when `max` happened in the last window already.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        if self.max == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let window = self.window;
        let mut events = self
            .events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if events.len() >= SWEEP_AT && !events.contains_key(key) {
            events.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let times = events.entry(key.clone()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            times.pop_front();
        }
        match times.front() {
            Some(oldest) if times.len() >= self.max => Err(window - now.duration_since(*oldest)),
            _ => {
                times.push_back(now);
                Ok(())
            }
        }
    }

    pub fn tracked(&self) -> usize {
        self.events.lock().map(|e| e.len()).unwrap_or(0)
    }
}

/// The per-address and per-account limits of one server.
pub struct Limits {
    /// New visitors per client address: at most `visitor_rate_per_minute` in any minute.
    pub visitors: WindowLimiter<IpAddr>,
    pub handshakes: KeyedLimiter<IpAddr>,
    /// Failed sign-ins per client address.
    pub login_failures: KeyedLimiter<IpAddr>,
    /// Failed sign-ins per account (its user name, lower-cased), from anywhere.
    pub account_failures: KeyedLimiter<String>,
    pub trusted_proxies: Vec<IpAddr>,
}

impl Limits {
    pub fn new(settings: &crate::Settings) -> Self {
        let account_rate = if settings.login_failures_per_minute == 0 {
            0
        } else {
            1
        };
        Self {
            visitors: WindowLimiter::per_minute(settings.visitor_rate_per_minute),
            handshakes: KeyedLimiter::per_second(
                f64::from(settings.handshake_rate_limit),
                settings.handshake_rate_burst,
            ),
            login_failures: KeyedLimiter::per_minute(
                settings.login_failures_per_minute,
                settings.login_failures_burst,
            ),
            account_failures: KeyedLimiter::per_minute(account_rate, settings.login_failures_burst),
            trusted_proxies: settings.trusted_proxies.clone(),
        }
    }

    /// The client address of a request (see [`client_ip`]). Served without connection info (a
    /// router driven directly), every request is one client.
    pub fn client_ip(&self, request: &axum::http::request::Parts) -> IpAddr {
        let peer = request
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        client_ip(peer, &request.headers, &self.trusted_proxies)
    }
}

/// Where a request comes from: the peer's address, or, when the peer is a trusted proxy, the
/// address it saw (the last entry of `X-Forwarded-For`, which nginx's
/// `$proxy_add_x_forwarded_for` appends). A header from anyone else is ignored: it is the
/// client's to forge.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> IpAddr {
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .next_back()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_says_how_long_to_wait() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(20.0, 40);
        for _ in 0..40 {
            assert!(bucket.take(start).is_ok());
        }
        let wait = bucket.take(start).unwrap_err();
        assert!(wait <= Duration::from_millis(50) && wait > Duration::ZERO);
        assert!(bucket.take(start + Duration::from_millis(60)).is_ok());
    }

    #[test]
    fn a_rate_of_zero_never_limits() {
        let mut bucket = TokenBucket::new(0.0, 1);
        let now = Instant::now();
        assert!((0..10_000).all(|_| bucket.take(now).is_ok()));
    }

    #[test]
    fn each_key_has_its_own_allowance() {
        let limiter = KeyedLimiter::per_minute(1, 2);
        assert!(limiter.take(&"a").is_ok());
        assert!(limiter.take(&"a").is_ok());
        let wait = limiter.take(&"a").unwrap_err();
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        assert!(limiter.take(&"b").is_ok());
    }

    #[test]
    fn checking_counts_nothing() {
        let limiter = KeyedLimiter::per_minute(1, 1);
        assert!(limiter.check(&1).is_ok());
        assert!(limiter.check(&1).is_ok());
        assert!(limiter.take(&1).is_ok());
        assert!(limiter.check(&1).is_err());
    }

    #[test]
    fn idle_keys_are_forgotten_once_many_are_tracked() {
        let limiter = KeyedLimiter::per_second(1000.0, 1);
        for key in 0..SWEEP_AT as u32 {
            let _ = limiter.take(&key);
        }
        std::thread::sleep(Duration::from_millis(5));
        let _ = limiter.take(&u32::MAX);
        assert!(limiter.tracked() < 10, "{}", limiter.tracked());
    }

    #[test]
    fn a_window_allows_its_maximum_in_any_minute_and_no_more() {
        let limiter = WindowLimiter::per_minute(30);
        for _ in 0..30 {
            assert!(limiter.take(&"a").is_ok());
        }
        let wait = limiter.take(&"a").unwrap_err();
        assert!(wait > Duration::from_secs(59), "{wait:?}");
        // A refusal is not an event: the wait does not grow with retries.
        let again = limiter.take(&"a").unwrap_err();
        assert!(again <= wait);
        assert!(limiter.take(&"b").is_ok());
    }

    #[test]
    fn a_window_lets_an_event_through_once_the_oldest_is_a_window_old() {
        let limiter = WindowLimiter {
            max: 2,
            window: Duration::from_millis(30),
            events: Mutex::new(HashMap::new()),
        };
        assert!(limiter.take(&1).is_ok());
        assert!(limiter.take(&1).is_ok());
        assert!(limiter.take(&1).is_err());
        std::thread::sleep(Duration::from_millis(35));
        assert!(limiter.take(&1).is_ok());
        assert!(limiter.take(&1).is_ok());
        assert!(limiter.take(&1).is_err());
    }

    #[test]
    fn a_window_of_zero_never_limits() {
        let limiter = WindowLimiter::per_minute(0);
        assert!((0..10_000).all(|_| limiter.take(&1).is_ok()));
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        assert_eq!(
            client_ip(proxy, &headers, &[proxy]),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(proxy, &headers, &[]), proxy);
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }
}
