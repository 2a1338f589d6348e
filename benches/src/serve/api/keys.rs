//! `GET`, `PUT` and `DELETE /api/keys/{key}`, and `GET /api/scan`.
//!
//! Each handler checks the request (the key's encoding and length, the parameters, the
//! body's length) before anything reaches the engine, then makes one engine call through
//! [`Served::call`].

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::ApiError;
use super::encoding::{JsonBytes, Params, key_from_path};
use crate::serve::Served;

/// One scan answer stops after the pair that brings its keys and values past this many
/// bytes (16 MiB), so its size does not grow with `limit` times the largest value.
pub const SCAN_ANSWER_BYTES: usize = 16 << 20;

/// The parameters `GET /api/scan` takes.
const SCAN_PARAMS: &[&str] = &["from", "to", "limit", "reverse", "hex"];

/// `GET /api/keys/{key}`: the value's bytes, or 404.
///
/// # Errors
/// See the API's table.
pub async fn get_key(State(served): State<Arc<Served>>, uri: Uri) -> Result<Response, ApiError> {
    Params::parse(uri.query(), &[])?;
    let key = key_from_path(&uri, served.limits.max_key)?;
    let found = served.call(move |engine| engine.get(&key)).await?;
    let Some(value) = found else {
        return Err(ApiError::not_found("no such key"));
    };
    let content_type = HeaderValue::from_static("application/octet-stream");
    Ok(([(header::CONTENT_TYPE, content_type)], value).into_response())
}

/// `PUT /api/keys/{key}`: stores the body as the key's value; 204.
///
/// The body's declared length is checked first, so a body over the limit is refused
/// before any of it is read; a body without a declared length is cut off by
/// [`axum::extract::DefaultBodyLimit`] once it passes the limit.
///
/// # Errors
/// See the API's table.
pub async fn put_key(
    State(served): State<Arc<Served>>,
    request: Request,
) -> Result<StatusCode, ApiError> {
    let uri = request.uri().clone();
    Params::parse(uri.query(), &[])?;
    let key = key_from_path(&uri, served.limits.max_key)?;
    let max_value = served.limits.max_value;
    let declared = request.headers().get(header::CONTENT_LENGTH);
    let declared = declared.and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_value as u64) {
        return Err(value_too_large(max_value));
    }
    let value = match Bytes::from_request(request, &()).await {
        Ok(value) => value,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(value_too_large(max_value));
        }
        Err(rejection) => return Err(ApiError::new(rejection.status(), rejection.body_text())),
    };
    served.call(move |engine| engine.put(&key, &value)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The 413 of a body over `max_value` bytes.
fn value_too_large(max_value: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the value (the body) is over the limit of {max_value} bytes (max_value)"),
    )
}

/// `DELETE /api/keys/{key}`: removes the key (absent or not); 204.
///
/// # Errors
/// See the API's table.
pub async fn delete_key(
    State(served): State<Arc<Served>>,
    uri: Uri,
) -> Result<StatusCode, ApiError> {
    Params::parse(uri.query(), &[])?;
    let key = key_from_path(&uri, served.limits.max_key)?;
    served.call(move |engine| engine.delete(&key)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One pair of a scan's answer.
#[derive(Serialize)]
struct Pair {
    key: JsonBytes,
    value: JsonBytes,
}

/// `GET /api/scan?from=&to=&limit=&reverse=&hex=`: the pairs `from <= key < to`, as JSON.
///
/// # Errors
/// See the API's table.
pub async fn scan(State(served): State<Arc<Served>>, uri: Uri) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query(), SCAN_PARAMS)?;
    let limits = served.limits;
    let limit = params.number(
        "limit",
        Some(limits.default_scan as u64),
        limits.max_scan as u64,
        "max_scan",
    )?;
    let limit = limit.unwrap_or_default() as usize;
    let reverse = params.flag("reverse")?;
    let all_hex = params.flag("hex")?;
    let range = params.range();
    let (pairs, truncated) = served
        .call(move |engine| {
            let pairs = if reverse {
                engine.scan_rev(range)?
            } else {
                engine.scan(range)?
            };
            let (mut answer, mut bytes) = (Vec::new(), 0usize);
            for pair in pairs.take(limit) {
                let (key, value) = pair?;
                bytes += key.len() + value.len();
                answer.push(Pair {
                    key: JsonBytes::new(key, all_hex),
                    value: JsonBytes::new(value, all_hex),
                });
                if bytes >= SCAN_ANSWER_BYTES && answer.len() < limit {
                    return Ok((answer, true));
                }
            }
            Ok((answer, false))
        })
        .await?;
    let mut response = Json(pairs).into_response();
    if truncated {
        let flag = HeaderValue::from_static("true");
        response.headers_mut().insert("x-kv-truncated", flag);
    }
    Ok(response)
}
