//! Presence as the chat rules see it: who of my members is online, and what a user coming or
//! going changes.

use super::{Chat, LoginOutcome};
use crate::{
    domain::{Role, UserId},
    services::{Result, auth::Identity, delivery::Notice},
};

impl Chat {
    /// For each of `users`, whether it is online on some node.
    pub async fn online(&self, users: &[UserId]) -> Vec<bool> {
        self.delivery.online(users).await
    }

    /// Ids of my members that are online now (`Online_user`).
    pub async fn online_peers(&self, me: Identity) -> Result<Vec<UserId>> {
        let peers = self.store.peers_of(me.user_id, me.role).await?;
        self.online_among(peers).await
    }

    /// [`Chat::online_peers`] for the answer to a `login`: a customer's one peer is the agent of
    /// the conversation its login just found, so it is not read again.
    pub async fn online_after_login(
        &self,
        me: Identity,
        outcome: &LoginOutcome,
    ) -> Result<Vec<UserId>> {
        if me.role.is_staff() {
            return self.online_peers(me).await;
        }
        self.online_among(outcome.cs_id.into_iter().collect()).await
    }

    pub(super) async fn online_among(&self, peers: Vec<UserId>) -> Result<Vec<UserId>> {
        let online = self.delivery.online(&peers).await;
        Ok(peers
            .into_iter()
            .zip(online)
            .filter_map(|(peer, online)| online.then_some(peer))
            .collect())
    }

    /// A user's first connection opened or last one closed: tell the users who share an open
    /// conversation with it, and nobody else. An agent coming online also takes the queue.
    #[tracing::instrument(skip_all, fields(user = %user.user_id))]
    pub async fn presence_changed(&self, user: Identity, online: bool) -> Result<()> {
        let peers = if user.role == Role::Customer {
            // The agent of its open conversation: kept in memory, read with the other customers
            // coming and going at the same moment.
            match self.latest(user.user_id).await? {
                super::Latest::Open(conversation) => conversation.agent_id.into_iter().collect(),
                super::Latest::Ended(_) | super::Latest::Nothing => Vec::new(),
            }
        } else {
            self.store.peers_of(user.user_id, user.role).await?
        };
        let notice = Notice::Presence {
            user: user.user_id,
            online,
        };
        for peer in peers {
            self.delivery.notify(peer, &notice, None);
        }
        if online && user.role == Role::Agent {
            self.wake_queue();
        }
        Ok(())
    }
}
