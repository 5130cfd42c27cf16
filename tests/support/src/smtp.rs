//! A local SMTP sink, for the tests of the emails the node sends
//! (verification, password reset, invitation). [`SmtpSink::start`] binds
//! 127.0.0.1:0 and speaks as much of RFC 5321 as a plain, unauthenticated
//! client such as lettre needs: the `220` greeting, `EHLO`/`HELO`, `MAIL`,
//! `RCPT`, `DATA` with dot-stuffing undone, `RSET`, `NOOP` and `QUIT`.
//! Command lines are bounded to 512 bytes, text lines to 1000 (RFC 5321
//! 4.5.3.1) and messages to 1 MiB, refused beyond that with `552`.
//!
//! Every accepted message is kept as a [`Mail`] whose subject has its RFC
//! 2047 encoded words decoded and whose body is the text a reader would
//! see: quoted-printable or base64 undone, and for a multipart message the
//! first `text/plain` part. The sink stops listening, and drops every open
//! connection, when it is dropped.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The longest command line accepted, its CRLF included (RFC 5321 4.5.3.1.4).
const MAX_COMMAND_BYTES: usize = 512;
/// The longest line of message text accepted, its CRLF included (RFC 5321
/// 4.5.3.1.6).
const MAX_LINE_BYTES: usize = 1000;
/// The largest message accepted, after dot-stuffing is undone; larger ones
/// are refused with `552`. Advertised as `SIZE`.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// The most recipients one message may have; more get `452`.
const MAX_RECIPIENTS: usize = 100;
/// How long [`SmtpSink::wait_for`] waits before it fails the test.
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How deeply multipart bodies are searched for their text.
const MAX_MULTIPART_DEPTH: usize = 8;

/// One message the sink accepted.
#[derive(Clone, Debug)]
pub struct Mail {
    /// The envelope sender (`MAIL FROM`); empty for the null path `<>`.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), in the order given.
    pub to: Vec<String>,
    /// The message as received, headers included, with dot-stuffing undone.
    pub raw: String,
    /// The `Subject` header, unfolded and with encoded words decoded.
    pub subject: String,
    /// The decoded text of the body (for multipart messages the first
    /// `text/plain` part, else the first part), with `\n` line endings.
    pub body: String,
}

impl Mail {
    /// The first `http://` or `https://` URL in the body that contains
    /// `path_contains`. A URL ends at whitespace, `<`, `>` or `"`.
    pub fn link(&self, path_contains: &str) -> Option<String> {
        let mut rest = self.body.as_str();
        while let Some(start) = rest.find("http") {
            let candidate = &rest[start..];
            if !(candidate.starts_with("http://") || candidate.starts_with("https://")) {
                rest = &candidate["http".len()..];
                continue;
            }
            let end = candidate
                .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
                .unwrap_or(candidate.len());
            let url = &candidate[..end];
            if url.contains(path_contains) {
                return Some(url.to_owned());
            }
            rest = &candidate[end..];
        }
        None
    }

    fn is_to(&self, address: &str) -> bool {
        self.to.iter().any(|to| to.eq_ignore_ascii_case(address))
    }
}

/// A running SMTP server on 127.0.0.1 that keeps what it is sent.
pub struct SmtpSink {
    port: u16,
    mails: Arc<watch::Sender<Vec<Mail>>>,
    /// Per recipient (lower-cased), the index after the last message
    /// [`SmtpSink::wait_for`] returned for it.
    cursors: Mutex<HashMap<String, usize>>,
    server: JoinHandle<()>,
}

