//! Visitors, staff accounts and logins.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use super::{
    Error, Result,
    auth::{self, Auth, Identity, Verified},
};
use crate::{
    domain::{DisplayName, Email, Password, Role, User, UserId, Username},
    store::{NewUser, Store, StoreError},
};

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    auth: Auth,
    known: std::sync::Arc<KnownAccounts>,
}

/// What a token is checked against, as last read: every handshake needs it, and a reconnect storm
/// of thousands would otherwise read it thousands of times. A sign-out or a disabled account
/// forgets it at once here, and on the other nodes through the cluster ([`Accounts::forget`]).
struct KnownAccounts {
    by_user: std::sync::Mutex<HashMap<UserId, (Account, Instant)>>,
    /// Counts what was forgotten: an account read before a change must not be remembered after it
    /// (a check that read it, a sign-out, then the check's copy stored for a minute).
    forgotten: std::sync::atomic::AtomicU64,
    fresh_for: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Account {
    role: Role,
    disabled: bool,
    tokens_valid_from: i64,
}

/// How long an account is trusted without reading it again: on a node alone every change goes
/// through it; in a cluster a missed invalidation is bounded by this.
pub const ACCOUNTS_FRESH_ALONE: Duration = Duration::from_secs(60);
pub const ACCOUNTS_FRESH_IN_CLUSTER: Duration = Duration::from_secs(5);
/// Accounts kept before the stale ones are swept out.
const ACCOUNTS_SWEPT_ABOVE: usize = 100_000;

impl KnownAccounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, (Account, Instant)>> {
        self.by_user.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, user: UserId) -> Option<Account> {
        let map = self.lock();
        let (account, at) = map.get(&user)?;
        (at.elapsed() < self.fresh_for).then_some(*account)
    }

    /// Where the count of forgotten accounts stands, before reading one.
    fn epoch(&self) -> u64 {
        self.forgotten.load(std::sync::atomic::Ordering::Acquire)
    }

    fn forget(&self, user: UserId) {
        let mut map = self.lock();
        map.remove(&user);
        self.forgotten
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Remembers `account` as read since `epoch`, unless some account was forgotten meanwhile.
    fn put(&self, epoch: u64, user: UserId, account: Account) {
        let mut map = self.lock();
        if self.epoch() != epoch {
            return;
        }
        if map.len() >= ACCOUNTS_SWEPT_ABOVE {
            let fresh_for = self.fresh_for;
            map.retain(|_, (_, at)| at.elapsed() < fresh_for);
        }
        map.insert(user, (account, Instant::now()));
    }
}

impl Accounts {
    /// `fresh_for`: how long an account read for a token check is trusted
    /// ([`ACCOUNTS_FRESH_ALONE`], [`ACCOUNTS_FRESH_IN_CLUSTER`]).
    pub fn new(store: Store, auth: Auth, fresh_for: Duration) -> Self {
        Self {
            store,
            auth,
            known: std::sync::Arc::new(KnownAccounts {
                by_user: std::sync::Mutex::default(),
                forgotten: Default::default(),
                fresh_for,
            }),
        }
    }

    /// The account changed (signed out, disabled or enabled) here or on another node: its tokens
    /// are checked against the database again.
    pub fn forget(&self, user: UserId) {
        self.known.forget(user);
    }

    /// A new anonymous customer and its token: what a chat widget asks for on first open.
    #[tracing::instrument(skip_all)]
    pub async fn create_visitor(
        &self,
        name: Option<&str>,
        email: Option<&str>,
    ) -> Result<(String, User)> {
        let name = name
            .filter(|n| !n.trim().is_empty())
            .map(DisplayName::parse)
            .transpose()?;
        let email = email
            .filter(|e| !e.trim().is_empty())
            .map(Email::parse)
            .transpose()?;
        let tag = auth::random_hex(4);
        let username = format!("visitor-{tag}");
        let display_name = name
            .map(|n| n.as_str().to_owned())
            .unwrap_or_else(|| format!("Visitor {}", &tag[..4]));
        let user = self
            .store
            .create_user(NewUser {
                role: Role::Customer,
                username: &username,
                display_name: &display_name,
                email: email.as_ref().map(Email::as_str),
                password_hash: None,
            })
            .await?;
        let token = self.auth.issue(&user)?;
        Ok((token, user))
    }

