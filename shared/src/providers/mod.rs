//! Cloud-drive providers behind one trait.
//!
//! Adding a provider (Dropbox, Box) is one new module implementing [`Connector`] plus one line
//! in [`PROVIDERS`]: the registry, `/config`, login, sync fan-out and the worker all go through
//! here.

pub mod google;
pub mod http;
pub mod oauth;
pub mod onedrive;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use oauth2::PkceCodeChallenge;
use secrecy::SecretString;

use crate::config::{Config, Env};
use crate::error::{HubError, HubResult, ProviderError};
use crate::model::{FileEntry, Identity, TokenSet};
use http::ProviderHttp;
use oauth::OAuthApp;

/// One page of a drive listing and where to go next.
#[derive(Clone, Debug, PartialEq)]
pub struct FilePage {
    pub files: Vec<FileEntry>,
    pub next: NextPage,
}

/// The opaque cursor after a page. The worker stores it only after the page's files are
/// stored, so a sync killed half-way resumes from the last stored page and misses nothing.
#[derive(Clone, Debug, PartialEq)]
pub enum NextPage {
    /// More pages of this sync: call again with this cursor.
    More(String),
    /// This sync is complete; the next sync asks for changes since this cursor.
    Done(String),
}

impl NextPage {
    pub fn cursor(&self) -> &str {
        match self {
            NextPage::More(cursor) | NextPage::Done(cursor) => cursor,
        }
    }
}

/// A cloud-drive provider.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The provider's name in routes, jobs and records (`google`, `onedrive`).
    fn name(&self) -> &'static str;

    /// The OAuth2 client (consent URL, code exchange, refresh, revocation).
    fn oauth(&self) -> &OAuthApp;

    /// Who owns the access token.
    async fn identity(&self, access_token: &SecretString) -> Result<Identity, ProviderError>;

    /// One page of files. `None` starts a full enumeration; a cursor from a previous
    /// [`FilePage::next`] continues it, or asks for changes since a finished sync.
    async fn list_page(
        &self,
        access_token: &SecretString,
        cursor: Option<&str>,
    ) -> Result<FilePage, ProviderError>;

    fn authorization_url(&self, state: &str, pkce_challenge: PkceCodeChallenge) -> String {
        self.oauth().authorization_url(state, pkce_challenge)
    }

    async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<TokenSet, ProviderError> {
        self.oauth().exchange_code(code, pkce_verifier).await
    }

    async fn refresh(&self, current: &TokenSet) -> Result<TokenSet, ProviderError> {
        self.oauth().refresh(current).await
    }

    /// Revokes the grant; false where the provider has no revocation endpoint.
    async fn revoke(&self, tokens: &TokenSet) -> Result<bool, ProviderError> {
        self.oauth().revoke(tokens).await
    }
}

/// Builds a provider's connector from the environment; `None` when it is not configured.
pub type BuildConnector = fn(&Env, &Config, &ProviderHttp) -> HubResult<Option<Arc<dyn Connector>>>;

/// What the registry needs of a provider module: its name, and how to build its connector
/// from the environment (`None` when its client id or secret is not set).
pub struct ProviderSpec {
    pub name: &'static str,
    pub from_env: BuildConnector,
}

/// Every provider the hub knows. Register a new one here.
pub const PROVIDERS: &[ProviderSpec] = &[google::SPEC, onedrive::SPEC];

/// The configured connectors, by name.
#[derive(Clone)]
pub struct Registry {
    configured: BTreeMap<&'static str, Arc<dyn Connector>>,
}

impl Registry {
    pub fn from_env(env: &Env, config: &Config, http: &ProviderHttp) -> HubResult<Self> {
        let mut configured = BTreeMap::new();
        for spec in PROVIDERS {
            if let Some(connector) = (spec.from_env)(env, config, http)? {
                configured.insert(spec.name, connector);
            }
        }
        Ok(Registry { configured })
    }

    /// Whether the hub knows this provider at all, configured or not.
    pub fn is_known(name: &str) -> bool {
        PROVIDERS.iter().any(|spec| spec.name == name)
    }

    /// The connector, or the contract's error: `unknown_provider`, or
    /// `provider_not_configured` (404 on auth routes, 400 for sync).
    pub fn get(&self, name: &str, for_sync: bool) -> HubResult<Arc<dyn Connector>> {
        if let Some(connector) = self.configured.get(name) {
            return Ok(connector.clone());
        }
        if Self::is_known(name) {
            Err(HubError::ProviderNotConfigured {
                provider: name.to_string(),
                for_sync,
            })
        } else {
            Err(HubError::UnknownProvider(name.to_string()))
        }
    }

    /// Configured provider names, in registration order.
    pub fn configured_names(&self) -> Vec<&'static str> {
        PROVIDERS
            .iter()
            .map(|spec| spec.name)
            .filter(|name| self.configured.contains_key(name))
            .collect()
    }
}

/// The client id and secret of a provider, when both are set (the contract's definition of
/// "configured").
pub(crate) fn client_credentials(
    env: &Env,
    id_var: &str,
    secret_var: &str,
) -> Option<(String, SecretString)> {
    Some((env.get(id_var)?, SecretString::from(env.get(secret_var)?)))
}

/// Turns a non-success answer of a provider API into the error callers act on.
pub(crate) fn api_error(status: u16, body: &[u8]) -> ProviderError {
    match status {
        401 => ProviderError::Unauthorized,
        410 => ProviderError::CursorExpired,
        _ => {
            // Provider error bodies are JSON with a message; keep a short, token-free excerpt.
            let text = String::from_utf8_lossy(body);
            let excerpt: String = text.chars().take(200).collect();
            ProviderError::Rejected(format!("HTTP {status}: {excerpt}"))
        }
    }
}

/// GETs a provider API URL with a bearer token and decodes the JSON answer.
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    http: &ProviderHttp,
    url: &str,
    query: &[(&str, &str)],
    access_token: &SecretString,
) -> Result<T, ProviderError> {
    use secrecy::ExposeSecret;
    let response = http
        .send(|client| {
            client
                .get(url)
                .query(query)
                .bearer_auth(access_token.expose_secret())
        })
        .await?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|_| ProviderError::Rejected("the answer could not be read".into()))?;
    if !(200..300).contains(&status) {
        return Err(api_error(status, &body));
    }
    serde_json::from_slice(&body)
        .map_err(|e| ProviderError::Rejected(format!("unexpected answer from the provider: {e}")))
}
