//! The audit log: one hash-chained JSON record per tool call, written to an [`AuditSink`],
//! and [`verify`] to check a log for edited, removed, inserted or reordered records.
//!
//! A record has `time` (RFC 3339), `request_id`, `user_id`, `auth_method`, `tool`,
//! `arguments` (secrets redacted), `outcome`, `error` (`{kind, message}` or null),
//! `duration_ms`, `server_id` (the server that wrote it, when configured: each replica of a
//! fleet keeps its own chain), `prev_hash` and `hash`, where `hash` is the hex SHA-256 of `prev_hash`
//! followed by the record's canonical JSON (keys sorted, no whitespace) without `hash`. The
//! first record's `prev_hash` is [`GENESIS_HASH`].
//!
//! The chain makes tampering evident to anyone holding a later hash (e.g. the last hash
//! shipped elsewhere); it is not a signature: whoever can rewrite the whole file can
//! recompute the whole chain.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::confirm::Confirmed;
use crate::identity::Identity;
use crate::redact::{mask_secrets_in_text, redact_json};

/// The `prev_hash` of the first record: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where audit records go, one JSON line each.
pub trait AuditSink: Send + Sync {
    /// Writes one record (without the trailing newline) and makes it durable enough to
    /// survive a crash of this process (flushes).
    fn write_line(&self, line: &str) -> io::Result<()>;

    /// The `hash` of the last record already in the sink, so the chain continues across
    /// restarts; `None` for an empty or non-persistent sink.
    fn last_hash(&self) -> Option<String> {
        None
    }
}

/// Appends records to a JSON-lines file, flushed per record. On open it reads the last
/// record's hash so the chain continues across restarts.
pub struct JsonLinesFileSink {
    path: PathBuf,
    file: Mutex<File>,
    last_hash: Option<String>,
}

impl JsonLinesFileSink {
    /// Opens (or creates) `path` for appending. Fails when the file's last line is not a
    /// complete audit record (e.g. a torn write): the chain could not continue from it.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let (last_line, ends_with_newline) = read_last_line(&mut file)?;
        let last_hash = match last_line {
            None => None,
            Some(line) => Some(record_hash(&line).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "audit log {} ends with a line that is not a complete audit record; \
                         check it with `webops-mcp audit verify`, then repair or move it aside",
                        path.display()
                    ),
                )
            })?),
        };
        if last_hash.is_some() && !ends_with_newline {
            file.write_all(b"\n")?;
        }
        Ok(JsonLinesFileSink {
            path,
            file: Mutex::new(file),
            last_hash,
        })
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for JsonLinesFileSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesFileSink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AuditSink for JsonLinesFileSink {
    fn write_line(&self, line: &str) -> io::Result<()> {
        let mut record = String::with_capacity(line.len() + 1);
        record.push_str(line);
        record.push('\n');
        let mut file = lock(&self.file);
        append_whole(&mut *file, record.as_bytes())
    }

    fn last_hash(&self) -> Option<String> {
        self.last_hash.clone()
    }
}

/// A file that can be cut back to an earlier length.
trait Truncatable: Write {
    /// The current length in bytes.
    fn current_len(&self) -> io::Result<u64>;
    /// Cuts the file to `len` bytes.
    fn truncate_to(&self, len: u64) -> io::Result<()>;
}