impl SmtpSink {
    /// Binds 127.0.0.1:0 and starts accepting connections.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a test machine can bind a port on 127.0.0.1");
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        let mails = Arc::new(watch::Sender::new(Vec::new()));
        let server = tokio::spawn(serve(listener, mails.clone()));
        SmtpSink {
            port,
            mails,
            cursors: Mutex::new(HashMap::new()),
            server,
        }
    }

    /// The port the sink listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message accepted so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        self.mails.borrow().clone()
    }

    /// The next message to `to` that this method has not returned before,
    /// waiting for it to arrive. Panics, naming what did arrive, if none
    /// does within 10 seconds.
    pub async fn wait_for(&self, to: &str) -> Mail {
        let address = to.to_ascii_lowercase();
        let from = self.cursor(&address);
        let next = |mails: &[Mail]| {
            mails
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, mail)| mail.is_to(&address))
                .map(|(index, mail)| (index, mail.clone()))
        };
        let mut receiver = self.mails.subscribe();
        let arrived = tokio::time::timeout(
            WAIT_TIMEOUT,
            receiver.wait_for(|mails| next(mails).is_some()),
        )
        .await;
        let found = match arrived {
            Ok(mails) => next(&mails.expect("the sender lives in self, so it outlives this wait")),
            Err(_) => None,
        };
        let Some((index, mail)) = found else {
            let seen: Vec<_> = self
                .messages()
                .into_iter()
                .map(|mail| format!("to {:?}: {:?}", mail.to, mail.subject))
                .collect();
            panic!("no new mail to {to} within {WAIT_TIMEOUT:?}; the sink received {seen:#?}");
        };
        let mut cursors = self.cursors.lock().unwrap_or_else(PoisonError::into_inner);
        let cursor = cursors.entry(address).or_default();
        *cursor = (*cursor).max(index + 1);
        mail
    }

    fn cursor(&self, address: &str) -> usize {
        let cursors = self.cursors.lock().unwrap_or_else(PoisonError::into_inner);
        cursors.get(address).copied().unwrap_or(0)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every
        // connection task with it.
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, mails: Arc<watch::Sender<Vec<Mail>>>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                // A failed accept concerns one connection; keep listening.
                if let Ok((stream, _)) = accepted {
                    connections.spawn(converse(stream, mails.clone()));
                }
            }
            // Reaps finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The envelope of the message being composed.
#[derive(Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
}

/// One SMTP session. An I/O error just ends it: the client sees the
/// connection drop, as it would with a real server.
async fn converse(stream: TcpStream, mails: Arc<watch::Sender<Vec<Mail>>>) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut session = Session {
        greeted: false,
        envelope: Envelope::default(),
        mails,
    };
    let _ = session.run(&mut reader, &mut writer).await;
}

struct Session {
    greeted: bool,
    envelope: Envelope,
    mails: Arc<watch::Sender<Vec<Mail>>>,
}

/// What the session does after answering a command.
enum Next {
    Continue,
    ReadData,
    Close,
}

