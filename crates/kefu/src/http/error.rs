//! One error type for the HTTP API, mapped to status codes; the body is the protocol's
//! `{error: {code, message}}`.

use axum::{
    Json,
    extract::rejection::JsonRejection,
    http::{HeaderValue, StatusCode, header::RETRY_AFTER},
    response::{IntoResponse, Response},
};

use crate::{protocol::ErrorBody, services::Error};

#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl ApiError {
    pub fn rejection(rejection: JsonRejection) -> Self {
        Self::body(rejection.status(), rejection.body_text())
    }

    /// A body that could not be read: too large (413 `too_large`), or not what was expected.
    pub fn body(status: StatusCode, text: String) -> Self {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Self(Error::TooLarge(
                "the request body is over the limit of 64 KiB".into(),
            ))
        } else {
            Self(Error::InvalidPayload(text))
        }
    }
}

pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::Unauthorized => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::InvalidPayload(_) | Error::InvalidToken(_) => StatusCode::BAD_REQUEST,
        Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::UnsupportedType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::NotFound(_) | Error::UnknownEvent(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Unavailable | Error::CannotWrite => StatusCode::SERVICE_UNAVAILABLE,
        Error::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[derive(serde::Serialize)]
struct Body {
    error: ErrorBody,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.log("HTTP request");
        let mut response = (
            status_of(&self.0),
            Json(Body {
                error: (&self.0).into(),
            }),
        )
            .into_response();
        if let Error::RateLimited {
            retry_after: Some(wait),
            ..
        } = &self.0
        {
            // Whole seconds, rounded up: a client that waits that long gets in.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}