impl Truncatable for File {
    fn current_len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn truncate_to(&self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

/// Appends `record` whole or not at all: when the write fails partway (a full disk), the
/// bytes it did write are cut off the file's end, so no torn fragment breaks the chain for
/// good (the next record would follow the fragment on the same line). The file's length is
/// read only then, not before every record.
fn append_whole(file: &mut impl Truncatable, record: &[u8]) -> io::Result<()> {
    let mut written = 0;
    let result = loop {
        if written == record.len() {
            break file.flush();
        }
        match file.write(&record[written..]) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    let Err(error) = result else {
        return Ok(());
    };
    let cut = match written {
        0 => Ok(()),
        _ => file
            .current_len()
            .and_then(|len| file.truncate_to(len.saturating_sub(written as u64))),
    };
    match cut {
        Ok(()) => Err(error),
        Err(cut) => Err(io::Error::new(
            error.kind(),
            format!("{error}; removing the partial record failed too: {cut}"),
        )),
    }
}

/// Writes records to standard error (never stdout: over stdio that carries the protocol).
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrSink;

impl StderrSink {
    /// A sink on standard error.
    pub fn new() -> Self {
        StderrSink
    }
}

impl AuditSink for StderrSink {
    fn write_line(&self, line: &str) -> io::Result<()> {
        let mut err = io::stderr().lock();
        err.write_all(line.as_bytes())?;
        err.write_all(b"\n")?;
        err.flush()
    }
}

/// Keeps records in memory, for tests.
#[derive(Debug, Default)]
pub struct MemorySink {
    lines: Mutex<Vec<String>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The records written so far, in order.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.lines).clone()
    }

    /// The records written so far, parsed.
    pub fn records(&self) -> Vec<Value> {
        lock(&self.lines)
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

impl AuditSink for MemorySink {
    fn write_line(&self, line: &str) -> io::Result<()> {
        lock(&self.lines).push(line.to_owned());
        Ok(())
    }
}

/// How a call ended, as recorded in the audit log and counted in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    /// The tool ran and succeeded.
    Ok,
    /// Permission missing, or a non-read tool in read-only mode.
    Denied,
    /// Arguments failed validation.
    Invalid,
    /// The caller's rate limit was exhausted.
    RateLimited,
    /// Too many calls in flight.
    Busy,
    /// No tool of that name.
    UnknownTool,
    /// The tool ran and failed.
    Failed,
    /// The caller cancelled.
    Cancelled,
    /// Refused on purpose: a confirmation declined, missing, stale or forged (the record
    /// says why), or a tool's own refusal.
    Refused,
    /// A dry run: described, nothing sent.
    DryRun,
    /// The first round of a 2026-07-28 confirmation: the person is being asked.
    InputRequired,
}

impl Outcome {
    /// Every outcome, in a stable order.
    pub(crate) const ALL: [Outcome; 11] = [
        Outcome::Ok,
        Outcome::Denied,
        Outcome::Invalid,
        Outcome::RateLimited,
        Outcome::Busy,
        Outcome::UnknownTool,
        Outcome::Failed,
        Outcome::Cancelled,
        Outcome::Refused,
        Outcome::DryRun,
        Outcome::InputRequired,
    ];

    /// The snake_case name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
            Outcome::RateLimited => "rate_limited",
            Outcome::Busy => "busy",
            Outcome::UnknownTool => "unknown_tool",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Refused => "refused",
            Outcome::DryRun => "dry_run",
            Outcome::InputRequired => "input_required",
        }
    }

    /// The position in [`Outcome::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The outcome of a call that failed with `kind`.
    pub(crate) fn of_error(kind: crate::tool::ToolErrorKind) -> Outcome {
        use crate::tool::ToolErrorKind as K;
        match kind {
            K::PermissionDenied => Outcome::Denied,
            K::InvalidArguments => Outcome::Invalid,
            K::RateLimited => Outcome::RateLimited,
            K::Busy => Outcome::Busy,
            K::Cancelled => Outcome::Cancelled,
            K::Refused => Outcome::Refused,
            _ => Outcome::Failed,
        }
    }
}

/// What one audit record says, before redaction and hashing.
pub(crate) struct AuditEntry<'a> {
    pub(crate) request_id: &'a str,
    pub(crate) identity: &'a Identity,
    pub(crate) tool: &'a str,
    pub(crate) arguments: &'a Value,
    pub(crate) outcome: Outcome,
    /// `(kind, message)` of a failed call.
    pub(crate) error: Option<(&'a str, &'a str)>,
    /// Why a refused call was refused.
    pub(crate) reason: Option<&'a str>,
    /// How a confirmed call was confirmed, and the digest of the plan the person saw.
    pub(crate) confirmation: Option<&'a Confirmed>,
    pub(crate) duration: Duration,
}