impl Session {
    async fn run<R, W>(&mut self, reader: &mut R, writer: &mut W) -> io::Result<()>
    where
        R: AsyncBufRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        writer
            .write_all(b"220 localhost Mikabot test SMTP sink ready\r\n")
            .await?;
        let mut line = Vec::new();
        loop {
            match read_line(reader, &mut line, MAX_COMMAND_BYTES).await? {
                Line::Closed => return Ok(()),
                Line::TooLong => {
                    // The rest of the line cannot be told from the next
                    // command, so the session cannot go on.
                    writer.write_all(b"500 Line too long\r\n").await?;
                    return Ok(());
                }
                Line::Complete => {}
            }
            let command = String::from_utf8_lossy(strip_line_ending(&line)).into_owned();
            let (reply, next) = self.answer(&command);
            writer.write_all(reply.as_bytes()).await?;
            match next {
                Next::Continue => {}
                Next::Close => return Ok(()),
                Next::ReadData => {
                    let reply = match read_data(reader).await? {
                        Data::Closed => return Ok(()),
                        Data::LineTooLong => {
                            writer.write_all(b"500 Line too long\r\n").await?;
                            return Ok(());
                        }
                        Data::TooBig => {
                            "552 Message exceeds fixed maximum message size\r\n".to_owned()
                        }
                        Data::Message(data) => self.store(data),
                    };
                    self.envelope = Envelope::default();
                    writer.write_all(reply.as_bytes()).await?;
                }
            }
        }
    }

    /// The reply to one command line, CRLF included, and what follows it.
    fn answer(&mut self, command: &str) -> (String, Next) {
        let (verb, argument) = command.split_once(' ').unwrap_or((command, ""));
        let argument = argument.trim();
        let reply = |text: &str| (format!("{text}\r\n"), Next::Continue);
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" if argument.is_empty() => reply("501 Syntax: EHLO hostname"),
            "EHLO" => {
                self.greeted = true;
                self.envelope = Envelope::default();
                let lines = format!(
                    "250-localhost greets {argument}\r\n\
                     250-8BITMIME\r\n\
                     250-SMTPUTF8\r\n\
                     250-SIZE {MAX_MESSAGE_BYTES}\r\n\
                     250 PIPELINING\r\n"
                );
                (lines, Next::Continue)
            }
            "HELO" => {
                self.greeted = true;
                self.envelope = Envelope::default();
                reply("250 localhost")
            }
            "MAIL" if !self.greeted => reply("503 Send EHLO first"),
            "MAIL" if self.envelope.from.is_some() => reply("503 Nested MAIL command"),
            "MAIL" => match parse_path(argument, "FROM:") {
                None => reply("501 Syntax: MAIL FROM:<address>"),
                Some((path, parameters)) => match check_mail_parameters(parameters) {
                    Err(text) => reply(text),
                    Ok(()) => {
                        self.envelope.from = Some(path.to_owned());
                        reply("250 OK")
                    }
                },
            },
            "RCPT" if self.envelope.from.is_none() => reply("503 Need MAIL before RCPT"),
            "RCPT" => match parse_path(argument, "TO:") {
                None | Some(("", _)) => reply("501 Syntax: RCPT TO:<address>"),
                Some((_, parameters)) if !parameters.trim().is_empty() => {
                    reply("555 RCPT TO parameters not recognized")
                }
                Some(_) if self.envelope.to.len() >= MAX_RECIPIENTS => {
                    reply("452 Too many recipients")
                }
                Some((path, _)) => {
                    self.envelope.to.push(path.to_owned());
                    reply("250 OK")
                }
            },
            "DATA" if !argument.is_empty() => reply("501 Syntax: DATA"),
            "DATA" if self.envelope.from.is_none() => reply("503 Need MAIL before DATA"),
            "DATA" if self.envelope.to.is_empty() => reply("503 Need RCPT before DATA"),
            "DATA" => (
                "354 End data with <CR><LF>.<CR><LF>\r\n".to_owned(),
                Next::ReadData,
            ),
            "RSET" => {
                self.envelope = Envelope::default();
                reply("250 OK")
            }
            "NOOP" => reply("250 OK"),
            "QUIT" => ("221 Bye\r\n".to_owned(), Next::Close),
            "VRFY" | "EXPN" | "HELP" | "TURN" | "STARTTLS" | "AUTH" | "BDAT" | "ETRN" => {
                reply("502 Command not implemented")
            }
            _ => reply("500 Command unrecognized"),
        }
    }

    /// Keeps a received message and returns the reply to its `DATA`.
    fn store(&mut self, data: Vec<u8>) -> String {
        let envelope = std::mem::take(&mut self.envelope);
        let mail = parse_mail(envelope.from.unwrap_or_default(), envelope.to, &data);
        let mut queued = 0;
        self.mails.send_modify(|mails| {
            queued = mails.len();
            mails.push(mail);
        });
        format!("250 OK queued as {queued}\r\n")
    }
}

