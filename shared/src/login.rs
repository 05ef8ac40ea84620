//! The OAuth2 login: `/auth/{provider}/login` and `/auth/{provider}/callback`, with or without
//! a connect session (docs/API.md, "Logins" and "Connect sessions").

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{Duration, Utc};
use oauth2::PkceCodeChallenge;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::connect;
use crate::crypto::EncryptionContext;
use crate::deadline::Deadline;
use crate::error::{HubError, HubResult, ProviderError};
use crate::events::{self, Event};
use crate::hub::Hub;
use crate::model::{
    Account, AccountStatus, AccountView, ConnectSession, Identity, LoginState, TokenSet,
};
use crate::providers::Connector;
use crate::store::SpendingWrite;
use crate::tokens;

/// How long a user has between the consent page and the callback.
pub const STATE_LIFETIME_MINUTES: i64 = 10;

/// Starts a login without a session (version 1: the account has no owner). Tests and
/// benchmarks only (feature `testing`): the `auth` function always passes its session.
#[cfg(feature = "testing")]
pub async fn begin(hub: &Hub, provider: &str) -> HubResult<Started> {
    begin_with(hub, provider, None).await
}

/// A login just started: where to send the browser, and the key that browser must bring back to
/// the callback (the web layer keeps it in a cookie: docs/API.md, "Logins").
#[derive(Debug)]
pub struct Started {
    pub consent_url: String,
    /// The login's `state`, as the consent URL carries it.
    pub state: String,
    /// 32 random bytes in base64url; the store keeps only its SHA-256.
    pub browser_key: SecretString,
    /// The connect session's `return_to`, if any: the web layer remembers it in the browser so
    /// that a page the callback cannot tie to a session (a reused state, after the back
    /// button) can still offer the way back to the app.
    pub return_to: Option<String>,
}

/// Starts a login: checks the connect session of `session_token` when there is one (usable,
/// and allowing `provider`: otherwise `invalid_session`; and required when
/// `HUB_REQUIRE_SESSION=true`), stores a single-use state with its PKCE verifier, the
/// session's id and the hash of a fresh browser key, and returns the provider's consent URL
/// with that key.
pub async fn begin_with(
    hub: &Hub,
    provider: &str,
    session_token: Option<&str>,
) -> HubResult<Started> {
    let connector = hub.providers.get(provider)?;
    let session = match session_token {
        Some(token) => Some(connect::open_for(hub.store.as_ref(), Some(token), provider).await?),
        // A hub that serves only apps refuses ownerless logins: anyone could otherwise
        // connect a drive that no app user owns but every `/users` listing shows.
        None if hub.config.require_session => return Err(HubError::InvalidSession),
        None => None,
    };
    let state = random_token();
    let browser_key = random_token();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let sealed_verifier = hub
        .cipher
        .seal(
            verifier.secret().as_bytes(),
            &EncryptionContext::login_state(&state, provider),
        )
        .await?;
    hub.store
        .put_login_state(&LoginState {
            state: state.clone(),
            provider: provider.to_string(),
            pkce_verifier: sealed_verifier,
            expires_at: Utc::now() + Duration::minutes(STATE_LIFETIME_MINUTES),
            session: session.as_ref().map(|session| session.id.clone()),
            browser_key_hash: Some(browser_key_hash(&browser_key)),
        })
        .await?;
    Ok(Started {
        consent_url: connector.oauth().authorization_url(&state, challenge),
        state,
        browser_key: SecretString::from(browser_key),
        return_to: session.and_then(|session| session.return_to),
    })
}

/// 32 random bytes in base64url (43 characters).
fn random_token() -> String {
    let mut random = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut random);
    B64URL.encode(random)
}

/// What the store keeps of a browser key: its hex SHA-256 (the key has 256 random bits, so a
/// plain hash is enough; a leaked table gives no cookie to present).
fn browser_key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether the callback's browser presented the key of the browser that started the login:
/// hashes compared in constant time, and a state stored without a hash matches nothing.
fn same_browser(login: &LoginState, presented: Option<&SecretString>) -> bool {
    let (Some(stored), Some(presented)) = (&login.browser_key_hash, presented) else {
        return false;
    };
    let hash = browser_key_hash(presented.expose_secret());
    bool::from(hash.as_bytes().ct_eq(stored.as_bytes()))
}

