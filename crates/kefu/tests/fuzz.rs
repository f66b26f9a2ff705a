//! Property tests ("fuzzing") of what a client controls: every event's argument, decoded the way
//! socketioxide decodes it for a handler's `TryData<Payload<T>>` (the event packet, then
//! `CommonParser::decode_value` of its first argument), and the domain parsers behind them.
//!
//! Each property runs `PROPTEST_CASES` cases (256 by default, read by proptest itself);
//! scripts/test runs a longer pass. A failure prints the smallest input proptest could shrink it
//! to.
//!
//! The oracle (`expected`) restates protocol/ and docs/protocol.md independently: for any JSON
//! argument it says whether it must decode and to what, or which problem the error must name.

use proptest::{
    collection::{btree_map, vec},
    prelude::*,
    sample::{Index, select},
    test_runner::Config,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value as Json, json};
use socketioxide_core::{
    Str, Value,
    packet::PacketData,
    parser::{Parse, ParseConfig, ParserState},
};
use socketioxide_parser_common::CommonParser;

use kefu::domain::{
    AttachmentId, ClientMsgId, Content, ConversationId, DisplayName, Email, HistoryLimit,
    MessageId, Password, Role, UserId, Username, ValidationError,
};
use kefu::protocol::{self as events, *};

/// The default `max_message_bytes` (config.rs).
const MAX_MESSAGE_BYTES: usize = 8 * 1024;

/// i64::MAX has 19 digits; longer ids (even zero-padded) are refused.
const ID_MAX_DIGITS: usize = 19;

/// How protocol/ reads one field of a payload.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A required id; the text names what it is ("a user id").
    Id(&'static str),
    /// `#[serde(default, deserialize_with = "optional_id")]`: absent, `null`, `""`, `"undefined"`
    /// and `"null"` mean none.
    OptionalId(&'static str),
    /// `deserialize_with = "optional_id"` without a default: the key is required, `null` allowed.
    KeyedId(&'static str),
    Bool,
    Int,
    OptionalInt,
    Text,
    OptionalText,
    Status,
}

use Kind::*;

const USER: &str = "a user id";
const CONVERSATION: &str = "a conversation id";
const MESSAGE: &str = "a message id";
const ATTACHMENT: &str = "an attachment id";

type Decode = fn(&mut Value) -> Result<Json, String>;

/// A client event: its name, its payload's fields in declaration order, and how its handler
/// decodes its argument (`None`: the handler takes no data, so nothing is decoded).
#[derive(Debug)]
struct Event {
    name: &'static str,
    fields: &'static [(&'static str, Kind)],
    decode: Option<Decode>,
}

/// The handler's path: `TryData<Payload<T>>` over the packet's data `["event", arg, ...]`, turned
/// into a canonical JSON object (ids through their own `Serialize`) to compare with the oracle.
fn decode_as<T: DeserializeOwned>(data: &mut Value, canon: fn(T) -> Json) -> Result<Json, String> {
    CommonParser
        .decode_value::<Payload<T>>(data, true)
        .map(|Payload(payload)| canon(payload))
        .map_err(|e| e.to_string())
}

// Each decoder destructures its payload whole: a field added to protocol/ fails to compile here
// until this table says how the field is read.
const EVENTS: &[Event] = &[
    Event {
        name: events::LOGIN,
        fields: &[("userId", Id(USER)), ("csId", OptionalId(USER))],
        decode: Some(|v| {
            decode_as(
                v,
                |LoginRequest { user_id, cs_id }| json!({ "userId": user_id, "csId": cs_id }),
            )
        }),
    },
    Event {
        name: events::ALL_MEMBER,
        fields: &[],
        decode: None,
    },
    Event {
        name: events::PRIVATE_MESSAGE,
        fields: &[
            ("receiverId", OptionalId(USER)),
            ("content", OptionalText),
            ("attachmentId", OptionalId(ATTACHMENT)),
            ("clientMsgId", OptionalText),
            ("senderId", OptionalId(USER)),
        ],
        decode: Some(|v| {
            decode_as(
                v,
                |PrivateMessageRequest {
                     receiver_id,
                     content,
                     attachment_id,
                     client_msg_id,
                     sender_id,
                 }| {
                    json!({ "receiverId": receiver_id, "content": content,
                            "attachmentId": attachment_id, "clientMsgId": client_msg_id,
                            "senderId": sender_id })
                },
            )
        }),
    },
    Event {
        name: events::READ,
        fields: &[("peerId", OptionalId(USER)), ("upToId", Id(MESSAGE))],
        decode: Some(|v| {
            decode_as(
                v,
                |ReadRequest { peer_id, up_to_id }| json!({ "peerId": peer_id, "upToId": up_to_id }),
            )
        }),
    },
    Event {
        name: events::TYPING,
        fields: &[("receiverId", OptionalId(USER)), ("typing", Bool)],
        decode: Some(|v| {
            decode_as(
                v,
                |TypingRequest {
                     receiver_id,
                     typing,
                 }| { json!({ "receiverId": receiver_id, "typing": typing }) },
            )
        }),
    },
    Event {
        name: events::HISTORY,
        fields: &[
            ("peerId", OptionalId(USER)),
            ("conversationId", OptionalId(CONVERSATION)),
            ("beforeId", OptionalId(MESSAGE)),
            ("afterSeq", OptionalInt),
            ("limit", OptionalInt),
        ],
        decode: Some(|v| {
            decode_as(
                v,
                |HistoryRequest {
                     peer_id,
                     conversation_id,
                     before_id,
                     after_seq,
                     limit,
                 }| {
                    json!({ "peerId": peer_id, "conversationId": conversation_id,
                            "beforeId": before_id, "afterSeq": after_seq, "limit": limit })
                },
            )
        }),
    },
    Event {
        name: events::HEARTBEAT,
        fields: &[],
        decode: None,
    },
    Event {
        name: events::SET_STATUS,
        fields: &[("status", Status)],
        decode: Some(|v| decode_as(v, |SetStatusRequest { status }| json!({ "status": status }))),
    },
    Event {
        name: events::RESOLVE,
        fields: &[("peerId", OptionalId(USER))],
        decode: Some(|v| decode_as(v, |PeerRequest { peer_id }| json!({ "peerId": peer_id }))),
    },
    Event {
        name: events::QUEUE_STATUS,
        fields: &[],
        decode: None,
    },
    Event {
        name: events::TRANSFER,
        fields: &[
            ("peerId", OptionalId(USER)),
            ("toAgentId", KeyedId(USER)),
            ("note", OptionalText),
        ],
        decode: Some(|v| {
            decode_as(
                v,
                |TransferRequest {
                     peer_id,
                     to_agent_id,
                     note,
                 }| {
                    json!({ "peerId": peer_id, "toAgentId": to_agent_id, "note": note })
                },
            )
        }),
    },
    Event {
        name: events::NOTE,
        fields: &[("peerId", OptionalId(USER)), ("content", Text)],
        decode: Some(|v| {
            decode_as(
                v,
                |NoteRequest { peer_id, content }| json!({ "peerId": peer_id, "content": content }),
            )
        }),
    },
    Event {
        name: events::NOTES,
        fields: &[
            ("peerId", OptionalId(USER)),
            ("conversationId", OptionalId(CONVERSATION)),
        ],
        decode: Some(|v| {
            decode_as(
                v,
                |NotesRequest {
                     peer_id,
                     conversation_id,
                 }| {
                    json!({ "peerId": peer_id, "conversationId": conversation_id })
                },
            )
        }),
    },
    Event {
        name: events::RATE,
        fields: &[
            ("conversationId", Id(CONVERSATION)),
            ("score", Int),
            ("comment", OptionalText),
        ],
        decode: Some(|v| {
            decode_as(
                v,
                |RateRequest {
                     conversation_id,
                     score,
                     comment,
                 }| {
                    json!({ "conversationId": conversation_id, "score": score,
                            "comment": comment })
                },
            )
        }),
    },
];

