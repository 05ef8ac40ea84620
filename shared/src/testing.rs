//! Helpers for the functions' tests (feature `testing`): a hub on the local backend in a
//! given directory, configured like `.env.example`.

use std::path::Path;

use crate::config::Env;
use crate::hub::Hub;
use crate::providers::http::RetryPolicy;

/// The development API key of `.env.example` and the sample events.
pub const DEV_API_KEY: &str = "local-dev-key";

/// A hub on the local backend under `data_dir`, with both providers configured (against
/// unreachable endpoints unless `extra` points them somewhere) plus `extra` variables.
pub async fn local_hub(data_dir: &Path, extra: &[(String, String)]) -> Hub {
    let mut vars = vec![
        ("HUB_BACKEND".to_string(), "local".to_string()),
        ("HUB_DATA_DIR".into(), data_dir.display().to_string()),
        ("HUB_API_KEY".into(), DEV_API_KEY.into()),
        ("GOOGLE_CLIENT_ID".into(), "google-client-id".into()),
        ("GOOGLE_CLIENT_SECRET".into(), "google-client-secret".into()),
        ("ONEDRIVE_CLIENT_ID".into(), "onedrive-client-id".into()),
        (
            "ONEDRIVE_CLIENT_SECRET".into(),
            "onedrive-client-secret".into(),
        ),
    ];
    vars.extend(extra.iter().cloned());
    Hub::build(&Env::from_map(vars), RetryPolicy::default())
        .await
        .expect("test hub")
}
