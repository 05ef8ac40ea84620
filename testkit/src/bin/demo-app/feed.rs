//! What the hub does after a drive is connected, shown as an app sees it: a file changed at
//! the provider (the demo's buttons change it at the stand-in, then ask the hub to sync, as
//! the schedule or a push notification would in AWS), the change arriving in the account's
//! change feed (`GET /users/{id}/changes`, read on from the app's saved cursor), and the
//! signed events the hub POSTs to the app (`POST /events`, each signature checked).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{json, Value};

use crate::html::{account_label, escape, page, problem_page, readable_time, REFRESH_SECONDS};
use crate::hub::HubProblem;
use crate::Shared;

/// The most feed entries and events kept (and shown) per account.
const KEPT: usize = 30;
/// The most feed pages read per visit: a newcomer's drive is small, and a page stays quick.
const PAGES_PER_VISIT: usize = 10;

/// What the app keeps: per account, its feed cursor and the entries read so far (newest
/// last), and the events received.
#[derive(Default)]
pub struct Seen {
    feeds: HashMap<String, (Option<String>, VecDeque<Value>)>,
    events: VecDeque<Value>,
}

/// Reads the account's feed on from the saved cursor; the entries kept, newest first.
async fn read_feed(demo: &Shared, account_id: &str) -> Result<Vec<Value>, HubProblem> {
    let mut cursor = lock(&demo.seen)
        .feeds
        .get(account_id)
        .and_then(|(cursor, _)| cursor.clone());
    let mut read = Vec::new();
    for _ in 0..PAGES_PER_VISIT {
        let page = demo.changes(account_id, cursor.as_deref()).await?;
        read.extend(page["changes"].as_array().cloned().unwrap_or_default());
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if page["has_more"] != Value::Bool(true) {
            break;
        }
    }
    let mut seen = lock(&demo.seen);
    let (saved, entries) = seen.feeds.entry(account_id.to_string()).or_default();
    *saved = cursor;
    entries.extend(read);
    while entries.len() > KEPT {
        entries.pop_front();
    }
    Ok(entries.iter().rev().cloned().collect())
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `GET /feed?account=`: the account's latest changes and events; reloads itself.
pub async fn feed(
    State(demo): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(account_id) = query.get("account").filter(|id| !id.is_empty()) else {
        return problem_page(
            HubProblem::Answered("a feed link names an account".into()),
            "/connected",
        );
    };
    let path = format!(
        "/feed?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("account", account_id)
            .finish()
    );
    let account = match demo.account(account_id).await {
        Ok(account) => account,
        Err(problem) => return problem_page(problem, &path),
    };
    let entries = match read_feed(&demo, account_id).await {
        Ok(entries) => entries,
        Err(problem) => return problem_page(problem, &path),
    };
    let mut body = format!(
        "<h1>Changes of {}</h1>\n<p>This page reloads every {REFRESH_SECONDS} seconds. The app \
         keeps the feed's <code>next_cursor</code> and asks only for what changed since \
         (<code>GET /users/{{id}}/changes?cursor=</code>); the first read starts at the \
         beginning, so it holds every entry of the index.</p>\n",
        escape(&account_label(&account))
    );
    if let Some(done) = query.get("done") {
        body += &format!(
            "<p class=\"outcome ok\" role=\"status\">{}: the demo changed it at the stand-in \
             and asked the hub to sync. Watch it arrive below.</p>\n",
            escape(done)
        );
    }
    body += "<h2>Change feed</h2>\n";
    if entries.is_empty() {
        body += "<p class=\"note\">Nothing in the feed yet.</p>\n";
    } else {
        body += "<ol class=\"feed\">\n";
        for entry in &entries {
            let state = if entry["deleted"] == Value::Bool(true) {
                "deleted"
            } else {
                "present"
            };
            let when = entry["changed_at"]
                .as_str()
                .and_then(readable_time)
                .unwrap_or_default();
            body += &format!(
                "<li class=\"change {state}\"><span class=\"file-name\">{}</span> \
                 <span class=\"detail\">({} {state}, stored {when})</span></li>\n",
                escape(
                    entry["path"]
                        .as_str()
                        .or(entry["name"].as_str())
                        .unwrap_or("")
                ),
                escape(entry["kind"].as_str().unwrap_or("file")),
            );
        }
        body += "</ol>\n";
    }
    body += "<h2>Events the app received</h2>\n<p class=\"note\">The hub POSTs them to the \
             app's <code>HUB_WEBHOOK_URL</code>, signed (Standard Webhooks); the app checked \
             each signature.</p>\n";
    let events: Vec<Value> = lock(&demo.seen)
        .events
        .iter()
        .rev()
        .filter(|event| {
            event["data"]["account_id"].as_str() == Some(account_id.as_str())
                || event["data"]["id"].as_str() == Some(account_id.as_str())
        })
        .cloned()
        .collect();
    if events.is_empty() {
        body += "<p class=\"note\">No event yet.</p>\n";
    } else {
        body += "<ol class=\"events\">\n";
        for event in &events {
            let data = &event["data"];
            let detail = match event["type"].as_str() {
                Some("sync.completed") => format!(
                    "{} present, {} deleted",
                    data["files_changed"], data["files_deleted"]
                ),
                _ => String::new(),
            };
            body += &format!(
                "<li class=\"event\"><code class=\"event-type\">{}</code> <span \
                 class=\"detail\">{} {}</span></li>\n",
                escape(event["type"].as_str().unwrap_or("")),
                escape(&detail),
                escape(
                    &event["timestamp"]
                        .as_str()
                        .and_then(readable_time)
                        .unwrap_or_default()
                ),
            );
        }
        body += "</ol>\n";
    }
    body += "<p><a href=\"/connected\">All connected drives</a></p>\n";
    page(
        StatusCode::OK,
        "Demo app: changes",
        Some((REFRESH_SECONDS, &path)),
        &body,
    )
}

/// `POST /change` (a form: `account`, `provider`, `action`, `file`, `name`): changes the
/// file at the stand-in, asks the hub to sync the account, and shows its feed.
pub async fn change(State(demo): State<Shared>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let (account_id, provider, action) = (field("account"), field("provider"), field("action"));
    let (request, done) = match action {
        "add" => {
            let name = format!("New note {}.txt", chrono::Utc::now().format("%H-%M-%S"));
            (json!({"name": name}), format!("{name} added"))
        }
        "rename" => {
            let name = renamed(field("name"));
            (
                json!({"file": field("file"), "name": name}),
                format!("{} renamed to {name}", field("name")),
            )
        }
        "delete" => (
            json!({"file": field("file")}),
            format!("{} deleted", field("name")),
        ),
        _ => return problem_page(HubProblem::Answered("no such change".into()), "/connected"),
    };
    if let Err(problem) = demo.change_at_provider(provider, action, request).await {
        return problem_page(problem, "/connected");
    }
    if let Err(problem) = demo.start_sync(account_id).await {
        return problem_page(problem, "/connected");
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("account", account_id)
        .append_pair("done", &done)
        .finish();
    Redirect::to(&format!("/feed?{query}")).into_response()
}

/// `Report.pdf` becomes `Report (renamed).pdf`.
fn renamed(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => format!("{stem} (renamed).{extension}"),
        _ => format!("{name} (renamed)"),
    }
}

/// `POST /events`: an event from the hub. Kept when its signature holds (204); refused
/// otherwise (401), as an app must: anyone can POST to its URL.
pub async fn receive_event(
    State(demo): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(key) = &demo.webhook_key else {
        return StatusCode::NOT_FOUND;
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    };
    let signed = hub_testkit::webhook_receiver::verify(
        key,
        header("webhook-id"),
        header("webhook-timestamp"),
        &body,
        header("webhook-signature"),
    );
    let event: Option<Value> = serde_json::from_slice(&body).ok();
    match (signed, event) {
        (true, Some(event)) => {
            let mut seen = lock(&demo.seen);
            seen.events.push_back(event);
            while seen.events.len() > KEPT * 4 {
                seen.events.pop_front();
            }
            StatusCode::NO_CONTENT
        }
        (true, None) => StatusCode::BAD_REQUEST,
        (false, _) => StatusCode::UNAUTHORIZED,
    }
}

#[cfg(test)]
mod tests {
    use super::renamed;

    #[test]
    fn a_renamed_file_keeps_its_extension() {
        assert_eq!(renamed("Report.pdf"), "Report (renamed).pdf");
        assert_eq!(renamed("README"), "README (renamed)");
        assert_eq!(renamed(".env"), ".env (renamed)");
    }
}
