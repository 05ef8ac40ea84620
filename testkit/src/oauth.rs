//! The OAuth2 endpoints of the providers: the consent page (authorization code + PKCE S256),
//! the token endpoint (code exchange and refresh) and Google's RFC 7009 revocation. Dropbox
//! revokes through its API (`dropbox::revoke`).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::state::{lock, random_token, PendingCode, Provider, Reauthorization, Shared};

/// Authorization codes are good for this long, as Google documents.
const CODE_LIFETIME: Duration = Duration::from_secs(600);

pub(crate) fn query_map(uri: &Uri) -> HashMap<String, String> {
    form_map(uri.query().unwrap_or("").as_bytes())
}

/// A form or query string as a map; the first of repeated names wins.
fn form_map(bytes: &[u8]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(bytes) {
        map.entry(name.into_owned())
            .or_insert_with(|| value.into_owned());
    }
    map
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({"error": error, "error_description": description});
    (status, Json(body)).into_response()
}

/// Microsoft's answer to a refresh the user must sign in again for, with the fields Entra ID
/// adds to RFC 6749's (`error_codes`, `timestamp`, `trace_id`, `correlation_id`,
/// `error_uri`, `suberror`):
/// <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#error-codes-for-token-endpoint-errors>,
/// <https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes>.
fn reauthorization_required(reason: Reauthorization) -> Response {
    let (error, code, text, suberror) = match reason {
        Reauthorization::InteractionRequired => (
            "interaction_required",
            50076,
            "Due to a configuration change made by your administrator, or because you moved \
             to a new location, you must use multi-factor authentication to access \
             '00000003-0000-0000-c000-000000000000'.",
            "basic_action",
        ),
        Reauthorization::ConsentRequired => (
            "consent_required",
            65001,
            "The user or administrator has not consented to use the application with ID \
             'onedrive-client-id' named 'Cloud Drive Connector Hub'. Send an interactive \
             authorization request for this user and resource.",
            "consent_required",
        ),
    };
    let trace_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let timestamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let description = format!(
        "AADSTS{code}: {text} Trace ID: {trace_id} Correlation ID: {correlation_id} \
         Timestamp: {timestamp}"
    );
    let body = json!({
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        "suberror": suberror,
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// RFC 7636: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn is_pkce_string(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
}

/// The authorization endpoint of `provider`: the consent page ([`consent`]) and the user's
/// answer posted back to it ([`decision`]). Microsoft's tenant segment (`common`,
/// `consumers`, a tenant id) is accepted as it is.
pub(crate) fn authorize_endpoint(provider: Provider) -> MethodRouter<Shared> {
    get(move |State(state): State<Shared>, uri: Uri| async move { consent(&state, provider, &uri) })
        .post(
            move |State(state): State<Shared>, headers: HeaderMap, body: Bytes| async move {
                decision(&state, provider, &headers, &body)
            },
        )
}

/// The token endpoint of `provider` ([`token`]): the code exchange and refreshes.
pub(crate) fn token_endpoint(provider: Provider) -> MethodRouter<Shared> {
    post(
        move |State(state): State<Shared>, headers: HeaderMap, body: Bytes| async move {
            token(&state, provider, &headers, &body)
        },
    )
}

/// What the user answers on the consent page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Decision {
    Allow,
    Deny,
}

/// The name of the consent form's buttons (`allow` or `deny`); no OAuth parameter has it.
const DECISION_FIELD: &str = "decision";

/// The consent page. Instantly (the default) the user consents at once, or refuses after
/// `deny_next_consent`, so the answer is the redirect back to the client. Interactively the
/// answer is an HTML page whose Allow and Deny buttons post the request back
/// ([`decision`]). A request the real page would show an error for gets a 400 with a
/// plain-text reason either way, since no redirect is safe then.
fn consent(shared: &Shared, provider: Provider, uri: &Uri) -> Response {
    let query = query_map(uri);
    let mut state = lock(shared);
    state.authorize_queries.insert(provider, query.clone());
    let redirect = match check_authorization_request(provider, &query) {
        Ok(redirect) => redirect,
        Err(reason) => return bad_consent(reason),
    };
    if state.interactive_consent {
        return consent_page(&state, provider, uri.path(), &query);
    }
    let decision = if std::mem::take(&mut state.deny_next_consent) {
        Decision::Deny
    } else {
        Decision::Allow
    };
    redirect_after(&mut state, provider, &query, redirect, decision)
}

/// The consent page's form: the authorization request again, in hidden fields, and the button
/// the user pressed. The request is checked again, as it came back from the browser.
fn decision(shared: &Shared, provider: Provider, headers: &HeaderMap, body: &[u8]) -> Response {
    if !is_form(headers) {
        return bad_consent("the consent form must be application/x-www-form-urlencoded");
    }
    let mut request = form_map(body);
    let decision = match request.remove(DECISION_FIELD).as_deref() {
        Some("allow") => Decision::Allow,
        Some("deny") => Decision::Deny,
        _ => return bad_consent("the consent form carries no decision"),
    };
    let mut state = lock(shared);
    match check_authorization_request(provider, &request) {
        Ok(redirect) => redirect_after(&mut state, provider, &request, redirect, decision),
        Err(reason) => bad_consent(reason),
    }
}

/// Checks an authorization request as the provider's page does; the client's redirect URI
/// when it is acceptable, what is wrong with it otherwise.
fn check_authorization_request(
    provider: Provider,
    query: &HashMap<String, String>,
) -> Result<url::Url, &'static str> {
    let param = |name: &str| query.get(name).map(String::as_str).unwrap_or("");
    let problem = if param("response_type") != "code" {
        Some("response_type must be code")
    } else if param("client_id") != provider.client().0 {
        Some("unknown client_id")
    } else if param("scope").trim().is_empty() {
        Some("missing scope")
    } else if param("state").is_empty() {
        Some("missing state")
    } else if !is_pkce_string(param("code_challenge")) {
        Some("missing or malformed code_challenge")
    } else if param("code_challenge_method") != "S256" {
        Some("code_challenge_method must be S256")
    } else {
        None
    };
    match (problem, url::Url::parse(param("redirect_uri"))) {
        (Some(reason), _) => Err(reason),
        (None, Err(_)) => Err("redirect_uri must be an absolute URL"),
        (None, Ok(url)) => Ok(url),
    }
}

