//! [`Handle`]'s controls of who consents and what their drives hold: identities, the
//! consent page's mode, files added, renamed and deleted (each recorded as a change).

use super::Handle;
use crate::dropbox;
use crate::state::{FileSpec, Provider};

impl Handle {
    /// From now on consents of this provider log in as this user (until changed again).
    pub fn set_next_identity(&self, provider: impl Into<Provider>, id: &str, email: &str) {
        let provider = provider.into();
        self.with(|s| s.set_identity(provider, id, email))
    }

    /// From now on every consent logs in a new user (`<id>-<n>`, `user<n>@example.com`; a
    /// Dropbox account id keeps its 40 characters, its end giving way to `-<n>`) whose drive
    /// starts as a copy of the current identity's drive, for load tests.
    pub fn fresh_identity_per_consent(&self) {
        self.with(|s| s.fresh_identities = true)
    }

    /// The next consent is refused by the user (`error=access_denied`). Instant mode only: on
    /// the interactive page the user's button decides.
    pub fn deny_next_consent(&self) {
        self.with(|s| s.deny_next_consent = true)
    }

    /// `true`: the authorize endpoints answer a checked request with an HTML consent page
    /// (the app's name, the provider's, the signed-in user's email, Allow and Deny buttons
    /// that post it back), for people and browser tests. `false` (the default): the stand-in
    /// consents at once with the redirect, for clients that follow redirects without a
    /// browser. Either way Allow is the instant consent and Deny the provider's refusal.
    pub fn interactive_consent(&self, interactive: bool) {
        self.with(|s| s.interactive_consent = interactive)
    }

    /// Adds `n` files (`file-00001.txt`, ...) to the default user's drive; returns their ids.
    pub fn add_files(&self, provider: impl Into<Provider>, n: usize) -> Vec<String> {
        let provider = provider.into();
        self.add_files_for(provider, provider.default_user(), n)
    }

    /// Adds `n` files to `user`'s drive; returns their ids.
    pub fn add_files_for(
        &self,
        provider: impl Into<Provider>,
        user: &str,
        n: usize,
    ) -> Vec<String> {
        let provider = provider.into();
        self.with(|s| s.add_files(provider, user, n))
    }

    /// Adds (or replaces) one file, recorded as a change.
    pub fn add_file(&self, provider: impl Into<Provider>, user: &str, file: FileSpec) {
        let provider = provider.into();
        self.with(|s| s.drive(provider, user).record(file, false))
    }

    /// Whether `id` is a live file (not a folder) of `user`'s drive.
    pub fn is_live_file(&self, provider: impl Into<Provider>, user: &str, id: &str) -> bool {
        let provider = provider.into();
        self.with(|s| {
            s.drive(provider, user)
                .files
                .get(id)
                .is_some_and(|file| !file.deleted && !file.spec.is_folder())
        })
    }

    /// Renames a file (and bumps its modified time). Panics if there is no such live file.
    /// Dropbox reports a rename as a `deleted` entry at the old path followed by the entry at
    /// the new one, and a renamed folder's contents again at their new paths.
    pub fn modify_file(&self, provider: impl Into<Provider>, user: &str, id: &str, new_name: &str) {
        let provider = provider.into();
        self.with(|s| {
            let drive = s.drive(provider, user);
            let mut spec = drive.live(id);
            spec.name = new_name.to_string();
            spec.modified_time = chrono::Utc::now();
            drive.record(spec, false);
            // Dropbox is path-based: a renamed folder's contents are at new paths, so its
            // feed reports them again (Graph and Drive track items by id and do not).
            if provider == Provider::Dropbox {
                for moved in drive.descendants(id) {
                    drive.record(moved, false);
                }
            }
        })
    }

    /// Renames the first `n` live files of the default user to `renamed-…`; returns their ids.
    pub fn change_files(&self, provider: impl Into<Provider>, n: usize) -> Vec<String> {
        let provider = provider.into();
        let user = provider.default_user();
        let ids: Vec<String> = self.with(|s| {
            let files = &s.drive(provider, user).files;
            let live = files.values().filter(|f| !f.deleted);
            live.take(n).map(|f| f.spec.id.clone()).collect()
        });
        for id in &ids {
            let name = self.with(|s| s.drive(provider, user).live(id).name);
            self.modify_file(provider, user, id, &format!("renamed-{name}"));
        }
        ids
    }

    /// Deletes a file of the default user: a removal in Drive's changes, a `deleted` facet in
    /// Graph's delta. Panics if there is no such live file.
    pub fn delete_file(&self, provider: impl Into<Provider>, id: &str) {
        let provider = provider.into();
        self.delete_file_for(provider, provider.default_user(), id)
    }

    /// Deletes a file of `user`, as [`Handle::delete_file`].
    pub fn delete_file_for(&self, provider: impl Into<Provider>, user: &str, id: &str) {
        let provider = provider.into();
        self.with(|s| {
            let drive = s.drive(provider, user);
            let spec = drive.live(id);
            drive.record(spec, true);
        })
    }

