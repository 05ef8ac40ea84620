//! Single-use claims: a file created under the lock.

use super::*;

#[async_trait]
impl ClaimStore for LocalStore {
    async fn claim(&self, key: &str, _expires_at: DateTime<Utc>) -> HubResult<bool> {
        // Local claims are few (one per fan-out step) and are kept: nothing sweeps them.
        let key = key.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = claim_path(root, &key);
            if path.exists() {
                return Ok(false);
            }
            write_durably(&path, &())?;
            Ok(true)
        })
        .await
    }

    async fn release_claim(&self, key: &str) -> HubResult<()> {
        let key = key.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            remove_durably(&claim_path(root, &key)).map(|_| ())
        })
        .await
    }
}
