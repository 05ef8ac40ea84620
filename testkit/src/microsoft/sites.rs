//! SharePoint sites as a work or school user sees them: `GET /me/followedSites` and
//! `GET /sites/{site-id}/drives` (the site's document libraries), each paged with
//! `@odata.nextLink` and cut down by `$select`.
//!
//! Both need `Sites.Read.All` (or `Sites.ReadWrite.All`) in the token, and `followedSites` is
//! for work or school accounts only: "Delegated (personal Microsoft account): Not supported"
//! and "accessible only through OneDrive for Business"
//! (<https://learn.microsoft.com/en-us/graph/api/sites-list-followed>,
//! <https://learn.microsoft.com/en-us/graph/api/drive-list>). What Graph answers a personal
//! account is not documented; the stand-in answers 400 `invalidRequest`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{files_user, graph_error, select};
use crate::oauth::query_map;
use crate::state::{lock, Provider, Shared, State as Inner};

/// Whether the token's grant holds a `Sites.*` scope (Sites.Read.All or higher).
fn sites_scope(state: &Inner, headers: &HeaderMap) -> bool {
    state
        .authenticate(Provider::Microsoft, headers)
        .is_some_and(|grant| {
            grant.scope.split(' ').any(|s| {
                let name = s.rsplit('/').next().unwrap_or(s);
                name.to_ascii_lowercase().starts_with("sites.")
            })
        })
}

/// The user behind the token, if it may read sites; else Graph's refusal.
fn sites_user(state: &Inner, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let user = files_user(state, headers)?;
    if !sites_scope(state, headers) {
        return Err(Box::new(graph_error(
            StatusCode::FORBIDDEN,
            "accessDenied",
            "Access denied. Check credentials and try again.",
        )));
    }
    Ok(user)
}

/// One page of `items` from the `$skiptoken` offset, with `@odata.nextLink` when more remain.
pub(super) fn paged(
    state: &Inner,
    uri: &Uri,
    path: &str,
    context: &str,
    items: Vec<Value>,
) -> Response {
    let query = query_map(uri);
    let skip: usize = match query.get("$skiptoken").map(|t| t.parse()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "invalidRequest",
                "Invalid skip token.",
            )
        }
    };
    let size = state.graph_page_size;
    let wanted = query.get("$select").cloned();
    let page: Vec<Value> = items
        .iter()
        .skip(skip)
        .take(size)
        .map(|item| select(item.clone(), wanted.as_deref()))
        .collect();
    let mut answer = json!({
        "@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#{context}"),
        "value": page,
    });
    if items.len() > skip + size {
        let mut next = format!(
            "{}/graph/v1.0/{path}?$skiptoken={}",
            state.base_url,
            skip + size
        );
        if let Some(select) = &wanted {
            next.push_str(&format!("&$select={select}"));
        }
        answer["@odata.nextLink"] = json!(next);
    }
    Json(answer).into_response()
}

/// `GET /me/followedSites`: the sites the user follows, in id order.
pub(crate) async fn followed_sites(
    State(shared): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let state = lock(&shared);
    let user = match sites_user(&state, &headers) {
        Ok(user) => user,
        Err(refusal) => return *refusal,
    };
    if !state.graph_business {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "This API is not supported for MSA accounts.",
        );
    }
    let followed = state.followed_sites.get(&user).cloned().unwrap_or_default();
    let sites: Vec<Value> = followed
        .iter()
        .filter_map(|id| state.graph_sites.get(id).map(|site| (id, site)))
        .map(|(id, site)| {
            json!({
                "id": id,
                "name": site.name,
                "displayName": site.name,
                "webUrl": format!("https://contoso.sharepoint.com/sites/{}", site.name),
            })
        })
        .collect();
    paged(&state, &uri, "me/followedSites", "sites", sites)
}

/// `GET /sites/{site-id}/drives`: the site's document libraries, in id order.
pub(crate) async fn site_drives(
    State(shared): State<Shared>,
    Path(site_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let state = lock(&shared);
    if let Err(refusal) = sites_user(&state, &headers) {
        return *refusal;
    }
    let Some(site) = state.graph_sites.get(&site_id) else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "Requested site could not be found",
        );
    };
    let drives: Vec<Value> = site
        .libraries
        .iter()
        .map(|(id, name)| {
            json!({
                "id": id,
                "name": name,
                "driveType": "documentLibrary",
                "webUrl": format!("https://contoso.sharepoint.com/sites/{}/{name}", site.name),
            })
        })
        .collect();
    let path = format!("sites/{site_id}/drives");
    paged(&state, &uri, &path, "drives", drives)
}
