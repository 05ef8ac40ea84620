//! The demo's hold on the stand-ins (`fake-providers --control-port N`, which `scripts/dev`
//! runs): a few HTTP routes that change a file in a provider's default user's drive, as that
//! user would at the provider, so that a person trying the demo can watch the change reach
//! the hub's index, its change feed and the app's events. Served on a port of its own, never
//! the stand-ins' provider port: these are no provider's API, and the recorded traffic that
//! CI checks against the providers' own descriptions (`traffic.rs`) must not hold them.
//!
//! - `POST /{provider}/add` with `{"name"}`: a new text file at the top of the drive;
//!   201 `{"id"}`.
//! - `POST /{provider}/rename` with `{"file", "name"}`: renames a file; 204.
//! - `POST /{provider}/delete` with `{"file"}`: deletes a file (Box: trashes and purges); 204.
//!
//! `provider` is the hub's name (`google`, `onedrive`, `dropbox`, `box`). An unknown provider
//! or file is 404, a missing field 400: a mistaken click answers, it never panics the
//! stand-ins.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::handle::Handle;
use crate::state::{FileSpec, Provider};
use crate::{BoxChange, BoxKind};

/// The control routes, acting through `handle`.
pub fn router(handle: Handle) -> Router {
    Router::new()
        .route("/{provider}/{action}", post(change))
        .with_state(handle)
}

/// Ids of files the demo adds, unique for the stand-ins' life.
static ADDED: AtomicU64 = AtomicU64::new(1);

fn provider_of(name: &str) -> Option<Provider> {
    match name {
        "google" => Some(Provider::Google),
        "onedrive" => Some(Provider::Microsoft),
        "dropbox" => Some(Provider::Dropbox),
        "box" => Some(Provider::Box),
        _ => None,
    }
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

async fn change(
    State(handle): State<Handle>,
    Path((provider, action)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let Some(provider) = provider_of(&provider) else {
        return problem(StatusCode::NOT_FOUND, "no such provider");
    };
    let user = provider.default_user();
    let text = |name: &str| body[name].as_str().filter(|value| !value.is_empty());
    match (action.as_str(), text("file"), text("name")) {
        ("add", _, Some(name)) => {
            let id = if provider == Provider::Box {
                handle.box_add_file(user, name, crate::BOX_ROOT_ID)
            } else {
                let n = ADDED.fetch_add(1, Ordering::Relaxed);
                let id = match provider {
                    Provider::Google => format!("1dEmOaDdEd{n:04}xQz"),
                    Provider::Microsoft => format!("5A3C0FFEE5A3C0FF!9{n:04}"),
                    _ => format!("id:dEmOaDdEd{n:04}AAAAAAAAB"),
                };
                let file = FileSpec {
                    mime_type: "text/plain".into(),
                    size: Some(name.len() as u64),
                    modified_time: chrono::Utc::now(),
                    ..FileSpec::new(id.clone(), name)
                };
                handle.add_file(provider, user, file);
                id
            };
            (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
        }
        ("rename", Some(file), Some(name)) if live(&handle, provider, user, file) => {
            if provider == Provider::Box {
                handle.box_change(user, BoxKind::File, file, BoxChange::Rename(name.into()));
            } else {
                handle.modify_file(provider, user, file, name);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        ("delete", Some(file), _) if live(&handle, provider, user, file) => {
            if provider == Provider::Box {
                handle.box_delete(user, BoxKind::File, file);
            } else {
                handle.delete_file_for(provider, user, file);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        ("rename" | "delete", Some(_), _) => problem(StatusCode::NOT_FOUND, "no such file"),
        ("add" | "rename" | "delete", _, _) => {
            problem(StatusCode::BAD_REQUEST, "a field is missing")
        }
        _ => problem(StatusCode::NOT_FOUND, "no such change"),
    }
}

/// Whether `id` is a live file (not a folder) of the user's drive.
fn live(handle: &Handle, provider: Provider, user: &str, id: &str) -> bool {
    if provider == Provider::Box {
        return handle
            .box_items(user)
            .iter()
            .any(|(kind, item, _)| *kind == BoxKind::File && item == id);
    }
    handle.is_live_file(provider, user, id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeProviders;

    async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn the_demo_adds_renames_and_deletes_files_at_the_stand_ins() {
        let providers = FakeProviders::start().await;
        crate::sample_drive::add_sample_drives(&providers);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let control = router(providers.handle());
        tokio::spawn(async move { axum::serve(listener, control).await });

        for provider in ["google", "onedrive", "dropbox", "box"] {
            let (status, added) = post(
                &base,
                &format!("/{provider}/add"),
                json!({"name": "Note.txt"}),
            )
            .await;
            assert_eq!(status, 201, "{provider}: {added}");
            let id = added["id"].as_str().unwrap().to_string();
            let (status, _) = post(
                &base,
                &format!("/{provider}/rename"),
                json!({"file": id, "name": "Note (renamed).txt"}),
            )
            .await;
            assert_eq!(status, 204, "{provider}");
            let (status, _) =
                post(&base, &format!("/{provider}/delete"), json!({"file": id})).await;
            assert_eq!(status, 204, "{provider}");
            // Gone now: a second delete is a 404, not a panic.
            let (status, _) =
                post(&base, &format!("/{provider}/delete"), json!({"file": id})).await;
            assert_eq!(status, 404, "{provider}");
        }
        let (status, _) = post(&base, "/nowhere/add", json!({"name": "x"})).await;
        assert_eq!(status, 404);
        let (status, _) = post(&base, "/google/add", json!({})).await;
        assert_eq!(status, 400);
    }
}
