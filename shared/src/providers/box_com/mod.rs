//! Box (API 2.0) and its OAuth 2.0 endpoints (docs/API.md, "Box").
//!
//! Box rotates the refresh token at every refresh and each one works once
//! (<https://developer.box.com/guides/authentication/tokens/refresh/>): the worker stores the
//! new pair before anything else uses it, as for Microsoft. Files and folders are numbered
//! apart at Box (a file and a folder may both be `12345`), so an entry's id is the item's type
//! and id, `file_12345` or `folder_12345`, and so are its `parent_ids`. Box has no per-folder
//! webhook on the root folder `0`, so Box pushes nothing: the schedule keeps Box accounts
//! fresh. How a sync reads Box is in [`sync`].

mod content;
mod search;
mod sync;

use std::sync::Arc;

use async_trait::async_trait;
use oauth2::reqwest::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;

use super::answers::{self, AnswerClassifier, Endpoint, Refusal, Verdict};
use super::http::ProviderHttp;
use super::oauth::{OAuthApp, OAuthEndpoints, Revocation};
use super::{get_json, Connector, FilePage, ProviderClient, ProviderName, ProviderSpec, Webhook};
use crate::config::Env;
use crate::error::{HubResult, ProviderError};
use crate::model::Identity;

pub const NAME: ProviderName = ProviderName::declare("box");

pub const SPEC: ProviderSpec = ProviderSpec {
    name: NAME,
    display_name: "Box",
    // Not one of the two providers `both` has always named.
    in_both: false,
    // Box's webhooks cannot watch the root folder `0`: nothing is pushed.
    webhook: Webhook::None,
    client_id_var: "BOX_CLIENT_ID",
    client_secret_var: "BOX_CLIENT_SECRET",
    scopes_var: "BOX_SCOPES",
    answers: &BoxAnswers,
    build,
};

/// "Read all files and folders stored in Box": what listing the user's tree needs
/// (<https://developer.box.com/guides/api-calls/permissions-and-errors/scopes/>). Box's token
/// answer names no scopes, so a grant is taken as holding what was asked.
const SCOPES: &[&str] = &["root_readonly"];

pub struct BoxConnector {
    oauth: OAuthApp,
    http: ProviderHttp,
    api_url: String,
}

fn build(env: &Env, client: ProviderClient) -> HubResult<Arc<dyn Connector>> {
    let api_url = env.url_or("BOX_API_URL", "https://api.box.com/2.0")?;
    let oauth = OAuthApp::new(
        &client,
        OAuthEndpoints {
            auth_url: env.url_or(
                "BOX_AUTH_URL",
                "https://account.box.com/api/oauth2/authorize",
            )?,
            token_url: env.url_or("BOX_TOKEN_URL", "https://api.box.com/oauth2/token")?,
            revocation: Revocation::ClientForm(
                env.url_or("BOX_REVOKE_URL", "https://api.box.com/oauth2/revoke")?,
            ),
            scopes: SCOPES,
            required_scopes: SCOPES,
            content_scopes: &["root_readonly"],
            extra_auth_params: &[],
        },
    )?;
    Ok(Arc::new(BoxConnector {
        oauth,
        http: client.http,
        api_url: api_url.trim_end_matches('/').to_string(),
    }))
}

/// Box's error body: `{"type": "error", "status", "code", "message", ...}`
/// (<https://developer.box.com/reference/resources/client-error/>).
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<String>,
}

/// The error's `code`, or "" when the body is not Box's error shape. Cut short: it goes into
/// logs and job outcomes (it never holds a token).
fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|body| body.code)
        .unwrap_or_default()
        .chars()
        .take(100)
        .collect()
}

/// Box's reading of its refusals. 429 and 5xx wait `Retry-After` and an API 401 asks for one
/// refresh (the common rules); the token endpoint's `invalid_grant` (a refresh token used
/// twice, older than 60 days, or revoked) needs the user to connect again, and its
/// `invalid_client` refuses the hub's client. A 403 `insufficient_scope` cannot be cured by a
/// refresh: the app lost the scope, and the user must connect again. Any other refusal is a
/// rejection naming Box's `code`.
/// (<https://developer.box.com/guides/api-calls/permissions-and-errors/common-errors/>)
#[derive(Debug)]
pub struct BoxAnswers;

