//! Background sweeps over the connection registry.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{domain, state::AppState};

/// Disconnects connections whose heartbeats stopped (the reference design's 2 s / 4 s rhythm),
/// and forgets connections that closed without a disconnect.
pub(super) async fn sweep_silent_connections(state: AppState, stop: CancellationToken) {
    let timeout = state.settings.heartbeat_timeout();
    let mut tick = tokio::time::interval(
        (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1)),
    );
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let purged = state.connections.purge_closed();
        if purged > 0 {
            tracing::debug!(purged, "forgot connections that never opened");
        }
        for socket in state.connections.silent(timeout) {
            tracing::debug!("disconnecting a connection whose heartbeats stopped");
            let _ = socket.disconnect();
        }
    }
}

/// Closes connections whose token expired or was revoked (a sign-out, a disabled account) since
/// they connected. A revocation made on this node closes them at once; this catches the ones made
/// on a node whose word did not get here (Redis away), and tokens that simply ran out.
pub(super) async fn recheck_tokens(state: AppState, stop: CancellationToken) {
    let every = Duration::from_millis(state.settings.token_recheck_ms.max(100));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Revocations are asked for since the last check that answered, with a margin for the clocks
    // of other nodes and of the database.
    let margin = 60_000;
    let mut since = domain::now_millis() - margin;
    // Revocations already passed on to the token checks (each is asked for again for a minute).
    let mut told: std::collections::HashMap<domain::UserId, i64> = Default::default();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = domain::now_millis();
        // A database that stopped answering must not hold up a shutdown.
        let asked = tokio::select! {
            _ = stop.cancelled() => return,
            asked = state.accounts.revoked_since(since) => asked,
        };
        let revoked = match asked {
            Ok(revoked) => {
                since = now - margin;
                // A change another node made and could not tell of (Redis away) reaches the
                // token checks here too.
                told.retain(|_, valid_from| *valid_from >= since);
                for revocation in &revoked {
                    if told.insert(revocation.user, revocation.valid_from)
                        != Some(revocation.valid_from)
                    {
                        state.accounts.forget(revocation.user);
                    }
                }
                revoked
            }
            Err(error) => {
                // Expiry is still enforced; revocations are asked for again next time.
                error.log("checking for revoked tokens");
                Vec::new()
            }
        };
        for socket in state.connections.expired_or_revoked(now, &revoked) {
            state.metrics.revoked_disconnects.inc();
            let _ = socket.disconnect();
        }
    }
}