/// The audit log: the hash chain and the records waiting to be written. A call writes its
/// own record unless another call is writing; then it leaves the record to that writer and
/// waits without blocking its thread. So concurrent calls can neither interleave lines nor fork
/// the chain, and a slow write (a busy disk) blocks the thread that makes it, not every call.
pub(crate) struct AuditLog {
    sink: Arc<dyn AuditSink>,
    chain: Mutex<Chain>,
    server_id: Option<String>,
}

/// The chain's end and what waits to be chained onto it.
struct Chain {
    /// The `hash` of the last record written.
    last_hash: String,
    /// Records handed on while another call was writing, in order.
    waiting: VecDeque<Job>,
    /// Whether a call is writing (it writes everything waiting before it stops).
    writing: bool,
}

/// A record to write (without `prev_hash` and `hash`), the trace context of the call it
/// audits (a sink that exports records puts each in its call's trace), and where to say how
/// its write went.
struct Job {
    record: Map<String, Value>,
    context: opentelemetry::Context,
    done: oneshot::Sender<io::Result<()>>,
}

/// A record handed on; [`Written::wait`] says how its write went.
#[must_use = "a record's write can fail; wait for it to log and count a failure"]
pub(crate) struct Written(oneshot::Receiver<io::Result<()>>);

impl Written {
    /// Resolves once the record has been written, or failed to be (then the chain did not
    /// advance). Dropping it leaves the record to be written all the same.
    pub(crate) async fn wait(self) -> io::Result<()> {
        self.0
            .await
            .unwrap_or_else(|_| Err(io::Error::other("the audit record was not written")))
    }
}

impl AuditLog {
    /// A log continuing the chain already in `sink`; every record names `server_id` when
    /// given.
    pub(crate) fn new(sink: Arc<dyn AuditSink>, server_id: Option<String>) -> Self {
        let last_hash = sink.last_hash().unwrap_or_else(|| GENESIS_HASH.to_owned());
        AuditLog {
            sink,
            chain: Mutex::new(Chain {
                last_hash,
                waiting: VecDeque::new(),
                writing: false,
            }),
            server_id,
        }
    }

    /// Chains and writes one record, or hands it to the call writing now: records are
    /// chained and written in the order of these calls. On a sink failure the chain does not
    /// advance and [`Written`] returns the error for the caller to log and count; nothing
    /// here panics.
    pub(crate) fn record(&self, entry: &AuditEntry<'_>) -> Written {
        let mut arguments = entry.arguments.clone();
        redact_json(&mut arguments);
        let error = match entry.error {
            Some((kind, message)) => {
                let mut e = Map::new();
                e.insert("kind".into(), Value::from(kind));
                e.insert(
                    "message".into(),
                    Value::from(mask_secrets_in_text(message).into_owned()),
                );
                Value::Object(e)
            }
            None => Value::Null,
        };
        let mut record = Map::new();
        record.insert(
            "time".into(),
            Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        record.insert("request_id".into(), Value::from(entry.request_id));
        record.insert(
            "user_id".into(),
            Value::from(entry.identity.user_id.as_str()),
        );
        record.insert(
            "auth_method".into(),
            Value::from(entry.identity.auth_method.as_str()),
        );
        record.insert("tool".into(), Value::from(entry.tool));
        record.insert("arguments".into(), arguments);
        record.insert("outcome".into(), Value::from(entry.outcome.as_str()));
        record.insert("error".into(), error);
        if let Some(reason) = entry.reason {
            record.insert("reason".into(), Value::from(reason));
        }
        if let Some(confirmed) = entry.confirmation {
            record.insert(
                "confirmation".into(),
                serde_json::json!({"via": confirmed.via, "digest": confirmed.digest}),
            );
        }
        record.insert(
            "duration_ms".into(),
            Value::from(u64::try_from(entry.duration.as_millis()).unwrap_or(u64::MAX)),
        );
        if let Some(server_id) = &self.server_id {
            record.insert("server_id".into(), Value::from(server_id.as_str()));
        }

        let (done, written) = oneshot::channel();
        let job = Job {
            record,
            context: opentelemetry::Context::current(),
            done,
        };
        let mut chain = lock(&self.chain);
        chain.waiting.push_back(job);
        if chain.writing {
            return Written(written);
        }
        chain.writing = true;
        let _duty = OnDuty(&self.chain);
        while let Some(job) = chain.waiting.pop_front() {
            let last_hash = chain.last_hash.clone();
            drop(chain);
            let (result, hash) = write_record(&*self.sink, job.record, job.context, &last_hash);
            chain = lock(&self.chain);
            if result.is_ok() {
                chain.last_hash = hash;
            }
            // Its caller may have stopped waiting (a cancelled call): it is written all the
            // same.
            let _ = job.done.send(result);
        }
        chain.writing = false;
        Written(written)
    }
}

/// The writing call's duty: should a sink panic mid-write, the duty is given up, so the next
/// call writes what is waiting instead of every call waiting for good.
struct OnDuty<'a>(&'a Mutex<Chain>);

