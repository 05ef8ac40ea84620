//! Connect sessions (docs/API.md, "Connect sessions"): an app's backend asks for a session for
//! one of its users (the owner), sends the browser to the connect page, and gets it back at
//! `return_to` with the outcome.
//!
//! The session's token is random and handed out once; the store keeps only its SHA-256
//! ([`session_id`]), so a leaked table does not let anyone attach a drive to someone else's
//! app user. A session lasts [`SESSION_LIFETIME_MINUTES`] and connects one account: the
//! callback that connects spends it with a conditional write.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use url::Url;

use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use crate::model::ConnectSession;
use crate::providers::Registry;
use crate::store::LoginStore;

/// How long a connect session can start and finish a login.
pub const SESSION_LIFETIME_MINUTES: i64 = 30;

/// The longest `owner` allowed.
pub const MAX_OWNER_LEN: usize = 128;

/// Our tokens are 32 random bytes in base64url: 43 characters.
const TOKEN_LEN: usize = 43;

/// What `POST /connect/sessions` asks for, as the web layer read it.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
pub struct NewSession {
    pub owner: Option<String>,
    pub return_to: Option<String>,
    pub providers: Option<Vec<String>>,
}

/// The answer of `POST /connect/sessions` (201).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CreatedSession {
    pub token: String,
    pub connect_url: String,
    pub expires_at: DateTime<Utc>,
}

/// Whether `owner` is an allowed owner: 1 to 128 characters of `A-Za-z0-9._:@-`.
pub fn valid_owner(owner: &str) -> bool {
    (1..=MAX_OWNER_LEN).contains(&owner.len())
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:@-".contains(&b))
}

