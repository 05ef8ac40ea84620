//! The OAuth2 half of a connector, the same for every provider but for URLs, scopes and the
//! extra consent parameters: authorisation URL with PKCE, code exchange, refresh, revocation.

use chrono::{DateTime, Utc};
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    Scope, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};

use super::answers::Endpoint;
use super::http::{OAuthHttpError, ProviderHttp};
use super::{ProviderClient, ProviderName};
use crate::error::{HubError, HubResult, ProviderError};
use crate::model::TokenSet;

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// What a provider's module tells [`OAuthApp::new`] besides its client.
pub struct OAuthEndpoints<'a> {
    pub auth_url: String,
    pub token_url: String,
    /// How a grant is withdrawn.
    pub revocation: Revocation,
    pub scopes: &'a [&'a str],
    /// The scopes without which the connector cannot list a drive, whatever else the consent
    /// granted: a grant lacking one is refused at the callback.
    pub required_scopes: &'a [&'a str],
    /// The scopes reading a file's bytes needs (docs/API.md, "File content"). Asked and
    /// required at every login; an account connected before the hub asked for them keeps
    /// its index and is refused content until it connects again.
    pub content_scopes: &'a [&'a str],
    /// Extra consent-page parameters (Google: `access_type=offline`, `prompt=consent`).
    pub extra_auth_params: &'a [(&'a str, &'a str)],
}

/// How a provider lets a client withdraw a grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// No endpoint (Microsoft: users withdraw consent in their account).
    None,
    /// An RFC 7009 endpoint taking the token as a form field (Google).
    Rfc7009(String),
    /// An API call authorised with the access token itself (Dropbox's
    /// `POST /2/auth/token/revoke`, no body). It ends one token lineage, not the user's grant
    /// to the app: "disables the access token used to authenticate the call. If there is a
    /// corresponding refresh token for the access token, this disables that refresh token,
    /// as well as any other access tokens for that refresh token"
    /// (<https://www.dropbox.com/developers/documentation/http/documentation#auth-token-revoke>).
    BearerCall(String),
    /// An RFC 7009 endpoint that also wants the client's id and secret as form fields (Box's
    /// `POST /oauth2/revoke`: `client_id`, `client_secret`, `token`). Revoking the refresh
    /// token ends that login's token pair; another login of the same user has its own
    /// (<https://developer.box.com/reference/post-oauth2-revoke/>).
    ClientForm(String),
}

impl Revocation {
    /// Whether revoking one account's tokens also ends every other login of the same user to
    /// this app. Google's RFC 7009 endpoint revokes the grant itself (every token issued
    /// under it); Dropbox's ends only the lineage of the refresh token it is called with, and
    /// each login has its own. A revocation that ends the grant is skipped while another
    /// owner's account holds it.
    pub fn ends_the_grant(&self) -> bool {
        match self {
            Revocation::Rfc7009(_) => true,
            Revocation::BearerCall(_) | Revocation::ClientForm(_) | Revocation::None => false,
        }
    }
}

/// What a code exchange gave: the tokens, and the scopes the token answer says were granted
/// (`None` when it has no `scope` field).
#[derive(Debug)]
pub struct CodeGrant {
    pub tokens: TokenSet,
    pub granted_scopes: Option<Vec<String>>,
}

pub struct OAuthApp {
    client: Client,
    /// For a revocation that authenticates the client ([`Revocation::ClientForm`]).
    client_secret: SecretString,
    http: ProviderHttp,
    revocation: Revocation,
    scopes: Vec<String>,
    required_scopes: Vec<String>,
    content_scopes: Vec<String>,
    extra_auth_params: Vec<(String, String)>,
}

fn bad_url(provider: ProviderName, what: &str, e: impl std::fmt::Display) -> HubError {
    HubError::Config(format!("{provider} {what} URL is invalid: {e}"))
}

