//! Leases: a timer that must fire once in a cluster (the offline path's sweeps, the mailer's
//! polls) runs on the node that holds its lease. A lease is held until a time and renewed by its
//! holder; when the holder stops renewing (it stopped, or lost the database), another node takes it
//! once it has run out. The work done under a lease is written so that running it twice does no
//! harm (conditional updates), so a lease only keeps the nodes from doing it all at once.

use super::{Store, StoreError, sql};

impl Store {
    /// Takes or renews the lease `name` for `holder` until `now + for_ms`; `true` when `holder`
    /// holds it now.
    pub async fn claim_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        for_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.write_conn().await?;
        let renewed = sqlx::query(sql!(
            self,
            "UPDATE leases SET holder = ?, held_until = ? \
             WHERE name = ? AND (holder = ? OR held_until < ?)"
        ))
        .bind(holder)
        .bind(now + for_ms)
        .bind(name)
        .bind(holder)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if renewed.rows_affected() == 1 {
            return Ok(true);
        }
        let taken = sqlx::query(sql!(
            self,
            "INSERT INTO leases (name, holder, held_until) VALUES (?, ?, ?)"
        ))
        .bind(name)
        .bind(holder)
        .bind(now + for_ms)
        .execute(&mut *conn)
        .await;
        match taken.map_err(StoreError::from) {
            Ok(_) => Ok(true),
            // Someone else holds it.
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up (a node that stops cleanly), so that another takes it at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query(sql!(
            self,
            "UPDATE leases SET held_until = 0 WHERE name = ? AND holder = ?"
        ))
        .bind(name)
        .bind(holder)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }
}