impl Drop for OnDuty<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock(self.0).writing = false;
        }
    }
}

/// Writes `record` chained onto `last_hash`, in `context`; the result, and the record's hash.
fn write_record(
    sink: &dyn AuditSink,
    mut record: Map<String, Value>,
    context: opentelemetry::Context,
    last_hash: &str,
) -> (io::Result<()>, String) {
    record.insert("prev_hash".into(), Value::from(last_hash));
    // One canonical writing serves the hash and the line: `hash` goes in at its sorted place
    // (it is hex, so it needs no escaping).
    let mut line = String::with_capacity(512);
    let at = write_object(&record, Some("hash"), &mut line);
    let hash = hash_after(last_hash, &line);
    // `record` has members (`prev_hash` at least): a comma goes on one side.
    let member = match at == line.len() - 1 {
        true => format!(",\"hash\":\"{hash}\""),
        false => format!("\"hash\":\"{hash}\","),
    };
    line.insert_str(at, &member);
    let _call = context.attach();
    (sink.write_line(&line), hash)
}

/// The hash of a record: hex SHA-256 of `prev_hash` then the canonical JSON of the record
/// without its `hash` member.
fn chain_hash(prev_hash: &str, record_without_hash: &Value) -> String {
    hash_after(prev_hash, &canonical_json(record_without_hash))
}

/// Hex SHA-256 of `prev_hash` then `canonical` (a record without its `hash`, canonical).
fn hash_after(prev_hash: &str, canonical: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}

/// JSON with object keys sorted at every level and no whitespace, independent of how the
/// map was built or which serde_json features are on.
pub(crate) fn canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(512);
    write_canonical(value, &mut out);
    out
}

/// Appends `value` in canonical form without an allocation per member: this runs for every
/// tool call.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            write_object(map, None, out);
        }
        Value::String(s) => write_json_string(s, out),
        // null, booleans and numbers exactly as serde_json renders them.
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

/// Appends `map` in canonical form, and returns the offset in `out` where a member named `gap`
/// (one `map` lacks) would go: where the first member whose name sorts after it starts, or
/// at the closing brace.
fn write_object(map: &Map<String, Value>, gap: Option<&str>, out: &mut String) -> usize {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    members.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    let mut at = None;
    for (i, (key, member)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if at.is_none() && gap.is_some_and(|gap| key.as_str() > gap) {
            at = Some(out.len());
        }
        write_json_string(key, out);
        out.push(':');
        write_canonical(member, out);
    }
    let at = at.unwrap_or(out.len());
    out.push('}');
    at
}

/// A JSON string literal as serde_json writes it. It escapes only `"`, `\` and control
/// characters, so a string without them is copied between quotes as it is.
fn write_json_string(s: &str, out: &mut String) {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        let _ = write!(out, "{}", Value::from(s));
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// The `hash` of a well-formed record line.
fn record_hash(line: &str) -> Option<String> {
    let value: Value = serde_json::from_str(line).ok()?;
    let hash = value.get("hash")?.as_str()?;
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hash.to_owned())
}

