//! The callback's answer (docs/API.md, "Logins"): a 302 back to the app when the login's
//! connect session has a `return_to`; otherwise the account's JSON (or the error's) for a
//! program, and, for a person's browser, a page that says what happened and offers a way on
//! (a raw JSON body is a dead end for a person). The status is the same either way.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::connect::{escape, page, url_part};
use super::login::remembered_return;
use super::status_code;
use crate::connect;
use crate::error::HubError;
use crate::login::Finished;
use crate::providers::ProviderName;
use crate::return_urls::ReturnAllowlist;

/// Who the callback answers, read from the request.
pub struct CallbackAudience {
    /// Whether the request's `Accept` prefers HTML to JSON: a browser's top-level navigation
    /// does (`text/html,...,*/*;q=0.8`); `curl` (`*/*`) and API clients do not.
    pub wants_html: bool,
    /// The app this browser came from, as it remembers its latest connect session's
    /// `return_to` (still allowed): where a page for a login the hub cannot tie to a session
    /// sends the person back.
    pub app: Option<String>,
}

impl CallbackAudience {
    pub fn of(headers: &HeaderMap, allowlist: &ReturnAllowlist) -> Self {
        let accept = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        CallbackAudience {
            wants_html: prefers_html(&accept),
            app: remembered_return(headers, allowlist),
        }
    }
}

/// Whether an `Accept` value (RFC 9110 section 12.5.1) gives `text/html` a higher weight
/// than `application/json`, each by its most specific matching range.
fn prefers_html(accept: &str) -> bool {
    let weight = |media_type: &str| -> f32 {
        let (kind, _) = media_type.split_once('/').unwrap_or((media_type, ""));
        let mut best: Option<(u8, f32)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|param| param.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let specificity = if name == media_type {
                3
            } else if name == format!("{kind}/*") {
                2
            } else if name == "*/*" {
                1
            } else {
                continue;
            };
            if best.is_none_or(|(known, _)| specificity > known) {
                best = Some((specificity, q));
            }
        }
        best.map_or(0.0, |(_, q)| q)
    };
    let html = weight("text/html");
    html > 0.0 && html > weight("application/json")
}

/// The callback's answer (see the module's doc). `provider` is the route's, `public_url`
/// builds the page's "try again" link.
pub fn callback_response(
    finished: Finished,
    provider: &str,
    audience: CallbackAudience,
    public_url: &str,
) -> Response {
    match finished.return_to {
        Some(return_to) => {
            let outcome = finished
                .result
                .as_ref()
                .map(|account| (account.id.clone(), account.provider.clone()));
            let location = connect::return_url(&return_to, &outcome);
            match HeaderValue::from_str(&location) {
                Ok(location) => (
                    StatusCode::FOUND,
                    [
                        (header::LOCATION, location),
                        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                        (
                            header::REFERRER_POLICY,
                            HeaderValue::from_static("no-referrer"),
                        ),
                    ],
                )
                    .into_response(),
                // An allowlisted URL serialised by the url crate is a valid header value.
                Err(e) => HubError::internal(format!("return_to header: {e}")).into_response(),
            }
        }
        None if audience.wants_html => outcome_page(
            &finished.result,
            provider,
            audience.app.as_deref(),
            public_url,
        ),
        None => match finished.result {
            Ok(account) => Json(account).into_response(),
            Err(error) => error.into_response(),
        },
    }
}

/// A person's page for a login without a session's `return_to` (a direct login, or a state
/// the hub cannot tie to a session): connected, or what went wrong and what to do, with the
/// status the JSON would have had. With `app` (the browser came from an app's connect
/// session), the way on is back to that app, which starts a new session: a "try again" here
/// would start a login without a session, whose account no app user owns.
fn outcome_page(
    result: &Result<crate::model::AccountView, HubError>,
    provider: &str,
    app: Option<&str>,
    public_url: &str,
) -> Response {
    let name = ProviderName::known(provider)
        .map(|known| known.spec().display_name)
        .unwrap_or("the provider");
    let (again, back) = match app {
        Some(app) => (
            format!(
                "<p><a class=\"provider back\" href=\"{}\">Back to the app</a></p>\n",
                escape(app)
            ),
            String::new(),
        ),
        None => (
            format!(
                "<p><a class=\"provider\" href=\"{}\">Try again</a></p>\n",
                escape(&format!("{public_url}/auth/{}/login", url_part(provider)))
            ),
            "<p>You can close this window and go back to the app that sent you here.</p>\n"
                .to_string(),
        ),
    };
    let (status, title, body) = match result {
        Ok(account) => (
            StatusCode::OK,
            format!("{name} connected"),
            format!(
                "<h1>{} connected</h1>\n<p>The account <strong>{}</strong> is connected; its \
                 files are indexed in the background.</p>\n<p>Its id is <code \
                 class=\"account-id\">{}</code>. It was connected without an app's connect \
                 session, so no app user owns it: it is listed by <code>GET /users</code> \
                 with <code>\"owner\": null</code>. An app connects drives for its users \
                 through connect sessions.</p>\n{back}",
                escape(name),
                escape(&account.email),
                escape(&account.id)
            ),
        ),
        Err(error) => {
            let (headline, detail, retry) = match error {
                HubError::AuthorizationDenied => (
                    "Access was not allowed",
                    format!(
                        "You chose not to let the app see your {}. Nothing was connected.",
                        escape(name)
                    ),
                    true,
                ),
                HubError::InvalidState => (
                    "This sign-in cannot be finished",
                    format!(
                        "This page belongs to a sign-in that was already finished (for \
                         example, the back button led to the provider's page again), has \
                         expired, or was started in another browser. Nothing more was \
                         connected: {}.",
                        if app.is_some() {
                            "go back to the app, which shows what is connected"
                        } else {
                            "start again"
                        }
                    ),
                    true,
                ),
                HubError::ScopeNotGranted { .. } => (
                    "Some permissions were left out",
                    format!(
                        "The app needs every permission its consent page asks for to index \
                         your {}. Nothing was connected: try again and leave them all ticked.",
                        escape(name)
                    ),
                    true,
                ),
                HubError::InvalidSession => (
                    "This connection link has been used",
                    "The link that brought you here was already used, has expired, or does \
                     not offer this provider. Ask the app for a new one."
                        .to_string(),
                    false,
                ),
                other => (
                    "The account could not be connected",
                    format!(
                        "{} Nothing was connected; try again in a moment.",
                        escape(&other.public_message())
                    ),
                    !matches!(
                        other,
                        HubError::UnknownProvider(_) | HubError::ProviderNotConfigured { .. }
                    ),
                ),
            };
            (
                status_code(error),
                headline.to_string(),
                format!(
                    "<h1>{headline}</h1>\n<p>{detail}</p>\n{}{back}",
                    if retry || app.is_some() {
                        again.as_str()
                    } else {
                        ""
                    }
                ),
            )
        }
    };
    page(status, &title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_prefer_html_and_programs_do_not() {
        for accept in [
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "text/html",
            "text/*, application/json;q=0.5",
        ] {
            assert!(prefers_html(accept), "{accept}");
        }
        for accept in [
            "",
            "*/*",
            "application/json",
            "application/json, text/html;q=0.9",
            "text/html;q=0",
            "text/plain",
        ] {
            assert!(!prefers_html(accept), "{accept}");
        }
    }
}
