//! Dropbox (API v2) and its OAuth2 endpoints.
//!
//! Dropbox's RPC endpoints take and answer JSON by POST. `/2/files/list_folder` (recursive, from
//! the root) enumerates the account and ends with a cursor; `/2/files/list_folder/continue`
//! with that cursor pages on while `has_more`, and later returns only what changed since.
//! Deletions come by path, not id: a `deleted` entry carries only the path, and a deleted
//! folder stands for everything under it. A cursor Dropbox no longer accepts is a 409 whose
//! `error_summary` starts with `reset/`: the enumeration starts over.
//! (<https://developers.dropbox.com/detecting-changes-guide>,
//! <https://www.dropbox.com/developers/documentation/http/documentation#files-list_folder>)
//! A team-space member's listings are rooted at the team space ([`root`]).

mod content;
mod root;
mod search;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oauth2::reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::answers::{self, AnswerClassifier, Endpoint, Refusal, Verdict};
use super::http::ProviderHttp;
use super::oauth::{OAuthApp, OAuthEndpoints, Revocation};
use super::{
    Connector, FilePage, NextPage, ProviderClient, ProviderName, ProviderSpec, PushRefusal,
    PushStyle, RemovedPath, Webhook,
};
use crate::config::Env;
use crate::error::{HubResult, ProviderError};
use crate::model::{
    ContentHash, DriveInfo, DriveKind, DriveReport, FileEntry, FileKind, Identity, PathRemoval,
};
use root::{Cursor, Root, RootInfo};

pub const NAME: ProviderName = ProviderName::declare("dropbox");

pub const SPEC: ProviderSpec = ProviderSpec {
    name: NAME,
    display_name: "Dropbox",
    // Not one of the two providers `both` has always named.
    in_both: false,
    // Dropbox checks the webhook URI by asking it to echo `challenge`
    // (<https://www.dropbox.com/developers/reference/webhooks#verification>).
    webhook: Webhook::AppSigned {
        challenge_param: "challenge",
        signature_header: "x-dropbox-signature",
    },
    client_id_var: "DROPBOX_CLIENT_ID",
    client_secret_var: "DROPBOX_CLIENT_SECRET",
    scopes_var: "DROPBOX_SCOPES",
    answers: &DropboxAnswers,
    build,
};

/// What the hub reads: who the user is, and the metadata of every file (the content scope,
/// `files.content.read`, is asked beside them).
const SCOPES: &[&str] = &["account_info.read", "files.metadata.read"];

/// Entries per page asked of `list_folder` (a hint: Dropbox may answer fewer). Dropbox allows
/// up to 2000; a thousand keeps a page within what the worker stores after its last call
/// ([`crate::sync::RESERVE`]).
const PAGE_LIMIT: u32 = 1000;

pub struct Dropbox {
    oauth: OAuthApp,
    http: ProviderHttp,
    api_url: String,
    /// The content host (`files/export`).
    content_url: String,
    /// The app secret: it keys the webhook's `X-Dropbox-Signature`.
    app_secret: SecretString,
}

fn build(env: &Env, client: ProviderClient) -> HubResult<Arc<dyn Connector>> {
    let api_url = env.url_or("DROPBOX_API_URL", "https://api.dropboxapi.com")?;
    let oauth = OAuthApp::new(
        &client,
        OAuthEndpoints {
            auth_url: env.url_or(
                "DROPBOX_AUTH_URL",
                "https://www.dropbox.com/oauth2/authorize",
            )?,
            token_url: env.url_or(
                "DROPBOX_TOKEN_URL",
                "https://api.dropboxapi.com/oauth2/token",
            )?,
            // Not RFC 7009: an API call with the access token, which ends the whole grant.
            revocation: Revocation::BearerCall(format!("{api_url}/2/auth/token/revoke")),
            scopes: SCOPES,
            // Dropbox's consent page grants what the app's permissions allow; a token answer's
            // `scope` says which (<https://developers.dropbox.com/oauth-guide>, scopes).
            required_scopes: &["account_info.read", "files.metadata.read"],
            content_scopes: &["files.content.read"],
            // Without it Dropbox issues a short-lived access token and no refresh token.
            extra_auth_params: &[("token_access_type", "offline")],
        },
    )?;
    Ok(Arc::new(Dropbox {
        oauth,
        http: client.http,
        api_url,
        content_url: env.url_or("DROPBOX_CONTENT_URL", "https://content.dropboxapi.com")?,
        app_secret: client.client_secret,
    }))
}

