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

use super::http::ProviderHttp;
use super::oauth::{OAuthApp, OAuthEndpoints};
use super::{client_credentials, get_json, Connector, FilePage, NextPage, ProviderSpec};
use crate::config::{Config, Env};
use crate::error::{HubResult, ProviderError};
use crate::model::{FileEntry, Identity};

pub const NAME: &str = "onedrive";

pub const SPEC: ProviderSpec = ProviderSpec {
    name: NAME,
    from_env,
};

/// `offline_access` is what makes the token endpoint return a refresh token.
const SCOPES: &[&str] = &["offline_access", "Files.Read", "User.Read"];

const DELTA_SELECT: &str = "id,name,size,file,folder,root,deleted,lastModifiedDateTime,webUrl";

pub struct OneDrive {
    oauth: OAuthApp,
    http: ProviderHttp,
    graph_url: String,
}

fn from_env(
    env: &Env,
    config: &Config,
    http: &ProviderHttp,
) -> HubResult<Option<Arc<dyn Connector>>> {
    let Some((client_id, client_secret)) =
        client_credentials(env, "ONEDRIVE_CLIENT_ID", "ONEDRIVE_CLIENT_SECRET")
    else {
        return Ok(None);
    };
    let authority = env.url_or(
        "ONEDRIVE_AUTHORITY_URL",
        "https://login.microsoftonline.com",
    )?;
    let tenant = env.get_or("ONEDRIVE_TENANT", "common");
    let oauth = OAuthApp::new(
        OAuthEndpoints {
            provider: NAME,
            client_id,
            client_secret,
            auth_url: format!("{authority}/{tenant}/oauth2/v2.0/authorize"),
            token_url: format!("{authority}/{tenant}/oauth2/v2.0/token"),
            // The identity platform has no RFC 7009 endpoint; users withdraw consent in their
            // Microsoft account. Deleting an account removes our copy of the tokens.
            revoke_url: None,
            redirect_uri: config.redirect_uri(NAME),
            scopes: SCOPES,
            extra_auth_params: &[],
        },
        http.clone(),
    )?;
    Ok(Some(Arc::new(OneDrive {
        oauth,
        http: http.clone(),
        graph_url: env.url_or("ONEDRIVE_GRAPH_URL", "https://graph.microsoft.com/v1.0")?,
    })))
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
    root: Option<serde_json::Value>,
    deleted: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileFacet {
    mime_type: Option<String>,
}

impl DriveItem {
    fn into_entry(self) -> FileEntry {
        FileEntry {
            id: self.id,
            name: self.name.unwrap_or_default(),
            mime_type: self.file.and_then(|f| f.mime_type),
            size: self.size,
            modified_at: self.last_modified_date_time,
            web_url: self.web_url,
            deleted: self.deleted.is_some(),
            kind: None,
            parent_ids: None,
            drive_id: None,
            path: None,
            content_hash: None,
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
        let next = match (page.next_link, page.delta_link) {
            (Some(next), _) => NextPage::More(self.answered_link(next)?),
            (None, Some(delta)) => NextPage::Done(self.answered_link(delta)?),
            (None, None) => {
                return Err(ProviderError::Rejected(
                    "delta answered with neither @odata.nextLink nor @odata.deltaLink".into(),
                ))
            }
        };
        // The drive root is not a file of the user's.
        let files = page
            .value
            .into_iter()
            .filter(|item| item.root.is_none())
            .map(DriveItem::into_entry)
            .collect();
        Ok(FilePage { files, next })
    }
}
