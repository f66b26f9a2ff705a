//! What can happen to a conversation besides its messages.

/// The kinds of [conversation events](crate::store::ConversationEvent), as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Given to an agent by routing (`agent`).
    Assigned,
    /// Handed by an agent (`actor`) to another (`agent`).
    Transferred,
    /// Back in the queue: handed back by its agent (`actor`), or its agent was disabled.
    Queued,
    /// Ended by its agent (`actor`), or by kefu when nothing was said while the customer was away
    /// (no actor; `agent` is the agent it had).
    Resolved,
    /// Rated by its customer (`actor`, `score`).
    Rated,
    /// Left the queue unanswered: its customer had gone (kefu ended it).
    Abandoned,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Assigned,
        EventKind::Transferred,
        EventKind::Queued,
        EventKind::Resolved,
        EventKind::Rated,
        EventKind::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Assigned => "assigned",
            EventKind::Transferred => "transferred",
            EventKind::Queued => "queued",
            EventKind::Resolved => "resolved",
            EventKind::Rated => "rated",
            EventKind::Abandoned => "abandoned",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        Some(match stored {
            "assigned" => EventKind::Assigned,
            "transferred" => EventKind::Transferred,
            "queued" => EventKind::Queued,
            "resolved" => EventKind::Resolved,
            "rated" => EventKind::Rated,
            "abandoned" => EventKind::Abandoned,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_as_itself() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("opened"), None);
    }
}
