//! The mailbox customers reply to, polled over IMAP (`async-imap`) by the node holding the lease
//! `mail-imap`. Each unseen mail is read without marking it (`BODY.PEEK[]`), handed to
//! [`Inner::receive`], and marked `\Seen` once taken or refused for good; a mail that met a
//! passing failure (the database away) stays unseen for the next poll. Reading a mail twice does
//! no harm: its clientMsgId comes from its Message-ID.

use std::{fmt, sync::Arc, time::Duration};

use anyhow::Context;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use super::{Inner, transient};
use crate::domain::now_millis;

const LEASE: &str = "mail-imap";
/// One poll may take this long before it is abandoned (a server that stopped answering).
const POLL_DEADLINE: Duration = Duration::from_secs(60);

/// Where the mailbox is: `imap://user:pass@host:port/INBOX` or `imaps://…` (TLS, port 993).
#[derive(Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub folder: String,
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}@{}:{}/{}",
            if self.tls { "imaps" } else { "imap" },
            self.user,
            self.host,
            self.port,
            self.folder
        )
    }
}

impl Mailbox {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let (scheme, rest) = url
            .split_once("://")
            .context("expected imap://user:pass@host:port/INBOX or imaps://…")?;
        let tls = match scheme {
            "imap" => false,
            "imaps" => true,
            other => anyhow::bail!("unknown scheme {other:?}: use imap:// or imaps://"),
        };
        let (authority, folder) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, host_port) = authority
            .rsplit_once('@')
            .context("the URL needs user:password@ before the host")?;
        let (user, password) = credentials
            .split_once(':')
            .context("the URL needs user:password@ before the host")?;
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().context("the port is not a number")?),
            None => (host_port, if tls { 993 } else { 143 }),
        };
        anyhow::ensure!(!host.is_empty(), "the URL names no host");
        let folder = percent_decode(folder)?;
        Ok(Self {
            tls,
            host: host.trim_matches(['[', ']']).to_owned(),
            port,
            user: percent_decode(user)?,
            password: percent_decode(password)?,
            folder: if folder.is_empty() {
                "INBOX".to_owned()
            } else {
                folder
            },
        })
    }
}

fn percent_decode(text: &str) -> anyhow::Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).context("a broken %-escape")?;
            out.push(u8::from_str_radix(hex, 16).context("a broken %-escape")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("a %-escape that is not UTF-8")
}

pub(super) async fn run(inner: Arc<Inner>, stop: CancellationToken) {
    let url = inner
        .config
        .imap_url
        .clone()
        .expect("the poller runs with a mailbox");
    let mailbox = match Mailbox::parse(&url) {
        Ok(mailbox) => mailbox,
        Err(e) => {
            tracing::error!(error = %e, "KEFU_IMAP_URL");
            return;
        }
    };
    let every = inner.config.imap_poll;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let hold_for = (every.as_millis() as i64 * 3).max(POLL_DEADLINE.as_millis() as i64);
    // Said once per outage, not once per poll.
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        match inner
            .store
            .claim_lease(LEASE, &inner.node, now_millis(), hold_for)
            .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "claiming the IMAP poller's lease");
                continue;
            }
        }
        let polled = tokio::select! {
            _ = stop.cancelled() => break,
            polled = tokio::time::timeout(POLL_DEADLINE, poll(&inner, &mailbox)) => polled,
        };
        match polled {
            Ok(Ok(n)) => {
                if failing {
                    tracing::info!(?mailbox, "the reply mailbox answers again");
                }
                failing = false;
                if n > 0 {
                    tracing::debug!(mails = n, "replies by e-mail read");
                }
            }
            Ok(Err(error)) if !failing => {
                failing = true;
                tracing::warn!(
                    ?mailbox,
                    error = format!("{error:#}"),
                    "polling the reply mailbox failed"
                );
            }
            Err(_) if !failing => {
                failing = true;
                tracing::warn!(?mailbox, "polling the reply mailbox timed out");
            }
            _ => {}
        }
    }
    let _ = inner.store.release_lease(LEASE, &inner.node).await;
}

/// One poll: connect, log in, read what is unseen. The number of mails handled.
async fn poll(inner: &Inner, mailbox: &Mailbox) -> anyhow::Result<usize> {
    let tcp = tokio::net::TcpStream::connect((mailbox.host.as_str(), mailbox.port))
        .await
        .with_context(|| format!("connecting to {}:{}", mailbox.host, mailbox.port))?;
    if mailbox.tls {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(mailbox.host.clone())
            .context("the IMAP host is not a valid TLS name")?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .context("the TLS handshake with the IMAP server")?;
        session(inner, mailbox, tls).await
    } else {
        session(inner, mailbox, tcp).await
    }
}

async fn session<S>(inner: &Inner, mailbox: &Mailbox, stream: S) -> anyhow::Result<usize>
where
    S: AsyncRead + AsyncWrite + Unpin + fmt::Debug + Send,
{
    let mut client = async_imap::Client::new(stream);
    client
        .read_response()
        .await?
        .context("the IMAP server closed before greeting")?;
    let mut session = client
        .login(&mailbox.user, &mailbox.password)
        .await
        .map_err(|(e, _)| e)
        .context("logging in to the IMAP server")?;
    session
        .select(&mailbox.folder)
        .await
        .with_context(|| format!("selecting {}", mailbox.folder))?;
    let mut uids: Vec<u32> = session.uid_search("UNSEEN").await?.into_iter().collect();
    uids.sort_unstable();
    let mut handled = 0;
    for uid in uids {
        let raw = {
            let mut fetches = session.uid_fetch(uid.to_string(), "BODY.PEEK[]").await?;
            let mut raw = None;
            while let Some(fetch) = fetches.next().await {
                let fetch = fetch?;
                if let Some(body) = fetch.body() {
                    raw = Some(body.to_vec());
                }
            }
            raw
        };
        let Some(raw) = raw else { continue };
        let done = match inner.receive(&raw).await {
            Ok(_) => true,
            Err(error) if transient(&error) => {
                error.log("a reply by e-mail");
                false
            }
            Err(error) => {
                // Not a reply kefu can take (no conversation, a stranger's): left read, and
                // logged, for a person to look at in the mailbox.
                tracing::info!(uid, reason = %error.public_message(), "a mail in the reply mailbox was not taken");
                true
            }
        };
        if done {
            let mut stored = session
                .uid_store(uid.to_string(), "+FLAGS (\\Seen)")
                .await?;
            while let Some(reply) = stored.next().await {
                reply?;
            }
            handled += 1;
        }
    }
    let _ = session.logout().await;
    Ok(handled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imap_url_gives_the_server_the_login_and_the_folder() {
        let m = Mailbox::parse("imaps://shop%40x.example:p%3Ass@mail.example/Replies").unwrap();
        assert!(m.tls);
        assert_eq!((m.host.as_str(), m.port), ("mail.example", 993));
        assert_eq!(
            (m.user.as_str(), m.password.as_str()),
            ("shop@x.example", "p:ss")
        );
        assert_eq!(m.folder, "Replies");
        let m = Mailbox::parse("imap://u:p@127.0.0.1:1143").unwrap();
        assert!(!m.tls);
        assert_eq!((m.port, m.folder.as_str()), (1143, "INBOX"));
        assert!(
            !format!("{m:?}").contains(":p@"),
            "the password is not shown"
        );
    }

    #[test]
    fn a_url_without_credentials_or_of_another_scheme_is_refused() {
        assert!(Mailbox::parse("imap://host:143/INBOX").is_err());
        assert!(Mailbox::parse("pop3://u:p@host").is_err());
    }
}