/// The last non-blank line of `file` (read backwards, so large logs open fast) and whether
/// the file ends with a newline.
fn read_last_line(file: &mut File) -> io::Result<(Option<String>, bool)> {
    const CHUNK: u64 = 8 * 1024;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok((None, true));
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = len;
    loop {
        let start = pos.saturating_sub(CHUNK);
        let size = usize::try_from(pos - start).unwrap_or(0);
        let mut chunk = vec![0u8; size];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        pos = start;
        let ends_with_newline = buf.last() == Some(&b'\n');
        let content_end = buf
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map(|i| i + 1);
        let line = match content_end {
            Some(end) => match buf[..end].iter().rposition(|&b| b == b'\n') {
                Some(newline) => Some(&buf[newline + 1..end]),
                None if pos == 0 => Some(&buf[..end]),
                None => None,
            },
            None if pos == 0 => return Ok((None, true)),
            None => None,
        };
        if let Some(line) = line {
            let text = String::from_utf8_lossy(line).into_owned();
            return Ok((Some(text), ends_with_newline));
        }
    }
}

/// The result of a successful [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// How many records the chain holds.
    pub records: usize,
    /// The hash of the last record ([`GENESIS_HASH`] for an empty log). Keep it elsewhere
    /// to detect a later truncation of the log.
    pub last_hash: String,
    /// How many of the records each server wrote (its `server_id`; `None` for records
    /// without one), in the order the servers first appear.
    pub servers: Vec<ServerRecords>,
}

/// The records of one server in a verified log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerRecords {
    /// The `server_id` of the records; `None` for records that name no server (written
    /// before `server_id` existed, or by an embedding that sets none).
    pub server_id: Option<String>,
    /// How many records it wrote.
    pub records: usize,
}

impl VerifyReport {
    fn count(&mut self, server_id: Option<&str>) {
        self.records += 1;
        match self
            .servers
            .iter_mut()
            .find(|s| s.server_id.as_deref() == server_id)
        {
            Some(server) => server.records += 1,
            None => self.servers.push(ServerRecords {
                server_id: server_id.map(str::to_owned),
                records: 1,
            }),
        }
    }
}

/// Why a log failed [`verify`]; line numbers start at 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The log could not be read.
    #[error("cannot read the audit log: {0}")]
    Io(#[from] io::Error),
    /// A line is not an audit record.
    #[error("line {line}: not an audit record: {reason}")]
    Malformed {
        /// The line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A record's content does not match its hash: it was edited after it was written.
    #[error(
        "line {line}: the record was modified after it was written (its hash does not match its content)"
    )]
    Modified {
        /// The line.
        line: usize,
    },
    /// A record's `prev_hash` is not the hash of the record before it: a record was removed,
    /// inserted or reordered here.
    #[error(
        "line {line}: the chain is broken: prev_hash is not the hash of the previous record \
         (a record was removed, inserted or reordered before this line)"
    )]
    ChainBroken {
        /// The line.
        line: usize,
    },
}

impl VerifyError {
    /// The offending line, when the log could be read.
    pub fn line(&self) -> Option<usize> {
        match self {
            VerifyError::Io(_) => None,
            VerifyError::Malformed { line, .. }
            | VerifyError::Modified { line }
            | VerifyError::ChainBroken { line } => Some(*line),
        }
    }
}