/// What the provider's redirect back to the hub carries (`web::CallbackParams` reads it from
/// the query).
#[derive(Debug, Default)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    /// The browser key the callback's browser sent back ([`Started::browser_key`]), if any.
    pub browser_key: Option<SecretString>,
}

impl Callback {
    /// The callback the provider's redirect brings to the browser that started `started`.
    pub fn for_browser(started: &Started, query: Callback) -> Callback {
        Callback {
            browser_key: Some(started.browser_key.clone()),
            ..query
        }
    }
}

/// [`complete_by`] with the HTTP functions' whole timeout from now. Tests and benchmarks only
/// (feature `testing`): the `auth` function passes its invocation's deadline.
#[cfg(feature = "testing")]
pub async fn complete(hub: &Hub, provider: &str, callback: Callback) -> HubResult<AccountView> {
    complete_by(hub, provider, callback, Deadline::of_invocation(None)).await
}

/// [`finish_by`]'s result, for callers that send no browser back anywhere.
pub async fn complete_by(
    hub: &Hub,
    provider: &str,
    callback: Callback,
    deadline: Deadline,
) -> HubResult<AccountView> {
    finish_by(hub, provider, callback, deadline).await.result
}

/// How a callback ended, and where the browser goes back to: `return_to` is the session's,
/// set once the state matched a session that has one (the web layer then answers every
/// outcome, error or not, with a redirect there).
#[derive(Debug)]
pub struct Finished {
    pub result: HubResult<AccountView>,
    pub return_to: Option<String>,
}

/// Finishes a login: checks the state, exchanges the code, checks the granted scopes, reads
/// the identity, stores the tokens encrypted, and returns the account (new, or the same one
/// for a returning user of the same owner). With a connect session, the account is the
/// session's owner's and the session is spent. The provider calls end by `deadline`: once the
/// state is spent, a slow provider must cost the user a `provider_error`, not a timed-out
/// function.
pub async fn finish_by(
    hub: &Hub,
    provider: &str,
    callback: Callback,
    deadline: Deadline,
) -> Finished {
    let matched = match match_state(hub, provider, &callback).await {
        Ok(matched) => matched,
        Err(error) => {
            return Finished {
                result: Err(error),
                return_to: None,
            }
        }
    };
    let return_to = matched
        .as_ref()
        .and_then(|(_, session)| session.as_ref())
        .and_then(|session| session.return_to.clone());
    let result = match matched {
        Some((login, session)) => {
            complete_login(hub, provider, callback, login, session, deadline).await
        }
        // Only a denial comes without a state to match (or with one of another browser's).
        None => Err(HubError::AuthorizationDenied),
    };
    Finished { result, return_to }
}

/// Takes the callback's state (a denial's too: a denied login cannot be replayed), checks that
/// the callback's browser is the one that started the login, and reads its connect session.
/// `None` for a denial that carries no state, a stale one, or one of another browser.
async fn match_state(
    hub: &Hub,
    provider: &str,
    callback: &Callback,
) -> HubResult<Option<(LoginState, Option<ConnectSession>)>> {
    hub.providers.get(provider)?;
    let Some(state) = &callback.state else {
        return match callback.error {
            Some(_) => Ok(None),
            None => Err(HubError::InvalidState),
        };
    };
    let login = hub.store.take_login_state(state, Utc::now()).await?;
    let login = match login.filter(|login| login.provider == provider) {
        Some(login) => login,
        // A denial with a stale state is still a denial.
        None if callback.error.is_some() => return Ok(None),
        None => return Err(HubError::InvalidState),
    };
    // RFC 9700 §4.7: only the browser that started the login may finish it, or a consent
    // link forwarded to someone else would connect their drive to the sender's owner. The
    // state is taken above before this check, on purpose: the code a foreign browser brought
    // dies with its state (and PKCE verifier), so the sender cannot replay it later from
    // their own browser (a victim may well send the failing URL back to them). The cost is
    // that whoever learns a state can spoil that one login; its user simply starts again.
    if !same_browser(&login, callback.browser_key.as_ref()) {
        tracing::warn!(
            provider,
            "a callback came from a browser that did not start its login"
        );
        return match callback.error {
            // A denial connects nothing: it stays a denial, but sends no one to the
            // session's `return_to`, since this browser is not the session's.
            Some(_) => Ok(None),
            None => Err(HubError::InvalidState),
        };
    }
    let session = match &login.session {
        Some(id) => Some(
            hub.store
                .get_connect_session(id)
                .await?
                .ok_or(HubError::InvalidSession)?,
        ),
        None => None,
    };
    Ok(Some((login, session)))
}