    /// Deletes a folder of `user` and everything under it. Dropbox then reports one `deleted`
    /// entry for the folder and none for its contents; Drive and Graph report each item.
    /// Panics if there is no such live folder.
    pub fn delete_folder_tree(&self, provider: impl Into<Provider>, user: &str, id: &str) {
        let provider = provider.into();
        self.with(|s| {
            let drive = s.drive(provider, user);
            let folder = drive.live(id);
            let contents = drive.descendants(id);
            // The folder goes first, so a feed in change order never shows a child deleted
            // under a live folder.
            for spec in std::iter::once(folder).chain(contents) {
                drive.record(spec, true);
            }
        })
    }
}

/// Google shared drives: membership comes and goes as a `drive` change.
impl Handle {
    /// `user` joins the Google shared drive `id` named `name` (a `drive` change).
    pub fn join_shared_drive(&self, user: &str, id: &str, name: &str) {
        self.with(|s| {
            s.drive(Provider::Google, user)
                .set_membership(id, name, true)
        })
    }

    /// `user` joins the Google shared drive `id` named `name`, which already holds plain-text
    /// files with the ids `files`: changes made before the user joined are not in the user's
    /// changes feed, so only a listing of the drive finds them.
    pub fn join_shared_drive_holding(&self, user: &str, id: &str, name: &str, files: &[&str]) {
        self.with(|s| {
            let drive = s.drive(Provider::Google, user);
            drive.set_membership(id, name, false);
            for file in files {
                let spec = FileSpec::new(*file, format!("{file}.txt")).in_shared_drive(id);
                drive.record(spec, false);
            }
            drive.set_membership(id, name, true);
        })
    }

    /// `user` leaves (or is removed from) the Google shared drive `id`: its files are out of
    /// the user's listings and changes, and the changes feed reports the drive removed.
    pub fn leave_shared_drive(&self, user: &str, id: &str) {
        self.with(|s| {
            let drive = s.drive(Provider::Google, user);
            let name = drive
                .shared_drives
                .get(id)
                .map(|d| d.name.clone())
                .unwrap_or_else(|| id.to_string());
            drive.set_membership(id, &name, false)
        })
    }

    /// Makes the Dropbox user `user` a member of a team with a team space named `team`:
    /// `get_current_account` then answers a `team` root_info whose root namespace differs from
    /// the home one; what the user had is in the member folder, at the top of the team space
    /// (a listing without `Dropbox-API-Path-Root` still sees it as before). Returns the member
    /// folder's id: files added with it as their parent are the user's own, those added at the
    /// top are team folders.
    pub fn make_dropbox_team_member(&self, user: &str, team: &str) -> String {
        self.with(|s| dropbox::team::join(s, user, team))
    }

    /// The team space of `user` moves to a new root namespace id (same content): calls rooted
    /// at the old root get 422 `invalid_root`.
    pub fn move_dropbox_team_root(&self, user: &str) {
        self.with(|s| dropbox::team::move_root(s, user))
    }

    /// `user` leaves the team space: the team folders are no longer seen, the member folder's
    /// content is the whole Dropbox again (root and home namespace are one), and calls rooted
    /// at the old root get 422 `invalid_root`.
    pub fn leave_dropbox_team(&self, user: &str) {
        self.with(|s| dropbox::team::leave(s, user))
    }

    /// The Dropbox user's root namespace id now (the team space's, else the home one).
    pub fn dropbox_root_namespace(&self, user: &str) -> String {
        self.with(|s| dropbox::team::current_root(s, user))
    }
}

/// SharePoint sites and their document libraries (Graph), which a work or school user follows.
impl Handle {
    /// `user` follows the site `site_id` named `name`, which holds the document libraries
    /// `libraries` (drive id, name); a site or library already known keeps its contents.
    pub fn follow_site(&self, user: &str, site_id: &str, name: &str, libraries: &[(&str, &str)]) {
        self.with(|s| {
            let site = s.graph_sites.entry(site_id.to_string()).or_default();
            site.name = name.to_string();
            for (id, library) in libraries {
                site.libraries.insert(id.to_string(), library.to_string());
            }
            for (id, _) in libraries {
                s.drive(Provider::Microsoft, id);
            }
            s.followed_sites
                .entry(user.to_string())
                .or_default()
                .insert(site_id.to_string());
        })
    }

    /// `user` stops following the site `site_id` (the site and its libraries stay).
    pub fn unfollow_site(&self, user: &str, site_id: &str) {
        self.with(|s| {
            if let Some(followed) = s.followed_sites.get_mut(user) {
                followed.remove(site_id);
            }
        })
    }

    /// Adds (or replaces) one item of the document library `drive_id`, recorded as a change.
    pub fn add_library_file(&self, drive_id: &str, file: FileSpec) {
        self.with(|s| s.drive(Provider::Microsoft, drive_id).record(file, false))
    }

    /// Removes an item of `user`'s drive (or of a library, by its drive id) without
    /// recording a change: a deletion Graph's delta does not report, which only a new
    /// enumeration finds ("delta may omit deletions", see the hub's periodic reconciliation).
    pub fn drop_file_silently(&self, provider: impl Into<Provider>, owner: &str, id: &str) {
        let provider = provider.into();
        self.with(|s| {
            s.drive(provider, owner).files.remove(id);
        })
    }
}
