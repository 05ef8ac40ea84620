//! `GET /me/drive/root/search(q='{search-text}')`: the items of the user's OneDrive whose
//! name or content holds the text, case-insensitively
//! (<https://learn.microsoft.com/en-us/graph/api/driveitem-search>: "Values may be matched
//! across several fields including filename, metadata, and file content"), with `$top` and
//! `$select`. The text is an OData string literal (a quote inside doubled), percent-encoded
//! in the path; a segment that is not `search(q='...')` is Graph's 400.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};

use super::{files_user, graph_error, select, Account};
use crate::downloads::Host;
use crate::oauth::query_map;
use crate::state::{lock, Provider, Shared};

/// The text of a `search(q='...')` segment as it came in the path, or `None` when it is
/// not one: the literal's quotes doubled inside, none alone.
fn search_text(segment: &str) -> Option<String> {
    let decoded = percent_decode_str(segment).decode_utf8().ok()?;
    let literal = decoded.strip_prefix("search(q='")?.strip_suffix("')")?;
    let mut text = String::new();
    let mut chars = literal.chars();
    while let Some(c) = chars.next() {
        if c == '\'' && chars.next()? != '\'' {
            return None;
        }
        text.push(c);
    }
    Some(text)
}

pub(crate) async fn search(State(shared): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let mut state = lock(&shared);
    let user = match files_user(&state, &headers) {
        Ok(user) => user,
        Err(refusal) => return *refusal,
    };
    let segment = uri.path().rsplit('/').next().unwrap_or_default();
    let Some(text) = search_text(segment) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "Invalid request: the function's parameter is not a string literal.",
        );
    };
    let query = query_map(&uri);
    let top = match query.get("$top").map(|top| top.parse::<usize>()) {
        None => 200,
        Some(Ok(top)) if top >= 1 => top,
        Some(_) => return graph_error(StatusCode::BAD_REQUEST, "invalidRequest", "Invalid $top."),
    };
    let wanted = text.to_lowercase();
    let business = state.graph_business;
    state.drive(Provider::Microsoft, &user);
    let drive = &state.drives[&(Provider::Microsoft, user.clone())];
    let account = Account {
        user: &user,
        drive_id: format!("drive-{user}"),
        drive_type: if business { "business" } else { "personal" },
        business,
        drive,
    };
    let found: Vec<Value> = drive
        .files
        .values()
        .filter(|f| !f.deleted && !f.spec.trashed)
        .filter(|f| {
            let content = state.downloads.stored(Host::Graph, &user, &f.spec.id);
            let content = content.map(String::from_utf8_lossy);
            f.spec.name.to_lowercase().contains(&wanted)
                || content.is_some_and(|c| c.to_lowercase().contains(&wanted))
        })
        .take(top)
        .map(|f| {
            let mut item = account.item_json(&f.spec, false);
            item["searchResult"] = json!({});
            select(item, query.get("$select").map(String::as_str))
        })
        .collect();
    Json(json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(driveItem)",
        "value": found,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_literal_is_read_with_its_quotes_doubled() {
        assert_eq!(search_text("search(q='report')").as_deref(), Some("report"));
        assert_eq!(
            search_text("search(q='it%27%27s%20a%5Cb')").as_deref(),
            Some(r"it's a\b")
        );
        for bad in [
            "search(q='it's')",
            "search(q=report)",
            "delta",
            "search(q='a'",
        ] {
            assert_eq!(search_text(bad), None, "{bad}");
        }
    }
}
