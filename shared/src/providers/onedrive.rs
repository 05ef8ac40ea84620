//! Microsoft OneDrive (Graph v1.0) and the Microsoft identity platform.
//!
//! Graph's `/me/drive/root/delta` does both jobs: the first call enumerates the whole drive
//! through `@odata.nextLink` pages and ends with an `@odata.deltaLink`; calling that link later
//! returns only what changed. A 410 Gone means the link expired and the sync starts over.
//! Microsoft rotates the refresh token on every refresh; the worker stores the new one at once.

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
    get_json, ChannelRequest, Connector, FilePage, NextPage, NoticeEvent, OpenedChannel,
    ProviderClient, ProviderName, ProviderSpec, PushRefusal, PushStyle, SubscriptionNotice,
    Webhook,
};
use crate::config::Env;
use crate::error::{HubResult, ProviderError};
use crate::model::{
    ContentHash, DriveInfo, DriveKind, DriveReport, FileEntry, FileKind, Identity, PushChannel,
};

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
    answers: &MicrosoftAnswers,
    build,
};

/// `offline_access` is what makes the token endpoint return a refresh token.
const SCOPES: &[&str] = &["offline_access", "Files.Read", "User.Read"];

/// `parentReference` carries the parent's `id` and the `driveId`; `file` carries `hashes`.
const DELTA_SELECT: &str =
    "id,name,size,file,folder,root,deleted,lastModifiedDateTime,webUrl,parentReference";

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
}

