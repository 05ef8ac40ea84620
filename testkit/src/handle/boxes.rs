//! [`Handle`]'s controls of Box users' trees: files and folders added, changed, moved,
//! copied, trashed, restored and purged, each recorded in the user's event stream, and how
//! that stream is served.

use super::Handle;
use crate::box_com::changes::BoxChange;
use crate::box_com::BoxKind;

impl Handle {
    /// Adds a folder named `name` in the folder `parent` (`"0"`: the root) of the Box user;
    /// returns its id.
    pub fn box_add_folder(&self, user: &str, name: &str, parent: &str) -> String {
        self.with(|s| s.box_add(user, BoxKind::Folder, name, parent))
    }

    /// Adds a file; returns its id (which may equal a folder's: Box numbers them apart).
    pub fn box_add_file(&self, user: &str, name: &str, parent: &str) -> String {
        self.with(|s| s.box_add(user, BoxKind::File, name, parent))
    }

    /// Applies a change to an item of the Box user, recording its event.
    pub fn box_change(&self, user: &str, kind: BoxKind, id: &str, change: BoxChange) {
        self.with(|s| s.box_change(user, kind, id, change))
    }

    /// Copies an item into the folder `parent`; returns the copy's id.
    pub fn box_copy(&self, user: &str, kind: BoxKind, id: &str, parent: &str) -> String {
        self.with(|s| s.box_copy(user, kind, id, parent))
    }

    /// Trashes and purges an item: one `ITEM_TRASH` event, then gone for good.
    pub fn box_delete(&self, user: &str, kind: BoxKind, id: &str) {
        self.with(|s| {
            s.box_change(user, kind, id, BoxChange::Trash);
            s.box_change(user, kind, id, BoxChange::Purge);
        })
    }

    /// `true`: every page of the Box user's events holds each event twice, the repeats in
    /// reverse order, as Box may.
    pub fn box_repeat_events(&self, user: &str, repeat: bool) {
        self.with(|s| s.box_tree(user).repeat_events = repeat)
    }

    /// The bytes the stand-in answers `GET /files/{id}/thumbnail.png` with for the file.
    pub fn box_thumbnail(&self, file_id: &str) -> Vec<u8> {
        crate::box_com::writes::thumbnail(file_id)
    }

    /// The Box user's active items as (type, id, path from the root), for comparing with an
    /// index: a file under a trashed folder is not among them.
    pub fn box_items(&self, user: &str) -> Vec<(BoxKind, String, String)> {
        self.with(|s| s.box_tree(user).reachable_paths())
    }
}
