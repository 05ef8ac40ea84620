//! `GET /search`: the items the user can open whose name, or content where the stand-in
//! holds bytes, holds `query`, case-insensitively
//! (<https://developer.box.com/reference/get-search/>: `content_types` default to name,
//! description, file content, comments and tags). `query` is required here (Box makes it
//! optional only with `mdfilters`); `type` is `file`, `folder` or `web_link`; `limit` is 1 to
//! 200 (default 30); items in the trash are left out (`trash_content=non_trashed_only`, the
//! default). The answer is `search_results_items`: `entries`, `limit`, `offset`,
//! `total_count`. The root folder is never a hit.

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::tree::{BoxKind, ROOT_ID};
use super::{authenticate, bad_request, limit};
use crate::downloads::Host;
use crate::oauth::query_map;
use crate::state::{lock, Shared};

const SEARCH_DEFAULT_LIMIT: usize = 30;
const SEARCH_MAX_LIMIT: usize = 200;

pub(crate) async fn search(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let query = query_map(&uri);
    let mut state = lock(&shared);
    let grant = match authenticate(&state, &headers) {
        Ok(grant) => grant,
        Err(refusal) => return *refusal,
    };
    let Some(text) = query.get("query").filter(|q| !q.is_empty()) else {
        return bad_request("Query parameter 'query' is required");
    };
    // The tree holds no web links: a search of that type finds nothing.
    let kind = match query.get("type").map(String::as_str) {
        None => None,
        Some("file") => Some(Some(BoxKind::File)),
        Some("folder") => Some(Some(BoxKind::Folder)),
        Some("web_link") => Some(None),
        Some(other) => {
            return bad_request(&format!(
                "Invalid value '{other}' for query parameter 'type'"
            ))
        }
    };
    let limit = match limit(&query, SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT) {
        Ok(limit) => limit,
        Err(refusal) => return *refusal,
    };
    let offset = match query.get("offset").map(|o| o.parse::<usize>()) {
        None => 0,
        Some(Ok(offset)) => offset,
        Some(Err(_)) => return bad_request("Invalid value for query parameter 'offset'"),
    };
    let wanted = text.to_lowercase();
    let user = grant.user.clone();
    let files: Vec<String> = state
        .box_tree(&user)
        .items
        .keys()
        .filter(|(kind, _)| *kind == BoxKind::File)
        .map(|(_, id)| id.clone())
        .collect();
    let contents: Vec<(String, String)> = files
        .iter()
        .filter_map(|id| {
            let bytes = state.downloads.stored(Host::Box, &user, id)?;
            Some((id.clone(), String::from_utf8_lossy(bytes).to_lowercase()))
        })
        .collect();
    let tree = state.box_tree(&user);
    let hits: Vec<Value> = tree
        .items
        .values()
        .filter(|item| !(item.kind == BoxKind::Folder && item.id == ROOT_ID))
        .filter(|item| kind.is_none_or(|kind| kind == Some(item.kind)))
        .filter(|item| tree.reachable(item.kind, &item.id))
        .filter(|item| {
            item.name.to_lowercase().contains(&wanted)
                || (item.kind == BoxKind::File
                    && contents
                        .iter()
                        .any(|(id, text)| *id == item.id && text.contains(&wanted)))
        })
        .map(|item| tree.selected(item, query.get("fields").map(String::as_str)))
        .collect();
    let total = hits.len();
    let entries: Vec<Value> = hits.into_iter().skip(offset).take(limit).collect();
    Json(json!({
        "type": "search_results_items",
        "entries": entries,
        "limit": limit,
        "offset": offset,
        "total_count": total,
    }))
    .into_response()
}