fn build(env: &Env, client: ProviderClient) -> HubResult<Arc<dyn Connector>> {
    let authority = env.url_or(
        "ONEDRIVE_AUTHORITY_URL",
        "https://login.microsoftonline.com",
    )?;
    let tenant = env.get_or("ONEDRIVE_TENANT", "common");
    let oauth = OAuthApp::new(
        &client,
        OAuthEndpoints {
            auth_url: format!("{authority}/{tenant}/oauth2/v2.0/authorize"),
            token_url: format!("{authority}/{tenant}/oauth2/v2.0/token"),
            // The identity platform has no RFC 7009 endpoint; users withdraw consent in their
            // Microsoft account. Deleting an account removes our copy of the tokens.
            revocation: Revocation::None,
            scopes: SCOPES,
            // Microsoft grants what the app registration allows.
            required_scopes: &["Files.Read"],
            extra_auth_params: &[],
        },
    )?;
    Ok(Arc::new(OneDrive {
        oauth,
        http: client.http,
        graph_url: env.url_or("ONEDRIVE_GRAPH_URL", "https://graph.microsoft.com/v1.0")?,
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

/// The user's drive, as `GET /me/drive` answers it
/// (<https://learn.microsoft.com/en-us/graph/api/drive-get>).
#[derive(Deserialize)]
struct GraphDrive {
    id: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct DeltaPage {
    #[serde(default)]
    value: Vec<DriveItem>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DriveItem {
    id: String,
    name: Option<String>,
    size: Option<u64>,
    last_modified_date_time: Option<DateTime<Utc>>,
    web_url: Option<String>,
    file: Option<FileFacet>,
    folder: Option<serde_json::Value>,
    root: Option<serde_json::Value>,
    deleted: Option<serde_json::Value>,
    parent_reference: Option<ParentReference>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileFacet {
    mime_type: Option<String>,
    hashes: Option<Hashes>,
}

/// Which hashes Graph computes depends on the drive: OneDrive for Business and SharePoint
/// give `sha256Hash` (not always) and `quickXorHash`, OneDrive personal `sha1Hash` and
/// `quickXorHash` (<https://learn.microsoft.com/en-us/graph/api/resources/hashes>).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Hashes {
    quick_xor_hash: Option<String>,
    sha1_hash: Option<String>,
}

impl Hashes {
    /// `quickXorHash`, else `sha1Hash` as `sha1`. Graph documents `quickXorHash` as "the only
    /// value that is guaranteed to be available for both OneDrive for work or school and
    /// OneDrive for home", and `sha256Hash` as "not supported. Don't use."
    /// (<https://learn.microsoft.com/en-us/graph/api/resources/hashes>), so a `sha256Hash`
    /// a drive still sends is not read: the same file keeps the same algorithm everywhere.
    fn content_hash(self) -> Option<ContentHash> {
        match (self.quick_xor_hash, self.sha1_hash) {
            (Some(quick_xor), _) => Some(ContentHash::new("quickXorHash", quick_xor)),
            (None, Some(sha1)) => Some(ContentHash::new("sha1", sha1)),
            (None, None) => None,
        }
    }
}

/// Delta's `parentReference` has the parent folder's `id` and the `driveId`, never a `path`
/// (<https://learn.microsoft.com/en-us/graph/api/driveitem-delta>, Remarks).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ParentReference {
    id: Option<String>,
    drive_id: Option<String>,
}

impl DriveItem {
    fn into_entry(self) -> FileEntry {
        // The `folder` facet marks a folder; a deleted item carries neither facet and keeps
        // the kind the index already has.
        let kind = match (&self.deleted, &self.folder, &self.file) {
            (Some(_), _, _) => None,
            (None, Some(_), _) => Some(FileKind::Folder),
            (None, None, _) => Some(FileKind::File),
        };
        let (parent_id, drive_id) = match self.parent_reference {
            Some(parent) => (parent.id, parent.drive_id),
            None => (None, None),
        };
        let (mime_type, content_hash) = match self.file {
            Some(file) => (file.mime_type, file.hashes.and_then(Hashes::content_hash)),
            None => (None, None),
        };
        FileEntry {
            id: self.id,
            name: self.name.unwrap_or_default(),
            kind,
            mime_type,
            size: self.size,
            modified_at: self.last_modified_date_time,
            web_url: self.web_url,
            deleted: self.deleted.is_some(),
            parent_ids: Some(parent_id.into_iter().collect()),
            drive_id,
            path: None,
            path_lower: None,
            content_hash,
            target_id: None,
            changed_at: None,
        }
    }
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
    fn name(&self) -> ProviderName {
        NAME
    }

    fn oauth(&self) -> &OAuthApp {
        &self.oauth
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
        // A whole enumeration first reads which drive it lists: its id is the one the items'
        // `parentReference.driveId` name, and what `/users/{id}/drives` lists.
        let drive = match cursor {
            None => {
                let url = format!("{}/me/drive", self.graph_url);
                let drive: GraphDrive = get_json(&self.http, &url, &[], access_token).await?;
                Some(DriveInfo {
                    name: drive.name.unwrap_or_else(|| "OneDrive".into()),
                    id: drive.id,
                    kind: DriveKind::Onedrive,
                })
            }
            Some(_) => None,
        };
        let page: DeltaPage = match cursor {
            // A saved link that does not point into Graph is not followed: the sync starts over.
            Some(link) if !self.is_graph_link(link) => return Err(ProviderError::CursorExpired),
            Some(link) => get_json(&self.http, link, &[], access_token).await?,
            None => {
                let url = format!("{}/me/drive/root/delta", self.graph_url);
                get_json(&self.http, &url, &[("$select", DELTA_SELECT)], access_token).await?
            }
        };
        let next = NextPage::from_links(
            page.next_link.map(|l| self.answered_link(l)).transpose()?,
            page.delta_link.map(|l| self.answered_link(l)).transpose()?,
            "@odata.nextLink nor @odata.deltaLink",
        )?;
        // The drive root is not a file of the user's.
        let files = page
            .value
            .into_iter()
            .filter(|item| item.root.is_none())
            .map(DriveItem::into_entry)
            .collect();
        let page = FilePage::of_files(files, next);
        Ok(match drive {
            Some(drive) => page.with_drives(DriveReport::All(vec![drive])),
            None => page,
        })
    }

    fn push_style(&self) -> PushStyle {
        PushStyle::Channels
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
