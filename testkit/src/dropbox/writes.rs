//! `files/create_folder_v2`, as the proxy's tests call it through the hub: a folder at a
//! path whose parent exists, in the user's own namespace, answered with its
//! `FolderMetadata`; a change the next `list_folder/continue` reports. It needs the
//! `files.content.write` scope
//! (<https://www.dropbox.com/developers/documentation/http/documentation#files-create_folder>).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{api_error, authenticate, is_gone, lower, path_display, typed_argument};
use crate::state::{lock, FileSpec, Provider, Shared, FOLDER_MIME_TYPE};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateFolderArg {
    path: String,
    #[serde(default)]
    autorename: bool,
}

pub(crate) async fn create_folder_v2(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "files/create_folder_v2";
    let argument: CreateFolderArg = match typed_argument(ENDPOINT, &headers, &body) {
        Ok(argument) => argument,
        Err(refusal) => return *refusal,
    };
    let mut state = lock(&shared);
    let grant = match authenticate(&state, ENDPOINT, &headers, Some("files.content.write")) {
        Ok(grant) => grant,
        Err(refusal) => return *refusal,
    };
    // WriteFolderPath: `/` followed by a name, no trailing slash.
    let path = argument.path;
    let Some((parent_path, name)) = path
        .strip_prefix('/')
        .filter(|rest| !rest.is_empty() && !rest.ends_with('/'))
        .map(|_| path.rsplit_once('/').expect("the path starts with /"))
    else {
        return api_error(StatusCode::CONFLICT, "path/malformed_path");
    };
    state.file_counter += 1;
    let id = format!("id:dbnew{:08}", state.file_counter);
    let drive = state.drive(Provider::Dropbox, &grant.user);
    let live_at = |wanted: &str| {
        drive
            .files
            .values()
            .find(|f| !is_gone(f) && lower(&path_display(drive, &f.spec)) == lower(wanted))
            .map(|f| (f.spec.id.clone(), f.spec.is_folder()))
    };
    let parent = match parent_path {
        "" => None,
        parent_path => match live_at(parent_path) {
            Some((id, true)) => Some(id),
            _ => return api_error(StatusCode::CONFLICT, "path/not_found"),
        },
    };
    let mut name = name.to_string();
    if let Some((_, is_folder)) = live_at(&path) {
        if !argument.autorename {
            let kind = if is_folder { "folder" } else { "file" };
            return api_error(StatusCode::CONFLICT, &format!("path/conflict/{kind}"));
        }
        let base = name.clone();
        name = (1..)
            .map(|n| format!("{base} ({n})"))
            .find(|candidate| live_at(&format!("{parent_path}/{candidate}")).is_none())
            .expect("some number is free");
    }
    let mut spec = FileSpec::new(id.clone(), name.clone());
    spec.mime_type = FOLDER_MIME_TYPE.to_string();
    spec.size = None;
    spec.parent = parent;
    spec.modified_time = Utc::now();
    drive.record(spec, false);
    let display = path_display(drive, &drive.files[&id].spec);
    Json(json!({"metadata": {
        "name": name,
        "id": id,
        "path_lower": lower(&display),
        "path_display": display,
    }}))
    .into_response()
}
