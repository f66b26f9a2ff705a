//! Tokens (JWT, HS256) and password hashes (argon2).

use std::{path::Path, time::Duration};

use anyhow::Context;
use argon2::{
    Argon2, Block, Params, PasswordHash, Version,
    password_hash::{self, Output, ParamsString, Salt, SaltString, rand_core::OsRng},
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{Error, Result};
use crate::domain::{Password, Role, User, UserId};

/// Who is behind a token or a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub user_id: UserId,
    pub role: Role,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    iat: u64,
    exp: u64,
    /// When it was issued, in milliseconds: revocation compares against it.
    #[serde(default, rename = "iatMs")]
    iat_ms: u64,
}

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub identity: Identity,
    /// Milliseconds since the Unix epoch.
    pub issued_at: i64,
    /// When it stops being valid, in milliseconds since the Unix epoch.
    pub expires_at: i64,
}

#[derive(Clone)]
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    customer_ttl: Duration,
    staff_ttl: Duration,
}

impl Auth {
    pub fn new(secret: &[u8], customer_ttl: Duration, staff_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            customer_ttl,
            staff_ttl,
        }
    }

    /// The configured secret, or the one kept in `<data_dir>/jwt-secret`, generated on first start
    /// so that tokens stay valid across restarts.
    pub fn load_or_create_secret(
        configured: Option<&str>,
        data_dir: &Path,
    ) -> anyhow::Result<Vec<u8>> {
        if let Some(secret) = configured {
            anyhow::ensure!(
                secret.len() >= 32,
                "KEFU_JWT_SECRET must be at least 32 characters"
            );
            return Ok(secret.as_bytes().to_vec());
        }
        let path = data_dir.join("jwt-secret");
        match std::fs::read_to_string(&path) {
            Ok(secret) if secret.trim().len() >= 32 => {
                return Ok(secret.trim().as_bytes().to_vec());
            }
            Ok(_) => anyhow::bail!(
                "{} is too short; delete it to generate a new one",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        let secret = random_hex(32);
        write_private_file(&path, &secret)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(secret.into_bytes())
    }

    pub fn issue(&self, user: &User) -> Result<String> {
        let ttl = if user.role.is_staff() {
            self.staff_ttl
        } else {
            self.customer_ttl
        };
        let now_ms = crate::domain::now_millis().max(0) as u64;
        let now = now_ms / 1000;
        let claims = Claims {
            sub: user.id.to_string(),
            role: user.role.as_str().to_owned(),
            iat: now,
            exp: now + ttl.as_secs(),
            iat_ms: now_ms,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Other(anyhow::Error::new(e).context("signing a token")))
    }

    /// A forged, expired or malformed token is `Unauthorized`, whatever the reason.
    pub fn verify(&self, token: &str) -> Result<Verified> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| Error::Unauthorized)?;
        let user_id = UserId::parse(&data.claims.sub).map_err(|_| Error::Unauthorized)?;
        let role = Role::parse(&data.claims.role).map_err(|_| Error::Unauthorized)?;
        let issued_at = if data.claims.iat_ms > 0 {
            data.claims.iat_ms
        } else {
            data.claims.iat * 1000
        };
        Ok(Verified {
            identity: Identity { user_id, role },
            issued_at: issued_at as i64,
            expires_at: (data.claims.exp as i64).saturating_mul(1000),
        })
    }
}

/// Argon2 takes ~19 MiB and tens of milliseconds per hash, by design. It runs on two threads of
/// its own: the chat's workers never wait for it, a burst of logins queues instead of taking every
/// core, and the allocator keeps at most two such blocks (on the blocking pool, every thread that
/// ever hashed kept one: 20 agents created at once left 240 MiB behind).
const HASHING_THREADS: usize = 2;

type HashJob = Box<dyn FnOnce() + Send>;

fn hashing_queue() -> &'static std::sync::Mutex<std::sync::mpsc::Sender<HashJob>> {
    static QUEUE: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<HashJob>>> =
        std::sync::OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<HashJob>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..HASHING_THREADS {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("kefu-hash-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("starting a password hashing thread");
        }
        std::sync::Mutex::new(tx)
    })
}

async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: HashJob = Box::new(move || {
        let _ = tx.send(work());
    });
    hashing_queue()
        .lock()
        .map_err(|_| Error::Other(anyhow::anyhow!("the password hashing queue is poisoned")))?
        .send(job)
        .map_err(|_| Error::Other(anyhow::anyhow!("the password hashing threads stopped")))?;
    rx.await
        .map_err(|_| Error::Other(anyhow::anyhow!("a password hashing job was lost")))
}