fn event(name: &str) -> &'static Event {
    EVENTS
        .iter()
        .find(|e| e.name == name)
        .expect("a client event")
}

/// Every field name of every payload, for objects that mix in other payloads' fields.
const FIELD_NAMES: &[&str] = &[
    "userId",
    "csId",
    "receiverId",
    "content",
    "attachmentId",
    "clientMsgId",
    "senderId",
    "peerId",
    "upToId",
    "typing",
    "conversationId",
    "beforeId",
    "afterSeq",
    "limit",
    "status",
    "toAgentId",
    "note",
    "score",
    "comment",
];

/// Names a client might send by mistake, none of which may be taken for a real field.
const NEAR_MISSES: &[&str] = &[
    "user_id",
    "UserId",
    "userid",
    "userId ",
    "receiver_id",
    "to_agent_id",
    "up_to_id",
    "client_msg_id",
    "after_seq",
    "Content",
    "STATUS",
    "",
    "_placeholder",
    "num",
    "__proto__",
    "constructor",
];

// The oracle.

/// A decimal id as protocol/ must read it: ASCII digits only (no sign, no space, no `+`), a value
/// from 1 to i64::MAX, and at most `ID_MAX_DIGITS` digits.
fn id_from_text(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > ID_MAX_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value = text.parse::<i64>().ok()?;
    (value > 0).then_some(value)
}

/// Ids arrive as strings, or as non-negative integers from clients of the reference design.
fn id_from_json(value: &Json) -> Option<i64> {
    match value {
        Json::String(text) => id_from_text(text),
        Json::Number(n) => n.as_u64().and_then(|n| id_from_text(&n.to_string())),
        _ => None,
    }
}

/// Placeholders of optional ids that mean "not given".
fn means_none(value: &Json) -> bool {
    match value {
        Json::Null => true,
        Json::String(s) => s.is_empty() || s == "undefined" || s == "null",
        _ => false,
    }
}

fn id_json(id: i64) -> Json {
    Json::String(id.to_string())
}

/// Phrases of which a refusal's error must contain one.
type Problem = Vec<String>;

fn problem(phrase: impl Into<String>) -> Problem {
    vec![phrase.into()]
}

fn not_an_id(what: &str) -> String {
    format!("{what} must be a string of digits")
}

/// A field's canonical value, or the problem its error must name.
fn read_field(kind: Kind, value: &Json) -> Result<Json, Problem> {
    match (kind, value) {
        (OptionalId(_) | KeyedId(_), v) if means_none(v) => Ok(Json::Null),
        (Id(what) | OptionalId(what) | KeyedId(what), v) => id_from_json(v)
            .map(id_json)
            .ok_or_else(|| problem(not_an_id(what))),
        (Bool, Json::Bool(b)) => Ok(Json::Bool(*b)),
        (Bool, _) => Err(problem("expected a boolean")),
        (OptionalInt, Json::Null) => Ok(Json::Null),
        (Int | OptionalInt, Json::Number(n)) if n.is_i64() => Ok(Json::Number(n.clone())),
        (Int | OptionalInt, _) => Err(problem("expected i64")),
        (OptionalText, Json::Null) => Ok(Json::Null),
        (Text | OptionalText, Json::String(s)) => Ok(Json::String(s.clone())),
        (Text | OptionalText, _) => Err(problem("expected a string")),
        (Status, Json::String(s)) if s == "available" || s == "away" => Ok(Json::String(s.clone())),
        (Status, Json::String(_)) => Err(problem("unknown variant `")),
        // serde's other spelling of a unit variant: `{"away": null}`.
        (Status, Json::Object(m))
            if m.len() == 1
                && m.iter()
                    .all(|(k, v)| (k == "available" || k == "away") && v.is_null()) =>
        {
            Ok(Json::String(m.keys().next().cloned().unwrap_or_default()))
        }
        // serde_json's own words for a malformed enum object differ by its shape.
        (Status, Json::Object(_)) => Err(problem("")),
        // serde_json's words for anything else where an enum goes: vague, but all it says.
        (Status, _) => Err(problem("expected value")),
    }
}

