//! The query of `GET /users/{id}/search` (docs/API.md, "Search"): `q` and `limit`, checked
//! into a [`SearchRequest`]; any other parameter is a mistake the caller should hear of.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::files::page_limit;
use super::QueryParams;
use crate::error::HubError;
use crate::search::{SearchRequest, DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT};

/// A search as the route was asked it.
#[derive(Debug, PartialEq)]
pub struct SearchQuery(pub SearchRequest);

impl SearchQuery {
    pub fn parse(mut query: QueryParams) -> Result<Self, HubError> {
        let text = query.0.remove("q").unwrap_or_default();
        let limit = query.0.remove("limit");
        if let Some(unknown) = query.0.keys().next() {
            return Err(HubError::InvalidRequest(format!(
                "unknown parameter '{}': the search route takes q and limit",
                unknown.chars().take(40).collect::<String>()
            )));
        }
        let limit = page_limit(limit.as_deref(), DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT)?;
        Ok(SearchQuery(SearchRequest::new(&text, limit)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SearchQuery {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        SearchQuery::parse(QueryParams::from_request_parts(parts, state).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<SearchRequest, HubError> {
        let params = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SearchQuery::parse(QueryParams(params)).map(|SearchQuery(request)| request)
    }

    #[test]
    fn q_is_needed_and_limit_defaults_to_25() {
        assert_eq!(parse(&[("q", "report")]).unwrap().limit, 25);
        assert_eq!(parse(&[("q", "x"), ("limit", "100")]).unwrap().limit, 100);
        let bad: [&[(&str, &str)]; 6] = [
            &[],
            &[("q", "")],
            &[("q", "x"), ("limit", "0")],
            &[("q", "x"), ("limit", "101")],
            &[("q", "x"), ("limit", "many")],
            &[("q", "x"), ("cursor", "abc")],
        ];
        for pairs in bad {
            assert_eq!(
                parse(pairs).unwrap_err().code(),
                "invalid_request",
                "{pairs:?}"
            );
        }
    }
}
