//! Drive's shared drives as one user sees them: `drives.list`, the `drive` changes of the
//! changes feed, and the test controls that make the user join or leave one.
//!
//! A user sees a shared drive's files only while a member of it. Drive reports joining or
//! leaving one as a change of `changeType` `drive`, with `driveId`, `removed` and, when the
//! user can open it, the `drive` resource; it reports no change for the files the drive
//! holds (<https://developers.google.com/drive/api/reference/rest/v3/changes#Change>).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::SecondsFormat;
use serde_json::{json, Value};

use super::{drive_user, selection, GoogleError as Refusal};
use crate::oauth::query_map;
use crate::state::{lock, Drive, Provider, Shared, SharedDrive};

/// What `drives.list` answers when `fields` is absent.
const DRIVE_LIST_DEFAULT: &str = "kind,nextPageToken,drives(kind,id,name)";
const DRIVES_PAGE_PREFIX: &str = "drives-after:";

fn drive_json(id: &str, drive: &SharedDrive) -> Value {
    json!({
        "kind": "drive#drive",
        "id": id,
        "name": drive.name,
        "createdTime": drive.changed_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "hidden": false,
    })
}

/// `GET /drive/v3/drives`: the shared drives the user is a member of, in id order.
/// `pageSize` is 1 to 100 (10 when absent), as Drive documents
/// (<https://developers.google.com/drive/api/reference/rest/v3/drives/list>).
pub(crate) async fn list_drives(
    State(shared): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Refusal> {
    let query = query_map(&uri);
    let mut state = lock(&shared);
    let user = drive_user(&state, &headers)?;
    let fields = selection(
        &query,
        DRIVE_LIST_DEFAULT,
        &["kind", "nextPageToken", "drives"],
    )?;
    let size = match query.get("pageSize").map(|v| v.parse::<usize>()) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return Err(Refusal::invalid_parameter("pageSize")),
    };
    let after = match query.get("pageToken") {
        None => None,
        Some(token) => match URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|s| s.strip_prefix(DRIVES_PAGE_PREFIX).map(str::to_string))
        {
            Some(id) => Some(id),
            None => return Err(Refusal::invalid_parameter("pageToken")),
        },
    };
    let drive = state.drive(Provider::Google, &user);
    let member: Vec<(&String, &SharedDrive)> = drive
        .shared_drives
        .iter()
        .filter(|(id, d)| d.member && after.as_ref().is_none_or(|after| *id > after))
        .take(size + 1)
        .collect();
    let drives: Vec<Value> = member
        .iter()
        .take(size)
        .map(|(id, d)| drive_json(id, d))
        .collect();
    let mut answer = json!({"kind": "drive#driveList", "drives": drives});
    if member.len() > size {
        let token = format!("{DRIVES_PAGE_PREFIX}{}", member[size - 1].0);
        answer["nextPageToken"] = json!(URL_SAFE_NO_PAD.encode(token));
    }
    Ok(Json(fields.apply(&answer)).into_response())
}

/// `corpora=drive&driveId=` of a drive the user cannot open: Drive's 404.
pub(crate) fn drive_not_found(drive: &Drive, id: &str) -> Result<(), Refusal> {
    if drive.is_member(id) {
        return Ok(());
    }
    let message = format!("Shared drive not found: {id}");
    Err(Refusal::new(StatusCode::NOT_FOUND, message)
        .with_reason("notFound")
        .on_parameter("driveId"))
}

/// Whether a change at `seq` of a file in the shared drive `drive_id` is in the user's
/// changes feed: made while the user was a member (the membership began before it).
pub(crate) fn seen_as_member(drive: &Drive, drive_id: Option<&str>, seq: u64) -> bool {
    drive_id.is_none_or(|id| {
        drive
            .shared_drives
            .get(id)
            .is_some_and(|d| d.member && d.seq < seq)
    })
}

/// The `drive` changes at or after `from`, with their sequence numbers.
pub(crate) fn drive_changes(drive: &Drive, from: u64) -> Vec<(u64, Value)> {
    drive
        .shared_drives
        .iter()
        .filter(|(_, d)| d.seq >= from)
        .map(|(id, d)| {
            let mut change = json!({
                "kind": "drive#change",
                "changeType": "drive",
                "time": d.changed_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "removed": !d.member,
                "driveId": id,
            });
            if d.member {
                change["drive"] = drive_json(id, d);
            }
            (d.seq, change)
        })
        .collect()
}
