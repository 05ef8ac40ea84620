//! Turns the router's answer into an API Gateway HTTP API (payload v2) response, as
//! `lambda_http::run` does for the functions that serve HTTP only.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body;
use axum::body::to_bytes;
use axum::response::Response;
use lambda_runtime::Error;

/// Responses here are small JSON documents; anything larger is a bug.
const MAX_BODY: usize = 1 << 20;

pub async fn to_http_api_response(response: Response) -> Result<ApiGatewayV2httpResponse, Error> {
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await?;
    let mut answer = ApiGatewayV2httpResponse::default();
    answer.status_code = i64::from(parts.status.as_u16());
    answer.headers = parts.headers;
    answer.body =
        (!bytes.is_empty()).then(|| Body::Text(String::from_utf8_lossy(&bytes).into_owned()));
    answer.is_base64_encoded = false;
    Ok(answer)
}