/// `AuthError` tags that a refresh cannot cure
/// (<https://www.dropbox.com/developers/documentation/http/documentation#error-handling>).
const ACCESS_LOST: &[&str] = &["missing_scope/", "user_suspended/"];

/// Dropbox's reading of its refusals: endpoint errors are 409 with an `error_summary` (the
/// union's tag path, e.g. `reset/...` or `path/not_found/...`); only `reset/` says the cursor
/// is dead; any other 409 is a rejection that names the summary (which never holds a token).
/// A 401 `expired_access_token` or `invalid_access_token` asks for one refresh (a revoked
/// grant then fails the refresh with `invalid_grant`), but `missing_scope` and
/// `user_suspended` cannot be cured by a refresh: the user's access is lost. 429 and 5xx wait `Retry-After` (the common rules).
/// (<https://www.dropbox.com/developers/documentation/http/documentation#error-handling>)
#[derive(Debug)]
pub struct DropboxAnswers;

#[derive(Deserialize)]
struct ErrorBody {
    error_summary: Option<String>,
}

/// An endpoint error's `error_summary` (the union's tags joined by `/`), or "" when the body
/// is not Dropbox's error shape. Cut short: it goes into logs and job outcomes.
fn error_summary(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|body| body.error_summary)
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

/// How an endpoint error's rejection begins, before its `error_summary`.
const REFUSED: &str = "Dropbox refused: ";

/// The tag of a 422's `error` (a `common.PathRootError`).
fn path_root_error(body: &[u8]) -> Option<String> {
    let body: Value = serde_json::from_slice(body).ok()?;
    body["error"][".tag"].as_str().map(str::to_string)
}

impl AnswerClassifier for DropboxAnswers {
    fn classify(&self, refusal: &Refusal<'_>) -> Verdict {
        if refusal.endpoint == Endpoint::Api {
            match refusal.status {
                StatusCode::CONFLICT => {
                    let summary = error_summary(refusal.body);
                    if summary.starts_with("reset/") {
                        return Verdict::CursorExpired;
                    }
                    tracing::warn!(error_summary = %summary, "Dropbox refused the call");
                    return Verdict::Reject(format!("{REFUSED}{summary}"));
                }
                // `common.PathRootError`: `invalid_root` says the root the listing is rooted at
                // is not the user's any more (the value is the new `root_info`): start over,
                // reading it afresh (<https://www.dropbox.com/developers/reference/path-root-header-modes>).
                StatusCode::UNPROCESSABLE_ENTITY => {
                    let summary = error_summary(refusal.body);
                    if path_root_error(refusal.body).as_deref() == Some("invalid_root") {
                        tracing::info!("the Dropbox account's root changed");
                        return Verdict::CursorExpired;
                    }
                    return Verdict::Reject(format!("Dropbox refused the path root: {summary}"));
                }
                // `AuthError`: a scope the app lost, or a suspended user, cannot be cured by a
                // refresh; only the user connecting again can.
                StatusCode::UNAUTHORIZED => {
                    let summary = error_summary(refusal.body);
                    if ACCESS_LOST.iter().any(|tag| summary.starts_with(tag)) {
                        return Verdict::AccessLost(format!("Dropbox refused: {summary}"));
                    }
                }
                _ => {}
            }
        }
        answers::common(refusal)
    }
}

#[derive(Deserialize)]
struct Account {
    account_id: String,
    email: String,
    /// Where the user's files are rooted ([`root`]).
    root_info: Option<RootInfo>,
    /// The user's team, if any.
    team: Option<Team>,
}

#[derive(Deserialize)]
struct Team {
    name: String,
}

#[derive(Deserialize)]
struct ListFolder {
    entries: Vec<Metadata>,
    cursor: String,
    has_more: bool,
}

/// One entry of a listing, a union tagged by `.tag`.
#[derive(Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
enum Metadata {
    File {
        id: String,
        name: String,
        path_display: Option<String>,
        path_lower: Option<String>,
        size: Option<u64>,
        server_modified: Option<DateTime<Utc>>,
        content_hash: Option<String>,
    },
    Folder {
        id: String,
        name: String,
        path_display: Option<String>,
        path_lower: Option<String>,
    },
    /// Only a path: the file, or the folder and everything under it, is gone. The path is
    /// null when the item is not mounted (nothing of it is in the index then).
    Deleted { path_lower: Option<String> },
    /// A tag this hub does not know (Dropbox's unions are open): nothing to index.
    #[serde(other)]
    Other,
}

