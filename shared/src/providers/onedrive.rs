//! Microsoft OneDrive (Graph v1.0) and the Microsoft identity platform.
//!
//! Graph's `/me/drive/root/delta` does both jobs: the first call enumerates the whole drive
//! through `@odata.nextLink` pages and ends with an `@odata.deltaLink`; calling that link later
//! returns only what changed. A 410 Gone means the link expired and the sync starts over.
//! Microsoft rotates the refresh token on every refresh; the worker stores the new one at once.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Deserialize;

use super::answers::{self, AnswerClassifier, Endpoint, Refusal, Verdict};
use super::http::ProviderHttp;
use super::oauth::{OAuthApp, OAuthEndpoints, Revocation};
use super::{get_json, Connector, FilePage, NextPage, ProviderClient, ProviderSpec};
use crate::config::Env;
use crate::error::{HubResult, ProviderError};
use crate::model::{ContentHash, FileEntry, FileKind, Identity};

pub const NAME: &str = "onedrive";

pub const SPEC: ProviderSpec = ProviderSpec {
    name: NAME,
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
        answers::common(refusal)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    id: String,
    mail: Option<String>,
    user_principal_name: Option<String>,
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
    sha256_hash: Option<String>,
    quick_xor_hash: Option<String>,
}

impl Hashes {
    /// The strongest hash there is: `sha256Hash`, else `quickXorHash` (contract section 6).
    fn content_hash(self) -> Option<ContentHash> {
        match (self.sha256_hash, self.quick_xor_hash) {
            (Some(sha256), _) => Some(ContentHash::new("sha256", sha256)),
            (None, Some(quick_xor)) => Some(ContentHash::new("quickXorHash", quick_xor)),
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
            content_hash,
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
    fn name(&self) -> &'static str {
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
        Ok(FilePage::of_files(files, next))
    }
}
