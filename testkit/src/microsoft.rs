//! Microsoft Graph v1.0: `/me`, `/me/drive/root/delta` and `/drives/{id}/root/delta` (the
//! OneDrive's or a document library's) with `@odata.nextLink` / `@odata.deltaLink` paging,
//! `$select`, deleted facets and 410 for an expired link. Sites and their libraries:
//! `sites.rs`.

pub(crate) mod children;
pub(crate) mod content;
pub(crate) mod search;
pub(crate) mod sites;
pub(crate) mod writes;

use std::collections::HashSet;
use std::ops::Bound;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::oauth::query_map;
use crate::state::{lock, Drive, File, FileSpec, Provider, Shared, State as Inner};

pub(crate) fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message}});
    (status, Json(body)).into_response()
}

fn unauthorized() -> Response {
    graph_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        "Access token has expired or is not yet valid.",
    )
}

/// The user behind the bearer token, whose grant must include a `Files.*` scope; else the
/// 401 or 403 to answer (boxed: a `Response` is large).
pub(crate) fn files_user(state: &Inner, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let Some(grant) = state.authenticate(Provider::Microsoft, headers) else {
        return Err(Box::new(unauthorized()));
    };
    let files_scope = grant.scope.split(' ').any(|s| {
        let name = s.rsplit('/').next().unwrap_or(s);
        name.to_ascii_lowercase().starts_with("files.")
    });
    if !files_scope {
        return Err(Box::new(graph_error(
            StatusCode::FORBIDDEN,
            "accessDenied",
            "Either scp or roles claim need to be present in the token.",
        )));
    }
    // A work or school user whose OneDrive was never provisioned has no drive: Graph answers
    // 404 with this message (observed, not documented: Microsoft documents only that a
    // OneDrive is provisioned on first use or by an admin).
    if state.onedrive_unprovisioned.contains(&grant.user) {
        return Err(Box::new(graph_error(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "User's mysite not found.",
        )));
    }
    Ok(grant.user)
}

pub(crate) async fn me(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let state = lock(&shared);
    let Some(grant) = state.authenticate(Provider::Microsoft, &headers) else {
        return unauthorized();
    };
    let sign_in_name = state.email(Provider::Microsoft, &grant.user);
    let mut display_name = sign_in_name.split('@').next().unwrap_or("").to_string();
    if let Some(first) = display_name.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    // Personal accounts often have no `mail`: clients must fall back to the sign-in name.
    Json(json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
        "id": grant.user,
        "displayName": display_name,
        "mail": null,
        "userPrincipalName": sign_in_name,
    }))
    .into_response()
}

/// `GET /me/drive`: the user's OneDrive, with the id its items' `parentReference.driveId`
/// name (<https://learn.microsoft.com/en-us/graph/api/drive-get>). `$select` cuts it down.
pub(crate) async fn my_drive(
    State(shared): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let state = lock(&shared);
    let user = match files_user(&state, &headers) {
        Ok(user) => user,
        Err(refusal) => return *refusal,
    };
    let business = state.graph_business;
    let drive = json!({
        "id": format!("drive-{user}"),
        "name": "OneDrive",
        "driveType": if business { "business" } else { "personal" },
        "owner": {"user": {"id": user}},
    });
    let wanted = query_map(&uri).get("$select").cloned();
    Json(select(drive, wanted.as_deref())).into_response()
}

/// What a nextLink or deltaLink token stands for. A round is one walk from a delta position
/// (`since`; 0 is a fresh enumeration) to its deltaLink, paged by file id so that changes
/// between pages shift nothing.
#[derive(Clone, Serialize, Deserialize)]
struct Link {
    /// Whose drive: the user's (their OneDrive), or a library's drive id.
    user: String,
    since: u64,
    /// The change sequence number when the round began: the next round's `since`.
    start: u64,
    /// The last id handed out in this round; `None` before the round's first page.
    after: Option<String>,
    epoch: u64,
    select: Option<String>,
}