impl Dropbox {
    /// POSTs a JSON argument to an RPC endpoint and reads its JSON answer; `root` roots the
    /// call (`Dropbox-API-Path-Root`).
    async fn rpc<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        argument: Option<Value>,
        root: &Root,
        access_token: &SecretString,
    ) -> Result<T, ProviderError> {
        let url = format!("{}/2/{endpoint}", self.api_url);
        let path_root = root.header();
        let response = self
            .http
            .send(Endpoint::Api, |client| {
                let mut request = client.post(&url).bearer_auth(access_token.expose_secret());
                if let Some(path_root) = &path_root {
                    request = request.header("Dropbox-API-Path-Root", path_root);
                }
                match &argument {
                    // Built by hand: reqwest's `json` feature is not among the hub's.
                    Some(argument) => request
                        .header("content-type", "application/json")
                        .body(argument.to_string()),
                    // An endpoint without arguments takes no body (and no content type).
                    None => request,
                }
            })
            .await?;
        super::http::read_json(response, "Dropbox").await
    }

    async fn account(&self, access_token: &SecretString) -> Result<Account, ProviderError> {
        self.rpc("users/get_current_account", None, &Root::Home, access_token)
            .await
    }
}

/// Dropbox names no drive: the hub gives the account's one this id, the same for every
/// account (contract section 11: "an id the hub gives that drive, stable for the account").
pub const DROPBOX_DRIVE_ID: &str = "dropbox";

fn home_drive() -> DriveInfo {
    DriveInfo {
        id: DROPBOX_DRIVE_ID.into(),
        name: "Dropbox".into(),
        kind: DriveKind::Dropbox,
    }
}

/// A page of Dropbox entries, in Dropbox's order: a removal applies to what came before it
/// in the page, and an entry after it at the same path is a new one ("iterate through each
/// entry in order", `files/list_folder`). Folders are entries too; Dropbox has no parent ids.
///
/// With `replacing` (a page of changes, not of an enumeration), each entry also replaces
/// whatever another id holds at its `path_lower`, as `files/list_folder` tells clients to
/// apply changes: a file replaces what is at its path, a folder's children included; a folder
/// replaces a file there, or another folder without touching its children. Dropbox reports
/// changes by path, so a file deleted and another created at the same path may come as the
/// new file alone. An enumeration skips this: nothing it lists collides, and an enumeration
/// that restarts reconciles at its end (so a first sync costs no lookup per entry).
fn page_of(
    entries: Vec<Metadata>,
    replacing: bool,
    drive_id: Option<String>,
) -> (Vec<FileEntry>, Vec<RemovedPath>) {
    let (mut files, mut removed) = (Vec::new(), Vec::new());
    // The replacement an entry at `path_lower` makes, at its place in the page.
    let replacement = |files: &Vec<FileEntry>, id: &str, path_lower: &Option<String>, folder| {
        let path_lower = path_lower.as_ref().filter(|_| replacing)?;
        Some(RemovedPath {
            removal: PathRemoval {
                path_lower: path_lower.clone(),
                entry_only: folder,
                keep: Some(id.to_string()),
            },
            before: files.len(),
        })
    };
    for entry in entries {
        match entry {
            Metadata::File {
                id,
                name,
                path_display,
                path_lower,
                size,
                server_modified,
                content_hash,
            } => {
                removed.extend(replacement(&files, &id, &path_lower, false));
                files.push(FileEntry {
                    kind: Some(FileKind::File),
                    size,
                    modified_at: server_modified,
                    path: path_display,
                    path_lower,
                    parent_ids: Some(Vec::new()),
                    content_hash: content_hash.map(|value| ContentHash::new("dropbox", value)),
                    drive_id: drive_id.clone(),
                    ..FileEntry::new(id, name)
                })
            }
            Metadata::Folder {
                id,
                name,
                path_display,
                path_lower,
            } => {
                removed.extend(replacement(&files, &id, &path_lower, true));
                files.push(FileEntry {
                    kind: Some(FileKind::Folder),
                    path: path_display,
                    path_lower,
                    parent_ids: Some(Vec::new()),
                    drive_id: drive_id.clone(),
                    ..FileEntry::new(id, name)
                })
            }
            // Dropbox's own lower-case path, as it is: the entries keep theirs too.
            Metadata::Deleted {
                path_lower: Some(path_lower),
            } => removed.push(RemovedPath {
                removal: PathRemoval::subtree(path_lower),
                before: files.len(),
            }),
            Metadata::Deleted { path_lower: None } | Metadata::Other => {}
        }
    }
    (files, removed)
}

