//! What a provider's non-success answer means.
//!
//! Every provider refuses in its own dialect: Google throttles with 403 and a reason, Microsoft
//! wraps AADSTS errors in a few OAuth codes, Dropbox answers 409 with an error summary. Each
//! connector module has its own [`AnswerClassifier`] that reads its provider's answers and
//! falls back on [`common`] (plain HTTP and RFC 6749) for the rest, so a provider's rules live
//! in that provider's module: `dropbox.rs` says a `409` with an `error_summary` starting
//! `reset/` is [`Verdict::CursorExpired`] and any other 409 is [`Verdict::Reject`].

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde::Deserialize;

use oauth2::reqwest;

use crate::error::ProviderError;

/// Which kind of endpoint answered: the rules differ (a 401 from the token endpoint is a bad
/// client, from the API an expired access token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The OAuth token or revocation endpoint (RFC 6749 section 5.2 errors, RFC 7009).
    Token,
    /// The provider's drive or identity API.
    Api,
}

/// A non-success answer, as the classifier sees it.
#[derive(Debug)]
pub struct Refusal<'a> {
    pub endpoint: Endpoint,
    pub status: StatusCode,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// What the caller should do about a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Throttling or a passing fault: wait (as long as `Retry-After` says, when given) and
    /// try again.
    RetryAfterWait,
    /// The access token was refused: refresh it and retry once.
    RefreshAndRetry,
    /// The saved change cursor is no longer valid: start the enumeration over.
    CursorExpired,
    /// The grant is gone: the user must authorise again.
    Reauthorise,
    /// The grant works but the user's access is gone (a withdrawn permission or scope, a
    /// suspended user): the user must connect again.
    AccessLost(String),
    /// The provider refused the hub's OAuth client itself.
    ClientRejected(String),
    /// The user has no drive yet (a OneDrive never provisioned).
    DriveNotProvisioned,
    /// Any other refusal, with a short token-free description.
    Reject(String),
}

impl Verdict {
    /// The error callers act on, for every verdict but [`Verdict::RetryAfterWait`], which the
    /// HTTP client retries and turns into [`ProviderError::Retryable`] once exhausted.
    pub fn into_error(self) -> Option<ProviderError> {
        match self {
            Verdict::RetryAfterWait => None,
            Verdict::RefreshAndRetry => Some(ProviderError::Unauthorized),
            Verdict::CursorExpired => Some(ProviderError::CursorExpired),
            Verdict::Reauthorise => Some(ProviderError::InvalidGrant),
            Verdict::AccessLost(description) => Some(ProviderError::AccessLost(description)),
            Verdict::ClientRejected(description) => {
                Some(ProviderError::ClientRejected(description))
            }
            Verdict::DriveNotProvisioned => Some(ProviderError::DriveNotProvisioned),
            Verdict::Reject(description) => Some(ProviderError::Rejected(description)),
        }
    }
}

/// A provider's reading of its own refusals.
pub trait AnswerClassifier: Send + Sync + std::fmt::Debug {
    fn classify(&self, refusal: &Refusal<'_>) -> Verdict;
}

/// The rules every provider shares; also the classifier of a client not bound to a provider.
#[derive(Debug)]
pub struct CommonAnswers;

impl AnswerClassifier for CommonAnswers {
    fn classify(&self, refusal: &Refusal<'_>) -> Verdict {
        common(refusal)
    }
}

/// HTTP's and RFC 6749's rules: 429 and 5xx are retried; an API's 401 asks for a refresh and
/// its 410 Gone says the cursor URL expired; the token endpoint's `invalid_grant` means the
/// grant is gone, and its `invalid_client` or `unauthorized_client` that the hub's client is
/// refused (RFC 6749 section 5.2: client authentication failed, or the client may not use
/// this grant type); anything else is a rejection.
pub fn common(refusal: &Refusal<'_>) -> Verdict {
    let status = refusal.status;
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Verdict::RetryAfterWait;
    }
    match refusal.endpoint {
        Endpoint::Token => match token_error(refusal.body) {
            Some(error) if error.error == "invalid_grant" => Verdict::Reauthorise,
            Some(error) => {
                let description = format!(
                    "token endpoint refused: {}{}",
                    error.error,
                    error
                        .error_description
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                );
                match error.error.as_str() {
                    "invalid_client" | "unauthorized_client" => {
                        Verdict::ClientRejected(description)
                    }
                    _ => Verdict::Reject(description),
                }
            }
            None => Verdict::Reject(format!("token endpoint answered HTTP {}", status.as_u16())),
        },
        Endpoint::Api => match status {
            StatusCode::UNAUTHORIZED => Verdict::RefreshAndRetry,
            StatusCode::GONE => Verdict::CursorExpired,
            _ => {
                // Provider error bodies are JSON with a message; keep a short, token-free excerpt.
                let text = String::from_utf8_lossy(refusal.body);
                let excerpt: String = text.chars().take(200).collect();
                Verdict::Reject(format!("HTTP {}: {excerpt}", status.as_u16()))
            }
        },
    }
}

/// The token endpoint's error answer (RFC 6749 section 5.2). Descriptions are the provider's
/// own words and never contain the token.
#[derive(Debug, Deserialize)]
pub struct TokenError {
    pub error: String,
    pub error_description: Option<String>,
}

/// The token endpoint's error, when the body is one.
pub fn token_error(body: &[u8]) -> Option<TokenError> {
    serde_json::from_slice(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(endpoint: Endpoint, status: u16, body: &str) -> Verdict {
        common(&Refusal {
            endpoint,
            status: StatusCode::from_u16(status).unwrap(),
            headers: &HeaderMap::new(),
            body: body.as_bytes(),
        })
    }

    #[test]
    fn the_same_status_means_different_things_at_the_token_endpoint_and_the_api() {
        assert_eq!(classify(Endpoint::Api, 401, ""), Verdict::RefreshAndRetry);
        assert_eq!(
            classify(Endpoint::Token, 401, r#"{"error":"invalid_client"}"#),
            Verdict::ClientRejected("token endpoint refused: invalid_client".into())
        );
        assert_eq!(
            classify(Endpoint::Token, 400, r#"{"error":"unauthorized_client"}"#),
            Verdict::ClientRejected("token endpoint refused: unauthorized_client".into())
        );
        assert_eq!(
            classify(Endpoint::Token, 400, r#"{"error":"invalid_request"}"#),
            Verdict::Reject("token endpoint refused: invalid_request".into())
        );
        assert_eq!(
            classify(Endpoint::Token, 400, r#"{"error":"invalid_grant"}"#),
            Verdict::Reauthorise
        );
        assert_eq!(classify(Endpoint::Api, 410, "{}"), Verdict::CursorExpired);
        assert_eq!(classify(Endpoint::Token, 503, ""), Verdict::RetryAfterWait);
        assert_eq!(classify(Endpoint::Api, 429, ""), Verdict::RetryAfterWait);
        assert_eq!(
            classify(Endpoint::Api, 403, "no"),
            Verdict::Reject("HTTP 403: no".into())
        );
    }
}