/// What decoding `arg` (`None`: the event had no argument) as `event`'s payload must give: the
/// canonical payload, or the problem the error must name.
fn expected(event: &Event, arg: Option<&Json>) -> Result<Json, Problem> {
    let Some(arg) = arg else {
        return Err(problem("first element not found"));
    };
    let Json::Object(object) = arg else {
        return Err(problem("expected a JSON object"));
    };
    // serde reports the first bad value in the order the keys come, then the first missing field
    // in declaration order.
    for (key, value) in object {
        if let Some((_, kind)) = event.fields.iter().find(|(name, _)| name == key) {
            read_field(*kind, value)?;
        }
    }
    let mut canonical = Map::new();
    for (name, kind) in event.fields {
        let value = match (object.get(*name), kind) {
            (Some(value), _) => read_field(*kind, value)?,
            (None, Id(_) | KeyedId(_) | Bool | Int | Text | Status) => {
                return Err(problem(format!("missing field `{name}`")));
            }
            (None, _) => Json::Null,
        };
        canonical.insert((*name).to_owned(), value);
    }
    Ok(Json::Object(canonical))
}

// The wire: a text frame as the client sends it, then the handler's decoding.

/// What kefu allows (socket/mod.rs `MAX_INCOMING_BINARIES`).
fn parse_config() -> ParseConfig {
    ParseConfig {
        max_incoming_binaries: 10,
        ..ParseConfig::default()
    }
}

/// Reads a text frame and its binary frames as socketioxide does; for an event packet, the event
/// name that picks the handler and the data the handler decodes.
fn receive(frame: &str, binaries: &[Vec<u8>]) -> Option<(String, Value)> {
    let config = parse_config();
    let state = ParserState::default();
    let mut packet = CommonParser.decode_str(&config, &state, Str::from(frame.to_owned()));
    for binary in binaries {
        if packet.is_ok() {
            break;
        }
        packet = CommonParser.decode_bin(&config, &state, binary.clone().into());
    }
    match packet.ok()?.inner {
        PacketData::Event(data, _) | PacketData::BinaryEvent(data, _) => {
            let name = CommonParser.read_event(&data).ok()?.to_owned();
            Some((name, data))
        }
        _ => None,
    }
}

/// `2[<ack id>]["event", args...]`
fn event_frame(name: &str, args: &[Json], ack: Option<u32>) -> String {
    let mut data = vec![Json::String(name.to_owned())];
    data.extend(args.iter().cloned());
    let ack = ack.map(|a| a.to_string()).unwrap_or_default();
    format!("2{ack}{}", Json::Array(data))
}

/// Sends `args` as `event` through the wire and its handler's decoding; `None` for an event whose
/// handler takes no data.
fn send(
    event: &Event,
    args: &[Json],
    ack: Option<u32>,
) -> Result<Option<Result<Json, String>>, String> {
    let frame = event_frame(event.name, args, ack);
    let (name, mut data) = receive(&frame, &[]).ok_or_else(|| format!("{frame} was not read"))?;
    if name != event.name {
        return Err(format!("{frame} was routed to {name}"));
    }
    Ok(event.decode.map(|decode| decode(&mut data)))
}

/// The domain rules a decoded payload meets once its handler's service parses it further.
fn check_domain_rules(event: &Event, payload: &Json) -> Result<(), TestCaseError> {
    for (name, kind) in event.fields {
        let value = &payload[*name];
        if matches!(kind, Id(_) | OptionalId(_) | KeyedId(_)) && !value.is_null() {
            let id = value.as_str().and_then(|s| s.parse::<i64>().ok());
            prop_assert!(
                id.is_some_and(|id| id > 0),
                "{name} = {value} is no positive id"
            );
        }
    }
    let text = |name: &str| payload[name].as_str().map(str::to_owned);
    // Message content, a note, and the note of a transfer all become `Content`.
    let content_field = match event.name {
        events::PRIVATE_MESSAGE | events::NOTE => Some("content"),
        events::TRANSFER => Some("note"),
        _ => None,
    };
    if let Some(content) = content_field.and_then(text)
        && let Ok(parsed) = Content::parse(content.clone(), MAX_MESSAGE_BYTES)
    {
        let parsed = parsed.into_inner();
        prop_assert!(!parsed.is_empty() && parsed.len() <= MAX_MESSAGE_BYTES);
        prop_assert!(!parsed.contains('\0'));
        prop_assert_eq!(parsed, content);
    }
    if let Some(id) = text("clientMsgId")
        && let Ok(parsed) = ClientMsgId::parse(id.clone())
    {
        prop_assert!((1..=ClientMsgId::MAX_LEN).contains(&parsed.as_str().chars().count()));
        prop_assert!(!parsed.as_str().chars().any(char::is_control));
        prop_assert_eq!(parsed.as_str(), id.as_str());
    }
    if event.name == events::HISTORY {
        let limit = payload["limit"].as_i64();
        match HistoryLimit::parse(limit) {
            Ok(parsed) => {
                prop_assert!((1..=HistoryLimit::MAX).contains(&parsed.get()));
                let wanted = limit.map_or(i64::from(HistoryLimit::DEFAULT), |l| l.min(100));
                prop_assert_eq!(i64::from(parsed.get()), wanted);
            }
            Err(_) => prop_assert!(limit.is_some_and(|l| l < 1)),
        }
    }
    if event.name == events::SET_STATUS {
        let status: AgentStatusName = serde_json::from_value(payload["status"].clone())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let serialized = serde_json::to_value(status).ok();
        prop_assert_eq!(serialized.as_ref(), Some(&payload["status"]));
    }
    Ok(())
}

