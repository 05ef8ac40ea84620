//! Content links: a file each, swept with the login states once expired.

use super::*;

#[async_trait]
impl LinkStore for LocalStore {
    async fn put_content_link(&self, link: &ContentLink) -> HubResult<()> {
        let path = link_path(&self.root, &link.id);
        self.put_sweeping(path, link.clone()).await
    }

    async fn get_content_link(&self, id: &str) -> HubResult<Option<ContentLink>> {
        if !storable(id) {
            return Ok(None);
        }
        let id = id.to_string();
        self.run(move |root| read_json(&link_path(root, &id))).await
    }
}