/// The login after its state matched: the provider's answer, the code exchange, the scopes,
/// the identity, then the account, stored together with the session's spend.
async fn complete_login(
    hub: &Hub,
    provider: &str,
    callback: Callback,
    login: LoginState,
    session: Option<ConnectSession>,
    deadline: Deadline,
) -> HubResult<AccountView> {
    let connector = hub.providers.get(provider)?;
    if let Some(error) = callback.error {
        return Err(match error.as_str() {
            "access_denied" => HubError::AuthorizationDenied,
            other => ProviderError::Rejected(format!("the consent page answered '{other}'")).into(),
        });
    }
    if session.as_ref().is_some_and(|s| !s.usable(Utc::now())) {
        return Err(HubError::InvalidSession);
    }
    let code = callback
        .code
        .ok_or_else(|| HubError::InvalidRequest("the callback has no code parameter".into()))?;
    let verifier = hub
        .cipher
        .open(
            &login.pkce_verifier,
            &EncryptionContext::login_state(&login.state, provider),
        )
        .await?;
    let verifier = std::str::from_utf8(&verifier).map_err(HubError::internal)?;

    let oauth = connector.oauth();
    let grant = deadline.bound(oauth.exchange_code(&code, verifier)).await?;
    let tokens = grant.tokens;
    let missing = oauth.missing_scopes(grant.granted_scopes.as_deref());
    if !missing.is_empty() {
        // Nothing is stored, and the partial grant is withdrawn so that the user's next
        // consent page asks for everything again.
        match deadline.bound(oauth.revoke(&tokens)).await {
            Ok(revoked) => tracing::info!(provider, revoked, "partial grant revocation"),
            Err(e) => tracing::warn!(provider, error = %e, "partial grant not revoked"),
        }
        return Err(HubError::ScopeNotGranted { missing });
    }
    let scopes = oauth.granted(grant.granted_scopes);
    let identity = deadline
        .bound(connector.identity(&tokens.access_token))
        .await?;
    let provider_user_id = identity.provider_user_id.clone();
    let account = match connect(
        hub,
        connector.as_ref(),
        identity,
        (&tokens, &scopes),
        session.as_ref(),
    )
    .await
    {
        Ok(account) => account,
        Err(HubError::InvalidSession) => {
            // Another callback of the session connected first (two tabs of one session both
            // consented), or the session ended during the consent: this grant is stored
            // nowhere, so it is withdrawn, unless a stored account holds a grant of the same
            // identity (the winner's, most likely), which a revocation would end too.
            withdraw_unstored_grant(
                hub,
                connector.as_ref(),
                &provider_user_id,
                &tokens,
                deadline,
            )
            .await;
            return Err(HubError::InvalidSession);
        }
        Err(error) => return Err(error),
    };
    tracing::info!(account_id = %account.id, provider, "account connected");
    let view = AccountView::from(&account);
    // Queued before the answer: a failure to queue fails the login, which the user retries.
    // The session is given back for that retry (the same identity then updates this same
    // account and queues the event again); left spent, it would leave the app never told of
    // an account its user cannot connect again.
    if let Err(error) = events::emit(hub, Event::connected(&view)).await {
        if let Some(session) = &session {
            if let Err(e) = hub.store.restore_connect_session(&session.id).await {
                tracing::warn!(error = %e, "the session could not be given back");
            }
        }
        return Err(error);
    }
    Ok(view)
}