/// Splits `FROM:<path> parameters` (or `TO:`) into the address inside the
/// brackets and the parameters after them.
fn parse_path<'a>(argument: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let prefix = argument.get(..keyword.len())?;
    if !prefix.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let path = argument[keyword.len()..].trim_start().strip_prefix('<')?;
    let (address, parameters) = path.split_once('>')?;
    // A source route (`<@relay:user@host>`) is to be ignored (RFC 5321 4.1.2).
    let address = match address.strip_prefix('@') {
        Some(route) => route.split_once(':')?.1,
        None => address,
    };
    Some((address, parameters))
}

/// Checks the `MAIL` parameters this sink advertises (`SIZE`, `BODY`,
/// `SMTPUTF8`), returning the reply for any it must refuse.
fn check_mail_parameters(parameters: &str) -> Result<(), &'static str> {
    for parameter in parameters.split_whitespace() {
        let (keyword, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        match keyword.to_ascii_uppercase().as_str() {
            "SIZE" => match value.parse::<usize>() {
                Ok(size) if size > MAX_MESSAGE_BYTES => {
                    return Err("552 Message size exceeds fixed maximum message size");
                }
                Ok(_) => {}
                Err(_) => return Err("501 Syntax: SIZE=<number>"),
            },
            "BODY" if matches!(value.to_ascii_uppercase().as_str(), "7BIT" | "8BITMIME") => {}
            "SMTPUTF8" if value.is_empty() => {}
            _ => return Err("555 MAIL FROM parameters not recognized"),
        }
    }
    Ok(())
}

/// How reading one line ended.
enum Line {
    Complete,
    TooLong,
    Closed,
}

/// Reads one line, its ending included, into `line`, reading no more than
/// `limit` bytes.
async fn read_line<R>(reader: &mut R, line: &mut Vec<u8>, limit: usize) -> io::Result<Line>
where
    R: AsyncBufRead + Unpin,
{
    line.clear();
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    let read = (&mut *reader)
        .take(limit_u64)
        .read_until(b'\n', line)
        .await?;
    Ok(if line.ends_with(b"\n") {
        Line::Complete
    } else if read == limit {
        Line::TooLong
    } else {
        // The stream ended in the middle of a line.
        Line::Closed
    })
}

/// How reading a message after `354` ended.
enum Data {
    Message(Vec<u8>),
    TooBig,
    LineTooLong,
    Closed,
}

/// Reads message text up to the lone `.` line, undoing dot-stuffing (RFC
/// 5321 4.5.2). A message over `MAX_MESSAGE_BYTES` is read to its end and
/// discarded, so that the session can go on.
async fn read_data<R>(reader: &mut R) -> io::Result<Data>
where
    R: AsyncBufRead + Unpin,
{
    let mut message = Vec::new();
    let mut too_big = false;
    let mut line = Vec::new();
    loop {
        match read_line(reader, &mut line, MAX_LINE_BYTES).await? {
            Line::Closed => return Ok(Data::Closed),
            Line::TooLong => return Ok(Data::LineTooLong),
            Line::Complete => {}
        }
        if strip_line_ending(&line) == b"." {
            return Ok(if too_big {
                Data::TooBig
            } else {
                Data::Message(message)
            });
        }
        let text = line.strip_prefix(b".").unwrap_or(&line);
        if message.len() + text.len() > MAX_MESSAGE_BYTES {
            too_big = true;
            message = Vec::new();
        }
        if !too_big {
            message.extend_from_slice(text);
        }
    }
}

/// `line` without its `\n` or `\r\n`.
fn strip_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_mail(from: String, to: Vec<String>, data: &[u8]) -> Mail {
    let message = Entity::parse(data);
    let subject = message
        .header("subject")
        .map(decode_encoded_words)
        .unwrap_or_default();
    let body = message
        .text(0, true)
        .or_else(|| message.text(0, false))
        .unwrap_or_default();
    Mail {
        from,
        to,
        raw: String::from_utf8_lossy(data).into_owned(),
        subject,
        body,
    }
}

/// A MIME entity: a message or one part of a multipart body.
struct Entity<'a> {
    /// Names and unfolded values, in order.
    headers: Vec<(String, String)>,
    body: &'a [u8],
}

