//! The admin's reports: conversations per day, first-response and resolution times and CSAT per
//! agent.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use ts_rs::TS;

use super::{Error, Result};
use crate::{
    domain::{User, UserId, format_timestamp, now_millis},
    store::{ConversationFacts, Store},
};

const DAY_MS: i64 = 24 * 3600 * 1000;
/// The longest period a report covers.
pub const MAX_DAYS: i64 = 365;

#[derive(Debug, Serialize, TS)]
#[ts(rename = "ReportsResponse")]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub from: String,
    pub to: String,
    pub days: Vec<DayCount>,
    pub agents: Vec<AgentReport>,
    /// Conversations of the period that left the queue unanswered, their customers gone.
    pub abandoned: usize,
    /// The median wait before abandoning, in seconds; `None` without any.
    pub abandon_wait_seconds: Option<f64>,
}

#[derive(Debug, Serialize, PartialEq, Eq, TS)]
pub struct DayCount {
    pub date: String,
    pub conversations: usize,
}

#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AgentReport {
    pub agent: User,
    /// Conversations created in the period and held by this agent (open or resolved by it).
    pub conversations: usize,
    pub resolved: usize,
    pub first_response_seconds: Option<Spread>,
    pub resolution_seconds: Option<Spread>,
    pub csat: Option<Csat>,
}

#[derive(Debug, Serialize, PartialEq, TS)]
#[ts(rename = "Percentiles")]
pub struct Spread {
    pub median: f64,
    pub p90: f64,
}

#[derive(Debug, Serialize, PartialEq, TS)]
pub struct Csat {
    pub average: f64,
    pub count: usize,
}

/// The median and 90th percentile (nearest rank) of durations in milliseconds, in seconds.
fn spread(mut millis: Vec<i64>) -> Option<Spread> {
    if millis.is_empty() {
        return None;
    }
    millis.sort_unstable();
    let rank = |q: f64| {
        let i = ((q * millis.len() as f64).ceil() as usize).clamp(1, millis.len()) - 1;
        millis[i] as f64 / 1000.0
    };
    Some(Spread {
        median: rank(0.5),
        p90: rank(0.9),
    })
}

fn date_of(millis: i64) -> String {
    format_timestamp(millis)[..10].to_owned()
}

/// Builds the report of the last `days` days (today included) from the conversations' facts.
pub fn build(staff: &[User], facts: &[ConversationFacts], days: i64, now: i64) -> Report {
    let start = (now / DAY_MS - (days - 1)) * DAY_MS;
    let mut per_day: BTreeMap<String, usize> = (0..days)
        .map(|d| (date_of(start + d * DAY_MS), 0))
        .collect();
    let mut held: HashMap<UserId, usize> = HashMap::new();
    let mut resolved: HashMap<UserId, Vec<i64>> = HashMap::new();
    let mut first: HashMap<UserId, Vec<i64>> = HashMap::new();
    let mut ratings: HashMap<UserId, Vec<i64>> = HashMap::new();
    let mut abandoned: Vec<i64> = Vec::new();
    for fact in facts.iter().filter(|f| f.created_at >= start) {
        if fact.abandoned {
            abandoned.push(fact.resolved_at.unwrap_or(fact.created_at) - fact.created_at);
        }
        *per_day.entry(date_of(fact.created_at)).or_default() += 1;
        if let Some(agent) = fact.agent_id {
            *held.entry(agent).or_default() += 1;
        }
        if let (Some(by), Some(at)) = (fact.resolved_by, fact.resolved_at) {
            resolved.entry(by).or_default().push(at - fact.created_at);
            if let Some(rating) = fact.rating {
                ratings.entry(by).or_default().push(rating);
            }
        }
        if let Some((by, at)) = fact.first_response {
            first.entry(by).or_default().push(at - fact.created_at);
        }
    }
    let agents = staff
        .iter()
        .map(|agent| {
            let rated = ratings.remove(&agent.id).unwrap_or_default();
            let resolution = resolved.remove(&agent.id).unwrap_or_default();
            AgentReport {
                conversations: held.get(&agent.id).copied().unwrap_or(0),
                resolved: resolution.len(),
                first_response_seconds: spread(first.remove(&agent.id).unwrap_or_default()),
                resolution_seconds: spread(resolution),
                csat: (!rated.is_empty()).then(|| Csat {
                    average: rated.iter().sum::<i64>() as f64 / rated.len() as f64,
                    count: rated.len(),
                }),
                agent: agent.clone(),
            }
        })
        .collect();
    Report {
        from: format_timestamp(start),
        to: format_timestamp(now),
        days: per_day
            .into_iter()
            .map(|(date, conversations)| DayCount {
                date,
                conversations,
            })
            .collect(),
        agents,
        abandoned: abandoned.len(),
        abandon_wait_seconds: spread(abandoned).map(|s| s.median),
    }
}