impl AnswerClassifier for BoxAnswers {
    fn classify(&self, refusal: &Refusal<'_>) -> Verdict {
        if refusal.endpoint == Endpoint::Api
            && refusal.status == StatusCode::FORBIDDEN
            && error_code(refusal.body) == "insufficient_scope"
        {
            return Verdict::AccessLost("Box refused: insufficient_scope".into());
        }
        match answers::common(refusal) {
            Verdict::Reject(_) if refusal.endpoint == Endpoint::Api => {
                let code = error_code(refusal.body);
                tracing::warn!(status = refusal.status.as_u16(), code = %code, "Box refused the call");
                Verdict::Reject(format!(
                    "Box refused: HTTP {} {code}",
                    refusal.status.as_u16()
                ))
            }
            verdict => verdict,
        }
    }
}

/// `GET /users/me`: the user's id and `login` (their email).
#[derive(Deserialize)]
struct User {
    id: String,
    login: String,
}

#[async_trait]
impl Connector for BoxConnector {
    async fn content(
        &self,
        access_token: &SecretString,
        file: &crate::model::FileEntry,
        format: Option<crate::model::ContentFormat>,
    ) -> Result<crate::model::ContentSource, crate::providers::content::ContentRefusal> {
        self.content_link(access_token, file, format).await
    }

    fn name(&self) -> ProviderName {
        NAME
    }

    fn oauth(&self) -> &OAuthApp {
        &self.oauth
    }

    fn api_base(&self) -> &str {
        &self.api_url
    }

    async fn identity(&self, access_token: &SecretString) -> Result<Identity, ProviderError> {
        let url = format!("{}/users/me", self.api_url);
        let user: User =
            get_json(&self.http, &url, &[("fields", "id,login")], access_token).await?;
        Ok(Identity {
            provider_user_id: user.id,
            email: user.login,
        })
    }

    async fn search(
        &self,
        access_token: &SecretString,
        query: &str,
        limit: usize,
    ) -> Result<Vec<crate::model::FileEntry>, ProviderError> {
        self.search_items(access_token, query, limit).await
    }

    async fn list_page(
        &self,
        access_token: &SecretString,
        cursor: Option<&str>,
    ) -> Result<FilePage, ProviderError> {
        sync::Sync {
            box_: self,
            access_token,
        }
        .page(cursor)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(endpoint: Endpoint, status: u16, body: &str) -> Verdict {
        let headers = Default::default();
        BoxAnswers.classify(&Refusal {
            endpoint,
            status: StatusCode::from_u16(status).unwrap(),
            headers: &headers,
            body: body.as_bytes(),
        })
    }

    #[test]
    fn box_refusals_read_as_box_documents_them() {
        let error = |status: u16, code: &str| {
            format!(r#"{{"type":"error","status":{status},"code":"{code}","message":"m"}}"#)
        };
        assert_eq!(
            classify(Endpoint::Api, 429, &error(429, "rate_limit_exceeded")),
            Verdict::RetryAfterWait
        );
        assert_eq!(classify(Endpoint::Api, 503, ""), Verdict::RetryAfterWait);
        assert_eq!(classify(Endpoint::Api, 401, ""), Verdict::RefreshAndRetry);
        assert_eq!(
            classify(
                Endpoint::Token,
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid refresh token"}"#
            ),
            Verdict::Reauthorise
        );
        assert!(matches!(
            classify(Endpoint::Token, 400, r#"{"error":"invalid_client"}"#),
            Verdict::ClientRejected(_)
        ));
        assert!(matches!(
            classify(Endpoint::Api, 403, &error(403, "insufficient_scope")),
            Verdict::AccessLost(_)
        ));
        assert_eq!(
            classify(Endpoint::Api, 400, &error(400, "bad_request")),
            Verdict::Reject("Box refused: HTTP 400 bad_request".into())
        );
    }
}
