//! What the proxy's tests write through the hub, as Drive v3 documents it: `files.create`
//! with metadata only (a folder, say), the simple media upload, and `permissions.list`.
//! Writing needs a scope that allows it: `drive` or `drive.file`, never the read-only ones
//! (<https://developers.google.com/drive/api/reference/rest/v3/files/create>,
//! "Authorization scopes"); a token without one is refused 403 `insufficientPermissions`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{drive_user, file_json, hex, selection, Refusal};
use crate::oauth::query_map;
use crate::state::{lock, FileSpec, Provider, Shared, State as Inner};

/// What `files.create` answers when `fields` is absent, as `files.get` does.
const FILE_DEFAULT: &str = "kind,id,name,mimeType";

/// The file resource's top-level names this stand-in answers.
const FILE_FIELDS: [&str; 16] = [
    "kind",
    "id",
    "name",
    "mimeType",
    "modifiedTime",
    "webViewLink",
    "trashed",
    "ownedByMe",
    "shared",
    "parents",
    "size",
    "md5Checksum",
    "sha256Checksum",
    "driveId",
    "shortcutDetails",
    "sharedWithMeTime",
];

/// The user behind a token that may write: one of the write scopes, not only read-only
/// ones.
fn writing_user(state: &Inner, headers: &HeaderMap) -> Result<String, Refusal> {
    let user = drive_user(state, headers)?;
    let grant = state
        .authenticate(Provider::Google, headers)
        .expect("drive_user authenticated it");
    let writes = grant.scope.split(' ').any(|scope| {
        matches!(
            scope.rsplit('/').next(),
            Some("drive" | "drive.file" | "drive.appdata")
        )
    });
    if !writes {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "Request had insufficient authentication scopes.",
        )
        .with_reason("insufficientPermissions"));
    }
    Ok(user)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileMetadata {
    name: Option<String>,
    mime_type: Option<String>,
    parents: Option<Vec<String>>,
}

/// The new file's id, unique across drives.
fn new_id(state: &mut Inner) -> String {
    state.file_counter += 1;
    format!("gnew{:08}", state.file_counter)
}

/// `POST /drive/v3/files` with a JSON body: a file of metadata only (a folder with
/// `mimeType` `application/vnd.google-apps.folder`). It is a change the next
/// `changes.list` reports.
pub(crate) async fn create_file(
    State(shared): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, Refusal> {
    let query = query_map(&uri);
    let mut state = lock(&shared);
    let user = writing_user(&state, &headers)?;
    let fields = selection(&query, FILE_DEFAULT, &FILE_FIELDS)?;
    let metadata: FileMetadata = if body.is_empty() {
        FileMetadata {
            name: None,
            mime_type: None,
            parents: None,
        }
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| Refusal::new(StatusCode::BAD_REQUEST, "Invalid JSON payload received."))?
    };
    let id = new_id(&mut state);
    let mut spec = FileSpec::new(id.clone(), metadata.name.unwrap_or("Untitled".into()));
    spec.mime_type = metadata
        .mime_type
        .unwrap_or("application/octet-stream".into());
    spec.modified_time = Utc::now();
    if spec.mime_type.starts_with("application/vnd.google-apps.") {
        spec.size = None;
    } else {
        spec.size = Some(0);
    }
    spec.parent = parent_of(&state, &user, metadata.parents)?;
    Ok(record(&mut state, &user, spec, &fields, None))
}