/// Property 1 and 3 for one event: any argument decodes exactly as the oracle says, an error names
/// the problem, and what decodes meets the domain rules and decodes again from its canonical form.
fn check_event(event: &Event, args: &[Json], ack: Option<u32>) -> Result<(), TestCaseError> {
    let Some(decoded) = send(event, args, ack).map_err(TestCaseError::fail)? else {
        return Ok(());
    };
    match (expected(event, args.first()), decoded) {
        (Ok(wanted), Ok(payload)) => {
            prop_assert_eq!(&payload, &wanted);
            check_domain_rules(event, &payload)?;
            let again =
                send(event, std::slice::from_ref(&payload), None).map_err(TestCaseError::fail)?;
            prop_assert_eq!(
                again,
                Some(Ok(payload)),
                "the canonical form did not decode again"
            );
        }
        (Err(phrases), Err(message)) => {
            prop_assert!(!message.is_empty());
            prop_assert!(
                phrases.iter().any(|p| message.contains(p.as_str())),
                "the error {message:?} says none of {phrases:?}"
            );
        }
        (Ok(wanted), Err(message)) => {
            prop_assert!(false, "refused ({message}) but should give {wanted}");
        }
        (Err(phrases), Ok(payload)) => {
            prop_assert!(false, "gave {payload} but should be refused ({phrases:?})");
        }
    }
    Ok(())
}

// Generators.

fn digits(len: impl Strategy<Value = usize>) -> impl Strategy<Value = String> {
    len.prop_flat_map(|n| vec(select(b"0123456789".to_vec()), n))
        .prop_map(|d| String::from_utf8(d).unwrap_or_default())
}

/// Strings that are ids, nearly ids, or not ids at all.
fn id_like_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (1..=999_999_999_999_999_999i64).prop_map(|n| n.to_string()),
        2 => (1..=9999i64).prop_map(|n| n.to_string()),
        3 => digits(0..=22usize),
        2 => (1..=i64::MAX).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => (
            any::<u32>(),
            select(vec!["+", "-", " ", "0", "00", "\t", "\u{0}", "０"]),
            any::<bool>(),
        )
            .prop_map(|(n, s, before)| if before { format!("{s}{n}") } else { format!("{n}{s}") }),
        1 => select(vec![
            "", "0", "undefined", "null", "NaN", "1.5", "1e3", "0x1F", "١٢", "１２",
            "9223372036854775807", "9223372036854775808", "1000000000000000000",
            "999999999999999999", "0000000000000000001", "1 OR 1=1", "-0", "+1", " 1",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
    .boxed()
}

/// Any string: unicode, control characters, NUL, long, near the message limit.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => any::<String>(),
        3 => vec(any::<char>(), 0..48).prop_map(String::from_iter),
        1 => vec(prop_oneof![Just('\0'), Just('\n'), Just('\u{7f}'), Just('\u{202e}'),
                             Just('\u{feff}'), Just(' '), Just('a'), Just('客'), Just('😀')], 0..24)
            .prop_map(String::from_iter),
        1 => (select(vec!["a", "é", "客", "😀", "\0", " "]), 8180usize..8200)
            .prop_map(|(unit, bytes)| unit.repeat(bytes / unit.len())),
        1 => (select(vec!["x", "客"]), 0usize..20_000).prop_map(|(unit, n)| unit.repeat(n)),
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Json> {
    prop_oneof![
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        (-5i64..=120).prop_map(Json::from),
        (prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO)
            .prop_filter_map("finite", |f| Number::from_f64(f).map(Json::Number)),
        select(vec![
            0.5,
            -1.0,
            1.0,
            1e300,
            -1e-300,
            9.223372036854776e18,
            5.000000001
        ])
        .prop_filter_map("finite", |f| Number::from_f64(f).map(Json::Number)),
        select(vec![i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX]).prop_map(Json::from),
        select(vec![i64::MIN, -1, 0]).prop_map(Json::from),
    ]
    .boxed()
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(FIELD_NAMES).prop_map(str::to_owned),
        2 => select(NEAR_MISSES).prop_map(str::to_owned),
        1 => "[a-zA-Z_]{0,12}",
        1 => any::<String>(),
    ]
    .boxed()
}

fn json_leaf() -> BoxedStrategy<Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        number(),
        id_like_text().prop_map(Json::String),
        text().prop_map(Json::String),
        select(vec!["available", "away", "Available", "AWAY", "busy", ""]).prop_map(Json::from),
    ]
    .boxed()
}

/// Any JSON tree: nested arrays and objects whose keys mix real field names with others.
fn any_json() -> BoxedStrategy<Json> {
    json_leaf()
        .prop_recursive(4, 24, 5, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..5).prop_map(Json::Array),
                btree_map(key(), inner, 0..5).prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
}

