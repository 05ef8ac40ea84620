//! [`Handle`]: a test's hold on the running stand-ins, and where they are (the hub's
//! variables pointing at them). Its controls live in one file per concept: who consents and
//! what drives hold (`drives.rs`), Drive files' bytes and exports (`google_bytes.rs`), what was
//! issued (`tokens.rs`), how answers are served (`serving.rs`), push notifications
//! (`notifications.rs`) and what happened (`observed.rs`).

mod boxes;
mod downloads;
mod drives;
mod google_bytes;
mod notifications;
mod observed;
mod serving;
mod tokens;

pub use google_bytes::generated_byte;

use crate::state::{
    lock, Shared, State, BOX_CLIENT_ID, BOX_CLIENT_SECRET, DROPBOX_CLIENT_ID,
    DROPBOX_CLIENT_SECRET, GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, ONEDRIVE_CLIENT_ID,
    ONEDRIVE_CLIENT_SECRET,
};

/// Reads and changes the stand-ins' state; cheap to clone.
#[derive(Clone)]
pub struct Handle {
    url: String,
    state: Shared,
}

impl Handle {
    /// The hold on stand-ins serving `state` at `url`.
    pub(crate) fn new(url: String, state: Shared) -> Handle {
        Handle { url, state }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.url.clone()
    }

    /// The hub's variables pointing at the stand-ins, Google and Microsoft configured (add
    /// [`Handle::dropbox_env_vars`] to configure Dropbox too).
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let base = &self.url;
        [
            ("GOOGLE_CLIENT_ID", GOOGLE_CLIENT_ID.to_string()),
            ("GOOGLE_CLIENT_SECRET", GOOGLE_CLIENT_SECRET.to_string()),
            ("GOOGLE_AUTH_URL", format!("{base}/google/o/oauth2/v2/auth")),
            ("GOOGLE_TOKEN_URL", format!("{base}/google/token")),
            ("GOOGLE_REVOKE_URL", format!("{base}/google/revoke")),
            ("GOOGLE_API_URL", format!("{base}/google")),
            ("ONEDRIVE_CLIENT_ID", ONEDRIVE_CLIENT_ID.to_string()),
            ("ONEDRIVE_CLIENT_SECRET", ONEDRIVE_CLIENT_SECRET.to_string()),
            ("ONEDRIVE_AUTHORITY_URL", format!("{base}/microsoft")),
            ("ONEDRIVE_GRAPH_URL", format!("{base}/graph/v1.0")),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    /// The hub's Dropbox variables (`DROPBOX_CLIENT_ID`, `DROPBOX_CLIENT_SECRET`,
    /// `DROPBOX_AUTH_URL`, `DROPBOX_TOKEN_URL`, `DROPBOX_API_URL`, `DROPBOX_CONTENT_URL`)
    /// pointing at the stand-in.
    /// Separate from [`Handle::env_vars`] so that hubs started without them keep syncing only
    /// Google and OneDrive for `source_type` `all`.
    pub fn dropbox_env_vars(&self) -> Vec<(String, String)> {
        let base = &self.url;
        [
            ("DROPBOX_CLIENT_ID", DROPBOX_CLIENT_ID.to_string()),
            ("DROPBOX_CLIENT_SECRET", DROPBOX_CLIENT_SECRET.to_string()),
            (
                "DROPBOX_AUTH_URL",
                format!("{base}/dropbox/oauth2/authorize"),
            ),
            ("DROPBOX_TOKEN_URL", format!("{base}/dropbox/oauth2/token")),
            ("DROPBOX_API_URL", format!("{base}/dropbox")),
            ("DROPBOX_CONTENT_URL", format!("{base}/dropbox/content")),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    /// The hub's Box variables (`BOX_CLIENT_ID`, `BOX_CLIENT_SECRET`, `BOX_AUTH_URL`,
    /// `BOX_TOKEN_URL`, `BOX_API_URL`, `BOX_REVOKE_URL`) pointing at the stand-in.
    pub fn box_env_vars(&self) -> Vec<(String, String)> {
        let base = &self.url;
        [
            ("BOX_CLIENT_ID", BOX_CLIENT_ID.to_string()),
            ("BOX_CLIENT_SECRET", BOX_CLIENT_SECRET.to_string()),
            ("BOX_AUTH_URL", format!("{base}/box/api/oauth2/authorize")),
            ("BOX_TOKEN_URL", format!("{base}/box/oauth2/token")),
            ("BOX_REVOKE_URL", format!("{base}/box/oauth2/revoke")),
            ("BOX_API_URL", format!("{base}/box/2.0")),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut lock(&self.state))
    }
}