impl Link {
    fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    fn decode(token: &str) -> Option<Link> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// How the drive answers: personal (OneDrive), business (OneDrive for Business) or a
/// document library (`documentLibrary`, which answers as business does).
struct Account<'a> {
    /// The user, or the library's drive id: what the drive is kept under.
    user: &'a str,
    drive_id: String,
    drive_type: &'static str,
    business: bool,
    drive: &'a Drive,
}

impl Account<'_> {
    fn root_id(&self) -> String {
        format!("root-{}", self.user)
    }

    fn parent_reference(&self, spec: &FileSpec) -> Value {
        // Delta's parentReference has no `path`: renaming a folder does not return its
        // descendants, so clients must track items by id (driveitem-delta, Remarks).
        json!({
            "driveId": self.drive_id,
            "driveType": self.drive_type,
            "id": spec.parent.clone().unwrap_or_else(|| self.root_id()),
        })
    }

    /// The hashes the account type has, per
    /// <https://learn.microsoft.com/en-us/graph/api/resources/hashes>: `quickXorHash` is the
    /// only one guaranteed on both; personal drives add `sha1Hash`, and business drives still
    /// send a `sha256Hash` that Graph documents as "not supported. Don't use." (so a client
    /// that reads it is caught). The digests stand in for the content's (see
    /// `FileSpec::content_digest`).
    fn hashes(&self, spec: &FileSpec) -> Value {
        let digest = spec.content_digest();
        let upper_hex =
            |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02X}")).collect() };
        let quick_xor = STANDARD.encode(&digest[..20]);
        match self.business {
            true => json!({"quickXorHash": quick_xor, "sha256Hash": upper_hex(&digest)}),
            false => json!({"quickXorHash": quick_xor, "sha1Hash": upper_hex(&digest[..20])}),
        }
    }

    fn child_count(&self, folder: &str) -> usize {
        let live = self
            .drive
            .files
            .values()
            .filter(|f| !f.deleted && !f.spec.trashed);
        live.filter(|f| f.spec.parent.as_deref() == Some(folder))
            .count()
    }

    fn item_json(&self, spec: &FileSpec, deleted: bool) -> Value {
        let parent = self.parent_reference(spec);
        // Graph reports items in the recycle bin as deleted too.
        if deleted || spec.trashed {
            return json!({"id": spec.id, "deleted": {"state": "deleted"}, "parentReference": parent});
        }
        let mut item = json!({
            "id": spec.id,
            "name": spec.name,
            "size": spec.size.unwrap_or(0),
            "lastModifiedDateTime": spec.modified_time.to_rfc3339_opts(SecondsFormat::Secs, true),
            "webUrl": format!("https://onedrive.live.com/?id={}", spec.id),
            "parentReference": parent,
        });
        if let Some((owner, remote_id)) = &spec.remote_folder {
            // A shared folder added to the drive: the `remoteItem` facet names the folder in
            // its own drive, and the item has no `folder` facet of its own
            // (<https://learn.microsoft.com/en-us/graph/api/resources/remoteitem>).
            item["remoteItem"] = json!({
                "id": remote_id,
                "name": spec.name,
                "folder": {"childCount": 0},
                "parentReference": {
                    "driveId": format!("drive-{owner}"),
                    "driveType": self.drive_type,
                },
            });
        } else if let Some(package) = &spec.package {
            // A OneNote notebook: a package, neither file nor folder
            // (<https://learn.microsoft.com/en-us/graph/api/resources/package>).
            item["package"] = json!({"type": package});
        } else if spec.is_folder() {
            item["folder"] = json!({"childCount": self.child_count(&spec.id)});
        } else {
            item["file"] = json!({"mimeType": spec.mime_type, "hashes": self.hashes(spec)});
        }
        item
    }

    /// The folders above an item, nearest first, that still exist.
    fn ancestors(&self, spec: &FileSpec) -> Vec<String> {
        let mut found = Vec::new();
        let mut next = spec.parent.clone();
        while let Some(id) = next {
            let Some(folder) = self.drive.files.get(&id).filter(|f| !f.deleted) else {
                break;
            };
            if found.contains(&id) {
                break;
            }
            found.push(id);
            next = folder.spec.parent.clone();
        }
        found
    }
}

