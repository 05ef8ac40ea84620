//! [`Handle`]'s push notifications: the live Drive channels and Graph subscriptions, and
//! the messages the three providers send to the hub (`push.rs` sends them).

use super::Handle;
use crate::push::{self, Authenticity, Delivery, LifecycleEvent};

impl Handle {
    /// The ids of `user`'s live Drive channels (made by `changes.watch`, not stopped, not
    /// expired).
    pub fn live_drive_channels(&self, user: &str) -> Vec<String> {
        push::live_channels(&self.state, user)
    }

    /// Sends a `change` message to each of `user`'s live Drive channels, with the `X-Goog-*`
    /// headers Google sends; `Forged` puts a wrong `X-Goog-Channel-Token` in.
    pub async fn notify_drive_change(
        &self,
        user: &str,
        authenticity: Authenticity,
    ) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        for id in push::live_channels(&self.state, user) {
            let sent = push::send_drive_message(&self.state, &id, "change", authenticity).await;
            deliveries.extend(sent);
        }
        deliveries
    }

    /// The ids of `user`'s live Graph subscriptions.
    pub fn live_graph_subscriptions(&self, user: &str) -> Vec<String> {
        let live = push::live_subscriptions(&self.state, user);
        live.into_iter().map(|s| s.id).collect()
    }

    /// Sends a change notification (`changeType` `updated`) for each of `user`'s live Graph
    /// subscriptions to its `notificationUrl`; `Forged` puts a wrong `clientState` in. Graph
    /// expects 202.
    pub async fn notify_graph_change(
        &self,
        user: &str,
        authenticity: Authenticity,
    ) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        for subscription in push::live_subscriptions(&self.state, user) {
            deliveries.push(push::send_graph_change(&subscription, authenticity).await);
        }
        deliveries
    }

    /// Sends a lifecycle notification for each of `user`'s live Graph subscriptions that has
    /// a `lifecycleNotificationUrl`; `SubscriptionRemoved` also ends those subscriptions.
    pub async fn send_graph_lifecycle_event(
        &self,
        user: &str,
        event: LifecycleEvent,
    ) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        for subscription in push::live_subscriptions(&self.state, user) {
            let sent = push::send_graph_lifecycle(&self.state, &subscription, event).await;
            deliveries.extend(sent);
        }
        deliveries
    }

    /// Sets the Dropbox app's webhook URI as the console does: only if it passes Dropbox's
    /// verification (`GET ?challenge=` echoed in a 200 within 10 seconds). Returns whether
    /// it did.
    pub async fn register_dropbox_webhook(&self, uri: &str) -> bool {
        let verified = push::dropbox_verifies(uri).await;
        if verified {
            self.with(|s| s.dropbox_webhook = Some(uri.to_string()));
        }
        verified
    }

    /// Sends a Dropbox webhook notification naming `accounts` (`dbid:…`) to the registered
    /// URI, signed in `X-Dropbox-Signature` with the app secret (`Forged`: with another key).
    /// Panics if no webhook URI is registered (a test mistake).
    pub async fn notify_dropbox(&self, accounts: &[&str], authenticity: Authenticity) -> Delivery {
        let uri = self.with(|s| s.dropbox_webhook.clone());
        let uri = uri.expect("register_dropbox_webhook first");
        let accounts: Vec<String> = accounts.iter().map(|a| a.to_string()).collect();
        push::send_dropbox_notification(&uri, &accounts, authenticity).await
    }
}