/// Revokes a grant the login did not store, where no stored account holds one of the same
/// provider identity (best effort, bounded by the request's deadline).
async fn withdraw_unstored_grant(
    hub: &Hub,
    connector: &dyn Connector,
    provider_user_id: &str,
    tokens: &TokenSet,
    deadline: Deadline,
) {
    let provider = connector.name().as_str();
    match hub.store.identity_holders(provider, provider_user_id).await {
        Ok(holders) if holders.is_empty() => {
            match deadline.bound(connector.oauth().revoke(tokens)).await {
                Ok(revoked) => tracing::info!(provider, revoked, "unstored grant revocation"),
                Err(e) => tracing::warn!(provider, error = %e, "unstored grant not revoked"),
            }
        }
        Ok(_) => tracing::info!(provider, "unstored grant kept: a stored account shares it"),
        Err(e) => tracing::warn!(provider, error = %e, "unstored grant not revoked"),
    }
}

/// How many times a login retries after losing a race with another writer of the account.
const CONNECT_ATTEMPTS: usize = 5;

/// Creates the owner's account of this identity, or updates the one the owner already has
/// (same id), keeping its refresh token when the provider sent none this time. With a
/// session, the account is the session's owner's and is written in one write with the
/// session's spend: a failed write leaves the session usable for the user's retry, and of
/// two callbacks of one session exactly one connects (the other gets `invalid_session`).
async fn connect(
    hub: &Hub,
    connector: &dyn Connector,
    identity: Identity,
    (tokens, scopes): (&TokenSet, &[String]),
    session: Option<&ConnectSession>,
) -> HubResult<Account> {
    let provider = connector.name().as_str();
    let owner = session.map(|session| session.owner.clone());
    for _ in 0..CONNECT_ATTEMPTS {
        let (account, expected_version) = match hub
            .store
            .find_account(owner.as_deref(), provider, &identity.provider_user_id)
            .await?
        {
            Some(existing) => {
                // Tokens sealed under a key the hub no longer has (a changed local key, a
                // KMS key change) are replaced by this login's: the user just proved the
                // account is theirs, and only the old refresh token would be worth keeping.
                let tokens = match tokens::open(hub.cipher.as_ref(), &existing).await {
                    Ok(previous) => tokens.clone().keeping_refresh_token_of(&previous),
                    Err(e) => {
                        tracing::warn!(account_id = %existing.id, error = %e, "stored tokens unreadable; replacing them");
                        tokens.clone()
                    }
                };
                let mut updated = existing.clone();
                updated.email = identity.email.clone();
                updated.status = AccountStatus::Active;
                updated.has_refresh_token = tokens.refresh_token.is_some();
                updated.scopes = scopes.to_vec();
                updated.tokens =
                    tokens::seal(hub.cipher.as_ref(), &existing.id, provider, &tokens).await?;
                updated.version = existing.version + 1;
                (updated, Some(existing.version))
            }
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                let account = Account {
                    tokens: tokens::seal(hub.cipher.as_ref(), &id, provider, tokens).await?,
                    id,
                    provider: provider.to_string(),
                    provider_user_id: identity.provider_user_id.clone(),
                    owner: owner.clone(),
                    email: identity.email.clone(),
                    status: AccountStatus::Active,
                    connected_at: Utc::now(),
                    last_synced_at: None,
                    last_sync: None,
                    has_refresh_token: tokens.refresh_token.is_some(),
                    cursor: None,
                    listing: Default::default(),
                    unreported: Default::default(),
                    lease: None,
                    drives: Vec::new(),
                    feed_seq: 0,
                    scopes: scopes.to_vec(),
                    version: 1,
                };
                (account, None)
            }
        };
        let written = match (session, expected_version) {
            (None, Some(version)) => hub.store.update_account(&account, version).await?.into(),
            (None, None) => hub.store.create_account(&account).await?.into(),
            (Some(session), Some(version)) => {
                hub.store
                    .update_account_spending(&account, version, &session.id, Utc::now())
                    .await?
            }
            (Some(session), None) => {
                hub.store
                    .create_account_spending(&account, &session.id, Utc::now())
                    .await?
            }
        };
        match written {
            SpendingWrite::Done => return Ok(account),
            SpendingWrite::Conflict => continue,
            SpendingWrite::SessionUnusable => return Err(HubError::InvalidSession),
        }
    }
    Err(HubError::internal(
        "the account kept changing while the login was saved",
    ))
}