/// A value that this kind of field accepts, in any of its accepted spellings.
fn valid_value(kind: Kind) -> BoxedStrategy<Json> {
    let id = || {
        prop_oneof![
            (1..=999_999_999_999_999_999i64).prop_map(|n| Json::String(n.to_string())),
            (1..=999_999_999_999_999_999u64).prop_map(Json::from),
            (1..=99_999i64, 0usize..=12)
                .prop_map(|(n, zeros)| Json::String(format!("{}{n}", "0".repeat(zeros)))),
        ]
    };
    let none = || {
        select(vec![
            Json::Null,
            json!(""),
            json!("undefined"),
            json!("null"),
        ])
    };
    match kind {
        Id(_) => id().boxed(),
        OptionalId(_) | KeyedId(_) => prop_oneof![id(), none()].boxed(),
        Bool => any::<bool>().prop_map(Json::Bool).boxed(),
        Int => any::<i64>().prop_map(Json::from).boxed(),
        OptionalInt => prop_oneof![any::<i64>().prop_map(Json::from), Just(Json::Null)].boxed(),
        Text => text().prop_map(Json::String).boxed(),
        OptionalText => prop_oneof![text().prop_map(Json::String), Just(Json::Null)].boxed(),
        Status => prop_oneof![
            select(vec!["available", "away"]).prop_map(Json::from),
            select(vec![json!({"available": null}), json!({"away": null})]),
        ]
        .boxed(),
    }
}

fn is_required(kind: Kind) -> bool {
    matches!(kind, Id(_) | KeyedId(_) | Bool | Int | Text | Status)
}

/// An argument for `event`: mostly an object with its fields (each maybe absent, valid, nearly
/// valid or anything) and others, sometimes anything at all.
fn argument(event: &'static Event) -> BoxedStrategy<Json> {
    let fields: Vec<BoxedStrategy<Option<Json>>> = event
        .fields
        .iter()
        .map(|(_, kind)| {
            prop_oneof![
                1 => Just(None),
                3 => valid_value(*kind).prop_map(Some),
                2 => json_leaf().prop_map(Some),
                1 => any_json().prop_map(Some),
            ]
            .boxed()
        })
        .collect();
    let object = (fields, btree_map(key(), any_json(), 0..4)).prop_map(move |(values, extra)| {
        let mut object: Map<String, Json> = extra.into_iter().collect();
        for ((name, _), value) in event.fields.iter().zip(values) {
            match value {
                Some(value) => object.insert((*name).to_owned(), value),
                None => object.remove(*name),
            };
        }
        Json::Object(object)
    });
    prop_oneof![6 => object, 1 => any_json()].boxed()
}

/// The arguments of one emit: usually one, sometimes none or a few.
fn arguments(event: &'static Event) -> BoxedStrategy<Vec<Json>> {
    prop_oneof![
        12 => argument(event).prop_map(|a| vec![a]),
        1 => Just(Vec::new()),
        1 => (argument(event), vec(any_json(), 1..3)).prop_map(|(a, mut rest)| {
            rest.insert(0, a);
            rest
        }),
    ]
    .boxed()
}

/// A well-formed argument for `event` and the payload it must decode to.
fn well_formed(event: &'static Event) -> BoxedStrategy<(Json, Json)> {
    let fields: Vec<BoxedStrategy<Option<Json>>> = event
        .fields
        .iter()
        .map(|(_, kind)| {
            if is_required(*kind) {
                valid_value(*kind).prop_map(Some).boxed()
            } else {
                prop_oneof![Just(None), valid_value(*kind).prop_map(Some)].boxed()
            }
        })
        .collect();
    let unknown = btree_map(
        key().prop_filter("not a field", move |k| {
            event.fields.iter().all(|(n, _)| n != k)
        }),
        any_json(),
        0..3,
    );
    (fields, unknown)
        .prop_map(move |(values, extra)| {
            let mut object: Map<String, Json> = extra.into_iter().collect();
            let mut wanted = Map::new();
            for ((name, kind), value) in event.fields.iter().zip(values) {
                let canonical = match (&value, kind) {
                    (None, _) => Json::Null,
                    (Some(v), Id(_) | OptionalId(_) | KeyedId(_)) if means_none(v) => Json::Null,
                    (Some(v), Id(_) | OptionalId(_) | KeyedId(_)) => {
                        // Leading zeros are dropped: the id is a number.
                        let digits = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                        Json::String(digits.trim_start_matches('0').to_owned())
                    }
                    (Some(Json::Object(m)), Status) => {
                        Json::String(m.keys().next().cloned().unwrap_or_default())
                    }
                    (Some(v), _) => v.clone(),
                };
                wanted.insert((*name).to_owned(), canonical);
                if let Some(value) = value {
                    object.insert((*name).to_owned(), value);
                }
            }
            (Json::Object(object), Json::Object(wanted))
        })
        .boxed()
}

fn ack_id() -> impl Strategy<Value = Option<u32>> {
    prop::option::of(any::<u32>())
}

/// Fewer cases for the slow properties, scaled with `PROPTEST_CASES`.
fn cases_divided_by(n: u32) -> Config {
    let config = Config::default();
    Config {
        cases: (config.cases / n).max(1),
        ..config
    }
}

macro_rules! event_properties {
    ($($any:ident, $valid:ident => $event:expr;)*) => {
        proptest! {
            $(
                /// Property 1 and 3: any JSON argument.
                #[test]
                fn $any(args in arguments(event($event)), ack in ack_id()) {
                    check_event(event($event), &args, ack)?;
                }

                /// Property 3: a well-formed argument always decodes, to what it says.
                #[test]
                fn $valid((arg, wanted) in well_formed(event($event)), ack in ack_id()) {
                    let decoded = send(event($event), &[arg], ack).map_err(TestCaseError::fail)?;
                    if let Some(decoded) = decoded {
                        prop_assert_eq!(decoded, Ok(wanted.clone()));
                        check_domain_rules(event($event), &wanted)?;
                    }
                }
            )*
        }
    };
}

