//! E-mail against real servers: aiosmtpd receives what kefu sends, Dovecot holds the mailbox
//! customers reply to. Every mail kind with its links, threading, the per-recipient limit and
//! its digest, a reply mailed only when the customer left without reading it, unsubscribing, an
//! SMTP server that is down, replies by IMAP and by the signed webhook.

mod common;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{Backend, TestServer};
use kefu::services::mail::links::sign_webhook;
use kefu_wire::Client;
use serde_json::{Value, json};

on_every_backend!(
    agents_and_customers_are_mailed_with_links_limits_and_digests,
    a_reply_the_customer_read_before_leaving_is_not_mailed_and_one_it_did_not_read_is,
    an_smtp_server_that_is_down_is_retried_and_counted_until_it_takes_the_mail,
    a_reply_by_imap_lands_in_its_conversation_once_trimmed,
    the_inbound_webhook_takes_only_signed_fresh_replies,
);

const FROM: &str = "Acme Shop <support@shop.example>";
const AGENT_EMAIL: &str = "agent@shop.example";
const CUSTOMER_EMAIL: &str = "jane@customer.example";
const WEBHOOK_SECRET: &str = "webhook-secret-for-tests";

/// Debian's Python, where python3-aiosmtpd is installed (a `python3` earlier in PATH may be
/// another one).
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A received mail, parsed.
#[derive(Debug, Clone)]
struct Received {
    to: String,
    subject: String,
    text: String,
    message_id: String,
    in_reply_to: Option<String>,
    references: Vec<String>,
    list_unsubscribe: Option<String>,
    list_unsubscribe_post: Option<String>,
}

/// aiosmtpd writing every mail it takes into a maildir.
struct Smtp {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// Mails already handed to the test.
    seen: usize,
}

impl Smtp {
    async fn start() -> Self {
        let mut smtp = Self::at(free_port());
        smtp.resume().await;
        smtp
    }

    /// A server that is not started yet.
    fn at(port: u16) -> Self {
        let dir = common::temp_dir().join("maildir");
        // A maildir with its tmp/, new/ and cur/.
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        Self {
            port,
            dir,
            child: None,
            seen: 0,
        }
    }

