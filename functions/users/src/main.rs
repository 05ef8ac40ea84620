//! `users`: accounts (`GET /users`, `GET /users/{id}/files`, `GET /users/{id}/changes`,
//! `DELETE /users/{id}`, behind the API key) and the public `GET /config`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get};
use axum::{Json, Router};
use hub::accounts::{self, ConfigView, FilesPage};
use hub::changes::{self, ChangesPage};
use hub::model::AccountView;
use hub::web::{require_api_key, with_fallbacks, ApiKey, ChangesQuery, FilesQuery, PathParam};
use hub::{Hub, HubError};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub::telemetry::init();
    let hub = Arc::new(Hub::from_env().await?);
    let api_key = ApiKey::new(&hub.config.api_key()?);
    lambda_http::run(app(hub, api_key)).await
}

fn app(hub: Arc<Hub>, api_key: ApiKey) -> Router {
    let management = Router::new()
        .route("/users", get(list_accounts))
        .route("/users/{id}", delete(delete_account))
        .route("/users/{id}/files", get(list_files))
        .route("/users/{id}/changes", get(list_changes))
        .route_layer(from_fn_with_state(api_key, require_api_key));
    with_fallbacks(management.route("/config", get(config)).with_state(hub))
}

async fn list_accounts(State(hub): State<Arc<Hub>>) -> Result<Json<Vec<AccountView>>, HubError> {
    Ok(Json(accounts::list(&hub).await?))
}

async fn list_files(
    State(hub): State<Arc<Hub>>,
    PathParam(id): PathParam,
    FilesQuery { limit, after }: FilesQuery,
) -> Result<Json<FilesPage>, HubError> {
    Ok(Json(accounts::files(&hub, &id, limit, after).await?))
}

async fn list_changes(
    State(hub): State<Arc<Hub>>,
    PathParam(id): PathParam,
    ChangesQuery { limit, cursor }: ChangesQuery,
) -> Result<Json<ChangesPage>, HubError> {
    Ok(Json(changes::feed(&hub, &id, cursor, limit).await?))
}

async fn delete_account(
    State(hub): State<Arc<Hub>>,
    PathParam(id): PathParam,
) -> Result<StatusCode, HubError> {
    accounts::delete(&hub, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn config(State(hub): State<Arc<Hub>>) -> Json<ConfigView> {
    Json(accounts::config(&hub))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use hub::testing::DEV_API_KEY;
    use lambda_http::tower::ServiceExt;
    use secrecy::SecretString;
    use serde_json::{json, Value};

    async fn call(event: &str, extra: &[(String, String)]) -> (StatusCode, Value) {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), extra).await);
        call_on(hub, event).await
    }

    async fn call_on(hub: Arc<Hub>, event: &str) -> (StatusCode, Value) {
        let key = ApiKey::new(&SecretString::from(DEV_API_KEY));
        let request = lambda_http::request::from_str(event).expect("sample event parses");
        let response = app(hub, key).oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
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
}