/// Keeps the `$select`ed properties; Graph always returns `id`.
pub(crate) fn select(item: Value, select: Option<&str>) -> Value {
    let (Some(select), Value::Object(map)) = (select, &item) else {
        return item;
    };
    let keys: Vec<&str> = select.split(',').map(str::trim).collect();
    let kept = map
        .iter()
        .filter(|(k, _)| k.as_str() == "id" || keys.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()));
    Value::Object(kept.collect::<Map<_, _>>())
}

/// 410 Gone for a link that can no longer be followed, with `Location` holding a link that
/// starts a fresh enumeration. What was deleted meanwhile is simply absent from it.
/// <https://learn.microsoft.com/en-us/graph/api/driveitem-delta> (Example 2).
fn resync_required(base: &str, dead: &Link, epoch: u64) -> Response {
    let restart = Link {
        since: 0,
        start: 0,
        after: None,
        epoch,
        ..dead.clone()
    };
    let body = json!({"error": {
        "code": "resyncRequired",
        "message": "Resync required. Replace any local items with the server's version \
            (including deletes) if you're sure that the service was up to date with your local \
            changes when you last sync'd. Upload any local changes that the server doesn't \
            know about.",
        "innerError": {"code": "resyncChangesApplyDifferences"},
    }});
    let location = format!("{base}?token={}", restart.encode());
    (StatusCode::GONE, [(header::LOCATION, location)], Json(body)).into_response()
}

pub(crate) async fn delta(State(shared): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    delta_of(&shared, &headers, &uri, None)
}

