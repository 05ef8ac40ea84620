//! Microsoft OneDrive (Graph v1.0) and the Microsoft identity platform.
//!
//! Graph's delta (`/me/drive/root/delta`, `/drives/{id}/root/delta`) does both jobs: the first
//! call enumerates the whole drive through `@odata.nextLink` pages and ends with an
//! `@odata.deltaLink`; calling that link later returns only what changed. A 410 Gone means the
//! link expired and the sync starts over. Which drives are listed, and how: `listing.rs`; what
//! an item becomes: `items.rs`. Microsoft rotates the refresh token on every refresh; the
//! worker stores the new one at once.

mod content;
mod items;
mod listing;
mod search;
mod walk;

pub use listing::{Sites, MAX_LIBRARIES, RE_ENUMERATE_AFTER};
pub use walk::{MAX_PENDING_FOLDERS, MAX_WALKED_ITEMS, MAX_WALKS};

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oauth2::reqwest::Method;
use oauth2::reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::answers::{self, AnswerClassifier, Endpoint, Refusal, Verdict};
use super::http::ProviderHttp;
use super::oauth::{OAuthApp, OAuthEndpoints, Revocation};
use super::{
    get_json, ChannelRequest, Connector, FilePage, NoticeEvent, OpenedChannel, ProviderClient,
    ProviderName, ProviderSpec, PushRefusal, PushStyle, SubscriptionNotice, Webhook,
};
use crate::config::Env;
use crate::error::{HubError, HubResult, ProviderError};
use crate::model::{Identity, PushChannel};

pub const NAME: ProviderName = ProviderName::declare("onedrive");

pub const SPEC: ProviderSpec = ProviderSpec {
    name: NAME,
    display_name: "Microsoft OneDrive",
    in_both: true,
    // Graph validates an address by sending `validationToken`, to be echoed within 10 s
    // (<https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks#notificationurl-validation>).
    webhook: Webhook::Subscriptions {
        validation_param: "validationToken",
    },
    client_id_var: "ONEDRIVE_CLIENT_ID",
    client_secret_var: "ONEDRIVE_CLIENT_SECRET",
    scopes_var: "ONEDRIVE_SCOPES",
    answers: &MicrosoftAnswers,
    build,
};

/// `offline_access` is what makes the token endpoint return a refresh token.
/// `Files.Read.All` (the content scope, docs/API.md "File content") covers what `Files.Read`
/// did and the files shared with the user, whose bytes are read from their owners' drives.
const SCOPES: &[&str] = &["offline_access", "Files.Read.All", "User.Read"];

/// With `ONEDRIVE_SITES=followed`: `Sites.Read.All` too, which `GET /me/followedSites` and
/// `GET /sites/{id}/drives` need (delegated; most tenants require an admin's consent to it,
/// see docs/DEPLOY.md). Not in `required_scopes`: a user or tenant that does not grant it
/// still syncs the OneDrive.
const SCOPES_WITH_SITES: &[&str] = &[
    "offline_access",
    "Files.Read.All",
    "User.Read",
    "Sites.Read.All",
];

/// Graph's longest subscription to driveItems: 42,300 minutes
/// (<https://learn.microsoft.com/en-us/graph/api/resources/subscription#subscription-lifetime>).
const SUBSCRIPTION_LIFETIME: chrono::Duration = chrono::Duration::minutes(42_300);

/// The resource subscribed to: changes anywhere in the user's drive come as `updated` on its
/// root (<https://learn.microsoft.com/en-us/onedrive/developer/rest-api/concepts/using-webhooks>).
const SUBSCRIPTION_RESOURCE: &str = "me/drive/root";

/// A subscription as Graph answers it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionAnswer {
    id: String,
    expiration_date_time: DateTime<Utc>,
}

