//! One error type for the whole hub.
//!
//! Every variant knows its `error` code and HTTP status (docs/API.md, "Errors"), so handlers
//! never decide them. The status is a plain number so that the domain does not depend on an
//! HTTP crate; the web layer (`crate::web`, feature `web`) turns it into a response. Internal
//! failures carry their detail for the logs only: the response says `internal_error` and
//! nothing else, so no stack trace, token or secret can leak out.

use thiserror::Error;

/// What went wrong, in the terms of the API's error list.
#[derive(Debug, Error)]
pub enum HubError {
    /// The scheme is named: a key sent as `x-api-key`, or without `Bearer `, is refused too.
    #[error("a valid API key is required, sent as 'Authorization: Bearer <HUB_API_KEY>'")]
    Unauthorized,
    /// A push notification whose signature, channel or secret does not check out.
    #[error("the notification's signature or secret does not match")]
    ForgedNotification,
    #[error("unknown provider '{0}'")]
    UnknownProvider(String),
    /// The provider exists but its client id or secret is not set. `for_sync` picks the
    /// status: 404 on the auth routes (no such login page), 400 on `POST /sync`.
    #[error("provider '{provider}' is not configured on this hub")]
    ProviderNotConfigured { provider: String, for_sync: bool },
    #[error("the login state is unknown, expired, already used or for another provider")]
    InvalidState,
    /// A connect session that is unknown, expired, spent, or does not allow the provider.
    #[error(
        "the connect session is unknown, expired, already used or does not allow this provider"
    )]
    InvalidSession,
    /// A `return_to` outside `HUB_ALLOWED_RETURN_URLS`.
    #[error("return_to is not one of the URLs this hub may return to")]
    InvalidReturnTo,
    #[error("the user denied access at the provider")]
    AuthorizationDenied,
    /// The user did not grant every scope the hub needs (Google lets the user untick the
    /// Drive box on the consent page).
    #[error("the provider did not grant the permissions the hub needs: {}", .missing.join(" "))]
    ScopeNotGranted { missing: Vec<String> },
    #[error("{0}")]
    InvalidRequest(String),
    /// The whole sentence: the body is not JSON, or JSON of another shape than the route takes.
    #[error("{0}")]
    InvalidJson(String),
    /// The whole sentence, naming the values the registry accepts (`fanout`, which knows them).
    #[error("{0}")]
    InvalidSourceType(String),
    #[error("no account with id '{0}'")]
    AccountNotFound(String),
    /// A file the account's index does not hold, or holds as deleted.
    #[error("the account's index holds no file with id '{0}'")]
    FileNotFound(String),
    /// The account's grant lacks scopes a route needs (reading bytes, docs/API.md "File
    /// content"): it was connected before the hub asked for them. Its index stays; the app
    /// connects it again through a connect session.
    #[error("the account's grant lacks the permissions this needs ({}); connect it again", .missing.join(" "))]
    GrantLacksScopes { missing: Vec<String> },
    /// The provider refused the account's refresh token: it waits for its user to log in
    /// again.
    #[error("the account needs its user to log in again")]
    AccountNeedsReauth,
    /// A folder, a shortcut, a form, or a file the provider will not give the bytes of.
    #[error("this file cannot be downloaded: {0}")]
    NotDownloadable(String),
    /// A Google Docs, Sheets, Slides or Drawings file has no bytes of its own: it is read
    /// exported, in one of `formats`.
    #[error("this file has no bytes of its own; ask for it with format= one of {}", .formats.join(", "))]
    ExportRequired { formats: Vec<String> },
    /// A `format` the file cannot be given in.
    #[error("{0}")]
    UnsupportedFormat(String),
    /// A content link that is unknown, expired, or whose account was deleted.
    #[error("this content link is unknown or no longer valid; ask the hub for a new one")]
    ContentLinkInvalid,
    /// A provider answer larger than the route passes on (`limit` bytes).
    #[error("the provider's answer is larger than the {limit} bytes this route passes on")]
    ResponseTooLarge { limit: usize },
    /// Internal to the sync: the account was deleted while its sync ran (a conditional write
    /// found no record to write). `crate::sync` ends the job on it as skipped and removes
    /// what the sync stored; it is no answer of the API, so were it ever to escape it would
    /// be an internal error, never `user_not_found`.
    #[error("the account '{0}' was deleted during its sync")]
    AccountDeletedDuringSync(String),
    #[error("no route for {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A request body over what its route takes (`limit` bytes).
    #[error("the request body is larger than the {limit} bytes this route takes")]
    PayloadTooLarge { limit: usize },
    /// The work did not finish within the time the route answers in (a slow store): nothing
    /// about the request was wrong, and the caller may send it again.
    #[error("the hub could not finish in time; send the request again later")]
    Unavailable(String),
    #[error("the provider answered with an error: {0}")]
    Provider(#[from] ProviderError),
    #[error("configuration error: {0}")]
    Config(String),
    /// Storage, crypto or queue failure. The detail goes to the logs, never to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl HubError {
    /// The snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            HubError::Unauthorized | HubError::ForgedNotification => "unauthorized",
            HubError::UnknownProvider(_) => "unknown_provider",
            HubError::ProviderNotConfigured { .. } => "provider_not_configured",
            HubError::InvalidState => "invalid_state",
            HubError::InvalidSession => "invalid_session",
            HubError::InvalidReturnTo => "invalid_return_to",
            HubError::AuthorizationDenied => "authorization_denied",
            HubError::ScopeNotGranted { .. } => "scope_not_granted",
            HubError::InvalidRequest(_) => "invalid_request",
            HubError::InvalidJson(_) => "invalid_json",
            HubError::InvalidSourceType(_) => "invalid_source_type",
            HubError::AccountNotFound(_) => "user_not_found",
            HubError::FileNotFound(_) => "file_not_found",
            HubError::GrantLacksScopes { .. } => "scope_not_granted",
            HubError::AccountNeedsReauth => "account_needs_reauth",
            HubError::NotDownloadable(_) => "not_downloadable",
            HubError::ExportRequired { .. } => "export_required",
            HubError::UnsupportedFormat(_) => "unsupported_format",
            HubError::ContentLinkInvalid => "not_found",
            HubError::ResponseTooLarge { .. } => "response_too_large",
            HubError::NotFound(_) => "not_found",
            HubError::MethodNotAllowed => "method_not_allowed",
            HubError::PayloadTooLarge { .. } => "payload_too_large",
            HubError::Unavailable(_) => "service_unavailable",
            HubError::Provider(_) => "provider_error",
            HubError::Config(_) | HubError::Internal(_) | HubError::AccountDeletedDuringSync(_) => {
                "internal_error"
            }
        }
    }

    /// The HTTP status code for this error.
    pub fn status(&self) -> u16 {
        match self {
            HubError::Unauthorized | HubError::ForgedNotification => 401,
            HubError::UnknownProvider(_)
            | HubError::AccountNotFound(_)
            | HubError::FileNotFound(_)
            | HubError::ContentLinkInvalid
            | HubError::NotFound(_) => 404,
            HubError::GrantLacksScopes { .. }
            | HubError::AccountNeedsReauth
            | HubError::NotDownloadable(_)
            | HubError::ExportRequired { .. } => 409,
            HubError::ProviderNotConfigured {
                for_sync: false, ..
            } => 404,
            HubError::ProviderNotConfigured { for_sync: true, .. }
            | HubError::InvalidState
            | HubError::InvalidSession
            | HubError::InvalidReturnTo
            | HubError::AuthorizationDenied
            | HubError::ScopeNotGranted { .. }
            | HubError::InvalidRequest(_)
            | HubError::InvalidJson(_)
            | HubError::InvalidSourceType(_)
            | HubError::UnsupportedFormat(_) => 400,
            HubError::MethodNotAllowed => 405,
            HubError::PayloadTooLarge { .. } => 413,
            HubError::Unavailable(_) => 503,
            HubError::Provider(_) | HubError::ResponseTooLarge { .. } => 502,
            HubError::Config(_) | HubError::Internal(_) | HubError::AccountDeletedDuringSync(_) => {
                500
            }
        }
    }

    /// The one human sentence sent to the client. Internal detail stays in the logs.
    pub fn public_message(&self) -> String {
        match self {
            HubError::Config(_) | HubError::Internal(_) | HubError::AccountDeletedDuringSync(_) => {
                "The hub could not complete the request; see its logs for details.".to_string()
            }
            // The detail (what was slow) is for the logs.
            HubError::Unavailable(_) => {
                "The hub could not finish in time; send the request again later.".to_string()
            }
            HubError::Provider(_) => {
                "The provider refused or failed the request; try again or log in again.".to_string()
            }
            other => capitalise(&other.to_string()),
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        HubError::Internal(detail.to_string())
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
        None => String::new(),
    }
}

