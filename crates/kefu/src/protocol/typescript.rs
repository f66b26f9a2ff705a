//! The web UI's protocol types, generated from this module's Rust types: one source of truth for
//! the wire. `web/src/shared/protocol.gen.ts` is what [`generate`] writes; the test below fails
//! when the committed file is stale, and `KEFU_WRITE_TS=1 cargo test -p kefu --lib protocol`
//! writes it again.

use std::path::PathBuf;

use ts_rs::{Config, TS};

use super::{
    http::{self, *},
    *,
};
use crate::{
    domain::{
        AttachmentId, ConversationId, EventKind, HistoryLimit, MessageId, Role, User, UserId,
    },
    services::{
        Error,
        chat::{MAX_CAPACITY, MAX_RATING_COMMENT_CHARS},
        reports::{AgentReport, Csat, DayCount, MAX_DAYS, Report, Spread},
    },
};

/// Where the web UI keeps it.
fn target() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/src/shared/protocol.gen.ts")
}

/// The `kind` of a message: written by a person (`text`, or a file as `image`/`file`), or by
/// kefu itself (`system`).
const MESSAGE_KINDS: &[&str] = &["text", "system", "image", "file"];

/// The limits clients check before they send.
fn constants() -> String {
    let constants: [(&str, &str, String); 6] = [
        (
            "HISTORY_MAX_LIMIT",
            "The most messages one `history` call returns.",
            HistoryLimit::MAX.to_string(),
        ),
        (
            "MAX_CONTENT_BYTES",
            "Content limit in bytes of UTF-8, unless the server sets another (`KEFU_MAX_MESSAGE_BYTES`).",
            crate::config::Settings::default()
                .max_message_bytes
                .to_string(),
        ),
        (
            "MAX_RATING_COMMENT",
            "The most characters a rating's comment may have.",
            MAX_RATING_COMMENT_CHARS.to_string(),
        ),
        (
            "MIN_CAPACITY",
            "The fewest open conversations an agent may be given at once.",
            "1".to_owned(),
        ),
        (
            "MAX_CAPACITY",
            "The most open conversations an agent may be given at once.",
            MAX_CAPACITY.to_string(),
        ),
        (
            "MAX_REPORT_DAYS",
            "The longest period a report covers, in days.",
            MAX_DAYS.to_string(),
        ),
    ];
    constants
        .iter()
        .map(|(name, doc, value)| format!("/** {doc} */\nexport const {name} = {value};\n\n"))
        .collect()
}

fn union(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Every type of the protocol, in the order a reader meets them in docs/protocol.md.
fn generate() -> String {
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from the Rust types of crates/kefu/src/protocol (protocol/typescript.rs): do not\n\
         // edit. `KEFU_WRITE_TS=1 cargo test -p kefu --lib protocol` writes it again; scripts/test\n\
         // fails when it is stale.\n\n",
    );
    out.push_str(&format!(
        "/** Every error code of docs/protocol.md. */\nexport type ErrorCode = {};\n\n",
        union(Error::CODES)
    ));
    out.push_str(&format!(
        "/** A conversation is `open` until its agent resolves it. */\nexport type ConversationStatus = {};\n\n",
        union(&["open", "resolved"])
    ));
    let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    out.push_str(&format!(
        "/** What happened to a conversation besides its messages (a transcript's `events`). */\n\
         export type ConversationEventKind = {};\n\n",
        union(&kinds)
    ));
    out.push_str(&format!(
        "/** `system`: written by the server, shown as an info line; `image` and `file` carry an `attachment`. */\n\
         export type MessageKind = {};\n\n",
        union(MESSAGE_KINDS)
    ));
    macro_rules! declare {
        ($($ty:ty),* $(,)?) => {
            $(
                if let Some(docs) = <$ty as TS>::docs() {
                    out.push_str(&docs);
                }
                out.push_str("export ");
                out.push_str(&<$ty as TS>::decl(&cfg));
                out.push_str("\n\n");
            )*
        };
    }
    declare!(
        // Both transports.
        UserId,
        ConversationId,
        MessageId,
        AttachmentId,
        Role,
        User,
        ErrorBody,
        AgentStatusName,
        // HTTP.
        VisitorRequest,
        http::LoginRequest,
        Session,
        UserBody,
        AgentRequest,
        ResumeRequest,
        TranscriptEmailed,
        InboundReceived,
        AgentSummary,
        Agents,
        AgentUpdate,
        Updated,
        Colleague,
        Colleagues,
        ConversationItem,
        ConversationList,
        ReplyBody,
        Replies,
        One,
        NewReply,
        ReplyChange,
        AttachmentPayload,
        Uploaded,
        DayCount,
        Spread,
        Csat,
        AgentReport,
        Report,
        NodeSummary,
        Nodes,
        Person,
        Found,
        FoundPage,
        TranscriptConversation,
        EventPayload,
        TranscriptBody,
        AvailabilityBody,
        ContactBody,
        OfflineMessageRequest,
        OfflineMessageResponse,
        HoursBody,
        HoursInterval,
        // Socket.IO: what clients send.
        super::LoginRequest,
        PrivateMessageRequest,
        ReadRequest,
        TypingRequest,
        HistoryRequest,
        SetStatusRequest,
        PeerRequest,
        TransferRequest,
        NoteRequest,
        NotesRequest,
        RateRequest,
        // Socket.IO: what the server sends.
        MessagePayload,
        NotePayload,
        MemberPayload,
        LoginAck,
        RequestedAgentBody,
        MembersAck,
        SentAck,
        StartedAck,
        ReadAck,
        HistoryAck,
        StatusAck,
        ConversationAck,
        QueueStatusAck,
        TransferAck,
        NoteAck,
        NotesAck,
        ErrorAck,
        ErrorEvent,
        MessagesRead,
        Typing,
        MemberUpdate,
        ConversationAssigned,
        ConversationQueued,
        QueuePosition,
        ConversationResolved,
        ConversationTransferred,
        AgentStatus,
        NewNote,
        Resync,
    );
    out.push_str(&constants());
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[test]
fn every_type_the_generated_file_names_is_declared_in_it() {
    let generated = generate();
    let declared: std::collections::BTreeSet<&str> = generated
        .lines()
        .filter_map(|l| {
            l.strip_prefix("export type ")
                .or_else(|| l.strip_prefix("export const "))
        })
        .filter_map(|l| l.split([' ', '<']).next())
        .collect();
    let code: String = generated
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            !(l.starts_with("//") || l.starts_with("/*") || l.starts_with('*'))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut missing = std::collections::BTreeSet::new();
    for word in code.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
        let named = word.starts_with(|c: char| c.is_ascii_uppercase());
        if named && word != "Array" && !declared.contains(word) {
            missing.insert(word.to_owned());
        }
    }
    assert!(missing.is_empty(), "used but not declared: {missing:?}");
}

#[test]
fn the_web_uis_protocol_types_are_generated_from_these() {
    let fresh = generate();
    let path = target();
    if std::env::var_os("KEFU_WRITE_TS").is_some() {
        std::fs::write(&path, &fresh).expect("writing protocol.gen.ts");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "web/src/shared/protocol.gen.ts is stale: run `KEFU_WRITE_TS=1 cargo test -p kefu --lib \
         protocol` and commit it"
    );
}
