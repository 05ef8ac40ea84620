//! The HTTP side of connect sessions (docs/API.md, "Connect sessions"): the body of
//! `POST /connect/sessions` and the connect page `GET /connect?session=`, whose page frame
//! the callback's pages share (`super::callback`).
//!
//! The page is plain HTML: no script, no external asset, one link per provider. Its headers
//! keep the token where it is: `no-store` (no cache keeps the page), `no-referrer` (the
//! provider's consent page never sees the hub's URL with the token) and a CSP that allows no
//! script and no framing (a page that connects a drive must not be clickjacked).

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::JsonBody;
use crate::connect::{self, NewSession};
use crate::error::HubError;
use crate::hub::Hub;
use crate::providers::ProviderName;

/// What the page allows: its own inline style only, nothing else, and no framing at all.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; \
     script-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The body of `POST /connect/sessions`. A field of the wrong type is `invalid_request` like
/// a missing owner (the documented code for a malformed session request), not `invalid_json`,
/// which stays for bodies that are not a JSON object.
pub struct SessionRequest(pub NewSession);

impl<S: Send + Sync> FromRequest<S> for SessionRequest {
    type Rejection = HubError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBody(body) = JsonBody::<Value>::from_request(request, state).await?;
        let text = |name: &str| -> Result<Option<String>, HubError> {
            match body.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(value)) => Ok(Some(value.clone())),
                Some(_) => Err(HubError::InvalidRequest(format!("{name} must be a string"))),
            }
        };
        let providers = match body.get("providers") {
            None | Some(Value::Null) => None,
            Some(Value::Array(names)) => Some(
                names
                    .iter()
                    .map(|name| name.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        HubError::InvalidRequest("providers must be a list of names".into())
                    })?,
            ),
            Some(_) => {
                return Err(HubError::InvalidRequest(
                    "providers must be a list of names".into(),
                ))
            }
        };
        Ok(SessionRequest(NewSession {
            owner: text("owner")?,
            return_to: text("return_to")?,
            providers,
        }))
    }
}