/// A failed call to a provider. Callers act on the variant: `InvalidGrant` ends a job and
/// marks the account for re-authorisation, `Unauthorized` triggers one refresh, `Retryable`
/// is left for SQS to try again later.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ProviderError {
    /// The refresh token (or authorisation code) was refused: the user must log in again.
    #[error("the grant was refused (invalid_grant)")]
    InvalidGrant,
    /// The access token was refused (401).
    #[error("the access token was refused (401)")]
    Unauthorized,
    /// Throttling or a server fault that outlived our bounded retries; `retry_after` is the
    /// wait the provider last asked for, when it gave one.
    #[error("the provider is unavailable after {attempts} attempts (last status {status:?})")]
    Retryable {
        status: Option<u16>,
        attempts: u32,
        retry_after: Option<std::time::Duration>,
    },
    /// The call did not finish within the time its request had left (the request's
    /// [`crate::deadline::Deadline`]).
    #[error("the provider did not answer within {budget:?}")]
    TimedOut { budget: std::time::Duration },
    /// The saved change cursor is no longer valid (Graph 410 Gone): start over.
    #[error("the change cursor expired (410)")]
    CursorExpired,
    /// The user's access is gone although the grant still refreshes: a permission or scope
    /// withdrawn at the provider, a suspended user. Only the user can cure it, by connecting
    /// again, so the account needs re-authorisation as after a refused refresh.
    #[error("the user's access is gone: {0}")]
    AccessLost(String),
    /// The provider refused the hub's own OAuth client (`invalid_client`,
    /// `unauthorized_client`: a wrong or expired client secret, a deleted app). Every account
    /// of the provider fails alike and none is to blame: one signal for the operator
    /// ([`ProviderError::CLIENT_REJECTED`]), no damage to the accounts.
    #[error("the provider refused the hub's OAuth client: {0}")]
    ClientRejected(String),
    /// The user has no drive to list yet: a work or school OneDrive that was never
    /// provisioned. Nothing is wrong with the grant and retrying at once cannot help.
    #[error("the user's drive is not provisioned")]
    DriveNotProvisioned,
    /// Any other refusal: bad request, malformed answer, unexpected redirect.
    #[error("{0}")]
    Rejected(String),
}

