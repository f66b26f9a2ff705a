use sqlx::{Row, any::AnyRow};

use super::{Store, StoreError, optional_text, sql, text};
use crate::domain::{Role, User, UserId, now_millis};

/// A user row, with what only the server may see.
/// An account whose tokens were revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    pub user: UserId,
    /// Tokens issued before this time (milliseconds) are refused.
    pub valid_from: i64,
    pub disabled: bool,
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub disabled: bool,
    /// Tokens issued before this time (milliseconds) are refused.
    pub tokens_valid_from: i64,
}

pub struct NewUser<'a> {
    pub role: Role,
    pub username: &'a str,
    pub display_name: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: Option<&'a str>,
}

macro_rules! user_columns {
    () => {
        "id, role, username, display_name, email, password_hash, disabled, tokens_valid_from"
    };
}

fn user_from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let role = text(row, "role")?;
    let role = Role::parse(&role)
        .map_err(|e| StoreError::Other(sqlx::Error::Decode(e.to_string().into())))?;
    Ok(UserRecord {
        user: User {
            id: UserId(row.try_get("id")?),
            role,
            username: text(row, "username")?,
            display_name: text(row, "display_name")?,
        },
        email: optional_text(row, "email")?,
        password_hash: optional_text(row, "password_hash")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        tokens_valid_from: row.try_get("tokens_valid_from")?,
    })
}

impl Store {
    /// Inserts a user; `Conflict` when the username is taken.
    pub async fn create_user(&self, new: NewUser<'_>) -> Result<User, StoreError> {
        let now = now_millis();
        let id: i64 = if self.dialect.has_returning() {
            sqlx::query(sql!(
                self,
                "INSERT INTO users (role, username, display_name, email, password_hash, disabled, created_at) \
                 VALUES (?, ?, ?, ?, ?, 0, ?) RETURNING id"
            ))
            .bind(new.role.as_str())
            .bind(new.username)
            .bind(new.display_name)
            .bind(new.email)
            .bind(new.password_hash)
            .bind(now)
            .fetch_one(&mut *self.write_conn().await?)
            .await?
            .try_get("id")?
        } else {
            let result = sqlx::query(
                "INSERT INTO users (role, username, display_name, email, password_hash, disabled, created_at) \
                 VALUES (?, ?, ?, ?, ?, 0, ?)",
            )
            .bind(new.role.as_str())
            .bind(new.username)
            .bind(new.display_name)
            .bind(new.email)
            .bind(new.password_hash)
            .bind(now)
            .execute(&mut *self.write_conn().await?)
            .await?;
            result.last_insert_id().ok_or(StoreError::NotFound)?
        };
        Ok(User {
            id: UserId(id),
            role: new.role,
            username: new.username.to_owned(),
            display_name: new.display_name.to_owned(),
        })
    }

    /// The user `id`, read together with the others asked for at the same moment ([`batched`]).
    ///
    /// [`batched`]: super::batched
    pub async fn user(&self, id: UserId) -> Result<UserRecord, StoreError> {
        self.reads
            .users
            .get(self, id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub(super) fn read_users(
        store: Store,
        ids: Vec<UserId>,
    ) -> super::batched::Reading<UserId, UserRecord> {
        Box::pin(async move {
            let keys: Vec<i64> = ids.iter().map(|id| id.0).collect();
            store
                .rows_with_keys(
                    concat!("SELECT ", user_columns!(), " FROM users WHERE id IN ({})"),
                    &keys,
                )
                .await?
                .iter()
                .map(|row| user_from_row(row).map(|u| (u.user.id, u)))
                .collect()
        })
    }

    pub async fn user_by_username(&self, username: &str) -> Result<UserRecord, StoreError> {
        let row = sqlx::query(sql!(
            self,
            concat!("SELECT ", user_columns!(), " FROM users WHERE username = ?")
        ))
        .bind(username)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        user_from_row(&row)
    }

    /// Several users at once, in no particular order; unknown ids are left out.
    pub async fn users(&self, ids: &[UserId]) -> Result<Vec<UserRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let query = format!(
            concat!("SELECT ", user_columns!(), " FROM users WHERE id IN ({})"),
            super::placeholders(ids.len())
        );
        let query = self.dialect.dynamic(query);
        let mut q = sqlx::query(query.as_ref());
        for id in ids {
            q = q.bind(id.0);
        }
        q.fetch_all(&mut *self.conn().await?)
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    /// Agents and admins, oldest first.
    pub async fn staff(&self) -> Result<Vec<UserRecord>, StoreError> {
        sqlx::query(sql!(
            self,
            concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE role <> 'customer' ORDER BY id"
            )
        ))
        .fetch_all(&mut *self.conn().await?)
        .await?
        .iter()
        .map(user_from_row)
        .collect()
    }

    /// `false` when there is no such user. Disabling also revokes every token issued so far.
    pub async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<bool, StoreError> {
        let result = if disabled {
            sqlx::query(sql!(
                self,
                "UPDATE users SET disabled = 1, tokens_valid_from = ? WHERE id = ?"
            ))
            .bind(crate::domain::now_millis())
            .bind(id.0)
            .execute(&mut *self.write_conn().await?)
            .await?
        } else {
            sqlx::query(sql!(self, "UPDATE users SET disabled = 0 WHERE id = ?"))
                .bind(id.0)
                .execute(&mut *self.write_conn().await?)
                .await?
        };
        Ok(result.rows_affected() == 1)
    }

    /// Revokes every token of `id` issued so far (a sign-out).
    pub async fn revoke_tokens(&self, id: UserId) -> Result<(), StoreError> {
        sqlx::query(sql!(
            self,
            "UPDATE users SET tokens_valid_from = ? WHERE id = ?"
        ))
        .bind(crate::domain::now_millis())
        .bind(id.0)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    /// Accounts whose tokens were revoked at or after `since` (milliseconds): each with the time
    /// its valid tokens start from and whether it is disabled.
    pub async fn revoked_since(&self, since: i64) -> Result<Vec<Revocation>, StoreError> {
        sqlx::query(sql!(
            self,
            "SELECT id, tokens_valid_from, disabled FROM users WHERE tokens_valid_from >= ?"
        ))
        .bind(since)
        .fetch_all(&mut *self.conn().await?)
        .await?
        .iter()
        .map(|row| {
            Ok(Revocation {
                user: UserId(row.try_get("id")?),
                valid_from: row.try_get("tokens_valid_from")?,
                disabled: row.try_get::<i64, _>("disabled")? != 0,
            })
        })
        .collect()
    }

    pub async fn set_password_hash(&self, id: UserId, hash: &str) -> Result<(), StoreError> {
        sqlx::query(sql!(
            self,
            "UPDATE users SET password_hash = ? WHERE id = ?"
        ))
        .bind(hash)
        .bind(id.0)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    pub async fn role_exists(&self, role: Role) -> Result<bool, StoreError> {
        let count: i64 = sqlx::query(sql!(self, "SELECT COUNT(*) AS n FROM users WHERE role = ?"))
            .bind(role.as_str())
            .fetch_one(&mut *self.conn().await?)
            .await?
            .try_get("n")?;
        Ok(count > 0)
    }
}
