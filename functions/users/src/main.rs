//! `users`: accounts (`GET /users` paged, `GET /users/{id}`, `GET /users/{id}/files`,
//! `GET /users/{id}/changes`, `GET /users/{id}/drives`, `GET /users/{id}/files/{file_id}/content`,
//! `GET /users/{id}/search`,
//! `GET|POST|PUT|PATCH|DELETE /users/{id}/proxy/{path}`, `DELETE /users/{id}`, behind the API
//! key), connect sessions (`POST /connect/sessions`,
//! behind the API key) and the public `GET /config`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{get, on, post};
use axum::{Extension, Json, Router};
use hub::accounts::{self, ConfigView, FilesPage};
use hub::changes::{self, ChangesPage};
use hub::deadline::Deadline;
use hub::drives::{self, DrivesPage};
use hub::model::AccountView;
use hub::queries;
use hub::web::{
    answer_response, create_session_response, proxy_methods, redirect_response, require_api_key,
    users_page_response, with_fallbacks, ApiKey, ChangesQuery, ContentQuery, FilePath, FilesQuery,
    PathParam, Proxied, SearchQuery, SessionRequest, UsersQuery, PROXY_ROUTE,
};
use hub::{Hub, HubError};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub::telemetry::init();
    match start().await {
        Ok((hub, api_key)) => lambda_http::run(app(hub, api_key)).await,
        Err(error) => hub::cold_start::serve_failure("users", error).await,
    }
}

async fn start() -> Result<(Arc<Hub>, ApiKey), HubError> {
    let hub = Arc::new(Hub::from_env().await?);
    hub::deployment::USERS.check(&hub.config)?;
    let api_key = ApiKey::any_of(&hub.config.api_keys()?);
    Ok((hub, api_key))
}

fn app(hub: Arc<Hub>, api_key: ApiKey) -> Router {
    let management = Router::new()
        .route("/users", get(list_accounts))
        .route("/users/{id}", get(get_account).delete(delete_account))
        .route("/users/{id}/files", get(list_files))
        .route("/users/{id}/files/{file_id}/content", get(file_content))
        .route("/users/{id}/changes", get(list_changes))
        .route("/users/{id}/drives", get(list_drives))
        .route("/users/{id}/search", get(search))
        .route(PROXY_ROUTE, on(proxy_methods(), proxy))
        .route("/connect/sessions", post(create_session))
        .route_layer(from_fn_with_state(api_key, require_api_key));
    with_fallbacks(management.route("/config", get(config)).with_state(hub))
}

async fn list_accounts(
    State(hub): State<Arc<Hub>>,
    UsersQuery {
        owner,
        limit,
        after,
    }: UsersQuery,
) -> Result<Response, HubError> {
    let page = accounts::page_of(hub.store.as_ref(), owner.as_deref(), limit, after).await?;
    Ok(users_page_response(
        &hub.config.public_url,
        owner.as_deref(),
        limit,
        page,
    ))
}

async fn create_session(
    State(hub): State<Arc<Hub>>,
    SessionRequest(request): SessionRequest,
) -> Response {
    create_session_response(&hub, request).await
}

async fn get_account(
    State(hub): State<Arc<Hub>>,
    PathParam(id): PathParam,
) -> Result<Json<AccountView>, HubError> {
    Ok(Json(accounts::get(hub.store.as_ref(), &id).await?))
}

async fn list_files(
    State(hub): State<Arc<Hub>>,
    PathParam(id): PathParam,
    FilesQuery {
        limit,
        after,
        filter,
    }: FilesQuery,
) -> Result<Json<FilesPage>, HubError> {
    Ok(Json(
        queries::files(hub.store.as_ref(), &id, &filter, limit, after).await?,
    ))
}