/// Hashing is deliberately slow: it runs off the async workers.
pub async fn hash_password(password: Password) -> Result<String> {
    off_the_workers(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2_phc(
            password.expose().as_bytes(),
            &Params::default(),
            salt.as_salt(),
        )
        .map_err(|e| Error::Other(anyhow::anyhow!("hashing a password: {e}")))
    })
    .await?
}

pub async fn verify_password(hash: String, password: String) -> bool {
    off_the_workers(move || {
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        if parsed.algorithm != argon2::ARGON2ID_IDENT {
            return false;
        }
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        match argon2_output(password.as_bytes(), &params, salt, expected.len()) {
            // `Output`'s comparison takes constant time.
            Ok(computed) => computed == expected,
            Err(_) => false,
        }
    })
    .await
    .unwrap_or(false)
}

thread_local! {
    /// Argon2's working memory, allocated once per hashing thread and reused: allocating and
    /// freeing 19 MiB per hash fragments the allocator's arena, which then grows by that much at
    /// every login.
    static ARGON2_MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn argon2_output(
    password: &[u8],
    params: &Params,
    salt: Salt<'_>,
    len: usize,
) -> password_hash::Result<Output> {
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let argon2 = Argon2::new(argon2::Algorithm::Argon2id, Version::V0x13, params.clone());
    ARGON2_MEMORY.with_borrow_mut(|memory| {
        memory.resize(params.block_count(), Block::default());
        Output::init_with(len, |out| {
            argon2.hash_password_into_with_memory(password, salt_bytes, out, &mut memory[..])?;
            Ok(())
        })
    })
}

/// The PHC string of an argon2id hash (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
fn argon2_phc(password: &[u8], params: &Params, salt: Salt<'_>) -> password_hash::Result<String> {
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = argon2_output(password, params, salt, len)?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(secret: &str) -> Auth {
        Auth::new(
            secret.as_bytes(),
            Duration::from_secs(60),
            Duration::from_secs(60),
        )
    }

    fn user() -> User {
        User {
            id: UserId(7),
            role: Role::Agent,
            username: "alice".into(),
            display_name: "Alice".into(),
        }
    }

    #[test]
    fn a_token_names_its_user_and_role() {
        let auth = auth("0123456789abcdef0123456789abcdef");
        let identity = auth.verify(&auth.issue(&user()).unwrap()).unwrap().identity;
        assert_eq!(
            identity,
            Identity {
                user_id: UserId(7),
                role: Role::Agent
            }
        );
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = auth("another secret, also 32 characters!")
            .issue(&user())
            .unwrap();
        assert!(matches!(
            auth("0123456789abcdef0123456789abcdef").verify(&token),
            Err(Error::Unauthorized)
        ));
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        // {"alg":"none"} . {"sub":"7","role":"admin","iat":0,"exp":9999999999} .
        let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiI3Iiwicm9sZSI6ImFkbWluIiwiaWF0IjowLCJleHAiOjk5OTk5OTk5OTl9.";
        assert!(
            auth("0123456789abcdef0123456789abcdef")
                .verify(token)
                .is_err()
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let auth = Auth::new(
            b"0123456789abcdef0123456789abcdef",
            Duration::ZERO,
            Duration::ZERO,
        );
        let claims = Claims {
            sub: "7".into(),
            role: "agent".into(),
            iat: 0,
            exp: 1000,
            iat_ms: 0,
        };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &auth.encoding).unwrap();
        assert!(auth.verify(&token).is_err());
    }

    #[test]
    fn the_generated_secret_is_kept_across_restarts() {
        let dir = std::env::temp_dir().join(format!("kefu-secret-{}", random_hex(4)));
        std::fs::create_dir_all(&dir).unwrap();
        let first = Auth::load_or_create_secret(None, &dir).unwrap();
        let second = Auth::load_or_create_secret(None, &dir).unwrap();
        assert_eq!(first, second);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn hashes_are_standard_argon2id_strings() {
        use argon2::{PasswordHasher, PasswordVerifier};
        let ours = hash_password(Password::parse("correct horse".into()).unwrap())
            .await
            .unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        // The reference implementation accepts ours, and ours accepts its.
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password(theirs, "battery staple".into()).await);
    }

    #[tokio::test]
    async fn passwords_verify_against_their_hash_only() {
        let hash = hash_password(Password::parse("correct horse".into()).unwrap())
            .await
            .unwrap();
        assert!(verify_password(hash.clone(), "correct horse".into()).await);
        assert!(!verify_password(hash, "wrong horse".into()).await);
    }
}