/// A notification body: `value[]`, change notifications or lifecycle ones
/// (<https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events>).
#[derive(Deserialize)]
struct NotificationBody {
    value: Vec<NotificationItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationItem {
    subscription_id: Option<String>,
    client_state: Option<String>,
    lifecycle_event: Option<String>,
}

pub struct OneDrive {
    oauth: OAuthApp,
    http: ProviderHttp,
    graph_url: String,
    /// `ONEDRIVE_SITES`: whether the libraries of followed sites are synced.
    sites: Sites,
}

fn build(env: &Env, client: ProviderClient) -> HubResult<Arc<dyn Connector>> {
    let authority = env.url_or(
        "ONEDRIVE_AUTHORITY_URL",
        "https://login.microsoftonline.com",
    )?;
    let tenant = env.get_or("ONEDRIVE_TENANT", "common");
    let sites = listing::sites_setting(env.get("ONEDRIVE_SITES")).map_err(HubError::Config)?;
    let oauth = OAuthApp::new(
        &client,
        OAuthEndpoints {
            auth_url: format!("{authority}/{tenant}/oauth2/v2.0/authorize"),
            token_url: format!("{authority}/{tenant}/oauth2/v2.0/token"),
            // The identity platform has no RFC 7009 endpoint; users withdraw consent in their
            // Microsoft account. Deleting an account removes our copy of the tokens.
            revocation: Revocation::None,
            scopes: match sites {
                Sites::Followed => SCOPES_WITH_SITES,
                Sites::None => SCOPES,
            },
            // Microsoft grants what the app registration allows. `Files.Read.All`, which
            // every call needs, is required as the content scope.
            required_scopes: &[],
            content_scopes: &["Files.Read.All"],
            extra_auth_params: &[],
        },
    )?;
    Ok(Arc::new(OneDrive {
        oauth,
        http: client.http,
        graph_url: env.url_or("ONEDRIVE_GRAPH_URL", "https://graph.microsoft.com/v1.0")?,
        sites,
    }))
}

/// Microsoft's reading of its refusals. The identity platform reports many AADSTS errors
/// (MFA now required, a policy change, consent withdrawn) under the OAuth codes
/// `interaction_required` and `consent_required`: the refresh token cannot be used without
/// the user, so they mean re-authorise, like `invalid_grant`. The codes are the documented
/// contract; the AADSTS numbers "are subject to change" and are not keyed on
/// (<https://learn.microsoft.com/entra/identity-platform/reference-error-codes#handling-error-codes-in-your-application>).
#[derive(Debug)]
pub struct MicrosoftAnswers;

const REAUTHORISE_CODES: &[&str] = &["interaction_required", "consent_required"];

impl AnswerClassifier for MicrosoftAnswers {
    fn classify(&self, refusal: &Refusal<'_>) -> Verdict {
        if refusal.endpoint == Endpoint::Token {
            if let Some(error) = answers::token_error(refusal.body) {
                if REAUTHORISE_CODES.contains(&error.error.as_str()) {
                    return Verdict::Reauthorise;
                }
            }
        }
        // 403 `accessDenied`: "the caller doesn't have permission to perform the action"
        // (<https://learn.microsoft.com/en-us/graph/errors>). The hub only reads the user's
        // own drive, so a token that refreshes yet may not read it has lost its access (an
        // admin revoked the app's consent or the user's license).
        if refusal.endpoint == Endpoint::Api {
            let error = graph_error(refusal.body);
            if refusal.status == StatusCode::FORBIDDEN
                && error.as_ref().is_some_and(|e| e.code == "accessDenied")
            {
                return Verdict::AccessLost("Graph: accessDenied".into());
            }
            // A work or school user whose OneDrive was never provisioned: Graph answers 404
            // "User's mysite not found." (400 "Unable to retrieve user's mysite URL." from
            // older front ends). Not a fault to retry: the user must open OneDrive first.
            let no_mysite = error
                .as_ref()
                .is_some_and(|e| e.message.to_ascii_lowercase().contains("mysite"));
            if matches!(
                refusal.status,
                StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST
            ) && no_mysite
            {
                return Verdict::DriveNotProvisioned;
            }
        }
        answers::common(refusal)
    }
}

/// Graph's error body: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    code: String,
    #[serde(default)]
    message: String,
}

fn graph_error(body: &[u8]) -> Option<GraphError> {
    serde_json::from_slice::<GraphErrorBody>(body)
        .ok()
        .map(|body| body.error)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    id: String,
    mail: Option<String>,
    user_principal_name: Option<String>,
}

impl OneDrive {
    /// A saved link is followed only when it points into the configured Graph base: a
    /// tampered cursor must not send the user's bearer token to another host.
    fn is_graph_link(&self, link: &str) -> bool {
        link.strip_prefix(self.graph_url.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }

    /// A link Graph handed us must point into Graph too.
    fn answered_link(&self, link: String) -> Result<String, ProviderError> {
        if self.is_graph_link(&link) {
            Ok(link)
        } else {
            Err(ProviderError::Rejected(
                "Graph answered with a link outside its own base URL".into(),
            ))
        }
    }
}

#[async_trait]
impl Connector for OneDrive {
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
        &self.graph_url
    }

    async fn identity(&self, access_token: &SecretString) -> Result<Identity, ProviderError> {
        let me: Me = get_json(
            &self.http,
            &format!("{}/me", self.graph_url),
            &[],
            access_token,
        )
        .await?;
        // Personal and some work accounts have no `mail`; the sign-in name is the address then.
        let email = me.mail.or(me.user_principal_name).unwrap_or_default();
        Ok(Identity {
            provider_user_id: me.id,
            email,
        })
    }

    async fn list_page(
        &self,
        access_token: &SecretString,
        cursor: Option<&str>,
    ) -> Result<FilePage, ProviderError> {
        self.list(access_token, cursor).await
    }

