//! `POST /api/attachments` (multipart upload, streamed to disk) and `GET /api/attachments/{id}`.

use axum::{
    Json,
    body::Body,
    extract::{Multipart, Path, Query, State, multipart::MultipartError},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{api::Caller, error::ApiError};
use crate::protocol::http::Uploaded;
use crate::{
    AppState,
    domain::{AttachmentId, UserId},
    protocol::AttachmentPayload,
    services::Error,
};

fn multipart_error(error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::TooLarge("the file is larger than the limit".into()).into()
    } else {
        Error::InvalidPayload(format!("invalid multipart body: {}", error.body_text())).into()
    }
}

/// A `file` part, and for agents a `peerId` field naming the customer (before or after the file).
pub async fn upload(
    State(app): State<AppState>,
    Caller(caller): Caller,
    mut multipart: Multipart,
) -> Result<Response, ApiError> {
    let mut peer: Option<UserId> = None;
    let mut file = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("peerId") => {
                let text = field.text().await.map_err(multipart_error)?;
                peer = Some(UserId::parse(text.trim())?);
            }
            Some("file") if file.is_none() => {
                let name = field.file_name().unwrap_or("file").to_owned();
                let declared = field.content_type().map(str::to_owned);
                let mut upload = match app.attachments.begin(caller.user_id).await {
                    Ok(upload) => upload,
                    Err(error @ Error::RateLimited { .. }) => {
                        app.metrics.limited(crate::metrics::Limit::Uploads);
                        return Err(error.into());
                    }
                    Err(error) => return Err(error.into()),
                };
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    upload.write(&chunk).await?;
                }
                file = Some((upload, name, declared));
            }
            Some("file") => {
                return Err(Error::InvalidPayload("one file per upload".into()).into());
            }
            _ => {
                return Err(Error::InvalidPayload(
                    "the parts are `file` and, for agents, `peerId`".into(),
                )
                .into());
            }
        }
    }
    let Some((upload, name, declared)) = file else {
        return Err(Error::InvalidPayload("a `file` part is required".into()).into());
    };
    let attachment = app
        .attachments
        .finish(caller, peer, upload, &name, declared.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Uploaded {
            attachment: AttachmentPayload::new(&attachment),
        }),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// The file, to the conversation's customer, its current agent and admins; `404` to anyone else.
/// The token may come as `?token=` so that an `<img src>` can show it.
pub async fn download(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or(query.token)
        .ok_or(Error::Unauthorized)?;
    let me = app.accounts.authenticate(token.trim()).await?;
    let id = AttachmentId::parse(&id)?;
    let (attachment, path) = app.attachments.open(me, id.0).await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Error::Other(anyhow::anyhow!("opening attachment {}: {e}", attachment.id)))?;
    let stream = tokio_util::io::ReaderStream::new(file);
    // Images are shown inline; anything else is a download, and nothing is sniffed as HTML.
    let disposition = if attachment.mime.starts_with("image/") {
        "inline"
    } else {
        "attachment"
    };
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    let value = |v: &str| HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("file"));
    headers.insert(header::CONTENT_TYPE, value(&attachment.mime));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(attachment.size));
    headers.insert(
        header::CONTENT_DISPOSITION,
        value(&format!(
            "{disposition}; filename=\"{}\"",
            attachment.name.replace(|c: char| !c.is_ascii(), "_")
        )),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    Ok(response)
}
