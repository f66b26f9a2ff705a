use serde::Serialize;

use super::{UserId, ValidationError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Agent,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        match value {
            "customer" => Ok(Role::Customer),
            "agent" => Ok(Role::Agent),
            "admin" => Ok(Role::Admin),
            _ => Err(ValidationError::invalid(
                "role must be customer, agent or admin",
            )),
        }
    }

    /// Agents and admins answer customers; both log in with a password.
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Customer)
    }
}

/// A user as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: UserId,
    pub role: Role,
    pub username: String,
    pub display_name: String,
}

/// 3 to 32 characters of `a-z 0-9 . _ -`, compared in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let value = value.trim().to_ascii_lowercase();
        let allowed = value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if !(3..=32).contains(&value.len()) || !allowed {
            return Err(ValidationError::invalid(
                "username must be 3 to 32 characters of a-z, 0-9, '.', '_' or '-'",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 8 to 128 characters; never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn parse(value: String) -> Result<Self, ValidationError> {
        if !(8..=128).contains(&value.chars().count()) {
            return Err(ValidationError::invalid(
                "password must be 8 to 128 characters",
            ));
        }
        Ok(Self(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// 1 to 64 printable characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let value = value.trim();
        let printable = value.chars().all(|c| !c.is_control());
        if value.is_empty() || value.chars().count() > 64 || !printable {
            return Err(ValidationError::invalid(
                "display name must be 1 to 64 printable characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Loosely checked: a visitor's contact address, at most 254 characters with one `@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let value = value.trim();
        let ok = value.len() <= 254
            && value.split('@').count() == 2
            && !value.starts_with('@')
            && !value.ends_with('@')
            && value.chars().all(|c| !c.is_control() && !c.is_whitespace());
        if !ok {
            return Err(ValidationError::invalid(
                "email must look like name@example.com",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_cased_and_limited_to_a_safe_alphabet() {
        assert_eq!(Username::parse(" Alice ").unwrap().as_str(), "alice");
        for bad in [
            "ab",
            "a b c",
            "robert'); drop table users;--",
            "ünïcode",
            &"x".repeat(33),
        ] {
            assert!(Username::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn passwords_are_8_to_128_characters_and_hidden_in_debug() {
        assert!(Password::parse("short".into()).is_err());
        let password = Password::parse("long enough".into()).unwrap();
        assert!(!format!("{password:?}").contains("long"));
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Ann ").unwrap().as_str(), "Ann");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn emails_need_exactly_one_at_sign() {
        assert!(Email::parse("ann@example.com").is_ok());
        assert!(Email::parse("ann").is_err());
        assert!(Email::parse("a@b@c").is_err());
    }
}