impl<'a> Entity<'a> {
    /// Splits headers from the body at the first empty line, unfolding
    /// continued header lines (RFC 5322 2.2.3).
    fn parse(data: &'a [u8]) -> Entity<'a> {
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut offset = 0;
        for line in data.split_inclusive(|&byte| byte == b'\n') {
            offset += line.len();
            let content = String::from_utf8_lossy(strip_line_ending(line));
            if content.is_empty() {
                return Entity {
                    headers: trimmed(headers),
                    body: &data[offset..],
                };
            }
            if content.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push_str(&content);
                }
            } else if let Some((name, value)) = content.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.to_owned()));
            }
        }
        Entity {
            headers: trimmed(headers),
            body: &[],
        }
    }

    /// The value of the first header called `name` (lower case).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// The decoded text of the first leaf entity, depth first, that is
    /// `text/plain` (or any, if `plain_only` is false).
    fn text(&self, depth: usize, plain_only: bool) -> Option<String> {
        let (media_type, parameters) = parse_content_type(self.header("content-type"));
        if media_type.starts_with("multipart/") {
            let boundary = parameters.get("boundary")?;
            if depth >= MAX_MULTIPART_DEPTH {
                return None;
            }
            return split_multipart(self.body, boundary)
                .into_iter()
                .find_map(|part| Entity::parse(part).text(depth + 1, plain_only));
        }
        if plain_only && media_type != "text/plain" {
            return None;
        }
        let encoding = self
            .header("content-transfer-encoding")
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        let bytes = match encoding.as_str() {
            "quoted-printable" => decode_quoted_printable(self.body),
            "base64" => decode_base64(self.body).unwrap_or_else(|| self.body.to_vec()),
            // 7bit, 8bit and binary are the text itself.
            _ => self.body.to_vec(),
        };
        let charset = parameters.get("charset").map(String::as_str);
        Some(decode_charset(&bytes, charset.unwrap_or("utf-8")).replace("\r\n", "\n"))
    }
}

fn trimmed(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .map(|(name, value)| (name, value.trim().to_owned()))
        .collect()
}

