//! The queue as customers see it: a place, and how long it may take.

/// A waiting conversation's place in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePlace {
    /// 1 for the head.
    pub position: i64,
    pub estimated_wait_seconds: i64,
}

/// How long a place in the queue may take: each available agent takes one waiting customer per
/// typical conversation.
pub struct WaitEstimate {
    pub available: i64,
    pub per_conversation: i64,
}

impl WaitEstimate {
    pub fn seconds(&self, position: i64) -> i64 {
        (position + self.available - 1) / self.available * self.per_conversation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_available_agent_takes_one_waiting_customer_per_typical_conversation() {
        let estimate = WaitEstimate {
            available: 2,
            per_conversation: 300,
        };
        assert_eq!(estimate.seconds(1), 300);
        assert_eq!(estimate.seconds(2), 300);
        assert_eq!(estimate.seconds(3), 600);
    }
}
