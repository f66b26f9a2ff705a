//! Visitors, staff accounts and logins.

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
}

impl Accounts {
    pub fn new(store: Store, auth: Auth) -> Self {
        Self { store, auth }
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
        match self.store.user(identity.user_id).await {
            Ok(record)
                if !record.disabled
                    && record.user.role == identity.role
                    && verified.issued_at >= record.tokens_valid_from =>
            {
                Ok(verified)
            }
            Ok(_) | Err(StoreError::NotFound) => Err(Error::Unauthorized),
            Err(e) => Err(e.into()),
        }
    }

    /// Signs the account out: every token it was issued stops working, here and on every node.
    #[tracing::instrument(skip_all, fields(user = %who.user_id))]
    pub async fn sign_out(&self, who: Identity) -> Result<()> {
        self.store.revoke_tokens(who.user_id).await?;
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
        tracing::info!("account {}", if disabled { "disabled" } else { "enabled" });
        Ok(record.user)
    }

    pub async fn user(&self, identity: Identity) -> Result<User> {
        Ok(self.store.user(identity.user_id).await?.user)
    }
}

/// An argon2 hash of a random string nobody knows.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$0KQdqHDUUYfhmbzmlQ0ZkQ$LkIOrh3R8+Ln1y0BTpZwj1vT0Be2FVvsxuRP3ouq9Ok";