event_properties! {
    login_any_argument_decodes_as_specified,
    login_well_formed_arguments_decode => events::LOGIN;
    all_member_any_argument_is_routed,
    all_member_well_formed_arguments_are_routed => events::ALL_MEMBER;
    private_message_any_argument_decodes_as_specified,
    private_message_well_formed_arguments_decode => events::PRIVATE_MESSAGE;
    read_any_argument_decodes_as_specified,
    read_well_formed_arguments_decode => events::READ;
    typing_any_argument_decodes_as_specified,
    typing_well_formed_arguments_decode => events::TYPING;
    history_any_argument_decodes_as_specified,
    history_well_formed_arguments_decode => events::HISTORY;
    heartbeat_any_argument_is_routed,
    heartbeat_well_formed_arguments_are_routed => events::HEARTBEAT;
    set_status_any_argument_decodes_as_specified,
    set_status_well_formed_arguments_decode => events::SET_STATUS;
    resolve_any_argument_decodes_as_specified,
    resolve_well_formed_arguments_decode => events::RESOLVE;
    queue_status_any_argument_is_routed,
    queue_status_well_formed_arguments_are_routed => events::QUEUE_STATUS;
    transfer_any_argument_decodes_as_specified,
    transfer_well_formed_arguments_decode => events::TRANSFER;
    note_any_argument_decodes_as_specified,
    note_well_formed_arguments_decode => events::NOTE;
    notes_any_argument_decodes_as_specified,
    notes_well_formed_arguments_decode => events::NOTES;
    rate_any_argument_decodes_as_specified,
    rate_well_formed_arguments_decode => events::RATE;
}

// Property 2: text that is not JSON, or barely.

