//! `GET /drives/{drive-id}/items/{item-id}/children`: a folder's children, paged with
//! `@odata.nextLink` and cut down by `$select`
//! (<https://learn.microsoft.com/en-us/graph/api/driveitem-list-children>). The drive is a
//! user's OneDrive (`drive-{user}`) or a document library; a user may list another user's
//! OneDrive only where it shared a folder with them (a `remoteItem` in their own drive).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use super::sites::paged;
use super::{files_user, graph_error, Account};
use crate::state::{lock, Provider, Shared};

fn not_found() -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "itemNotFound",
        "The resource could not be found.",
    )
}

pub(crate) async fn list_children(
    State(shared): State<Shared>,
    Path((drive_id, item_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let mut state = lock(&shared);
    let user = match files_user(&state, &headers) {
        Ok(user) => user,
        Err(refusal) => return *refusal,
    };
    let (key, drive_type) = match drive_id.strip_prefix("drive-") {
        Some(owner)
            if state
                .drives
                .contains_key(&(Provider::Microsoft, owner.to_string())) =>
        {
            let kind = if state.graph_business {
                "business"
            } else {
                "personal"
            };
            (owner.to_string(), kind)
        }
        _ if state.library_site(&drive_id).is_some() => (drive_id.clone(), "documentLibrary"),
        _ => return not_found(),
    };
    let shared_with_user = state
        .drive(Provider::Microsoft, &user)
        .files
        .values()
        .any(|f| {
            !f.deleted
                && f.spec
                    .remote_folder
                    .as_ref()
                    .is_some_and(|(o, _)| *o == key)
        });
    if key != user && drive_type != "documentLibrary" && !shared_with_user {
        return graph_error(
            StatusCode::FORBIDDEN,
            "accessDenied",
            "Access denied. You do not have permission to perform this action or access this resource.",
        );
    }
    let drive = &state.drives[&(Provider::Microsoft, key.clone())];
    let account = Account {
        user: &key,
        drive_id: drive_id.clone(),
        drive_type,
        business: drive_type != "personal",
        drive,
    };
    let parent = if item_id == account.root_id() {
        None
    } else {
        match drive.files.get(&item_id) {
            Some(f) if !f.deleted && !f.spec.trashed && f.spec.is_folder() => Some(item_id.clone()),
            _ => return not_found(),
        }
    };
    let children: Vec<Value> = drive
        .files
        .values()
        .filter(|f| !f.deleted && !f.spec.trashed && f.spec.parent == parent)
        .map(|f| account.item_json(&f.spec, false))
        .collect();
    let path = format!("drives/{drive_id}/items/{item_id}/children");
    paged(&state, &uri, &path, "Collection(driveItem)", children)
}
