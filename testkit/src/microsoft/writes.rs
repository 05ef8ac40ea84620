//! What the proxy's tests write through the hub, as Graph v1.0 documents it: a folder
//! created among a folder's children, and the permissions of an item. Writing, and opening
//! a drive subscription, needs `Files.ReadWrite` (personal accounts) or
//! `Files.ReadWrite.All` (work or school) or higher
//! (<https://learn.microsoft.com/en-us/graph/api/driveitem-post-children>,
//! <https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions>,
//! "Permissions"); a token with `Files.Read` alone is refused 403.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{files_user, graph_error, Account};
use crate::state::{lock, FileSpec, Provider, Shared, State as Inner, FOLDER_MIME_TYPE};

/// The scopes that let a token write a user's files.
const WRITE_SCOPES: [&str; 4] = [
    "files.readwrite",
    "files.readwrite.all",
    "sites.readwrite.all",
    "sites.fullcontrol.all",
];

/// The user behind a token that may write: `files_user`, holding a write scope. `refusal`
/// is what Graph answers without one (its shape differs by API).
pub(crate) fn writing_user(
    state: &Inner,
    headers: &HeaderMap,
    refusal: fn() -> Response,
) -> Result<String, Box<Response>> {
    let user = files_user(state, headers)?;
    let grant = state
        .authenticate(Provider::Microsoft, headers)
        .expect("files_user authenticated it");
    let writes = grant.scope.split(' ').any(|scope| {
        let name = scope.rsplit('/').next().unwrap_or(scope);
        WRITE_SCOPES.contains(&name.to_ascii_lowercase().as_str())
    });
    if !writes {
        return Err(Box::new(refusal()));
    }
    Ok(user)
}

/// A write without a write scope.
pub(crate) fn access_denied() -> Response {
    graph_error(
        StatusCode::FORBIDDEN,
        "accessDenied",
        "Access denied. You do not have permission to perform this action or access this resource.",
    )
}

/// A subscription without a write scope: the subscription service's wrapping of the
/// drive's refusal.
pub(crate) fn subscription_forbidden() -> Response {
    graph_error(
        StatusCode::FORBIDDEN,
        "ExtensionError",
        "Operation: Create; Exception: [Status Code: Forbidden; Reason: Access denied. You \
         do not have permission to perform this action or access this resource.]",
    )
}

fn not_found() -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "itemNotFound",
        "The resource could not be found.",
    )
}

#[derive(Deserialize)]
struct NewChild {
    name: Option<String>,
    folder: Option<serde_json::Value>,
    #[serde(rename = "@microsoft.graph.conflictBehavior")]
    conflict_behavior: Option<String>,
}

/// `POST /me/drive/root/children`.
pub(crate) async fn create_in_root(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create(&shared, &headers, None, None, &body)
}

/// `POST /drives/{drive-id}/items/{item-id}/children`, in the user's own OneDrive.
pub(crate) async fn create_in_folder(
    State(shared): State<Shared>,
    Path((drive_id, item_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create(&shared, &headers, Some(&drive_id), Some(&item_id), &body)
}

/// A new folder (the only kind of child this stand-in creates from JSON: a file's bytes
/// come by upload), answered 201 with its driveItem; a change the next delta reports.
fn create(
    shared: &Shared,
    headers: &HeaderMap,
    drive_id: Option<&str>,
    item_id: Option<&str>,
    body: &[u8],
) -> Response {
    let mut state = lock(shared);
    let user = match writing_user(&state, headers, access_denied) {
        Ok(user) => user,
        Err(refusal) => return *refusal,
    };
    if drive_id.is_some_and(|id| id != format!("drive-{user}")) {
        return not_found();
    }
    let Ok(request) = serde_json::from_slice::<NewChild>(body) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "Invalid request body.",
        );
    };
    let (Some(name), Some(_)) = (request.name.filter(|n| !n.is_empty()), request.folder) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "A new item needs a name and the folder facet.",
        );
    };
    let root = format!("root-{user}");
    let parent = match item_id {
        None => None,
        Some(id) if id == root => None,
        Some(id) => {
            let drive = state.drive(Provider::Microsoft, &user);
            match drive.files.get(id) {
                Some(f) if !f.deleted && !f.spec.trashed && f.spec.is_folder() => {
                    Some(id.to_string())
                }
                _ => return not_found(),
            }
        }
    };
    let drive = state.drive(Provider::Microsoft, &user);
    let taken = |name: &str| {
        drive.files.values().any(|f| {
            !f.deleted
                && !f.spec.trashed
                && f.spec.parent == parent
                && f.spec.name.eq_ignore_ascii_case(name)
        })
    };
    let name = match request.conflict_behavior.as_deref().unwrap_or("fail") {
        _ if !taken(&name) => name,
        "rename" => (1..)
            .map(|n| format!("{name} {n}"))
            .find(|candidate| !taken(candidate))
            .expect("some number is free"),
        _ => {
            return graph_error(
                StatusCode::CONFLICT,
                "nameAlreadyExists",
                "The specified item name already exists.",
            )
        }
    };
    state.file_counter += 1;
    let id = format!("MSNEW!{:08}", state.file_counter);
    let mut spec = FileSpec::new(id.clone(), name);
    spec.mime_type = FOLDER_MIME_TYPE.to_string();
    spec.size = None;
    spec.parent = parent;
    spec.modified_time = Utc::now();
    let business = state.graph_business;
    let drive = state.drive(Provider::Microsoft, &user);
    drive.record(spec, false);
    let account = Account {
        user: &user,
        drive_id: format!("drive-{user}"),
        drive_type: if business { "business" } else { "personal" },
        business,
        drive,
    };
    let item = account.item_json(&drive.files[&id].spec, false);
    (StatusCode::CREATED, Json(item)).into_response()
}

/// `GET /me/drive/items/{item-id}/permissions`.
pub(crate) async fn my_permissions(
    State(shared): State<Shared>,
    Path(item_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    permissions(&shared, &headers, None, &item_id)
}

/// `GET /drives/{drive-id}/items/{item-id}/permissions`.
pub(crate) async fn drive_permissions(
    State(shared): State<Shared>,
    Path((drive_id, item_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    permissions(&shared, &headers, Some(&drive_id), &item_id)
}

/// The owner's permission, which every item of a user's OneDrive has
/// (<https://learn.microsoft.com/en-us/graph/api/driveitem-list-permissions>).
fn permissions(shared: &Shared, headers: &HeaderMap, drive_id: Option<&str>, id: &str) -> Response {
    let mut state = lock(shared);
    let user = match files_user(&state, headers) {
        Ok(user) => user,
        Err(refusal) => return *refusal,
    };
    if drive_id.is_some_and(|d| d != format!("drive-{user}")) {
        return not_found();
    }
    let email = state.email(Provider::Microsoft, &user);
    let drive = state.drive(Provider::Microsoft, &user);
    let exists = id == format!("root-{user}")
        || drive
            .files
            .get(id)
            .is_some_and(|f| !f.deleted && !f.spec.trashed);
    if !exists {
        return not_found();
    }
    let display_name = email.split('@').next().unwrap_or_default().to_string();
    let owner = json!({
        "id": format!("owner-{user}"),
        "roles": ["owner"],
        "grantedToV2": {"user": {"id": user, "displayName": display_name}},
    });
    Json(json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(permission)",
        "value": [owner],
    }))
    .into_response()
}
