//! `auth`: the OAuth2 login (`GET /auth/{provider}/login`) and callback
//! (`GET /auth/{provider}/callback`). Public routes: the `state` and PKCE protect them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hub::login::{self, Callback};
use hub::model::AccountView;
use hub::web::{with_fallbacks, PathParam, QueryParams};
use hub::{Hub, HubError};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub::telemetry::init();
    let hub = Arc::new(Hub::from_env().await?);
    lambda_http::run(app(hub)).await
}

fn app(hub: Arc<Hub>) -> Router {
    with_fallbacks(
        Router::new()
            .route("/auth/{provider}/login", get(begin_login))
            .route("/auth/{provider}/callback", get(complete_login))
            .with_state(hub),
    )
}

async fn begin_login(
    State(hub): State<Arc<Hub>>,
    PathParam(provider): PathParam,
) -> Result<Response, HubError> {
    let consent_url = login::begin(&hub, &provider).await?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, consent_url),
            (header::CACHE_CONTROL, "no-store".into()),
        ],
    )
        .into_response())
}

async fn complete_login(
    State(hub): State<Arc<Hub>>,
    PathParam(provider): PathParam,
    mut query: QueryParams,
) -> Result<Json<AccountView>, HubError> {
    let callback = Callback {
        code: query.take("code"),
        state: query.take("state"),
        error: query.take("error"),
    };
    Ok(Json(login::complete(&hub, &provider, callback).await?))
}
