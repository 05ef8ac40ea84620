//! `users`: accounts (`GET /users`, `GET /users/{id}/files`, `DELETE /users/{id}`, behind the
//! API key) and the public `GET /config`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get};
use axum::{Json, Router};
use hub::accounts::{self, ConfigView, FilesPage};
use hub::model::AccountView;
use hub::web::{require_api_key, with_fallbacks, ApiKey, PathParam, QueryParams};
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
        .route_layer(from_fn_with_state(api_key, require_api_key));
    with_fallbacks(management.route("/config", get(config)).with_state(hub))
}

async fn list_accounts(State(hub): State<Arc<Hub>>) -> Result<Json<Vec<AccountView>>, HubError> {
    Ok(Json(accounts::list(&hub).await?))
}

async fn list_files(
    State(hub): State<Arc<Hub>>,
    PathParam(id): PathParam,
    query: QueryParams,
) -> Result<Json<FilesPage>, HubError> {
    Ok(Json(
        accounts::files(&hub, &id, query.get("limit"), query.get("cursor")).await?,
    ))
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
