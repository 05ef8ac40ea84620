//! The stand-ins' server: [`FakeProviders`] binds a loopback port and serves every provider
//! endpoint the hub calls, each route to its provider's module, behind the fault layer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::json;

use crate::handle::Handle;
use crate::state::{self, Provider, Shared};
use crate::{
    box_com, download_host, downloads, dropbox, faults, google, microsoft, oauth, push, traffic,
};

/// The running stand-ins; the server stops when this is dropped. All the controls are on
/// [`Handle`], which this derefs to; [`FakeProviders::handle`] gives a clone to move around.
pub struct FakeProviders {
    handle: Handle,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::ops::Deref for FakeProviders {
    type Target = Handle;

    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for FakeProviders {
    fn drop(&mut self) {
        // Graceful, so that kept-alive connections close too instead of serving on.
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl FakeProviders {
    /// Starts on a free loopback port.
    pub async fn start() -> FakeProviders {
        FakeProviders::start_on(0).await
    }

    /// Starts on 127.0.0.1:`port` (0: any free port). Panics if the port cannot be bound.
    pub async fn start_on(port: u16) -> FakeProviders {
        FakeProviders::serve(port, traffic::file_from_env()).await
    }

    /// Starts, recording every exchange to `traffic` when given (see `traffic.rs`).
    async fn serve(port: u16, traffic: Option<PathBuf>) -> FakeProviders {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("binding 127.0.0.1:{port}: {e}"));
        let address = listener
            .local_addr()
            .expect("a bound socket has an address");
        let url = format!("http://{address}");
        let state = Arc::new(Mutex::new(state::State::new(url.clone())));
        let app = router(state.clone(), traffic);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await;
        });
        FakeProviders {
            handle: Handle::new(url, state),
            shutdown: Some(shutdown),
        }
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }
}

fn router(state: Shared, traffic: Option<PathBuf>) -> Router {
    let json_error = |status: StatusCode, message: &'static str| {
        move || async move {
            (
                status,
                Json(json!({"error": {"code": status.as_u16(), "message": message}})),
            )
        }
    };
    Router::new()
        .route(
            "/google/o/oauth2/v2/auth",
            oauth::authorize_endpoint(Provider::Google),
        )
        .route("/google/token", oauth::token_endpoint(Provider::Google))
        .route("/google/revoke", post(oauth::google_revoke))
        .route("/google/oauth2/v3/userinfo", get(google::userinfo))
        .route(
            "/google/drive/v3/changes/startPageToken",
            get(google::start_page_token),
        )
        .route(
            "/google/drive/v3/files",
            get(google::list_files).post(google::writes::create_file),
        )
        .route(
            "/google/upload/drive/v3/files",
            post(google::writes::upload_media),
        )
        .route(
            "/google/drive/v3/files/{id}/permissions",
            get(google::writes::list_permissions),
        )
        .route(
            "/google/drive/v3/files/{id}",
            get(google::content::get_file),
        )
        .route(
            "/google/drive/v3/files/{id}/export",
            get(google::content::export_file),
        )
        .route("/google/drive/v3/about", get(google::content::about))
        .route(
            "/google/feeds/download/export",
            get(google::content::export_link_download),
        )
        .route("/google/drive/v3/drives", get(google::drives::list_drives))
        .route("/google/drive/v3/changes", get(google::list_changes))
        .route("/google/drive/v3/changes/watch", post(push::watch_changes))
        .route("/google/drive/v3/channels/stop", post(push::stop_channel))
        .route("/graph/v1.0/subscriptions", post(push::create_subscription))
        .route(
            "/graph/v1.0/subscriptions/{id}",
            patch(push::renew_subscription).delete(push::delete_subscription),
        )
        .route(
            "/microsoft/{tenant}/oauth2/v2.0/authorize",
            oauth::authorize_endpoint(Provider::Microsoft),
        )
        .route(
            "/microsoft/{tenant}/oauth2/v2.0/token",
            oauth::token_endpoint(Provider::Microsoft),
        )
        .route("/graph/v1.0/me", get(microsoft::me))
        .route("/graph/v1.0/me/drive", get(microsoft::my_drive))
        .route("/graph/v1.0/me/drive/root/delta", get(microsoft::delta))
        // Graph's functions in a path segment: `search(q='...')`.
        .route(
            "/graph/v1.0/me/drive/root/{function}",
            get(microsoft::search::search),
        )
        .route(
            "/graph/v1.0/drives/{drive_id}/root/delta",
            get(microsoft::drive_delta),
        )
        .route(
            "/graph/v1.0/drives/{drive_id}/items/{item_id}/children",
            get(microsoft::children::list_children).post(microsoft::writes::create_in_folder),
        )
        .route(
            "/graph/v1.0/me/drive/root/children",
            post(microsoft::writes::create_in_root),
        )
        .route(
            "/graph/v1.0/me/drive/items/{item_id}/permissions",
            get(microsoft::writes::my_permissions),
        )
        .route(
            "/graph/v1.0/drives/{drive_id}/items/{item_id}/permissions",
            get(microsoft::writes::drive_permissions),
        )
        .route(
            "/graph/v1.0/drives/{drive_id}/items/{item_id}/content",
            get(microsoft::content::item_content),
        )
        .route(
            "/graph/v1.0/me/followedSites",
            get(microsoft::sites::followed_sites),
        )
        .route(
            "/graph/v1.0/sites/{site_id}/drives",
            get(microsoft::sites::site_drives),
        )
        .route(
            "/dropbox/oauth2/authorize",
            oauth::authorize_endpoint(Provider::Dropbox),
        )
        .route(
            "/dropbox/oauth2/token",
            oauth::token_endpoint(Provider::Dropbox),
        )
        .route(
            "/dropbox/2/users/get_current_account",
            post(dropbox::get_current_account),
        )
        .route("/dropbox/2/files/list_folder", post(dropbox::list_folder))
        .route(
            "/dropbox/2/files/search_v2",
            post(dropbox::search::search_v2),
        )
        .route(
            "/dropbox/2/files/list_folder/continue",
            post(dropbox::list_folder_continue),
        )
        .route("/dropbox/2/auth/token/revoke", post(dropbox::revoke))
        .route(
            "/dropbox/2/files/create_folder_v2",
            post(dropbox::writes::create_folder_v2),
        )
        .route(
            "/dropbox/2/files/get_temporary_link",
            post(dropbox::content::get_temporary_link),
        )
        // The content host (`content.dropboxapi.com`), under the stand-ins' Dropbox prefix.
        .route(
            "/dropbox/content/2/files/export",
            post(dropbox::content::export),
        )
        .route(
            "/box/api/oauth2/authorize",
            oauth::authorize_endpoint(Provider::Box),
        )
        .route("/box/oauth2/token", oauth::token_endpoint(Provider::Box))
        .route("/box/oauth2/revoke", post(box_com::revoke))
        .route("/box/2.0/users/me", get(box_com::users_me))
        .route("/box/2.0/folders/{id}", get(box_com::folder))
        .route("/box/2.0/folders/{id}/items", get(box_com::folder_items))
        .route("/box/2.0/files/{id}", get(box_com::file))
        .route("/box/2.0/folders", post(box_com::writes::create_folder))
        .route(
            "/box/2.0/files/{id}/thumbnail.png",
            get(box_com::writes::file_thumbnail),
        )
        .route(
            "/box/2.0/files/{id}/content",
            get(box_com::content::file_content),
        )
        .route("/box/2.0/events", get(box_com::events))
        .route("/box/2.0/search", get(box_com::search::search))
        .route(
            "/graph-download/{secret}",
            get(|s, p, h| download_host::serve(downloads::Host::Graph, s, p, h)),
        )
        .route(
            "/box-download/{secret}",
            get(|s, p, h| download_host::serve(downloads::Host::Box, s, p, h)),
        )
        .route(
            "/dropbox-download/{secret}",
            get(|s, p, h| download_host::serve(downloads::Host::Dropbox, s, p, h)),
        )
        .fallback(json_error(StatusCode::NOT_FOUND, "Not found"))
        .method_not_allowed_fallback(json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            faults::record_and_inject_faults,
        ))
        .with_state(state)
        // Outermost, so that what is recorded is what the client got, injected faults included.
        .layer(middleware::from_fn_with_state(traffic, traffic::record))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recorder sits in front of every route, injected faults included, and what it
    /// writes holds no credential.
    #[tokio::test]
    async fn every_exchange_is_recorded_without_its_credentials() {
        let file = std::env::temp_dir().join(format!("traffic-{}.jsonl", uuid::Uuid::new_v4()));
        let providers = FakeProviders::serve(0, Some(file.clone())).await;
        providers.fail_next("/dropbox/2/files/list_folder", 429, Some("3"), 1);
        let client = reqwest::Client::new();
        let base = providers.base_url();
        let drive = client
            .get(format!("{base}/google/drive/v3/files?fields=files(id)"))
            .bearer_auth("secret-access-token")
            .send()
            .await
            .unwrap();
        let listing = client
            .post(format!("{base}/dropbox/2/files/list_folder"))
            .bearer_auth("secret-access-token")
            .header("content-type", "application/json")
            .body(r#"{"path": ""}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(
            (drive.status().as_u16(), listing.status().as_u16()),
            (401, 429)
        );
        drop(providers);

        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert!(!text.contains("secret-access-token"), "{text}");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["provider"], "google");
        assert_eq!(lines[0]["query"], json!([["fields", "files(id)"]]));
        assert_eq!(lines[0]["status"], 401);
        assert_eq!(lines[0]["response"]["error"]["code"], 401);
        assert_eq!(lines[1]["provider"], "dropbox");
        assert_eq!(lines[1]["request"], json!({"path": ""}));
        assert_eq!(lines[1]["status"], 429);
        assert_eq!(
            lines[1]["response"]["error_summary"],
            "too_many_requests/..."
        );
    }
}