/// Checks a JSON-lines audit log: every record's hash matches its content and chains to the
/// record before it (the first to [`GENESIS_HASH`]). Blank lines are ignored.
pub fn verify(reader: impl BufRead) -> Result<VerifyReport, VerifyError> {
    let mut prev = GENESIS_HASH.to_owned();
    let mut report = VerifyReport {
        records: 0,
        last_hash: String::new(),
        servers: Vec::new(),
    };
    for (index, line) in reader.lines().enumerate() {
        let line_no = index + 1;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let malformed = |reason: &str| VerifyError::Malformed {
            line: line_no,
            reason: reason.to_owned(),
        };
        let mut value: Value =
            serde_json::from_str(&line).map_err(|e| malformed(&format!("invalid JSON: {e}")))?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| malformed("not a JSON object"))?;
        let hash = match object.remove("hash") {
            Some(Value::String(hash)) => hash,
            _ => return Err(malformed("no \"hash\" string")),
        };
        match object.get("prev_hash").and_then(Value::as_str) {
            Some(prev_hash) if prev_hash == prev => {}
            Some(_) => return Err(VerifyError::ChainBroken { line: line_no }),
            None => return Err(malformed("no \"prev_hash\" string")),
        }
        if chain_hash(&prev, &value) != hash {
            return Err(VerifyError::Modified { line: line_no });
        }
        prev = hash;
        report.count(value.get("server_id").and_then(Value::as_str));
    }
    report.last_hash = prev;
    Ok(report)
}