/// The key a session is stored under: the hex SHA-256 of its token.
pub fn session_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a session: checks the owner, the providers (each known and configured; every
/// configured one when none is named) and `return_to` (within the allowlist), then stores
/// it under the hash of a fresh token.
pub async fn create(hub: &Hub, request: NewSession) -> HubResult<CreatedSession> {
    let owner = request
        .owner
        .filter(|owner| valid_owner(owner))
        .ok_or_else(|| {
            HubError::InvalidRequest(
                "owner is required: 1 to 128 characters of A-Za-z0-9._:@-".into(),
            )
        })?;
    let providers = session_providers(&hub.providers, request.providers)?;
    let return_to = match request.return_to {
        Some(url) if hub.config.return_urls.allows(&url) => Some(url),
        Some(_) => return Err(HubError::InvalidReturnTo),
        None => None,
    };
    let mut random = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let token = B64URL.encode(random);
    let expires_at = Utc::now() + Duration::minutes(SESSION_LIFETIME_MINUTES);
    hub.store
        .put_connect_session(&ConnectSession {
            id: session_id(&token),
            owner,
            providers,
            return_to,
            expires_at,
            spent: false,
        })
        .await?;
    Ok(CreatedSession {
        connect_url: format!("{}/connect?session={token}", hub.config.public_url),
        token,
        expires_at,
    })
}

/// The providers a session offers, in the order asked, without repeats.
fn session_providers(registry: &Registry, asked: Option<Vec<String>>) -> HubResult<Vec<String>> {
    let configured = registry.configured_names();
    let Some(asked) = asked else {
        if configured.is_empty() {
            return Err(HubError::InvalidRequest(
                "no provider is configured on this hub".into(),
            ));
        }
        return Ok(configured
            .into_iter()
            .map(|name| name.to_string())
            .collect());
    };
    if asked.is_empty() {
        return Err(HubError::InvalidRequest(
            "providers must name at least one provider".into(),
        ));
    }
    let mut providers: Vec<String> = Vec::with_capacity(asked.len());
    for name in asked {
        if !configured.iter().any(|known| *known == name.as_str()) {
            // The name is echoed only when it is one we know: an arbitrary string stays out
            // of the answer.
            let why = if Registry::is_known(&name) {
                format!("provider '{name}' is not configured on this hub")
            } else {
                "providers names an unknown provider".to_string()
            };
            return Err(HubError::InvalidRequest(why));
        }
        if !providers.contains(&name) {
            providers.push(name);
        }
    }
    Ok(providers)
}

/// The usable session of `token`: `invalid_session` when it is missing, unknown, expired or
/// spent.
pub async fn open(sessions: &dyn LoginStore, token: Option<&str>) -> HubResult<ConnectSession> {
    let token = token
        .filter(|token| token.len() == TOKEN_LEN)
        .ok_or(HubError::InvalidSession)?;
    sessions
        .get_connect_session(&session_id(token))
        .await?
        .filter(|session| session.usable(Utc::now()))
        .ok_or(HubError::InvalidSession)
}

/// Why a session cannot be used, for the page of a person who opened its link: a session the
/// hub never issued (or one so old its record is gone) is not called expired.
#[derive(Debug)]
pub enum Unusable {
    Unknown,
    Expired(ConnectSession),
    Spent(ConnectSession),
}

/// The usable session of `token`, or why it cannot be used (see [`Unusable`]).
pub async fn open_or_why(
    sessions: &dyn LoginStore,
    token: Option<&str>,
) -> HubResult<Result<ConnectSession, Unusable>> {
    let Some(token) = token.filter(|token| token.len() == TOKEN_LEN) else {
        return Ok(Err(Unusable::Unknown));
    };
    Ok(
        match sessions.get_connect_session(&session_id(token)).await? {
            None => Err(Unusable::Unknown),
            Some(session) if session.spent => Err(Unusable::Spent(session)),
            Some(session) if !session.usable(Utc::now()) => Err(Unusable::Expired(session)),
            Some(session) => Ok(session),
        },
    )
}

/// The usable session of `token` for a login with `provider`: `invalid_session` also when the
/// session does not offer that provider.
pub async fn open_for(
    sessions: &dyn LoginStore,
    token: Option<&str>,
    provider: &str,
) -> HubResult<ConnectSession> {
    let session = open(sessions, token).await?;
    if !session.providers.iter().any(|p| p == provider) {
        return Err(HubError::InvalidSession);
    }
    Ok(session)
}

/// The browser's way back to the app: `return_to` with the outcome added to its query
/// (`status=connected&account_id=&provider=`, or `status=error&error=<code>`).
pub fn return_url(return_to: &str, outcome: &Result<(String, String), &HubError>) -> String {
    let Ok(mut url) = Url::parse(return_to) else {
        // Only allowlisted URLs are stored, and those parsed when they were checked.
        return return_to.to_string();
    };
    {
        let mut query = url.query_pairs_mut();
        match outcome {
            Ok((account_id, provider)) => {
                query
                    .append_pair("status", "connected")
                    .append_pair("account_id", account_id)
                    .append_pair("provider", provider);
            }
            Err(error) => {
                query
                    .append_pair("status", "error")
                    .append_pair("error", error.code());
            }
        }
    }
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_is_added_to_the_existing_query() {
        let ok = return_url(
            "https://app.example.com/return?tab=drives",
            &Ok(("acc-1".into(), "google".into())),
        );
        assert_eq!(
            ok,
            "https://app.example.com/return?tab=drives&status=connected&account_id=acc-1&provider=google"
        );
        let error = HubError::AuthorizationDenied;
        assert_eq!(
            return_url("https://app.example.com/return", &Err(&error)),
            "https://app.example.com/return?status=error&error=authorization_denied"
        );
    }

    #[test]
    fn owners_follow_the_documented_rule() {
        assert!(valid_owner("user-1"));
        assert!(valid_owner("org:42@app.example_x.y"));
        assert!(valid_owner(&"a".repeat(128)));
        for bad in ["", "has space", "slash/", "hash#", &"a".repeat(129), "ünï"] {
            assert!(!valid_owner(bad), "{bad}");
        }
    }

    #[test]
    fn session_ids_are_hashes_of_the_token() {
        let id = session_id("token");
        assert_eq!(id.len(), 64);
        assert_ne!(id, "token");
        assert_eq!(id, session_id("token"));
    }
}
