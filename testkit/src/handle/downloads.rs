//! [`Handle`]'s controls of files' bytes and the download links issued to them
//! (`downloads.rs`).

use super::Handle;
use crate::box_com::BoxKind;
use crate::downloads::Host;
use crate::state::Provider;

impl Handle {
    /// The bytes of the file `id` kept under `owner` (a user, or a Graph library's drive id)
    /// from now on; its size follows, recorded as a change (Google, Microsoft and Dropbox
    /// drives; a Box file's size in its tree).
    pub fn set_file_bytes(
        &self,
        provider: impl Into<Provider>,
        owner: &str,
        id: &str,
        bytes: &[u8],
    ) {
        let provider = provider.into();
        self.with(|s| {
            let host = match provider {
                Provider::Microsoft => Host::Graph,
                Provider::Box => Host::Box,
                Provider::Dropbox => Host::Dropbox,
                Provider::Google => panic!("the Google stand-in serves no download links"),
            };
            s.downloads.set_bytes(host, owner, id, bytes.to_vec());
            if provider == Provider::Box {
                // A new version, as an upload makes it (`ITEM_UPLOAD`).
                let tree = s.box_tree(owner);
                let key = (BoxKind::File, id.to_string());
                let item = tree.items.get_mut(&key).expect("a Box file of the user");
                item.size = bytes.len() as u64;
                item.version += 1;
                item.sequence_id += 1;
                item.modified_at = chrono::Utc::now();
                tree.record(BoxKind::File, id, "ITEM_UPLOAD");
            } else {
                let drive = s.drive(provider, owner);
                let mut spec = drive.live(id);
                spec.size = Some(bytes.len() as u64);
                drive.record(spec, false);
            }
        })
    }

    /// Every download link issued so far answers as its host answers an expired one.
    pub fn expire_download_links(&self) {
        self.with(|s| s.downloads.expire_all())
    }
}