impl OAuthApp {
    pub fn new(provider: &ProviderClient, endpoints: OAuthEndpoints<'_>) -> HubResult<Self> {
        let p = provider.name;
        let client = BasicClient::new(ClientId::new(provider.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                provider.client_secret.expose_secret().to_string(),
            ))
            // Both Google and Microsoft document the secret as a form field of the token
            // request; it also keeps the secret out of an Authorization header.
            .set_auth_type(AuthType::RequestBody)
            .set_auth_uri(
                AuthUrl::new(endpoints.auth_url).map_err(|e| bad_url(p, "authorization", e))?,
            )
            .set_token_uri(TokenUrl::new(endpoints.token_url).map_err(|e| bad_url(p, "token", e))?)
            .set_redirect_uri(
                RedirectUrl::new(provider.redirect_uri.clone())
                    .map_err(|e| bad_url(p, "redirect", e))?,
            );
        Ok(OAuthApp {
            client,
            client_secret: provider.client_secret.clone(),
            http: provider.http.clone(),
            revocation: endpoints.revocation,
            // Reading bytes is part of what the hub does: its scopes are asked and required
            // beside the listing's. The operator's extra scopes are asked, never required:
            // the hub works without them.
            scopes: union(
                &union(endpoints.scopes, endpoints.content_scopes)
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
                &provider
                    .extra_scopes
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            ),
            required_scopes: union(endpoints.required_scopes, endpoints.content_scopes),
            content_scopes: union(endpoints.content_scopes, &[]),
            extra_auth_params: endpoints
                .extra_auth_params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    /// The consent page URL: `response_type=code`, client id, redirect URI, scopes, `state`
    /// and the PKCE S256 challenge.
    pub fn authorization_url(&self, state: &str, pkce_challenge: PkceCodeChallenge) -> String {
        let state = CsrfToken::new(state.to_string());
        let mut request = self
            .client
            .authorize_url(move || state)
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(pkce_challenge);
        for (name, value) in &self.extra_auth_params {
            request = request.add_extra_param(name.clone(), value.clone());
        }
        request.url().0.to_string()
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<CodeGrant, ProviderError> {
        let answer = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        Ok(CodeGrant {
            tokens: token_set(&answer),
            granted_scopes: answer
                .scopes()
                .map(|scopes| scopes.iter().map(|s| s.to_string()).collect()),
        })
    }

    /// The scopes the hub needs that a grant lacks. A token answer without `scope` granted
    /// what was requested (RFC 6749 section 5.1: the field is optional when identical to the
    /// request). Scopes compare case-insensitively by their last path segment, because
    /// Microsoft may answer `https://graph.microsoft.com/Files.Read` for `Files.Read`.
    pub fn missing_scopes(&self, granted: Option<&[String]>) -> Vec<String> {
        let granted: Vec<&str> = granted
            .map(|scopes| scopes.iter().map(String::as_str).collect())
            .unwrap_or_else(|| self.scopes.iter().map(String::as_str).collect());
        self.required_scopes
            .iter()
            .filter(|required| !granted.iter().any(|g| same_scope(g, required)))
            .cloned()
            .collect()
    }

    /// The scopes reading bytes needs.
    pub fn content_scopes(&self) -> &[String] {
        &self.content_scopes
    }

    /// The scopes reading bytes needs that a stored grant lacks (an account connected before
    /// the hub asked for them, whose `scopes` are empty).
    pub fn missing_content_scopes(&self, granted: &[String]) -> Vec<String> {
        self.content_scopes
            .iter()
            .filter(|needed| !granted.iter().any(|g| same_scope(g, needed)))
            .cloned()
            .collect()
    }

    /// Whether a stored grant holds one of `scopes` (compared as [`Self::missing_scopes`]
    /// does).
    pub fn granted_any(granted: &[String], scopes: &[&str]) -> bool {
        scopes
            .iter()
            .any(|wanted| granted.iter().any(|g| same_scope(g, wanted)))
    }

    /// What a grant holds, to store with its account: the token answer's `scope`, or what
    /// was asked when the answer names none (RFC 6749 section 5.1).
    pub fn granted(&self, granted_scopes: Option<Vec<String>>) -> Vec<String> {
        granted_scopes.unwrap_or_else(|| self.scopes.clone())
    }

    /// A new token set; the refresh token is the rotated one when the provider sent one,
    /// the old one otherwise.
    pub async fn refresh(&self, current: &TokenSet) -> Result<TokenSet, ProviderError> {
        let refresh_token = current
            .refresh_token
            .as_ref()
            .ok_or(ProviderError::InvalidGrant)?;
        let answer = self
            .client
            .exchange_refresh_token(&RefreshToken::new(
                refresh_token.expose_secret().to_string(),
            ))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        Ok(token_set(&answer).keeping_refresh_token_of(current))
    }

    /// Revokes the grant. RFC 7009: a form post of the refresh token (which revokes the whole
    /// grant at Google), or of the access token when there is none. A bearer call: the access
    /// token authorises its own revocation, so an expired one is refreshed first (the caller
    /// bounds the whole). Returns false when the provider has no revocation endpoint. Sent by
    /// hand rather than through the oauth2 crate, which insists on https and so could not be
    /// pointed at a local stand-in.
    /// See [`Revocation::ends_the_grant`].
    pub fn revocation_ends_the_grant(&self) -> bool {
        self.revocation.ends_the_grant()
    }

    pub async fn revoke(&self, tokens: &TokenSet) -> Result<bool, ProviderError> {
        match &self.revocation {
            Revocation::None => Ok(false),
            Revocation::Rfc7009(url) => {
                let token = tokens
                    .refresh_token
                    .as_ref()
                    .unwrap_or(&tokens.access_token);
                // RFC 7009 section 2.2.1: a refusal has the token endpoint's error shape.
                self.http
                    .send(Endpoint::Token, |client| {
                        client.post(url).form(&[("token", token.expose_secret())])
                    })
                    .await?;
                Ok(true)
            }
            Revocation::ClientForm(url) => {
                let token = tokens
                    .refresh_token
                    .as_ref()
                    .unwrap_or(&tokens.access_token);
                let form = [
                    ("client_id", self.client.client_id().as_str()),
                    ("client_secret", self.client_secret.expose_secret()),
                    ("token", token.expose_secret()),
                ];
                self.http
                    .send(Endpoint::Token, |client| client.post(url).form(&form))
                    .await?;
                Ok(true)
            }
            Revocation::BearerCall(url) => {
                let call = |access_token: SecretString| async move {
                    self.http
                        .send(Endpoint::Api, |client| {
                            client.post(url).bearer_auth(access_token.expose_secret())
                        })
                        .await
                };
                let expired = tokens.expires_at.is_some_and(|at| at <= Utc::now());
                let access_token = if expired && tokens.refresh_token.is_some() {
                    self.refresh(tokens).await?.access_token
                } else {
                    tokens.access_token.clone()
                };
                match call(access_token).await {
                    // Refused before its recorded expiry: refreshed once, like a sync.
                    Err(ProviderError::Unauthorized)
                        if !expired && tokens.refresh_token.is_some() =>
                    {
                        call(self.refresh(tokens).await?.access_token).await?;
                    }
                    answer => {
                        answer?;
                    }
                }
                Ok(true)
            }
        }
    }
}

/// `first`, then what `then` adds to it, each once, in order.
fn union(first: &[&str], then: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for scope in first.iter().chain(then) {
        if !all.iter().any(|known| known == scope) {
            all.push(scope.to_string());
        }
    }
    all
}

fn same_scope(a: &str, b: &str) -> bool {
    fn name(scope: &str) -> &str {
        scope.rsplit('/').next().unwrap_or(scope)
    }
    name(a).eq_ignore_ascii_case(name(b))
}

/// The longest access-token lifetime believed: a token endpoint answering a huge
/// `expires_in` must not overflow the expiry (`DateTime + Duration` panics past year 262143).
const MAX_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::days(3650);

fn token_set(answer: &BasicTokenResponse) -> TokenSet {
    TokenSet {
        access_token: answer.access_token().secret().clone().into(),
        refresh_token: answer.refresh_token().map(|t| t.secret().clone().into()),
        expires_at: answer
            .expires_in()
            .map(|lifetime| expiry_after(Utc::now(), lifetime)),
    }
}

/// When a token with `lifetime` left expires, capped at [`MAX_TOKEN_LIFETIME`]. The oauth2
/// crate reads `expires_in` as unsigned, so 0 or a negative value arrives as zero (or fails
/// to parse): expired now, and refreshed before use.
fn expiry_after(now: DateTime<Utc>, lifetime: std::time::Duration) -> DateTime<Utc> {
    let lifetime = chrono::Duration::from_std(lifetime)
        .unwrap_or(MAX_TOKEN_LIFETIME)
        .min(MAX_TOKEN_LIFETIME);
    now.checked_add_signed(lifetime)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The token call's failure. Refusals were already read by the provider's classifier inside
/// [`ProviderHttp`] (the oauth2 crate only ever sees successful answers); what is left is an
/// answer that is not a token response.
fn token_error(error: RequestTokenError<OAuthHttpError, BasicErrorResponse>) -> ProviderError {
    match error {
        RequestTokenError::Request(OAuthHttpError(inner)) => inner,
        RequestTokenError::Parse(_, _) => ProviderError::Rejected(
            "token endpoint failed: the answer is not a valid token response".into(),
        ),
        RequestTokenError::Other(text) => {
            ProviderError::Rejected(format!("token endpoint failed: {text}"))
        }
        RequestTokenError::ServerResponse(answer) => {
            ProviderError::Rejected(format!("token endpoint refused: {answer}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_huge_lifetime_saturates_and_zero_is_expired_now() {
        let now = Utc::now();
        for huge in [u64::MAX, i64::MAX as u64, 10_000_000_000_000] {
            assert_eq!(
                expiry_after(now, Duration::from_secs(huge)),
                now + MAX_TOKEN_LIFETIME,
                "{huge}"
            );
        }
        assert_eq!(expiry_after(now, Duration::ZERO), now);
        assert_eq!(
            expiry_after(now, Duration::from_secs(3599)),
            now + chrono::Duration::seconds(3599)
        );
    }

    #[test]
    fn a_token_answer_with_a_huge_expires_in_parses_without_panicking() {
        let answer: BasicTokenResponse = serde_json::from_value(serde_json::json!({
            "access_token": "a", "token_type": "Bearer", "expires_in": u64::MAX
        }))
        .unwrap();
        let expires_at = token_set(&answer).expires_at.unwrap();
        assert!(expires_at > Utc::now() + chrono::Duration::days(3649));
    }

    #[test]
    fn scopes_compare_by_last_segment_ignoring_case() {
        assert!(same_scope(
            "https://graph.microsoft.com/Files.Read",
            "Files.Read"
        ));
        assert!(same_scope("files.read", "Files.Read"));
        assert!(same_scope(
            "https://www.googleapis.com/auth/drive.metadata.readonly",
            "https://www.googleapis.com/auth/drive.metadata.readonly"
        ));
        assert!(!same_scope("Files.Read.All", "Files.Read"));
        assert!(!same_scope(
            "email",
            "https://www.googleapis.com/auth/drive.metadata.readonly"
        ));
    }
}