/// Edits to a JSON text.
#[derive(Clone, Debug)]
enum Edit {
    Insert(Index, char),
    Delete(Index),
    Replace(Index, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    let ch = prop_oneof![
        select(vec![
            '{', '}', '[', ']', ',', ':', '"', '\\', '-', '.', 'e', '0', '9', ' ', 'n', 'u'
        ]),
        any::<char>(),
    ];
    prop_oneof![
        (any::<Index>(), ch.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<Index>().prop_map(Edit::Delete),
        (any::<Index>(), ch).prop_map(|(i, c)| Edit::Replace(i, c)),
    ]
}

fn mutate(text: String, edits: Vec<Edit>) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        match edit {
            Edit::Insert(i, c) => chars.insert(i.index(chars.len() + 1), c),
            Edit::Delete(i) if !chars.is_empty() => {
                chars.remove(i.index(chars.len()));
            }
            Edit::Replace(i, c) if !chars.is_empty() => {
                let i = i.index(chars.len());
                chars[i] = c;
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"userId\"",
    "\"toAgentId\"",
    "\"content\"",
    "\"status\"",
    "\"score\"",
    "\"typing\"",
    "\"limit\"",
    "\"1\"",
    "\"\"",
    "1",
    "-1",
    "1.5",
    "1e999",
    "-0",
    "18446744073709551616",
    "null",
    "true",
    "false",
    "\"away\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\uDFFF\"",
    "\"\\x\"",
    "\"\\u00e9\"",
    "\"_placeholder\"",
    "\"num\"",
    " ",
    "\n",
    "\"",
];

/// Text where an event's argument goes: arbitrary, token soup, or JSON with a few edits.
fn argument_text() -> BoxedStrategy<String> {
    let events: Vec<&'static Event> = EVENTS.iter().collect();
    prop_oneof![
        2 => any::<String>(),
        1 => vec(any::<char>(), 0..64).prop_map(String::from_iter),
        3 => vec(select(TOKENS), 0..24).prop_map(|t| t.concat()),
        4 => (select(events).prop_flat_map(argument), vec(edit(), 1..4))
            .prop_map(|(json, edits)| mutate(json.to_string(), edits)),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(cases_divided_by(2))]

    /// Property 2: text in place of the argument never panics any handler's decoding; whatever it
    /// refuses says why, and whatever it accepts is what that text means as JSON.
    #[test]
    fn arbitrary_argument_text_is_decoded_or_refused_for_every_event(arg in argument_text()) {
        for event in EVENTS {
            let frame = format!("2[\"{}\",{arg}]", event.name);
            let Some((name, data)) = receive(&frame, &[]) else {
                continue;
            };
            prop_assert_eq!(name.as_str(), event.name);
            let Some(decode) = event.decode else {
                continue;
            };
            match decode(&mut data.clone()) {
                Err(message) => prop_assert!(!message.is_empty()),
                Ok(payload) => {
                    check_domain_rules(event, &payload)?;
                    // Duplicate keys and text after the argument make the two differ; when the
                    // argument alone is one JSON value, it decodes to what that value means.
                    if let Ok(json) = serde_json::from_str::<Json>(&arg) {
                        prop_assert_eq!(expected(event, Some(&json)), Ok(payload));
                    }
                }
            }
        }
    }

    /// Property 2: any frame, and any binary attachments, never panic the packet parser or a
    /// handler's decoding.
    #[test]
    fn arbitrary_frames_never_panic(
        frame in prop_oneof![
            vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            (select(vec!["2", "21", "5", "51-", "52-", "511-", "2/admin,", "3", "0", "6"]),
             argument_text()).prop_map(|(head, tail)| format!("{head}{tail}")),
            (select(EVENTS.iter().map(|e| e.name).collect::<Vec<_>>()), argument_text(), 0u8..3)
                .prop_map(|(name, arg, binaries)| {
                    let placeholder = r#"{"_placeholder":true,"num":0}"#;
                    let arg = arg.replacen("\"1\"", placeholder, 1);
                    if binaries == 0 {
                        format!("2[\"{name}\",{arg}]")
                    } else {
                        format!("5{binaries}-[\"{name}\",{arg},{placeholder}]")
                    }
                }),
        ],
        binaries in vec(vec(any::<u8>(), 0..16), 0..3),
    ) {
        if let Some((name, data)) = receive(&frame, &binaries)
            && let Some(event) = EVENTS.iter().find(|e| e.name == name)
            && let Some(decode) = event.decode
            && let Err(message) = decode(&mut data.clone())
        {
            prop_assert!(!message.is_empty());
        }
    }

    /// Nesting past serde_json's recursion limit is refused, not a stack overflow.
    #[test]
    fn deeply_nested_arguments_are_refused_without_overflowing_the_stack(
        field in select(FIELD_NAMES),
        depth in 100usize..400,
        open in select(vec!["[", "{\"a\":"]),
    ) {
        let close = if open == "[" { "]" } else { "}" };
        let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        for event in EVENTS.iter().filter(|e| e.decode.is_some()) {
            let frame = format!("2[\"{}\",{{\"{field}\":{nested}}}]", event.name);
            if let (Some((_, mut data)), Some(decode)) = (receive(&frame, &[]), event.decode) {
                let _ = decode(&mut data);
            }
        }
    }
}

// Property 4: the domain parsers.

macro_rules! parse_id {
    ($id:ty, $text:expr) => {
        <$id>::parse($text).map(|id| id.0).ok()
    };
}

proptest! {
    /// Ids: ASCII decimal digits only, no sign, no `+`, no space, 1 to i64::MAX (at most
    /// `ID_MAX_DIGITS` digits); the same for every kind of id, and for numbers.
    #[test]
    fn ids_accept_exactly_positive_decimal_digits(text in id_like_text()) {
        let wanted = id_from_text(&text);
        prop_assert_eq!(parse_id!(UserId, &text), wanted);
        prop_assert_eq!(parse_id!(ConversationId, &text), wanted);
        prop_assert_eq!(parse_id!(MessageId, &text), wanted);
        prop_assert_eq!(parse_id!(AttachmentId, &text), wanted);
        let json = Json::String(text.clone());
        prop_assert_eq!(serde_json::from_value::<UserId>(json).ok().map(|id| id.0), wanted);
        if let Ok(id) = UserId::parse(&text) {
            // Serialised as its digits, without leading zeros, and read back the same.
            let serialized =
                serde_json::to_value(id).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&serialized, &Json::String(id.0.to_string()));
            prop_assert_eq!(serde_json::from_value::<UserId>(serialized).ok(), Some(id));
        }
        if let Err(error) = UserId::parse(&text) {
            let wanted = ValidationError::Invalid("a user id must be a string of digits".into());
            prop_assert_eq!(error, wanted);
        }
    }

    #[test]
    fn ids_from_json_numbers_are_positive_integers_only(number in number()) {
        let wanted = id_from_json(&number);
        let read = serde_json::from_value::<UserId>(number.clone()).ok().map(|id| id.0);
        prop_assert_eq!(read, wanted);
        let text = number.to_string();
        prop_assert_eq!(serde_json::from_str::<MessageId>(&text).ok().map(|id| id.0), wanted);
    }

    /// Content: not empty, at most `max` UTF-8 bytes (`TooLarge` above), no NUL; kept verbatim.
    #[test]
    fn content_is_non_empty_without_nul_and_within_the_byte_limit(
        text in text(),
        max in prop_oneof![Just(MAX_MESSAGE_BYTES), 0usize..64, 8000usize..8400, any::<usize>()],
    ) {
        let parsed = Content::parse(text.clone(), max);
        if text.is_empty() {
            prop_assert!(matches!(parsed, Err(ValidationError::Invalid(_))));
        } else if text.len() > max {
            prop_assert!(matches!(parsed, Err(ValidationError::TooLarge(_))));
        } else if text.contains('\0') {
            prop_assert!(matches!(parsed, Err(ValidationError::Invalid(_))));
        } else {
            prop_assert_eq!(parsed.map(Content::into_inner), Ok(text));
        }
    }

    /// Client message ids: 1 to 64 characters, no control characters; kept verbatim.
    #[test]
    fn client_msg_ids_are_short_and_without_control_characters(text in text()) {
        let ok = !text.is_empty() && text.chars().count() <= 64 && !text.chars().any(char::is_control);
        let parsed = ClientMsgId::parse(text.clone());
        prop_assert_eq!(parsed.as_ref().map(ClientMsgId::as_str).ok(), ok.then_some(text.as_str()));
    }

    /// History page size: default 50, capped at 100, refused below 1.
    #[test]
    fn history_limit_is_clamped(limit in prop::option::of(prop_oneof![any::<i64>(), -3i64..120])) {
        let parsed = HistoryLimit::parse(limit).map(HistoryLimit::get).ok();
        let wanted = match limit {
            None => Some(50),
            Some(n) if n >= 1 => Some(n.min(100) as u32),
            Some(_) => None,
        };
        prop_assert_eq!(parsed, wanted);
    }

    /// Usernames: 3 to 32 of `a-z 0-9 . _ -` once trimmed, upper case lowered.
    #[test]
    fn usernames_are_3_to_32_of_a_safe_alphabet(
        text in prop_oneof![
            "[ \t]{0,2}[a-zA-Z0-9._-]{0,36}[ \t\n]{0,2}",
            "[a-z]{1,20}[^a-z0-9._-][a-z]{0,10}",
            any::<String>(),
        ],
    ) {
        let trimmed = text.trim();
        let ok = (3..=32).contains(&trimmed.len())
            && trimmed.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        let parsed = Username::parse(&text).map(|u| u.as_str().to_owned()).ok();
        prop_assert_eq!(parsed, ok.then(|| trimmed.to_ascii_lowercase()));
    }

    /// Passwords: 8 to 128 characters (not bytes), anything else allowed, kept verbatim.
    #[test]
    fn passwords_are_8_to_128_characters(
        text in prop_oneof![
            text(),
            (select(vec!["a", "客", "😀", " "]), 0usize..140).prop_map(|(u, n)| u.repeat(n)),
        ],
    ) {
        let ok = (8..=128).contains(&text.chars().count());
        let parsed = Password::parse(text.clone()).map(|p| p.expose().to_owned()).ok();
        prop_assert_eq!(parsed, ok.then_some(text.clone()));
        if let Ok(password) = Password::parse(text.clone()) {
            prop_assert_eq!(format!("{password:?}"), "Password(***)");
        }
    }

    /// Display names: trimmed, 1 to 64 characters, none of them a control character.
    #[test]
    fn display_names_are_trimmed_printable_and_at_most_64_characters(
        text in prop_oneof![
            text(),
            (select(vec![" a ", "客", "😀", "\t"]), 0usize..40).prop_map(|(u, n)| u.repeat(n)),
        ],
    ) {
        let trimmed = text.trim();
        let ok = (1..=64).contains(&trimmed.chars().count())
            && !trimmed.chars().any(char::is_control);
        let parsed = DisplayName::parse(&text).map(|d| d.as_str().to_owned()).ok();
        prop_assert_eq!(parsed, ok.then(|| trimmed.to_owned()));
    }

    /// Emails: trimmed, at most 254 bytes, exactly one `@` with something on each side, no
    /// whitespace or control characters.
    #[test]
    fn emails_have_one_inner_at_sign_and_no_spaces(
        text in prop_oneof![
            "[ ]?[a-zA-Z0-9.+é]{0,12}@?[a-z0-9.]{0,12}@?[ \t]?",
            (1usize..300).prop_map(|n| format!("{}@example.com", "a".repeat(n))),
            text(),
        ],
    ) {
        let trimmed = text.trim();
        let ok = trimmed.len() <= 254
            && trimmed.matches('@').count() == 1
            && !trimmed.starts_with('@')
            && !trimmed.ends_with('@')
            && !trimmed.chars().any(|c| c.is_control() || c.is_whitespace());
        let parsed = Email::parse(&text).map(|e| e.as_str().to_owned()).ok();
        prop_assert_eq!(parsed, ok.then(|| trimmed.to_owned()));
    }

    #[test]
    fn roles_are_exactly_customer_agent_or_admin(
        text in prop_oneof![
            select(vec!["customer", "agent", "admin", "Agent", "admin ", ""])
                .prop_map(str::to_owned),
            any::<String>(),
        ],
    ) {
        let parsed = Role::parse(&text).map(Role::as_str).ok();
        let wanted = ["customer", "agent", "admin"]
            .contains(&text.as_str())
            .then_some(text.as_str());
        prop_assert_eq!(parsed, wanted);
    }
}

// The oracle's own checks: it must not pass everything by accident.

#[test]
fn the_oracle_refuses_what_the_protocol_refuses() {
    let login = event(events::LOGIN);
    assert_eq!(
        expected(login, Some(&json!({"userId": "7"}))),
        Ok(json!({"userId": "7", "csId": null}))
    );
    assert!(expected(login, Some(&json!({}))).is_err());
    assert!(expected(login, Some(&json!([1]))).is_err());
    assert!(expected(event(events::TRANSFER), Some(&json!({"peerId": "3"}))).is_err());
    assert!(
        expected(
            event(events::RATE),
            Some(&json!({"conversationId": "1", "score": 1.5}))
        )
        .is_err()
    );
}

#[test]
fn arguments_of_every_event_reach_its_decoder() {
    for event in EVENTS {
        let decoded = send(event, &[json!({})], Some(1)).expect("routed");
        assert_eq!(
            decoded.is_some(),
            !event.fields.is_empty(),
            "{}",
            event.name
        );
    }
}

// Found by the properties above, and fixed.

/// A missing required id is reported as missing, by its name, not as malformed.
#[test]
fn missing_ids_are_reported_as_missing_fields() {
    for (name, field) in [
        (events::LOGIN, "userId"),
        (events::READ, "upToId"),
        (events::RATE, "conversationId"),
    ] {
        let decoded = send(event(name), &[json!({"score": 1})], None).expect("routed");
        let message = decoded.and_then(Result::err).unwrap_or_default();
        assert!(
            message.contains(&format!("missing field `{field}`")),
            "{name}: {message}"
        );
    }
}

/// Ids from 10^18 to i64::MAX, and ids written with leading zeros up to 19 digits, are accepted.
#[test]
fn ids_of_19_digits_within_i64_are_accepted() {
    assert_eq!(
        UserId::parse("1000000000000000000").ok(),
        Some(UserId(1_000_000_000_000_000_000))
    );
    assert_eq!(
        UserId::parse("9223372036854775807").ok(),
        Some(UserId(i64::MAX))
    );
    assert_eq!(UserId::parse("0000000000000000001").ok(), Some(UserId(1)));
}

/// clientMsgId: 1 to 64 characters, as docs/protocol.md says, not bytes.
#[test]
fn client_msg_ids_count_characters() {
    assert!(ClientMsgId::parse("é".repeat(33)).is_ok());
    assert!(ClientMsgId::parse("😀".repeat(17)).is_ok());
}
