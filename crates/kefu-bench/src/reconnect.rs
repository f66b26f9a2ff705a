//! How a client waits before connecting again: socket.io-client's backoff (its `backo2`), so
//! that the clients of a restarted server come back as the official client's would.
//!
//! The n-th attempt (from 0) waits `min × 2ⁿ`, moved by up to `randomization × that` either way,
//! at most `max`: with the official client's defaults (`reconnectionDelay` 1000 ms,
//! `reconnectionDelayMax` 5000 ms, `randomizationFactor` 0.5) 0.5–1.5 s, then 1–3 s, then
//! 2–5 s, then 5 s. The first attempt already waits: the client does not reconnect at once.

use std::time::Duration;

/// socket.io-client's reconnection schedule.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub min: Duration,
    pub max: Duration,
    /// 0 ..= 1: how far a delay may be moved either way, as a share of itself.
    pub randomization: f64,
}

impl Schedule {
    /// The delay before attempt `attempt` (from 0), given a uniform random number in [0, 1).
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let min = self.min.as_secs_f64() * 1e3;
        let max = self.max.as_secs_f64() * 1e3;
        // Past 2^30 the product overflows nothing in f64, but it is far past any max.
        let mut ms = min * 2f64.powi(attempt.min(30) as i32);
        let jitter = self.randomization.clamp(0.0, 1.0);
        if jitter > 0.0 {
            let deviation = (random * jitter * ms).floor();
            // backo2 picks the direction from a digit of the same random number.
            ms = if ((random * 10.0).floor() as u64) & 1 == 0 {
                ms - deviation
            } else {
                ms + deviation
            };
        }
        Duration::from_millis(ms.min(max).max(0.0) as u64)
    }
}

/// A small deterministic random number generator (SplitMix64): the jitter of tens of thousands
/// of clients needs to be spread, not secret.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A number in [0, 1).
    pub fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn official() -> Schedule {
        Schedule {
            min: Duration::from_millis(1000),
            max: Duration::from_millis(5000),
            randomization: 0.5,
        }
    }

    #[test]
    fn without_jitter_the_delay_doubles_up_to_the_max() {
        let schedule = Schedule {
            randomization: 0.0,
            ..official()
        };
        let delays: Vec<u64> = (0..5)
            .map(|n| schedule.delay(n, 0.3).as_millis() as u64)
            .collect();
        assert_eq!(delays, [1000, 2000, 4000, 5000, 5000]);
    }

    #[test]
    fn the_official_defaults_spread_the_first_attempt_over_half_a_second_to_one_and_a_half() {
        let schedule = official();
        let mut jitter = Jitter::new(7);
        let delays: Vec<u64> = (0..10_000)
            .map(|_| schedule.delay(0, jitter.next()).as_millis() as u64)
            .collect();
        assert!(delays.iter().all(|&d| (500..=1500).contains(&d)));
        let early = delays.iter().filter(|&&d| d < 1000).count();
        assert!((4000..6000).contains(&early), "{early} of 10,000 below 1 s");
    }

    #[test]
    fn a_late_attempt_never_waits_past_the_max() {
        let schedule = official();
        let mut jitter = Jitter::new(1);
        assert!((0..1000).all(|n| schedule.delay(n, jitter.next()) <= Duration::from_secs(5)));
    }

    #[test]
    fn jitter_stays_in_the_unit_interval() {
        let mut jitter = Jitter::new(0);
        assert!(
            (0..100_000)
                .map(|_| jitter.next())
                .all(|x| (0.0..1.0).contains(&x))
        );
    }
}
