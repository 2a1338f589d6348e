//! [`ApiError`]: every failed request's answer, `{"error": "..."}` with its status.
//!
//! The engine's errors ([`kv_shared::Error`]) map to statuses by whose fault they are:
//!
//! | engine error | status | why |
//! |---|---|---|
//! | `InvalidArgument` | 400 Bad Request | the request asked for something the engine refuses |
//! | `KeyTooLarge` | 414 URI Too Long | the key is in the URI |
//! | `ValueTooLarge` | 413 Payload Too Large | the value is the body |
//! | `Background` | 503 Service Unavailable | an earlier background job failed; writes are refused until the store is reopened |
//! | `Io`, `Corruption`, any other | 500 Internal Server Error | the store's fault, not the request's |

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kv_shared::Error;
use serde::Serialize;

/// A failed request: a status and a message for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, in words.
    pub message: String,
    /// For 405: the methods the path takes (the `Allow` header).
    pub allow: Option<&'static str>,
}

/// The JSON body of an error.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            allow: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such key or path.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 405: the path does not take this method; `allowed` lists those it takes.
    pub fn method_not_allowed(allowed: &'static str) -> Self {
        ApiError {
            allow: Some(allowed),
            ..ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method not allowed here; this path takes {allowed}"),
            )
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let status = match &error {
            Error::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            Error::KeyTooLarge { .. } => StatusCode::URI_TOO_LONG,
            Error::ValueTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Background { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: &self.message,
        });
        let mut response = (self.status, body).into_response();
        if let Some(allowed) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn status(error: Error) -> StatusCode {
        ApiError::from(error).status
    }

    #[test]
    fn engine_errors_map_to_their_status() {
        let invalid = Error::InvalidArgument("no".into());
        assert_eq!(status(invalid), StatusCode::BAD_REQUEST);
        let key = Error::KeyTooLarge { len: 9, max: 8 };
        assert_eq!(status(key), StatusCode::URI_TOO_LONG);
        let value = Error::ValueTooLarge { len: 9, max: 8 };
        assert_eq!(status(value), StatusCode::PAYLOAD_TOO_LARGE);
        let background = Error::background("flush", "disk full");
        assert_eq!(status(background), StatusCode::SERVICE_UNAVAILABLE);
        let io = Error::io("f", std::io::Error::other("boom"));
        assert_eq!(status(io), StatusCode::INTERNAL_SERVER_ERROR);
        let corrupt = Error::corruption(PathBuf::from("t"), 3, "bad crc");
        assert_eq!(status(corrupt), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn the_message_names_the_limit() {
        let error = ApiError::from(Error::KeyTooLarge { len: 9, max: 8 });
        assert!(
            error.message.contains("limit of 8 bytes"),
            "{}",
            error.message
        );
    }

    #[test]
    fn method_not_allowed_says_which_methods() {
        let response = ApiError::method_not_allowed("POST").into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "POST");
    }
}