    /// Sets the e-mail of the user `id` (staff: where kefu's mails to them go).
    #[tracing::instrument(skip_all, fields(user = %id))]
    pub async fn set_email(&self, id: UserId, email: &str) -> Result<()> {
        let email = Email::parse(email)?;
        Ok(self.store.set_email(id, Some(email.as_str())).await?)
    }

    /// A new token for the customer `id` (a signed resume link was followed): the same session
    /// as [`Accounts::create_visitor`] gave it. `NotFound` for staff and disabled accounts.
    #[tracing::instrument(skip_all, fields(user = %id))]
    pub async fn customer_session(&self, id: UserId) -> Result<(String, User)> {
        let record = match self.store.user(id).await {
            Ok(record) => record,
            Err(StoreError::NotFound) => return Err(Error::NotFound("no such visitor")),
            Err(e) => return Err(e.into()),
        };
        if record.user.role != Role::Customer || record.disabled {
            return Err(Error::NotFound("no such visitor"));
        }
        let token = self.auth.issue(&record.user)?;
        Ok((token, record.user))
    }

    /// Agents and admins. Every failure is the same `Unauthorized`, so that the answer does not
    /// tell which usernames exist.
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, username: &str, password: &str) -> Result<(String, User)> {
        let record = match Username::parse(username) {
            Ok(username) => match self.store.user_by_username(username.as_str()).await {
                Ok(record) => Some(record),
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            Err(_) => None,
        };
        let usable = record.filter(|r| r.user.role.is_staff() && !r.disabled);
        let hash = usable.as_ref().and_then(|r| r.password_hash.clone());
        // Verify against a fixed hash when there is no user, so both paths cost the same.
        let valid = auth::verify_password(
            hash.clone().unwrap_or_else(|| DUMMY_HASH.to_owned()),
            password.to_owned(),
        )
        .await;
        match usable {
            Some(record) if valid && hash.is_some() => {
                let token = self.auth.issue(&record.user)?;
                Ok((token, record.user))
            }
            _ => Err(Error::Unauthorized),
        }
    }

    /// An agent or admin with a password; `Conflict` when the username is taken.
    #[tracing::instrument(skip_all, fields(role = role.as_str()))]
    pub async fn create_staff(
        &self,
        role: Role,
        username: &str,
        password: String,
        display_name: Option<&str>,
    ) -> Result<User> {
        if !role.is_staff() {
            return Err(Error::InvalidPayload("role must be agent or admin".into()));
        }
        let username = Username::parse(username)?;
        let password = Password::parse(password)?;
        let display_name = match display_name.filter(|d| !d.trim().is_empty()) {
            Some(name) => DisplayName::parse(name)?.as_str().to_owned(),
            None => username.as_str().to_owned(),
        };
        let hash = auth::hash_password(password).await?;
        self.store
            .create_user(NewUser {
                role,
                username: username.as_str(),
                display_name: &display_name,
                email: None,
                password_hash: Some(&hash),
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => Error::Conflict("that username is taken"),
                other => other.into(),
            })
    }

    /// Creates `admin` with this password when no admin exists yet. `true` when it was created.
    pub async fn bootstrap_admin(&self, password: &str) -> Result<bool> {
        if self.store.role_exists(Role::Admin).await? {
            return Ok(false);
        }
        match self
            .create_staff(
                Role::Admin,
                "admin",
                password.to_owned(),
                Some("Administrator"),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The identity behind a token, if the token is valid and its user still exists and is enabled.
    pub async fn authenticate(&self, token: &str) -> Result<Identity> {
        self.verify(token).await.map(|v| v.identity)
    }

    /// A valid token of an enabled account that was not revoked since it was issued, with when it
    /// was issued and when it expires.
    pub async fn verify(&self, token: &str) -> Result<Verified> {
        let verified = self.auth.verify(token)?;
        let identity = verified.identity;
        let account = match self.known.get(identity.user_id) {
            Some(account) => account,
            None => {
                let epoch = self.known.epoch();
                let record = match self.store.user(identity.user_id).await {
                    Ok(record) => record,
                    Err(StoreError::NotFound) => return Err(Error::Unauthorized),
                    Err(e) => return Err(e.into()),
                };
                let account = Account {
                    role: record.user.role,
                    disabled: record.disabled,
                    tokens_valid_from: record.tokens_valid_from,
                };
                self.known.put(epoch, identity.user_id, account);
                account
            }
        };
        if !account.disabled
            && account.role == identity.role
            && verified.issued_at >= account.tokens_valid_from
        {
            Ok(verified)
        } else {
            Err(Error::Unauthorized)
        }
    }

    /// Signs the account out: every token it was issued stops working, here and on every node.
    #[tracing::instrument(skip_all, fields(user = %who.user_id))]
    pub async fn sign_out(&self, who: Identity) -> Result<()> {
        self.store.revoke_tokens(who.user_id).await?;
        self.forget(who.user_id);
        tracing::info!("signed out");
        Ok(())
    }

    /// Accounts whose tokens were revoked at or after `since` (milliseconds).
    pub async fn revoked_since(&self, since: i64) -> Result<Vec<crate::store::Revocation>> {
        Ok(self.store.revoked_since(since).await?)
    }

    /// Agents and admins, with whether each is disabled.
    pub async fn staff(&self) -> Result<Vec<(User, bool)>> {
        Ok(self
            .store
            .staff()
            .await?
            .into_iter()
            .map(|r| (r.user, r.disabled))
            .collect())
    }

    /// Disables or enables a staff account. A disabled account cannot log in, and its tokens stop
    /// working at once.
    #[tracing::instrument(skip_all, fields(user = %id, disabled))]
    pub async fn set_disabled(&self, by: Identity, id: UserId, disabled: bool) -> Result<User> {
        if by.user_id == id && disabled {
            return Err(Error::Forbidden("you cannot disable your own account"));
        }
        let record = match self.store.user(id).await {
            Ok(record) if record.user.role.is_staff() => record,
            Ok(_) | Err(StoreError::NotFound) => return Err(Error::NotFound("no such agent")),
            Err(e) => return Err(e.into()),
        };
        self.store.set_disabled(id, disabled).await?;
        self.forget(id);
        tracing::info!("account {}", if disabled { "disabled" } else { "enabled" });
        Ok(record.user)
    }

    pub async fn user(&self, identity: Identity) -> Result<User> {
        Ok(self.store.user(identity.user_id).await?.user)
    }
}

/// An argon2 hash of a random string nobody knows.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$0KQdqHDUUYfhmbzmlQ0ZkQ$LkIOrh3R8+Ln1y0BTpZwj1vT0Be2FVvsxuRP3ouq9Ok";

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> KnownAccounts {
        KnownAccounts {
            by_user: Default::default(),
            forgotten: Default::default(),
            fresh_for: Duration::from_secs(60),
        }
    }

    const ACCOUNT: Account = Account {
        role: Role::Agent,
        disabled: false,
        tokens_valid_from: 0,
    };

    #[test]
    fn an_account_read_before_a_sign_out_is_not_remembered_after_it() {
        let known = known();
        let user = UserId(7);
        // A token check reads the account; the account signs out before the check stores it.
        let epoch = known.epoch();
        known.forget(user);
        known.put(epoch, user, ACCOUNT);
        assert!(known.get(user).is_none(), "the stale copy was dropped");
        // Read after the change, it is remembered.
        let epoch = known.epoch();
        known.put(epoch, user, ACCOUNT);
        assert!(known.get(user).is_some());
        known.forget(user);
        assert!(known.get(user).is_none(), "forgotten at once");
    }

    #[test]
    fn a_copy_older_than_its_freshness_is_read_again() {
        let known = KnownAccounts {
            fresh_for: Duration::ZERO,
            ..known()
        };
        known.put(known.epoch(), UserId(1), ACCOUNT);
        assert!(known.get(UserId(1)).is_none());
    }
}
