//! Encryption at rest of message and note content (optional): AES-256-GCM under keys from the
//! settings, each with an id stored beside the ciphertext so that keys can rotate.
//!
//! The content column holds base64 of `nonce (12 bytes) ‖ ciphertext ‖ tag`, and `key_id` names
//! the key; a row with no `key_id` is plain text (written before encryption was turned on). The
//! conversation's id is authenticated with it, so a ciphertext moved to another conversation does
//! not decrypt. Only the database sees ciphertext: the server decrypts for every authorised reader.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};

use super::StoreError;

pub struct Sealer {
    /// The key new content is sealed with: the first one configured.
    current: String,
    keys: HashMap<String, LessSafeKey>,
    random: SystemRandom,
}

/// What is sealed: its kind and conversation are part of what the tag authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Sealed {
    Message(i64),
    Note(i64),
}

impl Sealed {
    fn aad(self) -> String {
        match self {
            Sealed::Message(conversation) => format!("kefu message {conversation}"),
            Sealed::Note(conversation) => format!("kefu note {conversation}"),
        }
    }
}

impl Sealer {
    /// Keys as `id:base64` (32 bytes once decoded, e.g. `openssl rand -base64 32`); the first
    /// seals, every one opens. `None` when there is none: content is stored as it is.
    pub fn from_keys(keys: &[String]) -> anyhow::Result<Option<Self>> {
        let mut parsed = HashMap::new();
        let mut current = None;
        for entry in keys {
            let (id, encoded) = entry.split_once(':').ok_or_else(|| {
                anyhow::anyhow!("an encryption key must be written id:base64 (of 32 bytes)")
            })?;
            anyhow::ensure!(
                !id.is_empty()
                    && id.len() <= 32
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "encryption key id {id:?}: 1 to 32 letters, digits, '-' or '_'"
            );
            let bytes = STANDARD
                .decode(encoded.trim())
                .map_err(|_| anyhow::anyhow!("encryption key {id}: not base64"))?;
            anyhow::ensure!(
                bytes.len() == 32,
                "encryption key {id}: {} bytes, AES-256 needs 32 (openssl rand -base64 32)",
                bytes.len()
            );
            let key = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| anyhow::anyhow!("encryption key {id}: rejected"))?;
            anyhow::ensure!(
                parsed
                    .insert(id.to_owned(), LessSafeKey::new(key))
                    .is_none(),
                "encryption key id {id} is given twice"
            );
            current.get_or_insert_with(|| id.to_owned());
        }
        Ok(current.map(|current| Self {
            current,
            keys: parsed,
            random: SystemRandom::new(),
        }))
    }

    /// The content to store and the id of the key it was sealed with.
    pub fn seal(&self, plain: &str, what: Sealed) -> Result<(String, &str), StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| StoreError::Other(sqlx::Error::Protocol("no randomness".into())))?;
        // nonce ‖ plain text, sealed in place after the nonce (with the tag appended).
        let mut sealed = Vec::with_capacity(NONCE_LEN + plain.len() + AES_256_GCM.tag_len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plain.as_bytes());
        let tag = self.keys[&self.current]
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(what.aad()),
                &mut sealed[NONCE_LEN..],
            )
            .map_err(|_| StoreError::Other(sqlx::Error::Protocol("sealing failed".into())))?;
        sealed.extend_from_slice(tag.as_ref());
        Ok((STANDARD.encode(sealed), &self.current))
    }

    /// The plain text of content stored under `key_id`.
    pub fn open(&self, stored: &str, key_id: &str, what: Sealed) -> Result<String, StoreError> {
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| unreadable(format!("no encryption key {key_id} is configured")))?;
        let bytes = STANDARD
            .decode(stored)
            .map_err(|_| unreadable(format!("content sealed with {key_id} is not base64")))?;
        check_len(&bytes)?;
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| unreadable("bad nonce".into()))?;
        let mut body = body.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(what.aad()), &mut body)
            .map_err(|_| {
                unreadable(format!(
                    "content sealed with {key_id} does not authenticate"
                ))
            })?;
        String::from_utf8(plain.to_vec()).map_err(|_| unreadable("not UTF-8".into()))
    }
}

fn check_len(bytes: &[u8]) -> Result<(), StoreError> {
    if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(unreadable("sealed content too short".into()));
    }
    Ok(())
}

fn unreadable(why: String) -> StoreError {
    StoreError::Other(sqlx::Error::Decode(why.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2:HxwdHhscGRoXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

    fn sealer(keys: &[&str]) -> Sealer {
        Sealer::from_keys(&keys.iter().map(|k| k.to_string()).collect::<Vec<_>>())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn content_opens_with_its_key_and_its_conversation_only() {
        let s = sealer(&[K1]);
        let (stored, key) = s.seal("我的订单在哪里？", Sealed::Message(7)).unwrap();
        assert_eq!(key, "k1");
        assert!(!stored.contains("订单"));
        assert_eq!(
            s.open(&stored, "k1", Sealed::Message(7)).unwrap(),
            "我的订单在哪里？"
        );
        assert!(s.open(&stored, "k1", Sealed::Message(8)).is_err());
        assert!(s.open(&stored, "k1", Sealed::Note(7)).is_err());
        assert!(s.open(&stored, "k9", Sealed::Message(7)).is_err());
    }

    #[test]
    fn the_same_text_seals_differently_each_time() {
        let s = sealer(&[K1]);
        let a = s.seal("hi", Sealed::Message(1)).unwrap().0;
        let b = s.seal("hi", Sealed::Message(1)).unwrap().0;
        assert_ne!(a, b);
    }

    #[test]
    fn a_new_first_key_seals_while_the_old_one_still_opens() {
        let old = sealer(&[K1]);
        let (stored, _) = old.seal("before the rotation", Sealed::Note(3)).unwrap();
        let rotated = sealer(&[K2, K1]);
        assert_eq!(rotated.seal("after", Sealed::Note(3)).unwrap().1, "k2");
        assert_eq!(
            rotated.open(&stored, "k1", Sealed::Note(3)).unwrap(),
            "before the rotation"
        );
    }

    #[test]
    fn bad_keys_are_refused_with_the_reason() {
        let error = |keys: &[&str]| {
            Sealer::from_keys(&keys.iter().map(|k| k.to_string()).collect::<Vec<_>>())
                .err()
                .unwrap()
                .to_string()
        };
        assert!(error(&["nokey"]).contains("id:base64"));
        assert!(error(&["k1:AAEC"]).contains("32"));
        assert!(error(&["k1:!!!"]).contains("base64"));
        assert!(error(&[K1, K1]).contains("twice"));
        assert!(error(&["bad id:AAEC"]).contains("letters"));
        assert!(Sealer::from_keys(&[]).unwrap().is_none());
    }

    #[test]
    fn tampered_content_does_not_open() {
        let s = sealer(&[K1]);
        let (stored, _) = s.seal("pay 10", Sealed::Message(1)).unwrap();
        let mut bytes = STANDARD.decode(&stored).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(
            s.open(&STANDARD.encode(bytes), "k1", Sealed::Message(1))
                .is_err()
        );
        assert!(s.open("AAAA", "k1", Sealed::Message(1)).is_err());
    }
}