impl ProviderError {
    /// The `error` of the log line a failed job writes when the provider refused the hub's
    /// OAuth client; the template's `ClientRejectedAlarm` counts these lines.
    pub const CLIENT_REJECTED: &'static str = "client_rejected";

    /// Why a sync failed, as a short code for logs and the account's last sync.
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::ClientRejected(_) => Self::CLIENT_REJECTED,
            ProviderError::DriveNotProvisioned => "drive_not_provisioned",
            _ => "provider_error",
        }
    }
}

pub type HubResult<T> = Result<T, HubError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// "Deleted during its sync" is the sync's own meaning, not the API's `user_not_found`:
    /// were it ever to reach an answer, it would say nothing about the account.
    #[test]
    fn an_account_deleted_during_its_sync_is_no_user_not_found() {
        let deleted = HubError::AccountDeletedDuringSync("a1".into());
        assert_eq!(deleted.code(), "internal_error");
        assert_eq!(deleted.status(), 500);
        assert!(!deleted.public_message().contains("a1"));
        assert_eq!(
            HubError::AccountNotFound("a1".into()).code(),
            "user_not_found"
        );
    }

    /// A client that sent the key in another header, or without its scheme, learns how.
    #[test]
    fn the_401_names_the_bearer_scheme() {
        let message = HubError::Unauthorized.public_message();
        assert!(message.contains("Authorization: Bearer "), "{message}");
        assert_eq!(HubError::Unauthorized.code(), "unauthorized");
    }
}
