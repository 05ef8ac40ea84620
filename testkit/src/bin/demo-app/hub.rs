//! The demo app's calls to the hub's management API, with its key (which never reaches the
//! browser), and to the stand-ins' demo controls.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::Demo;

/// The most files listed per account.
const FILES_SHOWN: u32 = 100;

/// Why a page could not be made.
pub enum HubProblem {
    /// Nothing answered at the hub's address (it is still building or starting): its URL.
    Unreachable(String),
    /// The hub answered with an error, or something else went wrong: what, for a person.
    Answered(String),
}

impl Demo {
    /// The hub's URL with `segments` as path segments, percent-encoded: the app does not
    /// trust an id to be a UUID.
    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, HubProblem> {
        let mut url = reqwest::Url::parse(&self.hub_url)
            .map_err(|e| HubProblem::Answered(format!("HUB_URL is not a URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| HubProblem::Answered("HUB_URL cannot have a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends a request to the hub with the key: its answer, or why there is none.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, HubProblem> {
        request
            .bearer_auth(&self.api_key)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    HubProblem::Unreachable(self.hub_url.clone())
                } else {
                    HubProblem::Answered(format!("the hub at {} did not answer: {e}", self.hub_url))
                }
            })
    }

    /// One call to the hub's management API; the JSON answer (`null` for none), or what went
    /// wrong.
    pub async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, HubProblem> {
        let response = self.send(request).await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        Err(answered(status, &body))
    }

    pub async fn new_session(&self) -> Result<String, HubProblem> {
        let body =
            json!({"owner": self.owner, "return_to": format!("{}/connected", self.public_url)});
        let request = self
            .client
            .post(self.url(&["connect", "sessions"])?)
            .json(&body);
        let session = self.call(request).await?;
        match session["connect_url"].as_str() {
            Some(url) => Ok(url.to_string()),
            None => Err(HubProblem::Answered(
                "the hub's session has no connect_url".into(),
            )),
        }
    }

    /// `POST /sync` for one account: the hub syncs on its schedule (in AWS) or on a push
    /// notification; an app that wants a change at once asks.
    pub async fn start_sync(&self, account_id: &str) -> Result<Value, HubProblem> {
        let request = self
            .client
            .post(self.url(&["sync"])?)
            .json(&json!({"user_id": account_id}));
        self.call(request).await
    }

    /// The app's user's accounts (`GET /users?owner=`).
    pub async fn accounts(&self) -> Result<Vec<Value>, HubProblem> {
        let request = self
            .client
            .get(self.url(&["users"])?)
            .query(&[("owner", self.owner.as_str())]);
        let accounts = self.call(request).await?;
        Ok(accounts.as_array().cloned().unwrap_or_default())
    }

    /// Accounts connected without a connect session (`"owner": null`), such as those of a
    /// direct `/auth/{provider}/login`: no app user owns them, so the demo shows them apart.
    pub async fn ownerless_accounts(&self) -> Result<Vec<Value>, HubProblem> {
        let accounts = self.call(self.client.get(self.url(&["users"])?)).await?;
        Ok(accounts
            .as_array()
            .map(|all| {
                all.iter()
                    .filter(|account| account["owner"].is_null())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    /// One account (`GET /users/{id}`).
    pub async fn account(&self, account_id: &str) -> Result<Value, HubProblem> {
        self.call(self.client.get(self.url(&["users", account_id])?))
            .await
    }

    /// `DELETE /users/{id}`: the hub stops its sync, revokes its grant and forgets it.
    pub async fn disconnect(&self, account_id: &str) -> Result<(), HubProblem> {
        self.call(self.client.delete(self.url(&["users", account_id])?))
            .await
            .map(drop)
    }

    pub async fn files(&self, account_id: &str) -> Result<Vec<Value>, HubProblem> {
        let limit = FILES_SHOWN.to_string();
        self.entries(account_id, "files", &[("limit", limit.as_str())])
            .await
    }

    /// A query of the account's index (`GET /users/{id}/files` with filters) or of the
    /// provider's own search (`GET /users/{id}/search`): the entries it answers.
    pub async fn entries(
        &self,
        account_id: &str,
        route: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<Value>, HubProblem> {
        let url = self.url(&["users", account_id, route])?;
        let page = self.call(self.client.get(url).query(query)).await?;
        Ok(page["files"].as_array().cloned().unwrap_or_default())
    }

    /// One page of the account's change feed after `cursor` (`GET /users/{id}/changes`).
    pub async fn changes(
        &self,
        account_id: &str,
        cursor: Option<&str>,
    ) -> Result<Value, HubProblem> {
        let mut request = self
            .client
            .get(self.url(&["users", account_id, "changes"])?)
            .query(&[("limit", "100")]);
        if let Some(cursor) = cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        self.call(request).await
    }

    /// Where a file's bytes are: the `Location` of the hub's content route, in `format` when
    /// given.
    pub async fn content_url(
        &self,
        account_id: &str,
        file_id: &str,
        format: Option<&str>,
    ) -> Result<String, HubProblem> {
        let mut request = self
            .client
            .get(self.url(&["users", account_id, "files", file_id, "content"])?);
        if let Some(format) = format {
            request = request.query(&[("format", format)]);
        }
        let response = self.send(request).await?;
        if response.status() == StatusCode::FOUND {
            if let Some(location) = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|value| value.to_str().ok())
            {
                return Ok(location.to_string());
            }
        }
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Err(answered(status, &body))
    }

    /// Changes a file at the stand-in, as its user would at the provider
    /// (`hub_testkit::demo_control`).
    pub async fn change_at_provider(
        &self,
        provider: &str,
        action: &str,
        body: Value,
    ) -> Result<(), HubProblem> {
        let Some(control) = &self.control_url else {
            return Err(HubProblem::Answered(
                "DEMO_STANDINS_CONTROL_URL is not set: the demo cannot change files".into(),
            ));
        };
        let url = format!("{control}/{provider}/{action}");
        let response = self
            .client
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| HubProblem::Answered(format!("the stand-ins did not answer: {e}")))?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(HubProblem::Answered(format!(
            "the stand-ins answered {} to {action}",
            response.status()
        )))
    }
}

fn answered(status: StatusCode, body: &Value) -> HubProblem {
    HubProblem::Answered(format!(
        "the hub answered {status}: {}. {}",
        body["error"].as_str().unwrap_or("no error code"),
        body["message"].as_str().unwrap_or("")
    ))
}
