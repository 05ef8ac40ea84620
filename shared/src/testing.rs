//! Helpers for tests and benchmarks (feature `testing`, which the functions enable only for
//! their tests; the benchmark and the end-to-end tests enable it too): a hub on the local
//! backend in a given directory, a builder of accounts as a completed login leaves them (their
//! tokens sealed on request), and a moto server.

use std::path::Path;

use chrono::Utc;

use crate::config::Env;
use crate::crypto::Sealed;
use crate::hub::Hub;
use crate::model::{Account, AccountStatus, TokenSet};
use crate::providers::http::RetryPolicy;

/// The development API key of `.env.example` and the sample events.
pub const DEV_API_KEY: &str = "local-dev-key";

/// A hub on the local backend under `data_dir`, with Google and OneDrive configured with
/// made-up client credentials and, unless `extra` points them elsewhere (at the testkit's
/// stand-ins), the providers' default public endpoints, which a test must never reach; plus
/// `extra` variables (which configure any other provider a test needs).
pub async fn local_hub(data_dir: &Path, extra: &[(String, String)]) -> Hub {
    let mut vars = vec![
        ("HUB_BACKEND".to_string(), "local".to_string()),
        ("HUB_DATA_DIR".into(), data_dir.display().to_string()),
        ("HUB_API_KEY".into(), DEV_API_KEY.into()),
        ("GOOGLE_CLIENT_ID".into(), "google-client-id".into()),
        ("GOOGLE_CLIENT_SECRET".into(), "google-client-secret".into()),
        ("ONEDRIVE_CLIENT_ID".into(), "onedrive-client-id".into()),
        (
            "ONEDRIVE_CLIENT_SECRET".into(),
            "onedrive-client-secret".into(),
        ),
    ];
    vars.extend(extra.iter().cloned());
    Hub::build(&Env::from_map(vars), RetryPolicy::default())
        .await
        .expect("test hub")
}

/// An account for tests, as a completed login leaves it: active, with a refresh token, never
/// synced, at version 1. Every test builds its accounts here, so a field added to
/// [`Account`] is filled in one place.
#[derive(Clone, Debug)]
pub struct AccountBuilder {
    account: Account,
}

/// A new account of `provider` under a fresh id, for a fresh user `user-<id>`, with tokens
/// that are not a sealed value (set them with [`AccountBuilder::tokens`] or
/// [`AccountBuilder::sealed`] when the test opens them).
pub fn account(provider: &str) -> AccountBuilder {
    let id = uuid::Uuid::new_v4().to_string();
    AccountBuilder {
        account: Account {
            provider_user_id: format!("user-{id}"),
            owner: None,
            email: format!("user-{}@example.com", &id[..8]),
            id,
            provider: provider.to_string(),
            status: AccountStatus::Active,
            connected_at: Utc::now(),
            last_synced_at: None,
            last_sync: None,
            has_refresh_token: true,
            tokens: Sealed {
                data_key: None,
                nonce: String::new(),
                ciphertext: String::new(),
            },
            cursor: None,
            listing: Default::default(),
            unreported: Default::default(),
            lease: None,
            drives: Vec::new(),
            feed_seq: 0,
            scopes: Vec::new(),
            version: 1,
        },
    }
}

impl AccountBuilder {
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.account.id = id.into();
        self
    }

    /// The provider's user: its id, and an email address made from it.
    pub fn user(mut self, provider_user_id: &str) -> Self {
        self.account.provider_user_id = provider_user_id.to_string();
        self.account.email = format!("{provider_user_id}@example.com");
        self
    }

    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.account.email = email.into();
        self
    }

    pub fn status(mut self, status: AccountStatus) -> Self {
        self.account.status = status;
        self
    }

    /// An already sealed value as the account's tokens.
    pub fn tokens(mut self, tokens: Sealed) -> Self {
        self.account.tokens = tokens;
        self
    }

    pub fn build(self) -> Account {
        self.account
    }

    /// The account with `tokens` sealed by `hub`'s cipher for this account, as a login
    /// stores them.
    pub async fn sealed(mut self, hub: &Hub, tokens: &TokenSet) -> Account {
        self.account.has_refresh_token = tokens.refresh_token.is_some();
        self.account.tokens = crate::tokens::seal(
            hub.cipher.as_ref(),
            &self.account.id,
            &self.account.provider,
            tokens,
        )
        .await
        .expect("seal the test account's tokens");
        self.account
    }
}

/// The endpoint of a moto server (the AWS stand-in) for this test process:
/// `AWS_ENDPOINT_URL` when the caller runs one (scripts/test does, for the whole run), else
/// a new one from `scripts/moto`, the one place that starts moto, which stops it when this
/// process exits. Blocks until the server accepts connections.
pub fn moto_endpoint() -> String {
    if let Ok(url) = std::env::var("AWS_ENDPOINT_URL") {
        return url;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/moto");
    let started = std::process::Command::new(&script)
        .arg(std::process::id().to_string())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        started.status.success(),
        "scripts/moto could not start moto (pip install 'moto[server]', or source scripts/tools.sh)"
    );
    String::from_utf8(started.stdout)
        .expect("scripts/moto prints a URL")
        .trim()
        .to_string()
}