/// `GET /drives/{drive-id}/root/delta`: the user's own OneDrive by its id, or a document
/// library of a site (driveitem-delta, HTTP request); any other drive is Graph's 404.
pub(crate) async fn drive_delta(
    State(shared): State<Shared>,
    Path(drive_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    delta_of(&shared, &headers, &uri, Some(drive_id))
}

fn delta_of(
    shared: &Shared,
    headers: &HeaderMap,
    uri: &Uri,
    path_drive: Option<String>,
) -> Response {
    let query = query_map(uri);
    let mut state = lock(shared);
    let user = match files_user(&state, headers) {
        Ok(user) => user,
        Err(refusal) => return *refusal,
    };
    let own = format!("drive-{user}");
    // Whose drive: the key it is kept under, its id and the path its links point at.
    let (key, drive_id, path) = match path_drive {
        None => (user.clone(), own, "me/drive/root/delta".to_string()),
        Some(id) if id == own => (user.clone(), own, format!("drives/{id}/root/delta")),
        Some(id) if state.library_site(&id).is_some() => {
            (id.clone(), id.clone(), format!("drives/{id}/root/delta"))
        }
        Some(_) => {
            return graph_error(
                StatusCode::NOT_FOUND,
                "itemNotFound",
                "The resource could not be found.",
            )
        }
    };
    let drive_type = match (key != user, state.graph_business) {
        (true, _) => "documentLibrary",
        (false, true) => "business",
        (false, false) => "personal",
    };
    let epoch = state.delta_epoch;
    let next_seq = state.drive(Provider::Microsoft, &key).next_seq;
    let mut link = match query.get("token").map(String::as_str) {
        None => Link {
            user: key.clone(),
            since: 0,
            start: next_seq,
            after: None,
            epoch,
            select: None,
        },
        Some(token) => match Link::decode(token) {
            Some(link) => link,
            None => {
                return graph_error(StatusCode::BAD_REQUEST, "invalidRequest", "Invalid token.")
            }
        },
    };
    let base = format!("{}/graph/v1.0/{path}", state.base_url);
    if link.epoch != epoch {
        return resync_required(&base, &link, epoch);
    }
    if link.user != key {
        return graph_error(
            StatusCode::FORBIDDEN,
            "accessDenied",
            "The link belongs to another drive.",
        );
    }
    if link.after.is_none() {
        link.start = next_seq;
    }
    if let Some(select) = query.get("$select") {
        link.select = Some(select.clone());
    }
    let page_size = state.graph_page_size;
    let business = drive_type != "personal";
    let repeats: Vec<String> = state
        .delta_repeats
        .iter()
        .filter(|(owner, _)| *owner == key)
        .map(|(_, id)| id.clone())
        .collect();
    state.drive(Provider::Microsoft, &key);
    let drive = &state.drives[&(Provider::Microsoft, key.clone())];
    let account = Account {
        user: &key,
        drive_id: drive_id.clone(),
        drive_type,
        business,
        drive,
    };
    let fresh = link.since == 0;
    // On business accounts a round also returns the parent folders of what changed, unless
    // the client sends `deltaExcludeParent` (driveitem-delta, request headers).
    let with_parents = business && !fresh && !headers.contains_key("deltaExcludeParent");
    let parents: HashSet<String> = match with_parents {
        false => HashSet::new(),
        true => drive
            .files
            .values()
            .filter(|f| f.seq >= link.since)
            .flat_map(|f| account.ancestors(&f.spec))
            .collect(),
    };
    let mut items = Vec::new();
    if fresh && link.after.is_none() {
        let children = drive
            .files
            .values()
            .filter(|f| !f.deleted && !f.spec.trashed)
            .count();
        items.push(json!({
            "id": account.root_id(),
            "name": "root",
            "root": {},
            "folder": {"childCount": children},
            "parentReference": {"driveId": drive_id, "driveType": drive_type},
        }));
    }
    let room = page_size.saturating_sub(items.len());
    let after = link.after.clone().map_or(Bound::Unbounded, Bound::Excluded);
    let files: Vec<&File> = drive
        .files
        .range((after, Bound::Unbounded))
        .map(|(_, f)| f)
        .filter(|f| match fresh {
            true => !f.deleted && !f.spec.trashed,
            false => f.seq >= link.since || parents.contains(&f.spec.id),
        })
        .take(room + 1)
        .collect();
    let more = files.len() > room;
    let last_id = files
        .iter()
        .take(room)
        .next_back()
        .map(|f| f.spec.id.clone());
    let mut repeated = Vec::new();
    for file in files.iter().take(room) {
        // The same item may appear more than once in a delta feed; clients must use the
        // last occurrence (driveitem-delta, Remarks). The stale version goes first.
        if repeats.contains(&file.spec.id) {
            let stale = file.previous.as_ref().unwrap_or(&file.spec);
            items.push(account.item_json(stale, false));
            repeated.push((key.clone(), file.spec.id.clone()));
        }
        items.push(account.item_json(&file.spec, file.deleted));
    }
    for done in &repeated {
        state.delta_repeats.remove(done);
    }
    let items: Vec<Value> = items
        .into_iter()
        .map(|item| select(item, link.select.as_deref()))
        .collect();
    let mut answer = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(driveItem)",
        "value": items,
    });
    if more {
        let after = last_id.or(link.after.clone()).unwrap_or_default();
        let next = Link {
            after: Some(after),
            ..link
        };
        answer["@odata.nextLink"] = json!(format!("{base}?token={}", next.encode()));
    } else {
        let delta = Link {
            since: link.start,
            after: None,
            ..link
        };
        answer["@odata.deltaLink"] = json!(format!("{base}?token={}", delta.encode()));
    }
    Json(answer).into_response()
}
