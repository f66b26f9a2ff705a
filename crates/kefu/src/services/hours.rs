//! The shop's business hours: set in admin, kept in the database, read by every node at most
//! every few seconds (so a change reaches the other nodes of a cluster within that).

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use super::{Error, Result};
use crate::{
    domain::{BusinessHours, HoursDocument, now_millis},
    store::Store,
};

const SETTING: &str = "business_hours";
/// How long a node trusts the hours it read.
const FRESH: Duration = Duration::from_secs(5);

pub struct Hours {
    store: Store,
    cached: Mutex<Option<(BusinessHours, Instant)>>,
}

impl Hours {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cached: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(BusinessHours, Instant)>> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The business hours now in force (always open until an admin sets them).
    pub async fn get(&self) -> Result<BusinessHours> {
        if let Some((hours, at)) = self.lock().as_ref()
            && at.elapsed() < FRESH
        {
            return Ok(hours.clone());
        }
        let hours = match self.store.site_setting(SETTING).await? {
            Some(json) => serde_json::from_str::<HoursDocument>(&json)
                .map_err(|e| anyhow::anyhow!("the stored business hours do not read: {e}"))
                .and_then(|doc| {
                    BusinessHours::parse(doc)
                        .map_err(|e| anyhow::anyhow!("the stored business hours: {e}"))
                })
                .unwrap_or_else(|error| {
                    tracing::error!(%error, "using always-open hours");
                    BusinessHours::always()
                }),
            None => BusinessHours::always(),
        };
        *self.lock() = Some((hours.clone(), Instant::now()));
        Ok(hours)
    }

    /// An admin sets the business hours.
    #[tracing::instrument(skip_all)]
    pub async fn set(&self, document: HoursDocument) -> Result<BusinessHours> {
        let hours = BusinessHours::parse(document)?;
        let json = serde_json::to_string(hours.document())
            .map_err(|e| Error::Other(anyhow::anyhow!(e)))?;
        self.store
            .set_site_setting(SETTING, &json, now_millis())
            .await?;
        *self.lock() = Some((hours.clone(), Instant::now()));
        tracing::info!("business hours changed");
        Ok(hours)
    }
}