/// 302 to the file's bytes (docs/API.md, "File content"); the provider is asked within the
/// invocation's deadline.
async fn file_content(
    State(hub): State<Arc<Hub>>,
    FilePath {
        account_id,
        file_id,
    }: FilePath,
    ContentQuery { format }: ContentQuery,
    invocation: Option<Extension<lambda_http::Context>>,
) -> Result<Response, HubError> {
    let deadline = Deadline::of_invocation(invocation.map(|Extension(context)| context.deadline));
    let location =
        hub::content::locate(&hub, &account_id, &file_id, format.as_deref(), deadline).await?;
    Ok(redirect_response(location))
}

/// The request sent on to the account's provider, its answer passed back (docs/API.md,
/// "Proxy"); the provider is asked within the invocation's deadline.
async fn proxy(
    State(hub): State<Arc<Hub>>,
    invocation: Option<Extension<lambda_http::Context>>,
    Proxied(request): Proxied,
) -> Result<Response, HubError> {
    let deadline = Deadline::of_invocation(invocation.map(|Extension(context)| context.deadline));
    Ok(answer_response(
        hub::proxy::forward(&hub, request, deadline).await?,
    ))
}

/// The provider's own search, its hits as index entries (docs/API.md, "Search"); the
/// provider is asked within the invocation's deadline.
async fn search(
    State(hub): State<Arc<Hub>>,
    PathParam(id): PathParam,
    SearchQuery(request): SearchQuery,
    invocation: Option<Extension<lambda_http::Context>>,
) -> Result<Json<hub::search::SearchResults>, HubError> {
    let deadline = Deadline::of_invocation(invocation.map(|Extension(context)| context.deadline));
    Ok(Json(
        hub::search::search(&hub, &id, &request, deadline).await?,
    ))
}

async fn list_changes(
    State(hub): State<Arc<Hub>>,
    PathParam(id): PathParam,
    ChangesQuery { limit, cursor }: ChangesQuery,
) -> Result<Json<ChangesPage>, HubError> {
    Ok(Json(
        changes::feed(hub.store.as_ref(), &id, cursor, limit).await?,
    ))
}

async fn list_drives(
    State(hub): State<Arc<Hub>>,
    PathParam(id): PathParam,
) -> Result<Json<DrivesPage>, HubError> {
    Ok(Json(drives::list(&hub, &id).await?))
}