/// What the admin's routes read.
#[derive(Clone)]
pub struct Reports {
    store: Store,
}

impl Reports {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    #[tracing::instrument(skip_all)]
    pub async fn report(&self, days: i64) -> Result<Report> {
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(Error::InvalidPayload(format!(
                "days must be between 1 and {MAX_DAYS}"
            )));
        }
        let now = now_millis();
        let since = (now / DAY_MS - (days - 1)) * DAY_MS;
        let facts = self.store.conversation_facts(since).await?;
        let staff: Vec<User> = self
            .store
            .staff()
            .await?
            .into_iter()
            .map(|r| r.user)
            .collect();
        Ok(build(&staff, &facts, days, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ConversationId, Role};

    fn agent(id: i64) -> User {
        User {
            id: UserId(id),
            role: Role::Agent,
            username: format!("a{id}"),
            display_name: format!("A{id}"),
        }
    }

    #[test]
    fn the_median_and_p90_take_the_nearest_rank() {
        let s = spread((1..=10).map(|s| s * 1000).collect()).unwrap();
        assert_eq!(
            s,
            Spread {
                median: 5.0,
                p90: 9.0
            }
        );
        assert_eq!(spread(vec![]), None);
        assert_eq!(
            spread(vec![3000]),
            Some(Spread {
                median: 3.0,
                p90: 3.0
            })
        );
    }

    #[test]
    fn a_report_counts_every_day_and_credits_who_answered_and_who_resolved() {
        let now = 10 * DAY_MS + 3_600_000;
        let facts = vec![
            ConversationFacts {
                id: ConversationId(1),
                created_at: 10 * DAY_MS,
                agent_id: Some(UserId(7)),
                resolved_at: Some(10 * DAY_MS + 600_000),
                resolved_by: Some(UserId(7)),
                rating: Some(4),
                first_response: Some((UserId(8), 10 * DAY_MS + 30_000)),
                abandoned: false,
            },
            ConversationFacts {
                id: ConversationId(2),
                created_at: 8 * DAY_MS,
                agent_id: None,
                resolved_at: None,
                resolved_by: None,
                rating: None,
                first_response: None,
                abandoned: false,
            },
        ];
        let report = build(&[agent(7), agent(8)], &facts, 3, now);
        assert_eq!(
            report.days,
            vec![
                DayCount {
                    date: "1970-01-09".into(),
                    conversations: 1
                },
                DayCount {
                    date: "1970-01-10".into(),
                    conversations: 0
                },
                DayCount {
                    date: "1970-01-11".into(),
                    conversations: 1
                },
            ]
        );
        let seven = &report.agents[0];
        assert_eq!((seven.conversations, seven.resolved), (1, 1));
        assert_eq!(seven.resolution_seconds.as_ref().unwrap().median, 600.0);
        assert_eq!(
            seven.csat,
            Some(Csat {
                average: 4.0,
                count: 1
            })
        );
        assert_eq!(seven.first_response_seconds, None);
        let eight = &report.agents[1];
        assert_eq!(eight.first_response_seconds.as_ref().unwrap().median, 30.0);
        assert_eq!(eight.csat, None);
    }
}