    async fn resume(&mut self) {
        let child = Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (Debian's python3-aiosmtpd)");
        self.child = Some(child);
        wait_for_port(self.port).await;
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn all(&self) -> Vec<Received> {
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .filter_map(|d| std::fs::read_dir(self.dir.join(d)).ok())
            .flatten()
            .map(|e| e.unwrap().path())
            .collect();
        // Maildir names start with the delivery time.
        files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
        files
            .iter()
            .map(|p| parse(&std::fs::read(p).unwrap()))
            .collect()
    }

    /// The next mail to `to`, waiting up to `within`.
    async fn next_to(&mut self, to: &str, within: Duration) -> Received {
        let deadline = Instant::now() + within;
        loop {
            let all = self.all();
            if let Some((i, mail)) = all
                .iter()
                .enumerate()
                .skip(self.seen)
                .find(|(_, m)| m.to.contains(to))
            {
                let mail = mail.clone();
                self.seen = self.seen.max(i + 1);
                return mail;
            }
            assert!(
                Instant::now() < deadline,
                "no mail to {to} within {within:?}; got {all:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn count_to(&self, to: &str) -> usize {
        self.all().iter().filter(|m| m.to.contains(to)).count()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

fn parse(raw: &[u8]) -> Received {
    let message = mail_parser::MessageParser::default().parse(raw).unwrap();
    let header = |name: &str| message.header_raw(name).map(|v| v.trim().to_owned());
    Received {
        to: header("To").unwrap_or_default(),
        subject: message.subject().unwrap_or_default().to_owned(),
        text: message.body_text(0).unwrap_or_default().into_owned(),
        message_id: format!("<{}>", message.message_id().unwrap_or_default()),
        in_reply_to: message.in_reply_to().as_text().map(|id| format!("<{id}>")),
        references: message
            .references()
            .as_text_list()
            .map(|l| l.iter().map(|id| format!("<{id}>")).collect())
            .unwrap_or_default(),
        list_unsubscribe: header("List-Unsubscribe"),
        list_unsubscribe_post: header("List-Unsubscribe-Post"),
    }
}

/// The value of `name=` in the first link of `text` that has it.
fn link_param(text: &str, name: &str) -> String {
    let at = text
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("no {name}= in {text}"));
    text[at + name.len() + 1..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '>')
        .collect()
}

fn mail_settings(smtp: &str) -> impl FnOnce(&mut kefu::Settings) {
    let smtp = smtp.to_owned();
    move |s: &mut kefu::Settings| {
        s.smtp_url = Some(kefu::config::Secret::new(smtp));
        s.smtp_from = Some(FROM.into());
        s.public_url = Some("https://chat.shop.example".into());
        s.mail_every_ms = 100;
        s.mail_reply_delay = 1;
        s.mail_unanswered_after = 1;
        s.mail_recipient_interval = 5;
        s.mail_retry_ms = 300;
        s.mail_inbound_secret = Some(kefu::config::Secret::new(WEBHOOK_SECRET));
        // The offline path's sweep records who left (`customer_gone_at`), which the replies'
        // mails wait for.
        s.timers_every_ms = 100;
    }
}

/// How many messages of the conversation have `content`.
async fn count_messages(server: &TestServer, conversation: &str, content: &str) -> i64 {
    use sqlx::{Connection, Row};
    let url = server
        .db
        .url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", server.data_dir.join("kefu.db").display()));
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let query = if server.db.backend == Backend::Postgres {
        "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = $1 AND content = $2"
    } else {
        "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ? AND content = ?"
    };
    let n: i64 = sqlx::query(query)
        .bind(conversation.parse::<i64>().unwrap())
        .bind(content)
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    let _ = conn.close().await;
    n
}

/// A visitor that gave its e-mail: (token, id).
async fn visitor_with_email(server: &TestServer) -> (String, String) {
    let (status, body) = server
        .post(
            "/api/visitors",
            json!({"name": "Jane", "email": CUSTOMER_EMAIL}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["token"].as_str().unwrap().to_owned(),
        body["user"]["id"].as_str().unwrap().to_owned(),
    )
}

/// An agent with an e-mail: (token, id).
async fn agent_with_email(server: &TestServer) -> (String, String) {
    let admin = server.admin_token().await;
    let (status, body) = server
        .post(
            "/api/agents",
            json!({"username": "mailagent", "password": "agent-password", "email": AGENT_EMAIL}),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .post(
            "/api/login",
            json!({"username": "mailagent", "password": "agent-password"}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (
        body["token"].as_str().unwrap().to_owned(),
        body["user"]["id"].as_str().unwrap().to_owned(),
    )
}

/// The agent writes `content` to its customer; the stored message's id.
async fn say(agent: &Client, customer_id: &str, content: &str) -> String {
    let ack = agent
        .call(
            "private_message",
            json!({"receiverId": customer_id, "content": content}),
        )
        .await
        .unwrap();
    assert_eq!(ack["ok"], true, "{ack}");
    ack["id"].as_str().unwrap().to_owned()
}

async fn metric(server: &TestServer, name: &str) -> u64 {
    let (_, text) = server.get("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

async fn agents_and_customers_are_mailed_with_links_limits_and_digests(backend: Backend) {
    let mut smtp = Smtp::start().await;
    let server = TestServer::start_with(backend, mail_settings(&smtp.url())).await;
    let (customer_token, customer_id) = visitor_with_email(&server).await;

    // Nobody online: the agents hear that a customer waits, with a link to the console. The
    // customer comes first, while no agent has an e-mail yet: the first one given one is told.
    let (customer, arrived) = server.arrive(&customer_token, &customer_id).await;
    let conversation = arrived["conversationId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (agent_token, agent_id) = agent_with_email(&server).await;
    let waiting = smtp.next_to(AGENT_EMAIL, Duration::from_secs(10)).await;
    assert!(waiting.subject.contains("is waiting"), "{waiting:?}");
    assert!(
        waiting.text.contains(&format!(
            "https://chat.shop.example/console?conversation={conversation}"
        )),
        "{waiting:?}"
    );
    assert!(waiting.text.contains("hello"), "{waiting:?}");
    assert!(
        waiting
            .message_id
            .starts_with(&format!("<kefu.{conversation}.")),
        "{waiting:?}"
    );

    // The agent comes, is given the conversation, and does not answer: it is told, once the
    // limit of one mail per 5 s has passed.
    let (agent, _) = server.login(&agent_token, &agent_id).await;
    let unanswered = smtp.next_to(AGENT_EMAIL, Duration::from_secs(10)).await;
    assert!(unanswered.subject.contains("no answer"), "{unanswered:?}");
    assert!(
        unanswered
            .text
            .contains(&format!("conversation={conversation}"))
    );

    // The customer leaves; the agent's reply is mailed, with the conversation so far, a resume
    // link and a one-click unsubscribe.
    customer.close();
    say(&agent, &customer_id, "Your parcel left today").await;
    let reply = smtp.next_to(CUSTOMER_EMAIL, Duration::from_secs(10)).await;
    assert!(reply.subject.contains("Acme Shop"), "{reply:?}");
    assert!(reply.text.contains("Your parcel left today"), "{reply:?}");
    assert!(
        reply.text.contains("You: hello"),
        "the conversation so far: {reply:?}"
    );
    assert!(reply.text.contains("Reply above this line"));
    assert!(
        reply
            .message_id
            .starts_with(&format!("<kefu.{conversation}."))
    );
    let unsubscribe = reply.list_unsubscribe.clone().expect("List-Unsubscribe");
    assert!(unsubscribe.starts_with("<https://chat.shop.example/api/mail/unsubscribe?token="));
    assert_eq!(
        reply.list_unsubscribe_post.as_deref(),
        Some("List-Unsubscribe=One-Click")
    );

    // The resume link gives the customer its identity back.
    let resume = link_param(&reply.text, "resume");
    let (status, body) = server
        .post("/api/visitors/resume", json!({"token": resume}), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["id"], customer_id.as_str());
    let (status, me) = server
        .request(
            reqwest::Method::GET,
            "/api/me",
            None,
            body["token"].as_str(),
        )
        .await;
    assert_eq!((status, &me["user"]["id"]), (200, &json!(customer_id)));
    let (status, body) = server
        .post(
            "/api/visitors/resume",
            json!({"token": format!("{resume}0")}),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_token"))
    );

    // Two more replies within the recipient's interval: one digest, threaded under the first.
    say(&agent, &customer_id, "It is in Berlin").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    say(&agent, &customer_id, "It arrives tomorrow").await;
    let digest = smtp.next_to(CUSTOMER_EMAIL, Duration::from_secs(10)).await;
    assert!(digest.subject.starts_with("2 updates"), "{digest:?}");
    assert!(digest.text.contains("It is in Berlin") && digest.text.contains("It arrives tomorrow"));
    assert!(digest.references.contains(&reply.message_id), "{digest:?}");
    assert!(digest.in_reply_to.is_some());

    // Unsubscribing: a page with a button, then the one-click POST.
    let token = link_param(&unsubscribe, "token");
    let (status, page) = server
        .get(&format!("/api/mail/unsubscribe?token={token}"))
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("<button"), "{page}");
    let (status, body) = server
        .get(&format!("/api/mail/unsubscribe?token=1{token}"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_token"));
    let response = reqwest::Client::new()
        .post(format!(
            "{}/api/mail/unsubscribe?token={token}",
            server.base
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let before = smtp.count_to(CUSTOMER_EMAIL);
    say(&agent, &customer_id, "Anything else?").await;
    // Past the delay and the interval: nothing comes.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        smtp.count_to(CUSTOMER_EMAIL),
        before,
        "no mail after unsubscribing"
    );

    // A transcript asked for is still sent, at once.
    let (status, body) = server
        .post(
            &format!("/api/conversations/{conversation}/transcript/email"),
            json!({}),
            Some(&customer_token),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["to"], CUSTOMER_EMAIL);
    let transcript = smtp.next_to(CUSTOMER_EMAIL, Duration::from_secs(5)).await;
    assert!(
        transcript
            .text
            .contains(&format!("Conversation {conversation}"))
    );
    assert!(transcript.text.contains("Anything else?"), "{transcript:?}");
    assert!(transcript.text.contains("/chat?resume="));

    // Another's conversation, or a customer without an e-mail: refused with a clear code.
    let (other_token, _) = server.visitor().await;
    let (status, body) = server
        .post(
            &format!("/api/conversations/{conversation}/transcript/email"),
            json!({}),
            Some(&other_token),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    assert!(metric(&server, "kefu_mail_sent_total").await >= 5);
    drop(agent);
    server.stop().await;
}

/// What a reply mail gives as new, without the conversation so far.
fn new_in_reply(mail: &Received) -> &str {
    let text = mail.text.as_str();
    let start = text
        .find("You have a new reply:")
        .unwrap_or_else(|| panic!("not a reply mail: {mail:?}"));
    let end = text[start..]
        .find("Continue in the chat")
        .map_or(text.len(), |n| start + n);
    &text[start..end]
}

async fn a_reply_the_customer_read_before_leaving_is_not_mailed_and_one_it_did_not_read_is(
    backend: Backend,
) {
    let mut smtp = Smtp::start().await;
    let server = TestServer::start_with(backend, mail_settings(&smtp.url())).await;
    let (agent_token, agent_id) = agent_with_email(&server).await;
    let (agent, _) = server.login(&agent_token, &agent_id).await;
    let (customer_token, customer_id) = visitor_with_email(&server).await;
    let (mut customer, arrived) = server.arrive(&customer_token, &customer_id).await;
    assert_eq!(arrived["csId"], agent_id.as_str(), "{arrived}");
    let conversation = arrived["conversationId"].as_str().unwrap().to_owned();

    // The customer reads the answer, then leaves.
    let read_id = say(&agent, &customer_id, "Your parcel left today").await;
    loop {
        let message = customer
            .expect("new_private_message", common::WAIT)
            .await
            .unwrap();
        if message["id"] == read_id.as_str() {
            break;
        }
    }
    let read = customer
        .call("read", json!({"peerId": agent_id, "upToId": read_id}))
        .await
        .unwrap();
    assert_eq!(read["ok"], true, "{read}");
    customer.close();
    drop(customer);
    let url = server.database_url();
    let deadline = Instant::now() + Duration::from_secs(5);
    while common::scalar(
        &url,
        &format!("SELECT customer_gone_at FROM conversations WHERE id = {conversation}"),
    )
    .await
    .is_none()
    {
        assert!(Instant::now() < deadline, "the departure is not recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Well past the delay: nothing is mailed about what was read.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        smtp.count_to(CUSTOMER_EMAIL),
        0,
        "mailed a read reply: {:#?}",
        smtp.all()
    );

    // A reply written after it left, which it cannot have read, is mailed: that one only.
    say(&agent, &customer_id, "It arrives tomorrow").await;
    let mail = smtp.next_to(CUSTOMER_EMAIL, Duration::from_secs(10)).await;
    let new = new_in_reply(&mail);
    assert!(new.contains("It arrives tomorrow"), "{mail:?}");
    assert!(!new.contains("Your parcel left today"), "{mail:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.count_to(CUSTOMER_EMAIL), 1, "{:#?}", smtp.all());
    drop(agent);
    server.stop().await;
}

async fn an_smtp_server_that_is_down_is_retried_and_counted_until_it_takes_the_mail(
    backend: Backend,
) {
    let mut smtp = Smtp::at(free_port());
    let server = TestServer::start_with(backend, mail_settings(&smtp.url())).await;
    let (token, id) = visitor_with_email(&server).await;
    // Chat goes on while mail cannot go out.
    let (_customer, arrived) = server.arrive(&token, &id).await;
    let conversation = arrived["conversationId"].as_str().unwrap();
    let (status, body) = server
        .post(
            &format!("/api/conversations/{conversation}/transcript/email"),
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&server, "kefu_mail_retried_total").await < 1 {
        assert!(Instant::now() < deadline, "no retry counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(metric(&server, "kefu_mail_failed_total").await >= 1);
    assert_eq!(metric(&server, "kefu_mail_pending").await, 1);
    assert_eq!(metric(&server, "kefu_mail_sent_total").await, 0);

    smtp.resume().await;
    let mail = smtp.next_to(CUSTOMER_EMAIL, Duration::from_secs(15)).await;
    assert!(mail.text.contains(&format!("Conversation {conversation}")));
    // Counted once the SMTP server's answer is back, a moment after it has the mail.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&server, "kefu_mail_pending").await != 0
        || metric(&server, "kefu_mail_sent_total").await != 1
    {
        assert!(Instant::now() < deadline, "the outbox is not empty");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&server, "kefu_mail_sent_total").await, 1);
    server.stop().await;
}

/// Dovecot in the foreground with one mailbox, `support` / `secret`.
struct Dovecot {
    port: u16,
    child: Child,
}

impl Dovecot {
    async fn start() -> Self {
        let dir = common::temp_dir().join("dovecot");
        for sub in ["run", "state", "mail", "home"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let root = is_root();
        // Dovecot's login processes refuse root, and its mail processes uid 0: as root, they
        // run as the package's users; otherwise everything runs as the current user.
        let (login, internal, mail_user) = if root {
            (
                "dovenull".to_owned(),
                "dovecot".to_owned(),
                "dovecot".to_owned(),
            )
        } else {
            let me = std::env::var("USER").unwrap_or_else(|_| "nobody".into());
            (me.clone(), me.clone(), me)
        };
        for sub in ["mail", "home"] {
            let _ = Command::new("chmod").arg("777").arg(dir.join(sub)).status();
        }
        let port = free_port();
        let d = dir.display();
        std::fs::write(dir.join("passwd"), "support:{PLAIN}secret\n").unwrap();
        std::fs::write(
            dir.join("dovecot.conf"),
            format!(
                "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {d}/run\nstate_dir = {d}/state\n\
                 instance_name = kefu-test-{port}\nssl = no\ndisable_plaintext_auth = no\n\
                 auth_mechanisms = plain login\nlog_path = {d}/dovecot.log\n\
                 default_login_user = {login}\ndefault_internal_user = {internal}\n\
                 default_internal_group = {internal}\nfirst_valid_uid = 0\n\
                 mail_location = maildir:{d}/mail/%u\n\
                 passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {d}/passwd\n}}\n\
                 userdb {{\n  driver = static\n  args = uid={mail_user} gid={mail_user} home={d}/home/%u\n}}\n\
                 service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
                 service anvil {{\n  chroot =\n}}\n"
            ),
        )
        .unwrap();
        let child = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(dir.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dovecot (Debian's dovecot-imapd)");
        wait_for_port(port).await;
        Self { port, child }
    }

    fn url(&self) -> String {
        format!("imap://support:secret@127.0.0.1:{}/INBOX", self.port)
    }

    /// Puts `raw` into the mailbox, as a mail delivered to it.
    fn append(&self, raw: &str) {
        let script = format!(
            "import imaplib,sys\nm=imaplib.IMAP4('127.0.0.1',{})\nm.login('support','secret')\n\
             t,d=m.append('INBOX','',None,sys.stdin.buffer.read())\nassert t=='OK',d\nm.logout()\n",
            self.port
        );
        let mut child = Command::new(python())
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(raw.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "APPEND to Dovecot");
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A customer's reply to `answers` (a Message-ID of kefu's), with a quoted history.
fn reply_mail(from: &str, message_id: &str, answers: &str, text: &str) -> String {
    format!(
        "From: Jane <{from}>\r\nTo: support@shop.example\r\nSubject: Re: your conversation\r\n\
         Message-ID: {message_id}\r\nIn-Reply-To: {answers}\r\nReferences: {answers}\r\n\
         Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         {text}\r\n\r\nOn Mon, 7 Dec 2026 at 09:00, Acme Shop <support@shop.example> wrote:\r\n\
         > Your parcel left today\r\n> -- Reply above this line --\r\n"
    )
}

/// A conversation of a customer with an e-mail, and a Message-ID of kefu's about it (from the
/// transcript mailed to the customer).
async fn conversation_with_mail(
    server: &TestServer,
    smtp: &mut Smtp,
) -> (String, String, String, kefu_wire::Client) {
    let (token, id) = visitor_with_email(server).await;
    let (client, arrived) = server.arrive(&token, &id).await;
    let conversation = arrived["conversationId"].as_str().unwrap().to_owned();
    let (status, body) = server
        .post(
            &format!("/api/conversations/{conversation}/transcript/email"),
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let mail = smtp.next_to(CUSTOMER_EMAIL, Duration::from_secs(10)).await;
    (conversation, id, mail.message_id, client)
}

async fn wait_for_count(server: &TestServer, conversation: &str, content: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = count_messages(server, conversation, content).await;
        if found == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{found} messages {content:?}, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_reply_by_imap_lands_in_its_conversation_once_trimmed(backend: Backend) {
    let mut smtp = Smtp::start().await;
    let dovecot = Dovecot::start().await;
    let imap = dovecot.url();
    let server = TestServer::start_with(backend, |s| {
        mail_settings(&smtp.url())(s);
        s.imap_url = Some(kefu::config::Secret::new(imap));
        s.imap_poll_ms = 200;
    })
    .await;
    let (conversation, _, kefu_id, _client) = conversation_with_mail(&server, &mut smtp).await;

    // The same mail twice (two deliveries): one message, without the quoted history.
    let raw = reply_mail(
        CUSTOMER_EMAIL,
        "<reply-1@customer.example>",
        &kefu_id,
        "Thanks, it arrived.",
    );
    dovecot.append(&raw);
    wait_for_count(&server, &conversation, "Thanks, it arrived.", 1).await;
    dovecot.append(&raw);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    wait_for_count(&server, &conversation, "Thanks, it arrived.", 1).await;

    // A stranger answering the same mail is not taken; nor a forged Message-ID.
    dovecot.append(&reply_mail(
        "mallory@evil.example",
        "<reply-2@evil.example>",
        &kefu_id,
        "Send it to me instead",
    ));
    let other: i64 = conversation.parse::<i64>().unwrap() + 1;
    let forged = kefu_id.replacen(
        &format!("kefu.{conversation}."),
        &format!("kefu.{other}."),
        1,
    );
    dovecot.append(&reply_mail(
        CUSTOMER_EMAIL,
        "<reply-3@customer.example>",
        &forged,
        "Forged thread",
    ));
    dovecot.append(&reply_mail(
        CUSTOMER_EMAIL,
        "<reply-4@customer.example>",
        &kefu_id,
        "Last one",
    ));
    wait_for_count(&server, &conversation, "Last one", 1).await;
    assert_eq!(
        count_messages(&server, &conversation, "Send it to me instead").await,
        0
    );
    let stored = count_messages(&server, &conversation, "Forged thread").await;
    assert_eq!(stored, 0);
    server.stop().await;
}

async fn the_inbound_webhook_takes_only_signed_fresh_replies(backend: Backend) {
    let mut smtp = Smtp::start().await;
    let server = TestServer::start_with(backend, mail_settings(&smtp.url())).await;
    let (conversation, _, kefu_id, _client) = conversation_with_mail(&server, &mut smtp).await;
    let raw = reply_mail(
        CUSTOMER_EMAIL,
        "<hook-1@customer.example>",
        &kefu_id,
        "Via the webhook",
    );
    let http = reqwest::Client::new();
    let post = |signature: Option<String>, body: String| {
        let mut request = http
            .post(format!("{}/api/mail/inbound", server.base))
            .header("content-type", "message/rfc822")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("X-Kefu-Signature", signature);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let now = kefu::domain::now_millis() / 1000;
    let secret = WEBHOOK_SECRET.as_bytes();

    let (status, body) = post(None, raw.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_token"))
    );
    let (status, body) = post(
        Some(sign_webhook(b"wrong", raw.as_bytes(), now)),
        raw.clone(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_token"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not match")
    );
    let (status, body) = post(
        Some(sign_webhook(secret, raw.as_bytes(), now - 600)),
        raw.clone(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_token"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5 minutes")
    );
    assert_eq!(
        count_messages(&server, &conversation, "Via the webhook").await,
        0
    );

    let (status, body) = post(Some(sign_webhook(secret, raw.as_bytes(), now)), raw.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["conversationId"], conversation.as_str());
    assert_eq!(body["duplicate"], false);
    // The provider retries: stored once.
    let (status, body) = post(Some(sign_webhook(secret, raw.as_bytes(), now)), raw.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["duplicate"], true);
    assert_eq!(
        count_messages(&server, &conversation, "Via the webhook").await,
        1
    );

    // Not a mail, or a mail that answers nothing of kefu's: clear codes.
    let junk = "not a mail".to_owned();
    let (status, body) = post(Some(sign_webhook(secret, junk.as_bytes(), now)), junk).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_payload")),
        "{body}"
    );
    let stray = reply_mail(CUSTOMER_EMAIL, "<x@y>", "<other@elsewhere.example>", "Hi");
    let (status, body) = post(Some(sign_webhook(secret, stray.as_bytes(), now)), stray).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    server.stop().await;
}