/// 201 with the new session.
pub async fn create_session_response(hub: &Hub, request: NewSession) -> Response {
    match connect::create(hub, request).await {
        Ok(created) => (
            StatusCode::CREATED,
            [(header::CACHE_CONTROL, "no-store")],
            Json(created),
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

/// The name a person knows the provider by, as its module declares it (the name itself for
/// one the hub does not know).
pub fn display_name(provider: &str) -> &str {
    ProviderName::known(provider).map_or(provider, |name| name.spec().display_name)
}

/// `GET /connect?session=`: the page of a usable session, or the `invalid_session` page.
/// A store failure is the hub's fault: a 500 page, never the error page of a bad session.
///
/// The page names the app that asks by its return address's host (the only name of it the
/// hub holds, and one the allowlist vouches for), and offers to cancel: back to the app with
/// the outcome of a denial (`status=error&error=authorization_denied`), which leaves the
/// session usable as a denial does.
pub async fn connect_page(hub: &Hub, token: Option<&str>) -> Response {
    match connect::open_or_why(hub.store.as_ref(), token).await {
        Ok(Ok(session)) => {
            let token = token.unwrap_or_default();
            let links: String = session
                .providers
                .iter()
                .map(|provider| {
                    let href = login_link(&hub.config.public_url, provider, token);
                    format!(
                        "      <li><a class=\"provider\" href=\"{}\">Connect {}</a></li>\n",
                        escape(&href),
                        escape(display_name(provider))
                    )
                })
                .collect();
            let asking = match session.return_to.as_deref().and_then(app_name) {
                Some(app) => format!(
                    "<strong class=\"app\">{}</strong> asks to see your files.",
                    escape(&app)
                ),
                None => "An app asks to see your files.".to_string(),
            };
            let cancel = match &session.return_to {
                Some(return_to) => format!(
                    "    <p><a class=\"cancel\" href=\"{}\">Cancel and go back to the app</a></p>\n",
                    escape(&connect::return_url(
                        return_to,
                        &Err(&HubError::AuthorizationDenied)
                    ))
                ),
                None => "    <p>Not what you expected? Close this window: nothing is connected \
                         until you allow it.</p>\n"
                    .to_string(),
            };
            page(
                StatusCode::OK,
                "Connect a drive",
                &format!(
                    "    <h1>Connect a drive</h1>\n    <p class=\"asking\">{asking} Choose \
                     where they are. You will be asked to allow access, then brought back.</p>\n    \
                     <ul class=\"providers\">\n{links}    </ul>\n{cancel}"
                ),
            )
        }
        Ok(Err(unusable)) => unusable_page(&unusable),
        Err(error) => {
            tracing::error!(error = %error, "connect page failed");
            page(
                crate::web::status_code(&error),
                "Something went wrong",
                &format!(
                    "    <h1>Something went wrong</h1>\n    <p>{}</p>\n    <p>Error code: \
                     <code class=\"error-code\">{}</code></p>\n",
                    escape(&error.public_message()),
                    error.code()
                ),
            )
        }
    }
}

/// The `invalid_session` page (400), saying which of unknown, expired or used the link is,
/// and linking back to the app when the session names one.
fn unusable_page(unusable: &connect::Unusable) -> Response {
    let (title, detail, session) = match unusable {
        connect::Unusable::Unknown => (
            "Link not recognised",
            "The hub does not know this connect link. Check that it was copied whole, or \
             ask the app for a new one.",
            None,
        ),
        connect::Unusable::Expired(session) => (
            "Link expired",
            "This connect link has expired: links last 30 minutes. Nothing was connected \
             with it. Go back to the app and start again.",
            Some(session),
        ),
        connect::Unusable::Spent(session) => (
            "Link already used",
            "A drive was already connected with this link, and a link connects one drive. \
             To connect another, go back to the app and start again.",
            Some(session),
        ),
    };
    let back = session
        .and_then(|session| session.return_to.as_deref())
        .map(|return_to| {
            format!(
                "    <p><a class=\"provider back\" href=\"{}\">Back to the app</a></p>\n",
                escape(return_to)
            )
        })
        .unwrap_or_default();
    page(
        StatusCode::BAD_REQUEST,
        title,
        &format!(
            "    <h1>{title}</h1>\n    <p>{detail}</p>\n{back}    <p>Error code: <code \
             class=\"error-code\">{}</code></p>\n",
            HubError::InvalidSession.code()
        ),
    )
}

/// How the page names the app: its return address's host, with the port when it is not the
/// scheme's default (`app.example.com`, `localhost:9200`).
fn app_name(return_to: &str) -> Option<String> {
    let url = url::Url::parse(return_to).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// The login link of a session's provider, built from `HUB_PUBLIC_URL` (as the redirect URIs
/// and `connect_url` are): a hub served under a path (`https://example.com/hub`, behind a
/// proxy mapping `/hub/*` to the API) has its login there, and a root-relative `/auth/...`
/// would leave the path out. Absolute rather than relative to the page, so it holds whatever
/// URL the page itself was reached at.
fn login_link(public_url: &str, provider: &str, token: &str) -> String {
    format!(
        "{public_url}/auth/{}/login?session={}",
        url_part(provider),
        url_part(token)
    )
}

/// A whole page with the connect page's headers.
pub(super) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n  <head>\n    <meta charset=\"utf-8\">\n    \
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n    \
         <title>{}</title>\n    <style>{STYLE}</style>\n  </head>\n  <body>\n  <main>\n{body}  \
         </main>\n  </body>\n</html>\n",
        escape(title)
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Large, high-contrast targets with a visible focus ring; system fonts, nothing fetched.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;\
color:#1b1f24}main{max-width:28rem;margin:4rem auto;padding:2rem;background:#fff;\
border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.12)}h1{font-size:1.5rem;margin-top:0}\
ul.providers{list-style:none;padding:0}ul.providers li{margin:.75rem 0}\
a.provider{display:block;padding:.9rem 1rem;border:2px solid #1b5fd1;border-radius:8px;\
color:#0b3d91;font-weight:600;text-decoration:none;text-align:center}\
a.provider:hover{background:#eaf1fd}a.cancel{color:#5f6368}a.provider:focus{outline:3px solid #f0b400;\
outline-offset:2px}code{background:#eef0f3;padding:.1rem .3rem;border-radius:4px}";

pub(super) fn escape(text: &str) -> String {
    html_escape::encode_safe(text).into_owned()
}

/// A value in a URL's path or query, percent-encoded: a token is base64url and a provider a
/// known name, but the page never trusts that.
pub(super) fn url_part(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, URL_PART).to_string()
}

/// Everything but RFC 3986's unreserved characters.
const URL_PART: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_links_keep_the_public_urls_path() {
        assert_eq!(
            login_link("https://example.com/hub", "google", "tok_en-1"),
            "https://example.com/hub/auth/google/login?session=tok_en-1"
        );
        assert_eq!(
            login_link("http://localhost:9000", "one drive", "a&b"),
            "http://localhost:9000/auth/one%20drive/login?session=a%26b"
        );
    }

    #[test]
    fn the_app_is_named_by_its_return_host() {
        assert_eq!(
            app_name("https://app.example.com/return?x=1").as_deref(),
            Some("app.example.com")
        );
        assert_eq!(
            app_name("http://localhost:9200/connected").as_deref(),
            Some("localhost:9200")
        );
        assert_eq!(app_name("not a url"), None);
    }

    #[test]
    fn values_are_escaped() {
        let escaped = escape("<a href=\"x\">&'");
        assert!(
            escaped.starts_with("&lt;a href=&quot;x&quot;&gt;&amp;"),
            "{escaped}"
        );
        assert!(!escaped.contains(['<', '>', '"', '\'']), "{escaped}");
        assert_eq!(url_part("a b/\"<"), "a%20b%2F%22%3C");
    }

    #[test]
    fn the_csp_allows_no_script_and_no_framing() {
        assert!(PAGE_CSP.contains("script-src 'none'"));
        assert!(PAGE_CSP.contains("frame-ancestors 'none'"));
        assert!(!PAGE_CSP.contains("http"));
    }
}