/// The revocation ends before the invocation's deadline (outside Lambda there is no context:
/// then the function's timeout from now).
async fn delete_account(
    State(hub): State<Arc<Hub>>,
    PathParam(id): PathParam,
    invocation: Option<Extension<lambda_http::Context>>,
) -> Result<StatusCode, HubError> {
    let deadline = Deadline::of_invocation(invocation.map(|Extension(context)| context.deadline));
    accounts::delete_by(&hub, &id, deadline).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn config(State(hub): State<Arc<Hub>>) -> Json<ConfigView> {
    Json(accounts::config(&hub.providers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use axum::http::HeaderMap;
    use hub::model::AccountStatus;
    use hub::testing::DEV_API_KEY;
    use lambda_http::tower::ServiceExt;
    use secrecy::SecretString;
    use serde_json::{json, Value};
    use std::collections::HashSet;

    async fn call(event: &str, extra: &[(String, String)]) -> (StatusCode, Value) {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), extra).await);
        let (status, _, body) = serve(&hub, event).await;
        (status, body)
    }

    async fn serve(hub: &Arc<Hub>, event: &str) -> (StatusCode, HeaderMap, Value) {
        let key = ApiKey::new(&SecretString::from(DEV_API_KEY));
        let request = lambda_http::request::from_str(event).expect("sample event parses");
        let response = app(hub.clone(), key).oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The sample `GET /users` event with `query` as its query string.
    fn users_list_event(query: &str) -> String {
        let mut event: Value =
            serde_json::from_str(include_str!("../../../events/users-list.json")).unwrap();
        event["rawQueryString"] = json!(query);
        let params: serde_json::Map<String, Value> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), json!(v)))
            .collect();
        event["queryStringParameters"] = Value::Object(params);
        event.to_string()
    }

    #[tokio::test]
    async fn config_lists_configured_providers() {
        let (status, body) = call(include_str!("../../../events/config.json"), &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"available_providers": ["google", "onedrive"], "mode": "multi-provider"})
        );
        let none = [
            ("GOOGLE_CLIENT_ID".to_string(), String::new()),
            ("ONEDRIVE_CLIENT_ID".to_string(), String::new()),
        ];
        let (_, body) = call(include_str!("../../../events/config.json"), &none).await;
        assert_eq!(
            body,
            json!({"available_providers": [], "mode": "unconfigured"})
        );
    }

    #[tokio::test]
    async fn management_routes_need_the_key() {
        let (status, body) =
            call(include_str!("../../../events/users-list-no-key.json"), &[]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
        let wrong =
            include_str!("../../../events/users-list.json").replace(DEV_API_KEY, "not-the-key");
        assert_eq!(call(&wrong, &[]).await.0, StatusCode::UNAUTHORIZED);
        let (status, body) = call(include_str!("../../../events/users-list.json"), &[]).await;
        assert_eq!((status, body), (StatusCode::OK, json!([])));
    }

    #[tokio::test]
    async fn unknown_accounts_are_404() {
        for event in [
            include_str!("../../../events/users-files.json"),
            include_str!("../../../events/users-delete.json"),
            include_str!("../../../events/users-file-content.json"),
        ] {
            let (status, body) = call(event, &[]).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::NOT_FOUND, Some("user_not_found"))
            );
        }
        let bad_limit =
            include_str!("../../../events/users-files.json").replace("limit=50", "limit=abc");
        let (status, body) = call(&bad_limit, &[]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request"))
        );
    }

    /// The search route answers for an account only: a bad `q` or `limit`, or a parameter
    /// it does not take, is 400 before anything is looked up; an unknown account 404; no key
    /// 401.
    #[tokio::test]
    async fn the_search_route_checks_its_query_then_the_account() {
        let event = include_str!("../../../events/users-search.json");
        let (status, body) = call(event, &[]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("user_not_found"))
        );
        let long = "a".repeat(201);
        for query in [
            "q=",
            "limit=10",
            long.as_str(),
            "q=x&limit=0",
            "q=x&limit=101",
            "q=x&cursor=abc",
        ] {
            let query = if query == long {
                format!("q={long}")
            } else {
                query.to_string()
            };
            let bad = event.replace("q=quarterly%20report&limit=10", &query);
            let (status, body) = call(&bad, &[]).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_request")),
                "{query}"
            );
        }
        let no_key = event.replace("Bearer local-dev-key", "Bearer not-the-key");
        assert_eq!(call(&no_key, &[]).await.0, StatusCode::UNAUTHORIZED);
    }

    /// A bad `format` is refused before anything is looked up, an unknown parameter too.
    #[tokio::test]
    async fn the_content_route_refuses_bad_formats_and_parameters() {
        let event = include_str!("../../../events/users-file-content.json");
        for (query, code) in [
            ("format=doc", "unsupported_format"),
            ("format=PDF", "unsupported_format"),
            ("format=pdf&size=1", "invalid_request"),
        ] {
            let mut bad: Value = serde_json::from_str(event).unwrap();
            bad["rawQueryString"] = json!(query);
            let (status, body) = call(&bad.to_string(), &[]).await;
            assert_eq!(status.as_u16() / 100, 4, "{query}: {body}");
            assert_eq!(body["error"], code, "{query}");
        }
        let no_key = event.replace(DEV_API_KEY, "not-the-key");
        assert_eq!(call(&no_key, &[]).await.0, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn users_are_paged_by_link_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let mut ids = Vec::new();
        for (i, provider) in [
            "google", "onedrive", "onedrive", "google", "onedrive", "google", "google",
        ]
        .into_iter()
        .enumerate()
        {
            let status = if i == 3 {
                AccountStatus::NeedsReauth
            } else {
                AccountStatus::Active
            };
            let account = hub::testing::account(provider).status(status).build();
            ids.push(account.id.clone());
            assert_eq!(
                hub.store.create_account(&account).await.unwrap(),
                hub::store::Write::Done
            );
        }

        let (status, headers, all) = serve(&hub, &users_list_event("")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers.get("link").is_none(), "one page holds them all");
        let all = all.as_array().unwrap().clone();
        assert_eq!(all.len(), 7);
        assert!(all.iter().all(|row| row.get("tokens").is_none()));

        let (mut query, mut pages, mut rows) = ("limit=3".to_string(), 0, Vec::new());
        loop {
            let (status, headers, page) = serve(&hub, &users_list_event(&query)).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let page = page.as_array().unwrap();
            assert!(page.len() <= 3);
            rows.extend(page.iter().cloned());
            pages += 1;
            let Some(link) = headers.get("link") else {
                break;
            };
            let link = link.to_str().unwrap();
            let target = link
                .strip_prefix("<http://localhost:9000/users?")
                .and_then(|rest| rest.strip_suffix(">; rel=\"next\""))
                .unwrap_or_else(|| panic!("an RFC 8288 next link: {link}"));
            query = target.to_string();
            assert!(query.starts_with("limit=3&cursor="), "{query}");
        }
        assert_eq!(pages, 3, "7 rows in pages of 3, no empty last page");
        assert_eq!(rows, all, "the pages are the whole list, in its order");
        let unique: HashSet<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(unique, ids.iter().map(String::as_str).collect());

        // Provider by provider, then by id: the order a cursor resumes in.
        let keys: Vec<(usize, String)> = rows
            .iter()
            .map(|r| {
                let provider = r["provider"].as_str().unwrap();
                let rank = hub::providers::PROVIDERS
                    .iter()
                    .position(|spec| spec.name == provider)
                    .unwrap();
                (rank, r["id"].as_str().unwrap().to_string())
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[tokio::test]
    async fn bad_limits_and_cursors_are_400() {
        for query in [
            "limit=0",
            "limit=1001",
            "limit=ten",
            "cursor=zz",
            "cursor=676f6f676c65",
            "limit=5&cursor=6e6f70652f616263",
        ] {
            let (status, body) = call(&users_list_event(query), &[]).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_request")),
                "{query}"
            );
        }
    }

    #[tokio::test]
    async fn one_user_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let event = include_str!("../../../events/users-get.json");
        let (status, _, body) = serve(&hub, event).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("user_not_found"))
        );
        let account = hub::testing::account("onedrive")
            .id("00000000-0000-4000-8000-000000000000")
            .build();
        assert_eq!(
            hub.store.create_account(&account).await.unwrap(),
            hub::store::Write::Done
        );
        let (status, _, body) = serve(&hub, event).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            serde_json::to_value(AccountView::from(&account)).unwrap()
        );
    }

    async fn call_on(hub: Arc<Hub>, event: &str) -> (StatusCode, Value) {
        let (status, _, body) = serve(&hub, event).await;
        (status, body)
    }

    #[tokio::test]
    async fn drives_are_listed_for_an_account_and_404_without_one() {
        let event = include_str!("../../../events/users-drives.json");
        let (status, body) = call(event, &[]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("user_not_found"))
        );
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let id = "00000000-0000-4000-8000-000000000000";
        let account = hub::testing::account("google").id(id).build();
        assert_eq!(
            hub.store.create_account(&account).await.unwrap(),
            hub::store::Write::Done
        );
        let (status, body) = call_on(hub, event).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"drives": []}),
            "no drive before the first sync"
        );
    }

    #[tokio::test]
    async fn the_change_feed_takes_only_its_own_cursors() {
        let event = include_str!("../../../events/users-changes.json");
        let (status, body) = call(event, &[]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("user_not_found"))
        );

        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let id = "00000000-0000-4000-8000-000000000000";
        let account = hub::testing::account("onedrive").id(id).build();
        assert_eq!(
            hub.store.create_account(&account).await.unwrap(),
            hub::store::Write::Done
        );
        let (status, body) = call_on(hub.clone(), event).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["changes"], json!([]));
        assert_eq!(body["has_more"], json!(false));
        let issued = body["next_cursor"].as_str().expect("always a string");
        let with_query = |query: &str| event.replace("limit=50", query);
        let (status, again) = call_on(hub.clone(), &with_query(&format!("cursor={issued}"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            again["next_cursor"],
            json!(issued),
            "nothing new: same position"
        );

        let other = hub::changes::FeedCursor::encode("another-account", None);
        for query in [
            "cursor=Zm9yZ2Vk".to_string(),
            "cursor=not%20a%20cursor".to_string(),
            format!("cursor={other}"),
            "limit=0".to_string(),
            "limit=1001".to_string(),
            "limit=ten".to_string(),
        ] {
            let (status, body) = call_on(hub.clone(), &with_query(&query)).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_request")),
                "{query}"
            );
        }
    }

    /// Each route takes only the cursors it issued for the same list: a cursor of `/users`,
    /// of `/changes` or of another account's `/files` is 400 on `/files` and the other way
    /// round (before one codec, any hex was a `/files` cursor).
    #[tokio::test]
    async fn a_cursor_of_another_route_or_account_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let id = "00000000-0000-4000-8000-000000000000";
        let other = "11111111-0000-4000-8000-000000000000";
        for (account, provider) in [(id, "onedrive"), (other, "google")] {
            let account = hub::testing::account(provider).id(account).build();
            assert_eq!(
                hub.store.create_account(&account).await.unwrap(),
                hub::store::Write::Done
            );
            let files: Vec<_> = ["f1", "f2"]
                .iter()
                .map(|f| hub::model::FileEntry::new(*f, *f))
                .collect();
            hub.store
                .put_files(&account.id, &files, 0, 1)
                .await
                .unwrap();
        }
        let files = include_str!("../../../events/users-files.json");
        let changes = include_str!("../../../events/users-changes.json");
        let of = |event: &str, account: &str, query: &str| {
            event.replace(id, account).replace("limit=50", query)
        };
        // A cursor of each list, as the hub issues them.
        let (status, body) = call_on(hub.clone(), &of(files, id, "limit=1")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let own_files = body["next_cursor"].as_str().unwrap().to_string();
        let (_, body) = call_on(hub.clone(), &of(files, other, "limit=1")).await;
        let other_files = body["next_cursor"].as_str().unwrap().to_string();
        let (_, body) = call_on(hub.clone(), &of(changes, id, "limit=1")).await;
        let own_changes = body["next_cursor"].as_str().unwrap().to_string();
        let (_, headers, _) = serve(&hub, &users_list_event("limit=1")).await;
        let link = headers["link"].to_str().unwrap();
        let users = link[link.find("cursor=").unwrap() + 7..link.find('>').unwrap()].to_string();

        // Each is taken where it was issued.
        let (status, body) =
            call_on(hub.clone(), &of(files, id, &format!("cursor={own_files}"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["files"][0]["id"], json!("f2"));
        let (status, body) = call_on(
            hub.clone(),
            &of(changes, id, &format!("cursor={own_changes}")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        for (event, cursor) in [
            (files, &other_files),
            (files, &own_changes),
            (files, &users),
            (changes, &own_files),
            (changes, &users),
        ] {
            let (status, body) =
                call_on(hub.clone(), &of(event, id, &format!("cursor={cursor}"))).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_request")),
                "{cursor} on {}",
                &event[..60]
            );
        }
        for cursor in [&own_files, &own_changes] {
            let (status, _, body) =
                serve(&hub, &users_list_event(&format!("cursor={cursor}"))).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_request")),
                "{cursor} on /users"
            );
        }
    }

    /// `/files` takes the filters of docs/API.md, "Files": a folder's entries, the
    /// tombstones only on asking; an unknown parameter or a bad value is 400 in the API's
    /// error shape.
    #[tokio::test]
    async fn files_take_filters_and_refuse_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let id = "00000000-0000-4000-8000-000000000000";
        let mut account = hub::testing::account("box").id(id).build();
        account.drives = vec![hub::model::Drive::new(hub::model::DriveInfo {
            id: "box".into(),
            name: "Box".into(),
            kind: hub::model::DriveKind::Box,
        })];
        assert_eq!(
            hub.store.create_account(&account).await.unwrap(),
            hub::store::Write::Done
        );
        let entry = |file: &str, parent: &str| hub::model::FileEntry {
            parent_ids: Some(vec![parent.to_string()]),
            drive_id: Some("box".into()),
            ..hub::model::FileEntry::new(file, file)
        };
        let files = [
            entry("folder_1", "folder_0"),
            entry("file_2", "folder_1"),
            entry("file_3", "folder_1"),
            entry("file_4", "folder_0"),
        ];
        hub.store.put_files(id, &files, 0, 1).await.unwrap();
        let gone = [hub::model::FileEntry::tombstone("file_3")];
        hub.store.put_files(id, &gone, 0, 5).await.unwrap();
        let files_event = include_str!("../../../events/users-files.json");
        let ids_of = |body: &serde_json::Value| -> Vec<String> {
            body["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_str().unwrap().to_string())
                .collect()
        };
        for (query, expected) in [
            ("parent_id=folder_1", vec!["file_2"]),
            ("parent_id=folder_1&deleted=true", vec!["file_3"]),
            ("parent_id=root&limit=10", vec!["file_4", "folder_1"]),
            ("limit=10", vec!["file_2", "file_4", "folder_1"]),
        ] {
            let event = files_event.replace("limit=50", query);
            let (status, body) = call_on(hub.clone(), &event).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            assert_eq!(ids_of(&body), expected, "{query}");
        }
        for query in [
            "colour=red",
            "kind=document",
            "deleted=maybe",
            "modified_after=yesterday",
            "path_prefix=relative",
            "parent_id=",
        ] {
            let event = files_event.replace("limit=50", query);
            let (status, body) = call_on(hub.clone(), &event).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_request")),
                "{query}"
            );
            assert!(body["message"].is_string(), "{body}");
        }
    }

    #[tokio::test]
    async fn a_connect_session_is_created_and_bad_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let allow = [(
            "HUB_ALLOWED_RETURN_URLS".to_string(),
            "https://app.example.com/return".to_string(),
        )];
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &allow).await);
        let event = include_str!("../../../events/connect-session.json");
        let (status, headers, body) = serve(&hub, event).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(headers["cache-control"], "no-store");
        let token = body["token"].as_str().unwrap();
        assert_eq!(
            body["connect_url"],
            format!("http://localhost:9000/connect?session={token}")
        );
        assert!(body["expires_at"].as_str().is_some());

        let with_body = |body: &str| {
            let mut event: Value = serde_json::from_str(event).unwrap();
            event["body"] = json!(body);
            event.to_string()
        };
        for (body, code) in [
            ("{}", "invalid_request"),
            (r#"{"owner": ""}"#, "invalid_request"),
            (r#"{"owner": 42}"#, "invalid_request"),
            (r#"{"owner": "a b"}"#, "invalid_request"),
            (
                r#"{"owner": "u", "providers": ["nosuch"]}"#,
                "invalid_request",
            ),
            (
                r#"{"owner": "u", "providers": "google"}"#,
                "invalid_request",
            ),
            (
                r#"{"owner": "u", "return_to": "https://app.example.com.evil.net/return"}"#,
                "invalid_return_to",
            ),
            (
                r#"{"owner": "u", "return_to": "https://app.example.com/return/%2e%2e/x"}"#,
                "invalid_return_to",
            ),
            ("[1]", "invalid_json"),
            ("{", "invalid_json"),
        ] {
            let (status, _, answer) = serve(&hub, &with_body(body)).await;
            assert_eq!(
                (status, answer["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some(code)),
                "{body}"
            );
        }
        let no_key = event.replace(DEV_API_KEY, "wrong");
        let (status, _, _) = serve(&hub, &no_key).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    /// Behind a path (`HUB_PUBLIC_URL=https://example.com/hub`), the links the hub hands out
    /// keep it: a session's `connect_url` and the `Link` to the next page of users.
    #[tokio::test]
    async fn links_keep_the_public_urls_path() {
        let dir = tempfile::tempdir().unwrap();
        let public = [(
            "HUB_PUBLIC_URL".to_string(),
            "https://example.com/hub".to_string(),
        )];
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &public).await);
        let (status, _, body) =
            serve(&hub, include_str!("../../../events/connect-session.json")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = body["token"].as_str().unwrap();
        assert_eq!(
            body["connect_url"],
            format!("https://example.com/hub/connect?session={token}")
        );
        for provider in ["google", "onedrive"] {
            let account = hub::testing::account(provider).build();
            assert_eq!(
                hub.store.create_account(&account).await.unwrap(),
                hub::store::Write::Done
            );
        }
        let (status, headers, _) = serve(&hub, &users_list_event("limit=1")).await;
        assert_eq!(status, StatusCode::OK);
        let link = headers["link"].to_str().unwrap();
        assert!(
            link.starts_with("<https://example.com/hub/users?limit=1&cursor="),
            "{link}"
        );
    }

    #[tokio::test]
    async fn a_malformed_owner_filter_is_refused() {
        let (status, body) = call(&users_list_event("owner=a%20b"), &[]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request"))
        );
        let (status, body) = call(&users_list_event("owner=app-user-1"), &[]).await;
        assert_eq!((status, body), (StatusCode::OK, json!([])));
    }

    /// The proxy's route takes its five methods behind the key, with the path whole (its
    /// slashes and encoding), and refuses a path that could leave the base before anything.
    #[tokio::test]
    async fn the_proxy_route_takes_five_methods_behind_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let send = |method: &str, path: &str, key: Option<&str>| {
            let mut request = axum::http::Request::builder().method(method).uri(path);
            if let Some(key) = key {
                request = request.header("authorization", format!("Bearer {key}"));
            }
            let request = request.body(axum::body::Body::empty()).unwrap();
            let app = app(hub.clone(), ApiKey::new(&SecretString::from(DEV_API_KEY)));
            async move {
                let response = app.oneshot(request).await.unwrap();
                let status = response.status();
                let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                (
                    status,
                    body["error"].as_str().unwrap_or_default().to_string(),
                )
            }
        };
        let key = Some(DEV_API_KEY);
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            assert_eq!(
                send(method, "/users/nobody/proxy/drive/v3/files", key).await,
                (StatusCode::NOT_FOUND, "user_not_found".into()),
                "{method}"
            );
            assert_eq!(
                send(method, "/users/nobody/proxy/drive/v3/files", None)
                    .await
                    .0,
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            send("HEAD", "/users/nobody/proxy/drive/v3/files", key)
                .await
                .0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        for escaping in [
            "/users/nobody/proxy/drive/../../x",
            "/users/nobody/proxy//evil.example/x",
            "/users/nobody/proxy/drive/%2e%2e/x",
        ] {
            assert_eq!(
                send("GET", escaping, key).await,
                (StatusCode::BAD_REQUEST, "invalid_request".into()),
                "{escaping}"
            );
        }
    }
}