#[async_trait]
impl Connector for Dropbox {
    async fn content(
        &self,
        access_token: &SecretString,
        file: &crate::model::FileEntry,
        format: Option<crate::model::ContentFormat>,
    ) -> Result<crate::model::ContentSource, crate::providers::content::ContentRefusal> {
        self.content_source(access_token, file, format).await
    }

    /// A Paper doc's export, the one source Dropbox has no link for; exports take no range.
    async fn open_content(
        &self,
        access_token: &SecretString,
        source: &crate::model::StreamSource,
        _range: Option<crate::providers::content::ByteRange>,
    ) -> Result<crate::providers::content::ContentStream, crate::providers::content::ContentRefusal>
    {
        self.export(access_token, source).await
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
        let account = self.account(access_token).await?;
        Ok(Identity {
            provider_user_id: account.account_id,
            email: account.email,
        })
    }

    async fn search(
        &self,
        access_token: &SecretString,
        query: &str,
        limit: usize,
    ) -> Result<Vec<FileEntry>, ProviderError> {
        self.search_files(access_token, query, limit).await
    }

    async fn list_page(
        &self,
        access_token: &SecretString,
        cursor: Option<&str>,
    ) -> Result<FilePage, ProviderError> {
        // The page, where it is rooted, the drive a new enumeration reports, and whether the
        // page is one of an enumeration (whose entries replace nothing, see `page_of`).
        let (list, root, drive, enumeration): (ListFolder, Root, Option<DriveInfo>, bool) =
            match cursor {
                // A whole enumeration: rooted where `root_info` says, which `drive` reports.
                None => {
                    let account = self.account(access_token).await?;
                    let root = Root::of(account.root_info.as_ref());
                    let drive = root.drive(account.team.as_ref().map(|team| team.name.as_str()));
                    let argument = json!({
                        "path": "",
                        "recursive": true,
                        "include_deleted": false,
                        "limit": PAGE_LIMIT,
                    });
                    let list = self
                        .rpc("files/list_folder", Some(argument), &root, access_token)
                        .await?;
                    (list, root, Some(drive), true)
                }
                Some(cursor) => {
                    let cursor = Cursor::parse(cursor);
                    // Changes since a cursor of the home namespace: a team space that appeared
                    // since is only seen in `root_info` (see `root`). A cursor of a team space
                    // needs no look: its header gets 422 `invalid_root` once the root moved.
                    if cursor.root == Root::Home && !cursor.enumerating {
                        let account = self.account(access_token).await?;
                        if Root::of(account.root_info.as_ref()) != Root::Home {
                            tracing::info!("the Dropbox account now has a team space");
                            return Err(ProviderError::CursorExpired);
                        }
                    }
                    let argument = json!({ "cursor": cursor.dropbox });
                    let list = self
                        .rpc(
                            "files/list_folder/continue",
                            Some(argument),
                            &cursor.root,
                            access_token,
                        )
                        .await?;
                    (list, cursor.root, None, cursor.enumerating)
                }
            };
        let (files, removed_paths) = page_of(list.entries, !enumeration, root.drive_id());
        let after = |enumerating| {
            Cursor {
                enumerating,
                root: root.clone(),
                dropbox: list.cursor.clone(),
            }
            .encode()
        };
        let next = match list.has_more {
            true => NextPage::More(after(enumeration)),
            false => NextPage::Done(after(false)),
        };
        let page = FilePage {
            files,
            removed_paths,
            drives: None,
            next,
        };
        // The account as its user sees it is one drive: the team space, or the Dropbox.
        Ok(match drive {
            Some(drive) => page.with_drives(DriveReport::All(vec![drive])),
            None => page,
        })
    }

    fn push_style(&self) -> PushStyle {
        PushStyle::AppWide
    }

