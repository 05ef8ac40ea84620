//! Login states, connect sessions and content links, swept when expired, and the account writes that spend
//! a session.

use super::accounts::{create_account_locked, update_account_locked};
use super::*;

/// Removes the login states, connect sessions and content links that expired: anonymous `/login` calls
/// must not grow `states/` without bound, nor the apps' sessions `sessions/`. A record that
/// cannot be read is left for the next sweep.
fn remove_expired_states(root: &Path, now: DateTime<Utc>) -> io::Result<()> {
    let _lock = lock(root)?;
    let states = root.join("states");
    for name in sorted_names(&states, None)? {
        let path = states.join(name);
        if let Ok(Some(state)) = read_json::<LoginState>(&path) {
            if state.expires_at <= now {
                fs::remove_file(&path)?;
            }
        }
    }
    sync_dir(&states)?;
    let sessions = root.join("sessions");
    for name in sorted_names(&sessions, None)? {
        let path = sessions.join(name);
        if let Ok(Some(session)) = read_json::<ConnectSession>(&path) {
            // Kept a while past its end, so that a callback that comes late still finds
            // where to send the browser back to.
            if session.expires_at + chrono::Duration::hours(1) <= now {
                fs::remove_file(&path)?;
            }
        }
    }
    sync_dir(&sessions)?;
    let links = root.join("links");
    for name in sorted_names(&links, None)? {
        let path = links.join(name);
        if let Ok(Some(link)) = read_json::<ContentLink>(&path) {
            if link.expires_at <= now {
                fs::remove_file(&path)?;
            }
        }
    }
    sync_dir(&links)
}

impl LocalStore {
    /// Writes a short-lived record (a login state, a connect session, a content link) and, now and then,
    /// removes the expired ones: nothing else would, as no TTL runs here.
    pub(super) async fn put_sweeping<T: Serialize + Send + 'static>(
        &self,
        path: PathBuf,
        record: T,
    ) -> HubResult<()> {
        let sweep = self.sweep_due();
        self.run(move |root| {
            write_durably(&path, &record)?;
            if sweep {
                remove_expired_states(root, Utc::now())?;
            }
            Ok(())
        })
        .await
    }
}

impl LocalStore {
    /// Runs an account write and spends the session under one lock, so no other callback
    /// sees the one without the other. The session is written spent first and given back
    /// when the account write does not happen: a crash in between loses the session (the
    /// app asks for another), where the other order could let a second callback connect a
    /// second account with it.
    async fn spending(
        &self,
        session_id: &str,
        now: DateTime<Utc>,
        write: impl FnOnce(&Path) -> io::Result<Write> + Send + 'static,
    ) -> HubResult<SpendingWrite> {
        if !storable(session_id) {
            return Ok(SpendingWrite::SessionUnusable);
        }
        let session_id = session_id.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = session_path(root, &session_id);
            let Some(session) = read_json::<ConnectSession>(&path)?.filter(|s| s.usable(now))
            else {
                return Ok(SpendingWrite::SessionUnusable);
            };
            write_durably(
                &path,
                &ConnectSession {
                    spent: true,
                    ..session.clone()
                },
            )?;
            let written = write(root);
            if !matches!(written, Ok(Write::Done)) {
                write_durably(&path, &session)?;
            }
            Ok(written?.into())
        })
        .await
    }

    /// Sets the session's `spent` to `spent` when `when` holds of the stored session, under
    /// the lock: whether it did.
    async fn set_spent(
        &self,
        id: &str,
        spent: bool,
        when: impl Fn(&ConnectSession) -> bool + Send + 'static,
    ) -> HubResult<bool> {
        if !storable(id) {
            return Ok(false);
        }
        let id = id.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = session_path(root, &id);
            match read_json::<ConnectSession>(&path)? {
                Some(session) if when(&session) => {
                    write_durably(&path, &ConnectSession { spent, ..session })?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
        .await
    }
}

#[async_trait]
impl LoginStore for LocalStore {
    async fn create_account_spending(
        &self,
        account: &Account,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> HubResult<SpendingWrite> {
        let account = account.clone();
        self.spending(session_id, now, move |root| {
            create_account_locked(root, &account)
        })
        .await
    }

    async fn update_account_spending(
        &self,
        account: &Account,
        expected_version: u64,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> HubResult<SpendingWrite> {
        let account = account.clone();
        self.spending(session_id, now, move |root| {
            update_account_locked(root, &account, expected_version)
        })
        .await
    }

    async fn put_login_state(&self, state: &LoginState) -> HubResult<()> {
        let path = state_path(&self.root, &state.state);
        self.put_sweeping(path, state.clone()).await
    }

    async fn put_connect_session(&self, session: &ConnectSession) -> HubResult<()> {
        let path = session_path(&self.root, &session.id);
        self.put_sweeping(path, session.clone()).await
    }

    async fn get_connect_session(&self, id: &str) -> HubResult<Option<ConnectSession>> {
        if !storable(id) {
            return Ok(None);
        }
        let id = id.to_string();
        self.run(move |root| read_json(&session_path(root, &id)))
            .await
    }

    async fn spend_connect_session(&self, id: &str, now: DateTime<Utc>) -> HubResult<bool> {
        self.set_spent(id, true, move |session| session.usable(now))
            .await
    }

    async fn restore_connect_session(&self, id: &str) -> HubResult<bool> {
        self.set_spent(id, false, |session| session.spent).await
    }

    async fn take_login_state(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> HubResult<Option<LoginState>> {
        if !storable(state) {
            return Ok(None);
        }
        let state = state.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = state_path(root, &state);
            let found = read_json::<LoginState>(&path)?;
            if found.is_some() {
                remove_durably(&path)?;
            }
            Ok(found.filter(|s| s.expires_at > now))
        })
        .await
    }
}
