//! Shop-wide settings set in admin, one JSON document per name.

use super::{Store, StoreError, sql};

impl Store {
    /// The setting `name`, as written; `None` when never set.
    pub async fn site_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(sql!(self, "SELECT value FROM site_settings WHERE name = ?"))
            .bind(name)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|r| super::text(&r, "value")).transpose()
    }

    /// Replaces the setting `name`.
    pub async fn set_site_setting(
        &self,
        name: &str,
        value: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(sql!(self, "DELETE FROM site_settings WHERE name = ?"))
            .bind(name)
            .execute(&mut **tx)
            .await?;
        sqlx::query(sql!(
            self,
            "INSERT INTO site_settings (name, value, updated_at) VALUES (?, ?, ?)"
        ))
        .bind(name)
        .bind(value)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
