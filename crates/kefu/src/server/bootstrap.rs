//! The first accounts: the admin, and the demo agents.

use std::path::Path;

use anyhow::Context;

use crate::{config::Settings, domain, services, services::accounts::Accounts};

/// The admin from `KEFU_ADMIN_PASSWORD` (or a generated password on a first start without it),
/// and the demo agents with `--demo`.
pub(super) async fn bootstrap_accounts(
    settings: &Settings,
    accounts: &Accounts,
) -> anyhow::Result<Vec<String>> {
    let mut notes = Vec::new();
    match &settings.admin_password {
        Some(password) => {
            if accounts
                .bootstrap_admin(password.expose())
                .await
                .map_err(anyhow_of)?
            {
                notes.push(
                    "admin account created: user admin, password from KEFU_ADMIN_PASSWORD"
                        .to_owned(),
                );
            }
        }
        None => {
            let password = services::auth::random_hex(8);
            if accounts
                .bootstrap_admin(&password)
                .await
                .map_err(anyhow_of)?
            {
                notes.push(format!(
                    "admin account created: user admin, password {password} (shown once)"
                ));
            }
        }
    }
    if settings.demo {
        notes.extend(demo_agents(&settings.data_dir, accounts).await?);
    }
    Ok(notes)
}

/// `alice` and `bob`, with passwords generated once and kept in `<data_dir>/demo-logins`.
async fn demo_agents(data_dir: &Path, accounts: &Accounts) -> anyhow::Result<Vec<String>> {
    let path = data_dir.join("demo-logins");
    let mut logins = std::fs::read_to_string(&path).unwrap_or_default();
    for (username, display_name) in [("alice", "Alice"), ("bob", "Bob")] {
        if logins
            .lines()
            .any(|l| l.starts_with(&format!("{username} ")))
        {
            continue;
        }
        let password = services::auth::random_hex(6);
        match accounts
            .create_staff(
                domain::Role::Agent,
                username,
                password.clone(),
                Some(display_name),
            )
            .await
        {
            Ok(_) => logins.push_str(&format!("{username} {password}\n")),
            Err(services::Error::Conflict(_)) => continue,
            Err(e) => return Err(anyhow_of(e)),
        }
    }
    std::fs::write(&path, &logins).with_context(|| format!("writing {}", path.display()))?;
    Ok(logins
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(user, password)| format!("demo agent: user {user}, password {password}"))
        .collect())
}

fn anyhow_of(error: services::Error) -> anyhow::Error {
    match error {
        services::Error::Other(e) => e,
        other => anyhow::anyhow!("{other}"),
    }
}
