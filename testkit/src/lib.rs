//! Local stand-ins of Google's, Microsoft's, Dropbox's and Box's OAuth2 and drive APIs and push
//! notifications, for the hub's tests and benchmarks. They speak the public protocols the hub
//! is written against: the consent redirect, form-encoded token requests with PKCE S256
//! checked, Google's refresh answers without a refresh token, Microsoft's refresh-token
//! rotation, `invalid_grant`, bearer checks with 401, Drive v3 `files` and `changes` with page
//! tokens and `fields` partial responses, Graph `/me/drive/root/delta` with `@odata.nextLink` /
//! `@odata.deltaLink` and 410 for an expired link, Dropbox `list_folder` cursors with `reset`, Box's
//! rotating single-use refresh tokens, folder listings with markers and user event stream,
//! Drive channels, Graph subscriptions with their validation handshake, Dropbox's signed
//! webhooks, and injected 429/5xx with `Retry-After`. `README.md` lists what they check the way
//! the real services do (shared drives, Drive error reasons, stale listing tokens, granular
//! consent, Microsoft re-authorisation, repeated delta items, folders, parents and hashes,
//! Dropbox's call shapes and errors) and what they still simplify. With
//! `HUB_TESTKIT_TRAFFIC_DIR` set they record every exchange for `.ci/provider-artifacts`, which
//! checks it against the providers' own machine-readable descriptions (`traffic.rs`).
//!
//! ```no_run
//! # async fn demo() {
//! let providers = hub_testkit::FakeProviders::start().await;
//! providers.add_files("google", 10);
//! let env = providers.env_vars(); // point the hub at the stand-ins
//! # }
//! ```

mod box_com;
pub mod demo_control;
mod download_host;
mod downloads;
mod dropbox;
mod faults;
mod google;
mod handle;
mod microsoft;
mod oauth;
mod push;
pub mod sample_drive;
mod server;
mod state;
mod traffic;
pub mod webhook_receiver;

pub use box_com::changes::BoxChange;
pub use box_com::tree::ROOT_ID as BOX_ROOT_ID;
pub use box_com::BoxKind;
pub use downloads::converted as converted_bytes;
pub use handle::{generated_byte, Handle};
pub use push::{Authenticity, Delivery, LifecycleEvent};
pub use server::FakeProviders;
pub use state::{
    FileSpec, Provider, Reauthorization, BOX_CLIENT_ID, BOX_CLIENT_SECRET, DEFAULT_BOX_EMAIL,
    DEFAULT_BOX_USER, DEFAULT_DROPBOX_EMAIL, DEFAULT_DROPBOX_USER, DEFAULT_GOOGLE_EMAIL,
    DEFAULT_GOOGLE_USER, DEFAULT_MICROSOFT_EMAIL, DEFAULT_MICROSOFT_USER, DROPBOX_CLIENT_ID,
    DROPBOX_CLIENT_SECRET, FOLDER_MIME_TYPE, GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET,
    ONEDRIVE_CLIENT_ID, ONEDRIVE_CLIENT_SECRET,
};

/// `X-Dropbox-Signature` for `body` as Dropbox signs it (hex HMAC-SHA256 keyed with the
/// stand-in app's secret), for tests that send a webhook body of their own making.
pub fn dropbox_signature(body: &[u8]) -> String {
    push::dropbox_signature(body, state::DROPBOX_CLIENT_SECRET)
}