/// The lower-cased media type of a `Content-Type` value and its parameters
/// (names lower-cased, quoted values unquoted). A missing header means
/// `text/plain` (RFC 2045 5.2).
fn parse_content_type(value: Option<&str>) -> (String, HashMap<String, String>) {
    let Some(value) = value else {
        return ("text/plain".to_owned(), HashMap::new());
    };
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        match c {
            _ if escaped => {
                field.push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    let mut fields = fields.into_iter();
    let media_type = fields
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let parameters = fields
        .filter_map(|field| {
            let (name, value) = field.split_once('=')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect();
    (media_type, parameters)
}

/// The parts of a multipart body between its `--boundary` delimiter lines
/// (RFC 2046 5.1.1); the line break before a delimiter belongs to it.
fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut start = None;
    let mut offset = 0;
    for line in body.split_inclusive(|&byte| byte == b'\n') {
        let line_start = offset;
        offset += line.len();
        let Some(rest) = line.strip_prefix(delimiter.as_bytes()) else {
            continue;
        };
        let rest = rest.trim_ascii_end();
        let closing = rest == b"--";
        if !closing && !rest.is_empty() {
            continue;
        }
        if let Some(part_start) = start {
            let part = &body[part_start..line_start];
            let part = part.strip_suffix(b"\n").unwrap_or(part);
            parts.push(part.strip_suffix(b"\r").unwrap_or(part));
        }
        if closing {
            break;
        }
        start = Some(offset);
    }
    parts
}

/// Undoes quoted-printable (RFC 2045 6.7): `=XX` escapes, soft line breaks
/// (`=` at a line's end) and trailing transport padding.
fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&byte| byte == b'\n') {
        let content = strip_line_ending(line).trim_ascii_end();
        let (content, soft_break) = match content.strip_suffix(b"=") {
            Some(content) => (content, true),
            None => (content, false),
        };
        decode_hex_escapes(content, false, &mut out);
        if line.ends_with(b"\n") && !soft_break {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Appends `input` to `out` with each `=XX` replaced by its byte, and `_`
/// by a space if `underscore_is_space` (the "Q" encoding of RFC 2047). A
/// malformed escape is kept as it is.
fn decode_hex_escapes(input: &[u8], underscore_is_space: bool, out: &mut Vec<u8>) {
    let mut index = 0;
    while let Some(&byte) = input.get(index) {
        let escaped = match (byte, input.get(index + 1..index + 3)) {
            (b'=', Some(&[high, low])) => hex_digit(high)
                .zip(hex_digit(low))
                .map(|(high, low)| (high << 4) | low),
            _ => None,
        };
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                index += 3;
            }
            None => {
                out.push(if underscore_is_space && byte == b'_' {
                    b' '
                } else {
                    byte
                });
                index += 1;
            }
        }
    }
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

/// Undoes base64, ignoring the line breaks it is wrapped with.
fn decode_base64(body: &[u8]) -> Option<Vec<u8>> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(&compact)
        .or_else(|_| STANDARD_NO_PAD.decode(&compact))
        .ok()
}

/// Text in `charset`: ISO-8859-1 is mapped byte for byte, anything else is
/// read as UTF-8 (of which US-ASCII is a part), invalid bytes replaced.
fn decode_charset(bytes: &[u8], charset: &str) -> String {
    match charset.to_ascii_lowercase().as_str() {
        "iso-8859-1" | "latin1" | "l1" => bytes.iter().copied().map(char::from).collect(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Decodes the RFC 2047 encoded words (`=?charset?B?…?=`, `=?charset?Q?…?=`)
/// in an unfolded header value. Whitespace between adjacent encoded words
/// is dropped, and their bytes are joined before decoding, so a character
/// split across two words survives.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut pending: Option<(String, Vec<u8>)> = None;
    let flush = |pending: &mut Option<(String, Vec<u8>)>, out: &mut String| {
        if let Some((charset, bytes)) = pending.take() {
            out.push_str(&decode_charset(&bytes, &charset));
        }
    };
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        let (before, word) = rest.split_at(start);
        let Some((charset, bytes, length)) = parse_encoded_word(word) else {
            flush(&mut pending, &mut out);
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            continue;
        };
        let adjacent = pending.is_some() && before.trim().is_empty();
        match &mut pending {
            Some((pending_charset, pending_bytes))
                if adjacent && pending_charset.eq_ignore_ascii_case(&charset) =>
            {
                pending_bytes.extend(bytes);
            }
            _ => {
                flush(&mut pending, &mut out);
                if !adjacent {
                    out.push_str(before);
                }
                pending = Some((charset, bytes));
            }
        }
        rest = &word[length..];
    }
    flush(&mut pending, &mut out);
    out.push_str(rest);
    out
}

/// The charset and bytes of the encoded word at the start of `word`, and
/// its length, or `None` if it is not one.
fn parse_encoded_word(word: &str) -> Option<(String, Vec<u8>, usize)> {
    let inner = word.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    if charset.is_empty()
        || charset.contains(char::is_whitespace)
        || text.contains(char::is_whitespace)
    {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .ok()?,
        "Q" | "q" => {
            let mut bytes = Vec::new();
            decode_hex_escapes(text.as_bytes(), true, &mut bytes);
            bytes
        }
        _ => return None,
    };
    // RFC 2231 lets a language follow the charset: `utf-8*en`.
    let charset = charset.split('*').next().unwrap_or(charset).to_owned();
    // `rest` is a suffix of `word`, and the word ends with the `?=` after it.
    let length = word.len() - rest.len() + end + "?=".len();
    Some((charset, bytes, length))
}

#[cfg(test)]
mod tests {
    use lettre::message::{Mailbox, MultiPart};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    use super::SmtpSink;

    fn mailer(sink: &SmtpSink) -> AsyncSmtpTransport<Tokio1Executor> {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(sink.port())
            .build()
    }

    fn mailbox(address: &str) -> Mailbox {
        address.parse().expect("the test addresses are valid")
    }

    fn message(to: &str, subject: &str) -> lettre::message::MessageBuilder {
        Message::builder()
            .from(mailbox("Mikabot <noreply@mikabot.test>"))
            .to(mailbox(to))
            .subject(subject)
    }

    #[tokio::test]
    async fn long_link_in_a_quoted_printable_body_comes_back_whole() {
        let sink = SmtpSink::start().await;
        let url = "https://shop.mikabot.test/accounts/verify?token=\
                   3f9c2a7e51b84d06a9e2c1f0b7d3e8a45c6f1e2d9b0a7c3e&next=%2Fdashboard%2Fsettings";
        assert!(url.len() > 76);
        let email = message("owner@shop.test", "Confirm your address")
            .body(format!("Welcome!\n\nOpen {url} to confirm your address.\n"))
            .expect("the message is complete");

        mailer(&sink)
            .send(email)
            .await
            .expect("the sink accepts the message");
        let mail = sink.wait_for("owner@shop.test").await;

        assert!(mail.raw.contains("quoted-printable"), "{}", mail.raw);
        assert!(!mail.raw.contains(url), "the URL was sent unencoded");
        assert_eq!(mail.from, "noreply@mikabot.test");
        assert_eq!(mail.to, ["owner@shop.test"]);
        assert_eq!(mail.link("/accounts/verify").as_deref(), Some(url));
        assert_eq!(mail.link("/reset"), None);
    }

    #[tokio::test]
    async fn utf8_subject_and_body_are_decoded() {
        let sink = SmtpSink::start().await;
        let subject = "Bienvenue chez Mikabot, Zoë — café für Jürgen und Müller";
        let body = "Grüße aus dem Café!\nÉté, über, naïve.\n";
        let email = message("zoe@shop.test", subject)
            .body(body.to_owned())
            .expect("the message is complete");

        mailer(&sink)
            .send(email)
            .await
            .expect("the sink accepts the message");
        let mail = sink.wait_for("zoe@shop.test").await;

        assert!(mail.raw.contains("=?utf-8?"), "{}", mail.raw);
        assert_eq!(mail.subject, subject);
        assert_eq!(mail.body.trim_end(), body.trim_end());
    }

    #[tokio::test]
    async fn mostly_non_ascii_body_sent_as_base64_is_decoded() {
        let sink = SmtpSink::start().await;
        let body = "éèêëüûùçàâ ÉÈÊËÜÛÙÇÀÂ\n";
        let email = message("accents@shop.test", "Accents")
            .body(body.to_owned())
            .expect("the message is complete");

        mailer(&sink)
            .send(email)
            .await
            .expect("the sink accepts the message");
        let mail = sink.wait_for("accents@shop.test").await;

        assert!(
            mail.raw.contains("Content-Transfer-Encoding: base64"),
            "{}",
            mail.raw
        );
        assert_eq!(mail.body.trim_end(), body.trim_end());
    }

    #[tokio::test]
    async fn line_starting_with_a_dot_survives_dot_stuffing() {
        let sink = SmtpSink::start().await;
        let body = "First line\n.hidden unless unstuffed\n..two dots\n.\nlast\n";
        let email = message("dots@shop.test", "Dots")
            .body(body.to_owned())
            .expect("the message is complete");

        mailer(&sink)
            .send(email)
            .await
            .expect("the sink accepts the message");
        let mail = sink.wait_for("dots@shop.test").await;

        assert!(mail.raw.contains("\r\n.hidden"), "{}", mail.raw);
        assert_eq!(mail.body.trim_end(), body.trim_end());
    }

    #[tokio::test]
    async fn text_plain_part_of_multipart_alternative_is_the_body() {
        let sink = SmtpSink::start().await;
        let email = message("reset@shop.test", "Reset your password")
            .multipart(MultiPart::alternative_plain_html(
                "Réinitialisez : https://shop.mikabot.test/accounts/reset?token=abc\n".to_owned(),
                "<p><a href=\"https://shop.mikabot.test/html-only\">Réinitialiser</a></p>"
                    .to_owned(),
            ))
            .expect("the message is complete");

        mailer(&sink)
            .send(email)
            .await
            .expect("the sink accepts the message");
        let mail = sink.wait_for("reset@shop.test").await;

        assert!(mail.body.starts_with("Réinitialisez : "), "{}", mail.body);
        assert_eq!(
            mail.link("reset").as_deref(),
            Some("https://shop.mikabot.test/accounts/reset?token=abc")
        );
        assert_eq!(mail.link("html-only"), None);
    }

    #[tokio::test]
    async fn wait_for_returns_each_message_to_an_address_once_in_order() {
        let sink = SmtpSink::start().await;
        let mailer = mailer(&sink);
        for subject in ["first", "second"] {
            let email = message("twice@shop.test", subject)
                .body("hello".to_owned())
                .expect("the message is complete");
            mailer
                .send(email)
                .await
                .expect("the sink accepts the message");
        }

        assert_eq!(sink.wait_for("TWICE@shop.test").await.subject, "first");
        assert_eq!(sink.wait_for("twice@shop.test").await.subject, "second");
        let third = tokio::spawn(async move { sink.wait_for("twice@shop.test").await });
        let email = message("twice@shop.test", "third")
            .body("hello".to_owned())
            .expect("the message is complete");
        mailer
            .send(email)
            .await
            .expect("the sink accepts the message");
        let third = third
            .await
            .expect("waiting for the third mail does not panic");
        assert_eq!(third.subject, "third");
    }

    #[tokio::test]
    async fn message_over_the_size_limit_is_refused_with_552() {
        let sink = SmtpSink::start().await;
        let line = "a".repeat(70);
        let body = format!("{line}\n").repeat(super::MAX_MESSAGE_BYTES / 70);
        let email = message("big@shop.test", "Big")
            .body(body)
            .expect("the message is complete");

        let refused = mailer(&sink)
            .send(email)
            .await
            .expect_err("the sink refuses the message");

        assert_eq!(refused.status().map(u16::from), Some(552));
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn commands_out_of_order_or_unknown_are_refused() {
        let sink = SmtpSink::start().await;
        let stream = TcpStream::connect(("127.0.0.1", sink.port()))
            .await
            .expect("the sink listens");
        let (reader, mut writer) = stream.into_split();
        let mut lines = BufReader::new(reader).lines();
        let mut next_line = async || {
            lines
                .next_line()
                .await
                .expect("the sink answers")
                .expect("the sink keeps the connection open")
        };
        assert!(next_line().await.starts_with("220 "));

        let script = [
            ("MAIL FROM:<a@shop.test>", "503"),
            ("FROB", "500"),
            ("VRFY someone", "502"),
            ("HELO client.test", "250"),
            ("RCPT TO:<b@shop.test>", "503"),
            ("MAIL FROM:<a@shop.test> FOO=BAR", "555"),
            ("MAIL FROM:<a@shop.test> SIZE=2000000", "552"),
            ("MAIL FROM:<a@shop.test>", "250"),
            ("DATA", "503"),
            ("RCPT TO:<b@shop.test>", "250"),
            ("RSET", "250"),
            ("DATA", "503"),
            ("NOOP", "250"),
            ("QUIT", "221"),
        ];
        for (command, code) in script {
            writer
                .write_all(format!("{command}\r\n").as_bytes())
                .await
                .expect("the sink reads");
            let reply = next_line().await;
            assert!(reply.starts_with(code), "{command} got {reply}");
        }
        assert!(sink.messages().is_empty());
    }
}