    async fn search(
        &self,
        access_token: &SecretString,
        query: &str,
        limit: usize,
    ) -> Result<Vec<crate::model::FileEntry>, ProviderError> {
        self.search_drive(access_token, query, limit).await
    }

    fn push_style(&self) -> PushStyle {
        PushStyle::Channels
    }

    /// "Files.ReadWrite" (personal accounts) or "Files.ReadWrite.All" (work or school): the
    /// least privileged permission a drive subscription takes
    /// (<https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions>,
    /// "Permissions", driveItem); Graph refuses one with `Files.Read`.
    fn channel_scopes(&self) -> &'static [&'static str] {
        &["Files.ReadWrite", "Files.ReadWrite.All"]
    }

    fn channel_lifetime(&self) -> chrono::Duration {
        SUBSCRIPTION_LIFETIME
    }

    /// `POST /subscriptions`, notifications and lifecycle notifications to the same address;
    /// Graph validates the address (`validationToken`) before it answers
    /// (<https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions>).
    async fn open_channel(
        &self,
        access_token: &SecretString,
        request: &ChannelRequest<'_>,
    ) -> Result<OpenedChannel, ProviderError> {
        let body = json!({
            "changeType": "updated",
            "notificationUrl": request.address,
            "lifecycleNotificationUrl": request.address,
            "resource": SUBSCRIPTION_RESOURCE,
            "expirationDateTime": graph_time(request.expires_at),
            "clientState": request.secret.expose_secret(),
        });
        let url = format!("{}/subscriptions", self.graph_url);
        let answer: SubscriptionAnswer = self
            .send_json(Method::POST, &url, Some(body), access_token)
            .await?;
        Ok(OpenedChannel {
            resource_id: answer.id,
            expires_at: answer.expiration_date_time,
        })
    }

    /// `PATCH /subscriptions/{id}` with a new `expirationDateTime`.
    async fn renew_channel(
        &self,
        access_token: &SecretString,
        channel: &PushChannel,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ProviderError> {
        let Some(id) = &channel.resource_id else {
            return Ok(None);
        };
        let url = format!("{}/subscriptions/{id}", self.graph_url);
        let body = json!({ "expirationDateTime": graph_time(expires_at) });
        let answer: SubscriptionAnswer = self
            .send_json(Method::PATCH, &url, Some(body), access_token)
            .await?;
        Ok(Some(answer.expiration_date_time))
    }

    /// `DELETE /subscriptions/{id}`.
    async fn close_channel(
        &self,
        access_token: &SecretString,
        channel: &PushChannel,
    ) -> Result<(), ProviderError> {
        let Some(id) = &channel.resource_id else {
            return Ok(());
        };
        let url = format!("{}/subscriptions/{id}", self.graph_url);
        self.http
            .send(Endpoint::Api, |client| {
                client
                    .delete(&url)
                    .bearer_auth(access_token.expose_secret())
            })
            .await?;
        Ok(())
    }

    fn subscription_notices(&self, body: &[u8]) -> Result<Vec<SubscriptionNotice>, PushRefusal> {
        let body: NotificationBody = serde_json::from_slice(body)
            .map_err(|e| PushRefusal::Malformed(format!("not a Graph notification: {e}")))?;
        // Counted before any item is dropped: the cap is on what the body names.
        if body.value.len() > super::MAX_NOTICES {
            return Err(PushRefusal::TooMany(body.value.len()));
        }
        Ok(body
            .value
            .into_iter()
            .filter_map(|item| {
                let event = match item.lifecycle_event.as_deref() {
                    None => NoticeEvent::Changed,
                    Some("reauthorizationRequired") => NoticeEvent::RenewalRequired,
                    Some("subscriptionRemoved") => NoticeEvent::Removed,
                    Some("missed") => NoticeEvent::Missed,
                    // A lifecycle event Graph adds later: nothing the hub knows to do.
                    Some(_) => return None,
                };
                Some(SubscriptionNotice {
                    subscription_id: item.subscription_id?,
                    secret: item.client_state,
                    event,
                })
            })
            .collect())
    }
}

/// Graph's date-time form (RFC 3339, UTC).
fn graph_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl OneDrive {
    /// Sends a JSON body to Graph and decodes the JSON answer.
    async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
        access_token: &SecretString,
    ) -> Result<T, ProviderError> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let response = self
            .http
            .send(Endpoint::Api, |client| {
                client
                    .request(method.clone(), url)
                    .bearer_auth(access_token.expose_secret())
                    // Built by hand: reqwest's `json` feature is not among the hub's.
                    .header("content-type", "application/json")
                    .body(body.clone())
            })
            .await?;
        super::http::read_json(response, "Graph").await
    }
}