/// `POST /upload/drive/v3/files?uploadType=media`: the body is the file's bytes, its
/// `Content-Type` their type; Drive names the file `Untitled`
/// (<https://developers.google.com/drive/api/guides/manage-uploads#simple>).
pub(crate) async fn upload_media(
    State(shared): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, Refusal> {
    let query = query_map(&uri);
    let mut state = lock(&shared);
    let user = writing_user(&state, &headers)?;
    if query.get("uploadType").map(String::as_str) != Some("media") {
        return Err(Refusal::invalid_parameter("uploadType"));
    }
    let fields = selection(&query, FILE_DEFAULT, &FILE_FIELDS)?;
    let id = new_id(&mut state);
    let mut spec = FileSpec::new(id.clone(), "Untitled");
    spec.mime_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    spec.size = Some(body.len() as u64);
    spec.modified_time = Utc::now();
    let sha256 = hex(&Sha256::digest(&body));
    state.uploads.insert(id, body.to_vec());
    Ok(record(&mut state, &user, spec, &fields, Some(sha256)))
}

/// The folder `parents` names, which must be a live folder of the user's (or My Drive's
/// root, which is no entry of the stand-in's: `None`).
fn parent_of(
    state: &Inner,
    user: &str,
    parents: Option<Vec<String>>,
) -> Result<Option<String>, Refusal> {
    let Some(parent) = parents.and_then(|p| p.into_iter().next()) else {
        return Ok(None);
    };
    if parent == super::my_drive_root(user) || parent == "root" {
        return Ok(None);
    }
    let drive = state.drives.get(&(Provider::Google, user.to_string()));
    let found = drive
        .and_then(|drive| drive.files.get(&parent))
        .is_some_and(|f| !f.deleted && !f.spec.trashed && f.spec.is_folder());
    if !found {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("File not found: {parent}."),
        ));
    }
    Ok(Some(parent))
}

/// Stores the new file as a change and answers its resource, cut down to `fields`.
fn record(
    state: &mut Inner,
    user: &str,
    spec: FileSpec,
    fields: &super::Fields,
    sha256: Option<String>,
) -> Response {
    let id = spec.id.clone();
    let drive = state.drive(Provider::Google, user);
    drive.record(spec, false);
    let mut resource = file_json(user, &drive.files[&id]);
    if let Some(sha256) = sha256 {
        resource["sha256Checksum"] = json!(sha256);
        resource
            .as_object_mut()
            .expect("a file resource is an object")
            .remove("md5Checksum");
    }
    Json(fields.apply(&resource)).into_response()
}

/// The query parameters `permissions.list` takes: its own and the API's global ones (the
/// discovery document's `parameters`); Drive refuses others.
const PERMISSIONS_PARAMETERS: [&str; 17] = [
    "includePermissionsForView",
    "pageSize",
    "pageToken",
    "supportsAllDrives",
    "supportsTeamDrives",
    "useDomainAdminAccess",
    "$.xgafv",
    "access_token",
    "alt",
    "callback",
    "fields",
    "key",
    "oauth_token",
    "prettyPrint",
    "quotaUser",
    "upload_protocol",
    "uploadType",
];

/// `GET /drive/v3/files/{fileId}/permissions`: the owner's permission, the one every file
/// of My Drive has (<https://developers.google.com/drive/api/reference/rest/v3/permissions/list>).
pub(crate) async fn list_permissions(
    State(shared): State<Shared>,
    Path(file_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Refusal> {
    let query = query_map(&uri);
    if let Some(unknown) = query
        .keys()
        .find(|name| !PERMISSIONS_PARAMETERS.contains(&name.as_str()))
    {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid parameter: {unknown}"),
        ));
    }
    let fields = selection(
        &query,
        "kind,permissions",
        &["kind", "nextPageToken", "permissions"],
    )?;
    let mut state = lock(&shared);
    let user = drive_user(&state, &headers)?;
    let email = state.email(Provider::Google, &user);
    let drive = state.drive(Provider::Google, &user);
    if !drive
        .files
        .get(&file_id)
        .is_some_and(|f| !f.deleted && !f.spec.trashed)
    {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("File not found: {file_id}."),
        ));
    }
    let owner: Value = json!({
        "kind": "drive#permission",
        "id": format!("perm-{user}"),
        "type": "user",
        "role": "owner",
        "emailAddress": email,
    });
    let list = json!({"kind": "drive#permissionList", "permissions": [owner]});
    Ok(Json(fields.apply(&list)).into_response())
}