/// Locks `mutex`, recovering from poisoning (a panic elsewhere must not stop auditing or
/// metrics).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::AssertUnwindSafe;
    use std::sync::mpsc;

    use crate::identity::{AuthMethod, PermissionSet};
    use serde_json::json;

    impl Written {
        /// [`Written::wait`], here and now.
        fn wait_now(self) -> io::Result<()> {
            futures::executor::block_on(self.wait())
        }
    }

    #[test]
    fn a_slow_write_holds_up_only_its_writer_and_records_keep_their_order() {
        // The first call's write is stuck (a busy disk): the calls after it hand their
        // records on without waiting for it, and once it moves on the records are written
        // in the order they were handed on.
        struct Stuck(Mutex<mpsc::Receiver<()>>, MemorySink);
        impl AuditSink for Stuck {
            fn write_line(&self, line: &str) -> io::Result<()> {
                let _ = lock(&self.0).recv();
                self.1.write_line(line)
            }
        }
        let (go, wait) = mpsc::channel();
        let sink = Arc::new(Stuck(Mutex::new(wait), MemorySink::new()));
        let log = Arc::new(AuditLog::new(sink.clone(), None));
        let id = Identity::new("alice", AuthMethod::ApiKey, PermissionSet::all());
        let args = json!({});
        let record = |request_id| {
            log.record(&AuditEntry {
                request_id,
                ..entry(&id, &args)
            })
        };
        std::thread::scope(|scope| {
            let first = scope.spawn(|| record("r1").wait_now());
            while !lock(&log.chain).writing {
                std::thread::yield_now();
            }
            let later = [record("r2"), record("r3")];
            assert!(sink.1.lines().is_empty());
            for _ in 0..3 {
                go.send(()).unwrap();
            }
            first.join().unwrap().unwrap();
            for written in later {
                written.wait_now().unwrap();
            }
        });
        let records = sink.1.records();
        let order: Vec<&str> = records
            .iter()
            .map(|r| r["request_id"].as_str().unwrap())
            .collect();
        assert_eq!(order, ["r1", "r2", "r3"]);
        assert_eq!(
            verify(sink.1.lines().join("\n").as_bytes())
                .unwrap()
                .records,
            3
        );
    }

    fn entry<'a>(identity: &'a Identity, args: &'a Value) -> AuditEntry<'a> {
        AuditEntry {
            request_id: "req-1",
            identity,
            tool: "webops_get_status",
            arguments: args,
            outcome: Outcome::Ok,
            error: None,
            reason: None,
            confirmation: None,
            duration: Duration::from_millis(3),
        }
    }

    #[test]
    fn a_sink_that_panics_does_not_stop_the_log() {
        struct Panics(std::sync::atomic::AtomicBool, MemorySink);
        impl AuditSink for Panics {
            fn write_line(&self, line: &str) -> io::Result<()> {
                if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    panic!("a sink's bug");
                }
                self.1.write_line(line)
            }
        }
        let sink = Arc::new(Panics(Default::default(), MemorySink::new()));
        let log = AuditLog::new(sink.clone(), None);
        let id = Identity::new("alice", AuthMethod::ApiKey, PermissionSet::all());
        let args = json!({});
        let first = std::panic::catch_unwind(AssertUnwindSafe(|| log.record(&entry(&id, &args))));
        assert!(first.is_err());
        log.record(&entry(&id, &args)).wait_now().unwrap();
        assert_eq!(
            verify(sink.1.lines().join("\n").as_bytes())
                .unwrap()
                .records,
            1
        );
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [1, {"z": null, "y": "x"}], "c": true}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":true,"d":[1,{"y":"x","z":null}]},"b":1}"#
        );
    }

    #[test]
    fn canonical_strings_and_scalars_match_serde_json() {
        // Strings needing escapes, non-ASCII, odd keys and every scalar kind: the canonical
        // writer must render them exactly as serde_json does (old records must verify).
        let v = json!({
            "quote\"key": "a \"quoted\" \\ back\\slash",
            "ctl": "tab\tnew\nline\u{1}\u{7f}",
            "ünï": "çödé ✓ /slash",
            "nums": [0, -1, 1.5, 1e300, u64::MAX, i64::MIN],
            "flags": [true, false, null],
        });
        let sorted: Value = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(canonical_json(&v), serde_json::to_string(&sorted).unwrap());
    }

    #[test]
    fn records_chain_and_verify() {
        let sink = Arc::new(MemorySink::new());
        let log = AuditLog::new(sink.clone(), None);
        let id = Identity::new("alice", AuthMethod::ApiKey, PermissionSet::all());
        let args = json!({"deployment_id": 1, "api_key": "s3cr3t-value"});
        for _ in 0..3 {
            log.record(&entry(&id, &args)).wait_now().unwrap();
        }
        let lines = sink.lines();
        assert_eq!(lines.len(), 3);
        assert!(!lines.concat().contains("s3cr3t-value"));
        // Each line is canonical, `hash` at its sorted place.
        for line in &lines {
            let value: Value = serde_json::from_str(line).unwrap();
            assert_eq!(&canonical_json(&value), line);
        }
        let first: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(first["prev_hash"], GENESIS_HASH);
        assert!(first.get("server_id").is_none());
        let report = verify(lines.join("\n").as_bytes()).unwrap();
        assert_eq!(report.records, 3);
        let last: Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!(report.last_hash, last["hash"].as_str().unwrap());
        assert_eq!(
            report.servers,
            vec![ServerRecords {
                server_id: None,
                records: 3
            }]
        );
    }

    #[test]
    fn every_record_names_its_server_and_the_chain_goes_on_when_it_starts_to() {
        // An older log without server ids, continued by a server that names itself: one
        // chain, counted per server.
        let sink = Arc::new(MemorySink::new());
        let id = Identity::new("alice", AuthMethod::ApiKey, PermissionSet::all());
        let args = json!({});
        AuditLog::new(sink.clone(), None)
            .record(&entry(&id, &args))
            .wait_now()
            .unwrap();
        struct Continue(Arc<MemorySink>);
        impl AuditSink for Continue {
            fn write_line(&self, line: &str) -> io::Result<()> {
                self.0.write_line(line)
            }
            fn last_hash(&self) -> Option<String> {
                self.0.lines().last().and_then(|l| record_hash(l))
            }
        }
        let log = AuditLog::new(Arc::new(Continue(sink.clone())), Some("web-1".to_owned()));
        log.record(&entry(&id, &args)).wait_now().unwrap();
        log.record(&entry(&id, &args)).wait_now().unwrap();
        let lines = sink.lines();
        let second: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(second["server_id"], "web-1");
        let report = verify(lines.join("\n").as_bytes()).unwrap();
        assert_eq!(report.records, 3);
        assert_eq!(
            report.servers,
            vec![
                ServerRecords {
                    server_id: None,
                    records: 1
                },
                ServerRecords {
                    server_id: Some("web-1".to_owned()),
                    records: 2
                },
            ]
        );
        // The server id is part of what the hash covers.
        let forged = lines[2].replace("\"web-1\"", "\"web-2\"");
        let tampered = [lines[0].clone(), lines[1].clone(), forged].join("\n");
        assert!(matches!(
            verify(tampered.as_bytes()),
            Err(VerifyError::Modified { line: 3 })
        ));
    }

    #[test]
    fn failed_write_does_not_advance_the_chain() {
        struct Flaky(Mutex<u32>, MemorySink);
        impl AuditSink for Flaky {
            fn write_line(&self, line: &str) -> io::Result<()> {
                let mut n = lock(&self.0);
                *n += 1;
                if *n == 2 {
                    return Err(io::Error::other("disk full"));
                }
                self.1.write_line(line)
            }
        }
        let sink = Arc::new(Flaky(Mutex::new(0), MemorySink::new()));
        let log = AuditLog::new(sink.clone(), None);
        let id = Identity::new("bob", AuthMethod::Stdio, PermissionSet::empty());
        let args = json!({});
        log.record(&entry(&id, &args)).wait_now().unwrap();
        assert!(log.record(&entry(&id, &args)).wait_now().is_err());
        log.record(&entry(&id, &args)).wait_now().unwrap();
        assert_eq!(
            verify(sink.1.lines().join("\n").as_bytes())
                .unwrap()
                .records,
            2
        );
    }

    /// A file on a disk with `room` bytes left: writes what fits, then fails.
    struct NearlyFull {
        file: File,
        room: usize,
    }

    impl Write for NearlyFull {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::other("no space left on device"));
            }
            let n = self.file.write(&buf[..buf.len().min(self.room)])?;
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            self.file.flush()
        }
    }

    impl Truncatable for NearlyFull {
        fn current_len(&self) -> io::Result<u64> {
            self.file.current_len()
        }

        fn truncate_to(&self, len: u64) -> io::Result<()> {
            self.file.truncate_to(len)
        }
    }

    #[test]
    fn a_partial_write_leaves_no_torn_record() {
        let dir = std::env::temp_dir().join(format!("webops-audit-unit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let id = Identity::new("bob", AuthMethod::Stdio, PermissionSet::empty());
        let args = json!({});
        let sink = Arc::new(JsonLinesFileSink::open(&path).unwrap());
        let log = AuditLog::new(sink.clone(), None);
        log.record(&entry(&id, &args)).wait_now().unwrap();
        let intact = std::fs::read(&path).unwrap();

        // The disk fills up 10 bytes into the next record.
        let file = lock(&sink.file).try_clone().unwrap();
        let mut nearly_full = NearlyFull { file, room: 10 };
        let err =
            append_whole(&mut nearly_full, b"{\"a\":\"record that does not fit\"}\n").unwrap_err();
        assert!(err.to_string().contains("no space left"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            intact,
            "the fragment was removed"
        );

        // The chain goes on: in this process, and after a restart.
        log.record(&entry(&id, &args)).wait_now().unwrap();
        drop(log);
        let reopened = JsonLinesFileSink::open(&path).unwrap();
        let report = verify(io::BufReader::new(File::open(&path).unwrap())).unwrap();
        assert_eq!(report.records, 2);
        assert_eq!(reopened.last_hash(), Some(report.last_hash));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn last_line_is_found_across_chunks() {
        let dir = std::env::temp_dir().join(format!("webops-audit-unit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let long = "x".repeat(20_000);
        let hash = "a".repeat(64);
        std::fs::write(
            &path,
            format!("{{\"hash\":\"{}\",\"pad\":\"{long}\"}}\n{{\"hash\":\"{hash}\",\"pad\":\"{long}\"}}\n\n", "b".repeat(64)),
        )
        .unwrap();
        let sink = JsonLinesFileSink::open(&path).unwrap();
        assert_eq!(sink.last_hash(), Some(hash));
        std::fs::write(&path, "{\"hash\":\"tor").unwrap();
        assert!(JsonLinesFileSink::open(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
