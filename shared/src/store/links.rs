//! The content links role: the hub's short-lived links to the bytes it streams
//! (docs/API.md, "File content"), kept under the hash of their token.

use async_trait::async_trait;

use crate::error::HubResult;
use crate::model::ContentLink;

#[async_trait]
pub trait LinkStore: Send + Sync {
    /// Stores a new link under its id (the hash of its token) until it expires.
    async fn put_content_link(&self, link: &ContentLink) -> HubResult<()>;

    /// The link of this id, expired or not (the caller checks); `None` when unknown.
    async fn get_content_link(&self, id: &str) -> HubResult<Option<ContentLink>>;
}