    fn app_notification(
        &self,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<String>, PushRefusal> {
        if !signed_by(self.app_secret.expose_secret(), signature, body) {
            return Err(PushRefusal::Forged);
        }
        let notification: WebhookNotification = serde_json::from_slice(body)
            .map_err(|e| PushRefusal::Malformed(format!("not Dropbox's notification: {e}")))?;
        let accounts = notification.list_folder.accounts;
        if accounts.len() > super::MAX_NOTICES {
            return Err(PushRefusal::TooMany(accounts.len()));
        }
        Ok(accounts)
    }
}

/// The webhook's body: the accounts whose files changed
/// (<https://www.dropbox.com/developers/reference/webhooks#notifications>). `delta.users`, the
/// legacy uids, is not read: `list_folder.accounts` holds the same accounts by account id,
/// which is what the hub stores as the identity.
#[derive(Deserialize)]
struct WebhookNotification {
    list_folder: WebhookAccounts,
}

#[derive(Deserialize)]
struct WebhookAccounts {
    accounts: Vec<String>,
}

/// Whether `signature` (`X-Dropbox-Signature`) is the hex HMAC-SHA256 of the raw body keyed
/// with the app secret. Checked before the body is parsed, and compared in constant time
/// (`verify_slice`), so a forger learns nothing from how long the refusal takes.
fn signed_by(app_secret: &str, signature: Option<&str>, body: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    let Some(expected) = signature.and_then(|hex_text| hex::decode(hex_text.trim()).ok()) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC takes keys of any size");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `content_hash` as Dropbox's spec has it: 64 hex digits (files.FileMetadata).
    const CONTENT_HASH: &str = "4a1f6d0e4f1c2b7d9a8e3c5b6f7a8091a2b3c4d5e6f708192a3b4c5d6e7f8091";

    #[test]
    fn removals_keep_their_place_in_the_page() {
        let entries: Vec<Metadata> = serde_json::from_value(json!([
            {".tag": "file", "id": "id:a", "name": "a.txt", "path_lower": "/docs/a.txt",
             "path_display": "/Docs/a.txt", "size": 3, "rev": "015f1a2b3c4d5e6f",
             "client_modified": "2026-11-30T09:00:00Z", "server_modified": "2026-11-30T10:00:00Z",
             "content_hash": CONTENT_HASH},
            {".tag": "deleted", "name": "Old", "path_lower": "/old", "path_display": "/Old"},
            {".tag": "folder", "id": "id:f", "name": "Old", "path_display": "/Old"},
            {".tag": "some_future_kind", "name": "x"},
            {".tag": "deleted", "name": "Unmounted"}
        ]))
        .unwrap();
        let (files, removed) = page_of(entries, false, None);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path.as_deref(), Some("/Docs/a.txt"));
        assert_eq!(
            files[0].content_hash,
            Some(ContentHash::new("dropbox", CONTENT_HASH))
        );
        assert_eq!(files[0].parent_ids, Some(vec![]));
        assert_eq!(files[1].kind, Some(FileKind::Folder));
        assert_eq!(
            removed,
            vec![RemovedPath {
                removal: PathRemoval::subtree("/old"),
                before: 1
            }],
            "the folder re-created after the removal is not removed with it; an unknown tag and \
             a deletion without a path change nothing"
        );
    }

    fn sign(secret: &str, body: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn the_webhook_signature_covers_the_raw_body_with_the_app_secret() {
        let body = br#"{"list_folder": {"accounts": ["dbid:A"]}, "delta": {"users": [1]}}"#;
        let good = sign("app-secret", body);
        assert!(signed_by("app-secret", Some(&good), body));
        assert!(signed_by("app-secret", Some(&good.to_uppercase()), body));
        assert!(!signed_by("other-secret", Some(&good), body));
        assert!(!signed_by("app-secret", Some(&good), b"{}"));
        assert!(!signed_by("app-secret", Some(&good[..62]), body));
        assert!(!signed_by("app-secret", Some("not hex"), body));
        assert!(!signed_by("app-secret", None, body));
    }

    #[test]
    fn only_reset_expires_the_cursor() {
        let headers = Default::default();
        let refusal = |body: &'static str| Refusal {
            endpoint: Endpoint::Api,
            status: StatusCode::CONFLICT,
            headers: &headers,
            body: body.as_bytes(),
        };
        assert_eq!(
            DropboxAnswers.classify(&refusal(
                r#"{"error_summary": "reset/..", "error": {".tag": "reset"}}"#
            )),
            Verdict::CursorExpired
        );
        assert!(matches!(
            DropboxAnswers.classify(&refusal(r#"{"error_summary": "path/not_found/.."}"#)),
            Verdict::Reject(_)
        ));
    }
}
