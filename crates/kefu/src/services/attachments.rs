//! Attachments: files uploaded into a conversation, streamed to disk under a size limit, typed by
//! their first bytes (never by what the client claims), and served only to the conversation's
//! customer, its current agent and admins.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use tokio::io::AsyncWriteExt;

use super::{Error, Result, auth::Identity, chat::Chat};
use crate::{
    domain::{Role, UserId},
    store::{Attachment, NewAttachment, Store, StoreError},
};

/// The media type of a file from its first bytes, if it is one kefu knows.
pub fn sniff(head: &[u8], declared: Option<&str>) -> Option<&'static str> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("image/gif")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else if starts(b"%PDF-") {
        Some("application/pdf")
    } else if declared.is_some_and(|d| d.starts_with("text/plain"))
        && !head.contains(&0)
        && valid_utf8_prefix(head)
    {
        Some("text/plain")
    } else {
        None
    }
}

/// UTF-8, except perhaps for a character cut at the end of the sample.
fn valid_utf8_prefix(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && bytes.len() - e.valid_up_to() < 4,
    }
}

/// A file name safe to show and to put in a header: its last path segment, without control
/// characters or quotes, at most 200 characters.
pub fn clean_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(200)
        .collect();
    let cleaned = cleaned.trim().to_owned();
    if cleaned.is_empty() {
        "file".to_owned()
    } else {
        cleaned
    }
}

#[derive(Clone)]
pub struct Attachments {
    store: Store,
    chat: Chat,
    dir: PathBuf,
    max_bytes: u64,
    types: Vec<String>,
    uploading: Uploading,
}

/// Uploads being written per user: each holds up to the size limit on disk until it is kept or
/// dropped, so one token cannot hold many at once.
#[derive(Clone, Default)]
struct Uploading(Arc<Mutex<HashMap<UserId, usize>>>);

/// Uploads one user may have in progress at once.
pub const MAX_UPLOADS_PER_USER: usize = 4;

struct UploadSlot {
    uploading: Uploading,
    user: UserId,
}

impl Uploading {
    fn take(&self, user: UserId) -> Option<UploadSlot> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = map.entry(user).or_default();
        if *count >= MAX_UPLOADS_PER_USER {
            return None;
        }
        *count += 1;
        Some(UploadSlot {
            uploading: self.clone(),
            user,
        })
    }
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        let mut map = self.uploading.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = map.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.user);
            }
        }
    }
}

/// An upload being written, removed unless it is kept.
pub struct Upload {
    file: tokio::fs::File,
    path: PathBuf,
    stored_as: String,
    size: u64,
    head: Vec<u8>,
    max_bytes: u64,
    kept: bool,
    _slot: UploadSlot,
}

/// Bytes read to tell a file's type.
const HEAD: usize = 512;

impl Upload {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.size += chunk.len() as u64;
        if self.size > self.max_bytes {
            return Err(Error::TooLarge(format!(
                "the file is larger than {} bytes",
                self.max_bytes
            )));
        }
        if self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| Error::Other(anyhow::anyhow!("writing an upload: {e}")))
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Attachments {
    pub fn new(store: Store, chat: Chat, dir: PathBuf, max_bytes: u64, types: Vec<String>) -> Self {
        Self {
            store,
            chat,
            dir,
            max_bytes,
            types,
            uploading: Uploading::default(),
        }
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Starts writing `uploader`'s upload to a new file.
    #[tracing::instrument(skip_all)]
    pub async fn begin(&self, uploader: UserId) -> Result<Upload> {
        let slot = self.uploading.take(uploader).ok_or(Error::RateLimited {
            what: "too many uploads at once; wait for one to finish",
            retry_after: Some(std::time::Duration::from_secs(5)),
        })?;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| Error::Other(anyhow::anyhow!("creating {}: {e}", self.dir.display())))?;
        let stored_as = super::auth::random_hex(16);
        let path = self.dir.join(&stored_as);
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| Error::Other(anyhow::anyhow!("creating {}: {e}", path.display())))?;
        Ok(Upload {
            file,
            path,
            stored_as,
            size: 0,
            head: Vec::with_capacity(HEAD),
            max_bytes: self.max_bytes,
            kept: false,
            _slot: slot,
        })
    }

    /// Keeps a finished upload in the caller's conversation (a customer's open one, an agent's
    /// with `peer`).
    pub async fn finish(
        &self,
        me: Identity,
        peer: Option<UserId>,
        mut upload: Upload,
        name: &str,
        declared: Option<&str>,
    ) -> Result<Attachment> {
        if upload.size == 0 {
            return Err(Error::InvalidPayload("the file is empty".into()));
        }
        let Some(mime) =
            sniff(&upload.head, declared).filter(|m| self.types.iter().any(|t| t == m))
        else {
            return Err(Error::UnsupportedType(format!(
                "this kind of file cannot be sent; allowed: {}",
                self.types.join(", ")
            )));
        };
        let conversation = self.chat.writable_conversation(me, peer).await?;
        upload
            .file
            .sync_all()
            .await
            .map_err(|e| Error::Other(anyhow::anyhow!("storing an upload: {e}")))?;
        let attachment = self
            .store
            .add_attachment(NewAttachment {
                conversation_id: conversation,
                uploader_id: me.user_id,
                name: &clean_name(name),
                mime,
                size: upload.size as i64,
                stored_as: &upload.stored_as,
            })
            .await?;
        upload.kept = true;
        Ok(attachment)
    }

    /// The attachment and where its bytes are, if `me` may read it; anyone else gets `not_found`.
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn open(&self, me: Identity, id: i64) -> Result<(Attachment, PathBuf)> {
        let not_found = || Error::NotFound("no such attachment");
        let attachment = self.store.attachment(id).await.map_err(|e| match e {
            StoreError::NotFound => not_found(),
            other => other.into(),
        })?;
        let conversation = self.store.conversation(attachment.conversation_id).await?;
        let allowed = me.role == Role::Admin
            || conversation.customer_id == me.user_id
            || conversation.agent_id == Some(me.user_id);
        if !allowed {
            return Err(not_found());
        }
        let path = self.dir.join(&attachment.stored_as);
        Ok((attachment, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_typed_by_its_first_bytes_not_by_its_claim() {
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\nrest", Some("text/plain")),
            Some("image/png")
        );
        assert_eq!(sniff(b"%PDF-1.7", None), Some("application/pdf"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ", None), Some("image/webp"));
        assert_eq!(
            sniff(b"hello", Some("text/plain; charset=utf-8")),
            Some("text/plain")
        );
        assert_eq!(sniff(b"hello", Some("image/png")), None);
        assert_eq!(sniff(b"<html><script>", Some("text/html")), None);
        assert_eq!(sniff(b"MZ\x90\0", Some("text/plain")), None);
        assert_eq!(sniff(b"caf\xc3", Some("text/plain")), Some("text/plain"));
    }

    #[test]
    fn a_file_name_loses_its_path_and_what_could_break_a_header() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\me\\cv.pdf"), "cv.pdf");
        assert_eq!(clean_name("a\"b\r\nc.png"), "abc.png");
        assert_eq!(clean_name("   "), "file");
    }
}