/// The one place that turns the user's answer to a checked request into the redirect back to
/// the client: a code and the state (Allow), or the provider's documented refusal (Deny).
fn redirect_after(
    state: &mut crate::state::State,
    provider: Provider,
    query: &HashMap<String, String>,
    mut location: url::Url,
    decision: Decision,
) -> Response {
    let param = |name: &str| query.get(name).map(String::as_str).unwrap_or("");
    if decision == Decision::Deny {
        let mut pairs = location.query_pairs_mut();
        pairs.append_pair("error", "access_denied");
        match provider {
            Provider::Google => {}
            Provider::Microsoft => {
                pairs.append_pair(
                    "error_description",
                    "AADSTS65004: User declined to consent to access the app.",
                );
            }
            Provider::Dropbox => {
                pairs.append_pair(
                    "error_description",
                    "The user chose not to give your app access to their Dropbox account.",
                );
            }
            Provider::Box => {
                pairs.append_pair(
                    "error_description",
                    "The user denied access to your application",
                );
            }
        }
        pairs.append_pair("state", param("state"));
    } else {
        // Shaped like the real codes; Google's has a '/' so the callback must decode it.
        let code = random_token(match provider {
            Provider::Google => "4/0gac-",
            Provider::Microsoft => "M.C5_mac-",
            Provider::Dropbox => "dbac-",
            Provider::Box => "boxac-",
        });
        let user = state.consenting_user(provider);
        // Granular consent: the user may untick some of the requested scopes, and the token
        // answer's `scope` then lists only what was granted:
        // <https://developers.google.com/identity/protocols/oauth2/resources/granular-permissions>.
        let scope = match state.next_consent_grants.remove(&provider) {
            None => param("scope").to_string(),
            Some(allowed) => {
                let allowed: Vec<&str> = allowed.split_whitespace().collect();
                let granted = param("scope")
                    .split_whitespace()
                    .filter(|s| allowed.contains(s));
                granted.collect::<Vec<_>>().join(" ")
            }
        };
        let offline = match provider {
            // Google returns a refresh token "the first time your application exchanges an
            // authorization code" for a user; on a later consent only when `prompt=consent`
            // forces the consent screen again
            // (<https://developers.google.com/identity/protocols/oauth2/web-server#offline>).
            Provider::Google => {
                let asked_again = param("prompt").split(' ').any(|p| p == "consent");
                param("access_type") == "offline"
                    && (state.google_offline_users.insert(user.clone()) || asked_again)
            }
            Provider::Microsoft => scope.split(' ').any(|s| s == "offline_access"),
            // Without `token_access_type=offline` Dropbox hands out only a short-lived access
            // token: <https://developers.dropbox.com/oauth-guide#using-refresh-tokens>.
            Provider::Dropbox => param("token_access_type") == "offline",
            // Box's code exchange always answers a refresh token
            // (<https://developer.box.com/guides/authentication/oauth2/without-sdk/>).
            Provider::Box => true,
        };
        let pending = PendingCode {
            provider,
            user,
            redirect_uri: param("redirect_uri").to_string(),
            challenge: param("code_challenge").to_string(),
            scope,
            offline,
            issued_at: std::time::Instant::now(),
        };
        state.codes.insert(code.clone(), pending);
        state.issued.push(code.clone());
        location
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", param("state"));
    }
    let location = location.to_string();
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// The app the stand-ins' one registered client belongs to, as a consent page names it.
const CLIENT_APP_NAME: &str = "Cloud Drive Connector Hub";

/// The interactive consent page: who asks, for what, as whom, and two buttons that post the
/// request back to `action` (the authorize endpoint) with the user's answer. Every value from
/// the request is HTML-escaped; no script, nothing fetched, and no framing (consent pages
/// refuse to be framed, against clickjacking).
fn consent_page(
    state: &crate::state::State,
    provider: Provider,
    action: &str,
    query: &HashMap<String, String>,
) -> Response {
    let escape = |text: &str| html_escape::encode_double_quoted_attribute(text).into_owned();
    let email = state.email(provider, &state.next_identity[&provider]);
    let name = provider.display_name();
    let mut fields: Vec<(&String, &String)> = query
        .iter()
        .filter(|(field, _)| field.as_str() != DECISION_FIELD)
        .collect();
    fields.sort();
    let hidden: String = fields
        .iter()
        .map(|(field, value)| {
            format!(
                "      <input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                escape(field),
                escape(value)
            )
        })
        .collect();
    let scopes: String = query
        .get("scope")
        .map(String::as_str)
        .unwrap_or("")
        .split_whitespace()
        .map(|scope| format!("      <li><code>{}</code></li>\n", escape(scope)))
        .collect();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  \
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n  \
         <title>{name} (stand-in): {app} wants to see your files</title>\n  \
         <style>{CONSENT_STYLE}</style>\n</head>\n<body>\n<main>\n  \
         <p class=\"provider\">{name} <span>(testkit stand-in, not the real service)</span></p>\n  \
         <h1>{app} wants to see your files</h1>\n  \
         <p>Signed in as <strong class=\"email\">{email}</strong></p>\n  \
         <p>It asks for:</p>\n  <ul class=\"scopes\">\n{scopes}  </ul>\n  \
         <form method=\"post\" action=\"{action}\">\n{hidden}      \
         <button type=\"submit\" name=\"{DECISION_FIELD}\" value=\"deny\" class=\"deny\">Deny</button>\n      \
         <button type=\"submit\" name=\"{DECISION_FIELD}\" value=\"allow\" class=\"allow\">Allow</button>\n  \
         </form>\n</main>\n</body>\n</html>\n",
        name = escape(name),
        app = escape(CLIENT_APP_NAME),
        email = escape(&email),
        action = escape(action),
    );
    let headers = [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    (headers, axum::response::Html(html)).into_response()
}

/// Large, high-contrast buttons with a visible focus ring; system fonts, nothing fetched.
const CONSENT_STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f1f3f4;\
color:#202124}main{max-width:30rem;margin:4rem auto;padding:2rem;background:#fff;\
border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.15)}h1{font-size:1.4rem}\
p.provider{font-weight:600}p.provider span{font-weight:400;color:#5f6368}\
form{display:flex;gap:1rem;justify-content:flex-end;margin-top:2rem}\
button{font:inherit;font-weight:600;padding:.7rem 1.6rem;border-radius:6px;cursor:pointer}\
button.allow{background:#1a56c4;color:#fff;border:2px solid #1a56c4}\
button.deny{background:#fff;color:#1a56c4;border:2px solid #1a56c4}\
button:focus{outline:3px solid #f0b400;outline-offset:2px}";

fn bad_consent(reason: &str) -> Response {
    let body = format!("400. That's an error. Invalid authorization request: {reason}\n");
    (StatusCode::BAD_REQUEST, body).into_response()
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1: form-encoded, then base64) or from
/// the form.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, encoded)| STANDARD.decode(encoded.trim()).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok());
    if let Some(pair) = basic {
        let (id, secret) = pair.split_once(':')?;
        let decode = |s: &str| form_map(format!("v={s}").as_bytes()).remove("v");
        return Some((decode(id)?, decode(secret)?));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

fn token(shared: &Shared, provider: Provider, headers: &HeaderMap, body: &[u8]) -> Response {
    if !is_form(headers) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The body must be application/x-www-form-urlencoded.",
        );
    }
    let form = form_map(body);
    let (client_id, client_secret) = provider.client();
    match client_credentials(headers, &form) {
        Some((id, secret)) if id == client_id && secret == client_secret => {}
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed.",
            )
        }
    }
    let mut state = lock(shared);
    let param = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let exchanging_code = param("grant_type") == "authorization_code";
    let (grant, refresh_token) = match param("grant_type") {
        "authorization_code" => {
            if param("code").is_empty() {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Missing code.");
            }
            // Single use: the code is gone whatever the outcome of this attempt.
            let Some(pending) = state.codes.remove(param("code")) else {
                return invalid_grant("Malformed auth code, or the code was already used.");
            };
            if pending.provider != provider || pending.issued_at.elapsed() > CODE_LIFETIME {
                return invalid_grant("The code has expired.");
            }
            if param("redirect_uri") != pending.redirect_uri {
                return invalid_grant("redirect_uri does not match the authorization request.");
            }
            let verifier = param("code_verifier");
            let derived = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if !is_pkce_string(verifier) || derived != pending.challenge {
                return invalid_grant("Invalid code verifier.");
            }
            let grant = state.new_grant(provider, &pending.user, &pending.scope);
            let refresh = pending.offline.then(|| state.issue_refresh_token(grant));
            (grant, refresh)
        }
        "refresh_token" => {
            let presented = param("refresh_token");
            if presented.is_empty() {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Missing refresh_token.",
                );
            }
            let live = state.refresh_tokens.get(presented).and_then(|r| {
                let grant = &state.grants[r.grant];
                let live = r.valid && !grant.revoked && grant.provider == provider;
                live.then_some((r.grant, r.reauthorization))
            });
            let Some((grant, reauthorization)) = live else {
                return invalid_grant("Token has been expired or revoked.");
            };
            if let Some(reason) = reauthorization {
                return reauthorization_required(reason);
            }
            // Microsoft and Box rotate refresh tokens and the old one stops working at once
            // (Box: "a refresh token can only be used once", and lasts 60 days,
            // <https://developer.box.com/guides/authentication/tokens/refresh/>); Google
            // keeps the grant's one and leaves it out of the answer.
            let rotating = matches!(provider, Provider::Microsoft | Provider::Box);
            let rotated = rotating.then(|| {
                if let Some(old) = state.refresh_tokens.get_mut(presented) {
                    old.valid = false;
                }
                state.issue_refresh_token(grant)
            });
            (grant, rotated)
        }
        "" => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing grant_type.",
            )
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant_type.",
            )
        }
    };
    let access_token = state.issue_access_token(grant);
    let mut answer = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": state.token_lifetime,
        "scope": state.grants[grant].scope,
    });
    if let Some(refresh_token) = refresh_token {
        answer["refresh_token"] = json!(refresh_token);
    }
    match provider {
        Provider::Google => answer["id_token"] = json!("fake.jwt.value"),
        Provider::Microsoft => answer["ext_expires_in"] = json!(state.token_lifetime),
        // Dropbox: `token_type` is lower-case `bearer`; the code exchange also names the
        // account (`account_id`, `uid`), a refresh answers only `access_token`, `token_type`
        // and `expires_in`: <https://www.dropbox.com/developers/documentation/http/documentation#oauth2-token>.
        Provider::Dropbox if exchanging_code => {
            let user = state.grants[grant].user.clone();
            answer["token_type"] = json!("bearer");
            answer["account_id"] = json!(user);
            answer["uid"] = json!(crate::state::uid_of(&user));
        }
        Provider::Dropbox => {
            answer = json!({
                "access_token": answer["access_token"],
                "token_type": "bearer",
                "expires_in": answer["expires_in"],
            });
        }
        // Box's token answer has no `scope`; `restricted_to` lists file restrictions
        // (<https://developer.box.com/reference/resources/access-token/>).
        Provider::Box => {
            answer = json!({
                "access_token": answer["access_token"],
                "expires_in": answer["expires_in"],
                "restricted_to": [],
                "refresh_token": answer["refresh_token"],
                "token_type": "bearer",
            });
        }
    }
    no_store(answer)
}

/// RFC 6749 §5.1: token answers must not be cached.
fn no_store(answer: Value) -> Response {
    let headers = [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ];
    (headers, Json(answer)).into_response()
}

/// Google's revocation endpoint: `token` as a form field (or query parameter). Revoking either
/// token of a grant revokes the whole grant, as Google documents.
pub(crate) async fn google_revoke(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params = query_map(&uri);
    if is_form(&headers) {
        params.extend(form_map(&body));
    }
    let token = params.get("token").cloned().unwrap_or_default();
    let mut state = lock(&shared);
    let grant = match (
        state.access_tokens.get(&token),
        state.refresh_tokens.get(&token),
    ) {
        (Some(access), _) => Some(access.grant),
        (_, Some(refresh)) if refresh.valid => Some(refresh.grant),
        _ => None,
    };
    let live = grant.filter(|g| {
        let grant = &state.grants[*g];
        !grant.revoked && grant.provider == Provider::Google
    });
    let Some(grant) = live else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "Token expired or revoked",
        );
    };
    state.grants[grant].revoked = true;
    state.revoked.push(token);
    Json(json!({})).into_response()
}
