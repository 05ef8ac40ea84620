//! The demo app's file picker: one folder of an account at a time, the provider's own
//! search, and downloads through the hub's content route.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::html::{escape, file_item, page, problem_page};
use crate::hub::HubProblem;
use crate::Shared;

/// The most entries listed per folder.
const ENTRIES_SHOWN: u32 = 100;

/// `GET /browse?account=&trail=[&q=]`: one folder of an account, as a file picker shows it
/// (the hub's `parent_id` query: a folder's entries only, whatever the account's size), its
/// folders opening further down and a way back up; or, with `q`, the provider's own search.
/// `trail` is the comma-separated ids of the folders opened from the top, so "up" drops the
/// last one.
pub async fn browse(
    State(demo): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(account) = query.get("account").filter(|a| !a.is_empty()) else {
        return problem_page(
            HubProblem::Answered("a browse link names an account".into()),
            "/connected",
        );
    };
    let trail: Vec<&str> = query
        .get("trail")
        .map(|trail| trail.split(',').filter(|id| !id.is_empty()).collect())
        .unwrap_or_default();
    let search = query.get("q").map(|q| q.trim()).filter(|q| !q.is_empty());
    let link = |trail: &[&str]| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("account", account)
            .append_pair("trail", &trail.join(","));
        format!("/browse?{}", query.finish())
    };
    let entries = match search {
        Some(q) => demo.entries(account, "search", &[("q", q)]).await,
        None => {
            let folder = trail.last().copied().unwrap_or("root");
            let limit = ENTRIES_SHOWN.to_string();
            demo.entries(
                account,
                "files",
                &[("parent_id", folder), ("limit", limit.as_str())],
            )
            .await
        }
    };
    let mut body = format!(
        "<h1>Browse</h1>\n<form class=\"search\" action=\"/browse\" method=\"get\">\
         <input type=\"hidden\" name=\"account\" value=\"{}\">\
         <input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"Search this drive\" \
         aria-label=\"Search this drive\" maxlength=\"200\"> <button type=\"submit\">Search</button>\
         </form>\n",
        escape(account),
        escape(search.unwrap_or("")),
    );
    body += &match (search, trail.len()) {
        (Some(q), _) => format!(
            "<p class=\"where\">Results for <strong>{}</strong> (the provider's own search). \
             <a class=\"up\" href=\"{}\">Back to the folders</a></p>\n",
            escape(q),
            escape(&link(&trail))
        ),
        (None, 0) => "<p class=\"where\">Top of each drive.</p>\n".to_string(),
        (None, depth) => format!(
            "<p class=\"where\"><a class=\"up\" href=\"{}\">Up</a> · <a class=\"top\" \
             href=\"{}\">Top</a></p>\n",
            escape(&link(&trail[..depth - 1])),
            escape(&link(&[]))
        ),
    };
    match entries {
        Ok(entries) if entries.is_empty() => body += "<p>Nothing here.</p>\n",
        Ok(entries) => {
            body += "<ul class=\"files\">\n";
            for entry in &entries {
                match (entry["kind"].as_str(), entry["id"].as_str()) {
                    (Some("folder"), Some(id)) => {
                        let mut deeper = trail.clone();
                        deeper.push(id);
                        body += &format!(
                            "<li><a class=\"folder\" href=\"{}\">{}</a> \
                             <span class=\"detail\">(folder)</span></li>\n",
                            escape(&link(&deeper)),
                            escape(entry["name"].as_str().unwrap_or(""))
                        );
                    }
                    _ => body += &file_item(account, entry, ""),
                }
            }
            body += "</ul>\n";
        }
        Err(HubProblem::Answered(problem)) => {
            body += &format!("<p class=\"outcome error\">{}</p>\n", escape(&problem))
        }
        Err(unreachable) => return problem_page(unreachable, "/connected"),
    }
    body += "<p><a href=\"/connected\">All connected drives</a></p>\n";
    page(StatusCode::OK, "Demo app: browse", None, &body)
}

/// `GET /download?account=&file=[&format=]`: sends the browser to the file's bytes.
pub async fn download(
    State(demo): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (Some(account), Some(file)) = (query.get("account"), query.get("file")) else {
        return problem_page(
            HubProblem::Answered("a download link names an account and a file".into()),
            "/connected",
        );
    };
    match demo
        .content_url(account, file, query.get("format").map(String::as_str))
        .await
    {
        Ok(location) => Redirect::to(&location).into_response(),
        Err(problem) => problem_page(problem, "/connected"),
    }
}
