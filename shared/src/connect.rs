//! Connect sessions (contract section 5): an app's backend asks for a session for one of its
//! users (the owner), sends the browser to the connect page, and gets it back at `return_to`
//! with the outcome.
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

/// How long a connect session can start and finish a login.
pub const SESSION_LIFETIME_MINUTES: i64 = 30;

/// The longest `owner` the contract allows.
pub const MAX_OWNER_LEN: usize = 128;

/// The longest `return_to` the hub keeps (browsers and servers commonly cap URLs near 2 KiB
/// too; a longer one is no legitimate app page).
pub const MAX_RETURN_TO_LEN: usize = 2048;

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

/// Whether `owner` is an owner the contract allows: 1 to 128 characters of `A-Za-z0-9._:@-`.
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
        return Ok(configured.into_iter().map(str::to_string).collect());
    };
    if asked.is_empty() {
        return Err(HubError::InvalidRequest(
            "providers must name at least one provider".into(),
        ));
    }
    let mut providers: Vec<String> = Vec::with_capacity(asked.len());
    for name in asked {
        if !configured.contains(&name.as_str()) {
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
pub async fn open(hub: &Hub, token: Option<&str>) -> HubResult<ConnectSession> {
    let token = token
        .filter(|token| token.len() == TOKEN_LEN)
        .ok_or(HubError::InvalidSession)?;
    hub.store
        .get_connect_session(&session_id(token))
        .await?
        .filter(|session| session.usable(Utc::now()))
        .ok_or(HubError::InvalidSession)
}

/// The usable session of `token` for a login with `provider`: `invalid_session` also when the
/// session does not offer that provider.
pub async fn open_for(hub: &Hub, token: Option<&str>, provider: &str) -> HubResult<ConnectSession> {
    let session = open(hub, token).await?;
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

/// `HUB_ALLOWED_RETURN_URLS`: where sessions may send the browser back to. Compared by
/// scheme, host (without case), port (default ports made explicit) and path prefix on a
/// segment boundary, never by string prefix, so `https://app.example.com.evil.net` does not
/// pass for `https://app.example.com`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReturnAllowlist {
    entries: Vec<AllowedReturn>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct AllowedReturn {
    scheme: String,
    host: String,
    port: u16,
    /// The path: a `return_to`'s path equals it or starts with `path_prefix`.
    path: String,
    /// The path followed by `/`, unless it already ends with one.
    path_prefix: String,
}

impl ReturnAllowlist {
    /// Reads the comma-separated list; an entry that is not an absolute http(s) URL without
    /// user info, query or fragment is an error naming it.
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let mut entries = Vec::new();
        for entry in raw.unwrap_or_default().split(',').map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            let url = checked_absolute(entry).ok_or_else(|| {
                format!(
                    "'{entry}' is not an absolute http(s) URL without user info or dot segments"
                )
            })?;
            if url.query().is_some() || url.fragment().is_some() {
                return Err(format!("'{entry}' must not have a query or fragment"));
            }
            let mut path_prefix = url.path().to_string();
            if !path_prefix.ends_with('/') {
                path_prefix.push('/');
            }
            entries.push(AllowedReturn {
                path: url.path().to_string(),
                scheme: url.scheme().to_string(),
                host: url.host_str().unwrap_or_default().to_ascii_lowercase(),
                port: url.port_or_known_default().unwrap_or_default(),
                path_prefix,
            });
        }
        Ok(ReturnAllowlist { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a session may return to `candidate`.
    pub fn allows(&self, candidate: &str) -> bool {
        let Some(url) = checked_absolute(candidate) else {
            return false;
        };
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or_default();
        let path = url.path();
        self.entries.iter().any(|allowed| {
            allowed.scheme == url.scheme()
                && allowed.host == host
                && allowed.port == port
                && (path == allowed.path || path.starts_with(&allowed.path_prefix))
        })
    }
}

/// `raw` as a URL, when it is written as an absolute http(s) URL (`scheme://host...`, not a
/// relative, scheme-relative or slash-less form the parser would complete), with no user
/// info, no backslash or control character, and no dot segment, plain or percent-encoded.
/// The raw string is checked as well as the parsed one: the parser resolves `..` away, and
/// a browser or server behind `return_to` may decode what the parser keeps encoded.
fn checked_absolute(raw: &str) -> Option<Url> {
    if raw.len() > MAX_RETURN_TO_LEN
        || raw
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
    {
        return None;
    }
    let lower = raw.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    // The authority ends at the first `/`, `?` or `#`; an `@` in it is user info.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let raw_path = &after[..after.find(['?', '#']).unwrap_or(after.len())];
    if has_dot_segment(raw_path) {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    if !url.username().is_empty() || url.password().is_some() || url.host_str().is_none() {
        return None;
    }
    if has_dot_segment(url.path()) {
        return None;
    }
    Some(url)
}

/// Whether a path has a `.` or `..` segment once percent-decoded (`%2e%2e`, and `%252e` for a
/// server that decodes twice), also where an encoded slash (`%2f`, `%5c`) would make one.
fn has_dot_segment(path: &str) -> bool {
    let mut text = path.to_string();
    for _ in 0..DECODING_ROUNDS {
        if text
            .split(['/', '\\'])
            .any(|segment| segment == "." || segment == "..")
        {
            return true;
        }
        let decoded = percent_encoding::percent_decode_str(&text)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == text {
            return false;
        }
        text = decoded;
    }
    // Still encoded after that many rounds: no app page looks like that.
    true
}

/// How many layers of percent-encoding [`has_dot_segment`] looks through.
const DECODING_ROUNDS: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    fn allowlist(raw: &str) -> ReturnAllowlist {
        ReturnAllowlist::parse(Some(raw)).unwrap()
    }

    #[test]
    fn the_contract_examples() {
        let list = allowlist("https://app.example.com/return");
        assert!(list.allows("https://app.example.com/return"));
        assert!(list.allows("https://app.example.com/return/x"));
        assert!(list.allows("https://app.example.com/return/x?tab=drives#top"));
        assert!(list.allows("https://app.example.com/return?from=hub"));
        assert!(!list.allows("https://app.example.com/returnx"));
        assert!(!list.allows("https://app.example.com/"));
        assert!(!list.allows("https://app.example.com/admin"));
    }

    #[test]
    fn a_path_ending_with_a_slash_allows_what_lies_under_it() {
        let list = allowlist("https://app.example.com/cb/");
        assert!(list.allows("https://app.example.com/cb/"));
        assert!(list.allows("https://app.example.com/cb/done"));
        assert!(!list.allows("https://app.example.com/cb"));
        let root = allowlist("https://app.example.com");
        assert!(root.allows("https://app.example.com"));
        assert!(root.allows("https://app.example.com/anything/at/all"));
    }

    #[test]
    fn hosts_compare_without_case_and_only_whole() {
        let list = allowlist("https://App.Example.com/return");
        assert!(list.allows("https://APP.EXAMPLE.COM/return"));
        assert!(list.allows("https://app.example.com/return"));
        for refused in [
            "https://app.example.com.evil.net/return",
            "https://evil.net/return",
            "https://evilapp.example.com/return",
            "https://sub.app.example.com/return",
            "https://app.example.com./return",
        ] {
            assert!(!list.allows(refused), "{refused}");
        }
    }

    #[test]
    fn user_info_is_refused() {
        let list = allowlist("https://app.example.com");
        for refused in [
            "https://app.example.com@evil.net",
            "https://app.example.com@evil.net/return",
            "https://user@app.example.com/return",
            "https://user:pass@app.example.com/return",
            "https://app.example.com%40evil.net/",
        ] {
            assert!(!list.allows(refused), "{refused}");
        }
        assert!(ReturnAllowlist::parse(Some("https://u:p@app.example.com")).is_err());
    }

    #[test]
    fn relative_and_scheme_relative_forms_are_refused() {
        let list = allowlist("https://app.example.com");
        for refused in [
            "//evil.net",
            "/\\evil.net",
            "\\\\evil.net",
            "/return",
            "return",
            "https:evil.net",
            "https:/app.example.com/",
            "https:\\\\app.example.com\\",
            "https://app.example.com\\@evil.net",
            "javascript:alert(1)",
            "data:text/html,hi",
            "",
            " https://app.example.com/",
            "https://app.example.com/\n",
        ] {
            assert!(!list.allows(refused), "{refused:?}");
        }
    }

    #[test]
    fn dot_segments_are_refused_plain_or_encoded() {
        let list = allowlist("https://app.example.com/return");
        for refused in [
            "https://app.example.com/return/../admin",
            "https://app.example.com/return/./x",
            "https://app.example.com/return/..",
            "https://app.example.com/return/%2e%2e/admin",
            "https://app.example.com/return/%2E%2E/admin",
            "https://app.example.com/return/.%2e/admin",
            "https://app.example.com/return/%2e/x",
            "https://app.example.com/return/..%2fadmin",
            "https://app.example.com/return%2f..%2fadmin",
            "https://app.example.com/return/..%5cadmin",
            "https://app.example.com/return/%252e%252e/admin",
        ] {
            assert!(!list.allows(refused), "{refused}");
        }
        // Dots inside a segment are only a name.
        assert!(list.allows("https://app.example.com/return/v1.2..3"));
        assert!(list.allows("https://app.example.com/return/...x"));
    }

    #[test]
    fn scheme_and_port_must_match_with_default_ports_explicit() {
        let list = allowlist("https://app.example.com/return");
        assert!(!list.allows("http://app.example.com/return"));
        assert!(!list.allows("https://app.example.com:8443/return"));
        assert!(list.allows("https://app.example.com:443/return"));
        let explicit = allowlist("https://app.example.com:443/return");
        assert!(explicit.allows("https://app.example.com/return"));
        let local = allowlist("http://127.0.0.1:8080/done");
        assert!(local.allows("http://127.0.0.1:8080/done?x=1"));
        assert!(!local.allows("http://127.0.0.1:8081/done"));
        assert!(!local.allows("http://127.0.0.1/done"));
        let plain = allowlist("http://app.example.com");
        assert!(plain.allows("http://app.example.com:80/x"));
    }

    #[test]
    fn several_entries_and_an_empty_list() {
        let list = allowlist(" https://a.example/x , http://localhost:3000/cb ");
        assert!(list.allows("https://a.example/x/y"));
        assert!(list.allows("http://localhost:3000/cb"));
        assert!(!list.allows("http://localhost:3000/other"));
        let none = ReturnAllowlist::parse(None).unwrap();
        assert!(none.is_empty());
        assert!(!none.allows("https://a.example/x"));
    }

    #[test]
    fn malformed_entries_are_errors() {
        for bad in [
            "not a url",
            "/relative",
            "ftp://files.example/",
            "https://app.example.com/a/../b",
            "https://app.example.com/?q=1",
            "https://app.example.com/#f",
        ] {
            assert!(ReturnAllowlist::parse(Some(bad)).is_err(), "{bad}");
        }
    }

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
    fn owners_follow_the_contract() {
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
