//! A check of the WebSocket frames a client sends, on the raw bytes before
//! actix-ws decodes them, for what actix-http's codec lets through and RFC
//! 6455 forbids: reserved bits set with no extension negotiated (§5.2), a
//! new data frame in the middle of a fragmented message (§5.4), a
//! fragmented or oversized control frame (§5.5), and a close frame with a
//! one-byte body, a code no endpoint may send, or a reason that is not
//! UTF-8 (§5.5.1, §7.4). The bytes pass through unchanged up to the first
//! violation; then the stream fails, and the socket closes with 1002.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;

/// Why a client's frames were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("a frame has reserved bits set")]
    ReservedBits,
    #[error("a reserved opcode ({0})")]
    ReservedOpcode(u8),
    #[error("a data frame started while a fragmented message was unfinished")]
    InterleavedMessage,
    #[error("a continuation frame with no message to continue")]
    StrayContinuation,
    #[error("a control frame is fragmented or longer than 125 bytes")]
    BadControlFrame,
    #[error("a close frame's body is one byte")]
    ShortClose,
    #[error("close code {0} may not be sent")]
    CloseCode(u16),
    #[error("a close frame's reason is not UTF-8")]
    CloseReason,
}

/// Whether an endpoint may send `code` in a close frame (RFC 6455 §7.4,
/// and the IANA registry: 1012 to 1014 are assigned; 1004 to 1006 and 1015
/// are never sent; 3000 to 4999 are for libraries and applications).
fn sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Where the parser is in the byte stream.
#[derive(Debug)]
enum At {
    /// Reading a frame header (up to 14 bytes).
    Header(Vec<u8>),
    /// Passing over `left` payload bytes.
    Payload { left: u64 },
    /// Reading a close frame's body to check it.
    Close {
        mask: [u8; 4],
        len: usize,
        body: Vec<u8>,
    },
}

/// The frame checker's state.
#[derive(Debug)]
pub struct FrameCheck {
    at: At,
    /// A fragmented data message is in progress.
    fragmented: bool,
}

impl Default for FrameCheck {
    fn default() -> Self {
        Self {
            at: At::Header(Vec::with_capacity(14)),
            fragmented: false,
        }
    }
}

impl FrameCheck {
    /// Checks the next `bytes` of the stream. On a violation, says where in
    /// `bytes` the violating frame began (what comes before it is valid)
    /// and what it was.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), (usize, Violation)> {
        let mut at = 0;
        let mut frame_start = 0;
        while at < bytes.len() {
            match &mut self.at {
                At::Payload { left } => {
                    let take = (*left).min((bytes.len() - at) as u64) as usize;
                    at += take;
                    *left -= take as u64;
                    if *left == 0 {
                        self.at = At::Header(Vec::with_capacity(14));
                    }
                }
                At::Close { mask, len, body } => {
                    let take = (*len - body.len()).min(bytes.len() - at);
                    body.extend_from_slice(&bytes[at..at + take]);
                    at += take;
                    if body.len() == *len {
                        for (i, byte) in body.iter_mut().enumerate() {
                            *byte ^= mask[i % 4];
                        }
                        check_close(body).map_err(|v| (frame_start, v))?;
                        self.at = At::Header(Vec::with_capacity(14));
                    }
                }
                At::Header(header) => {
                    if header.is_empty() {
                        frame_start = at;
                    }
                    header.push(bytes[at]);
                    at += 1;
                    let Some(frame) = parse_header(header) else {
                        continue;
                    };
                    let next = self.frame(frame).map_err(|v| (frame_start, v))?;
                    self.at = next;
                }
            }
        }
        Ok(())
    }

    /// Checks a complete header; says what follows it.
    fn frame(&mut self, frame: Header) -> Result<At, Violation> {
        if frame.rsv != 0 {
            return Err(Violation::ReservedBits);
        }
        match frame.opcode {
            0 => {
                if !self.fragmented {
                    return Err(Violation::StrayContinuation);
                }
                self.fragmented = !frame.fin;
            }
            1 | 2 => {
                if self.fragmented {
                    return Err(Violation::InterleavedMessage);
                }
                self.fragmented = !frame.fin;
            }
            8..=10 => {
                if !frame.fin || frame.len > 125 {
                    return Err(Violation::BadControlFrame);
                }
                if frame.opcode == 8 {
                    if frame.len == 1 {
                        return Err(Violation::ShortClose);
                    }
                    if frame.len > 0 {
                        return Ok(At::Close {
                            mask: frame.mask,
                            len: frame.len as usize,
                            body: Vec::with_capacity(frame.len as usize),
                        });
                    }
                }
            }
            other => return Err(Violation::ReservedOpcode(other)),
        }
        Ok(if frame.len == 0 {
            At::Header(Vec::with_capacity(14))
        } else {
            At::Payload { left: frame.len }
        })
    }
}

/// A decoded frame header.
struct Header {
    fin: bool,
    rsv: u8,
    opcode: u8,
    len: u64,
    mask: [u8; 4],
}

/// The header in `bytes`, once they hold all of it.
fn parse_header(bytes: &[u8]) -> Option<Header> {
    let (first, second) = (*bytes.first()?, *bytes.get(1)?);
    let masked = second & 0x80 != 0;
    let (len, after_len) = match second & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?), 10),
        short => (u64::from(short), 2),
    };
    let mask = if masked {
        bytes.get(after_len..after_len + 4)?.try_into().ok()?
    } else {
        // An unmasked client frame is refused by actix-ws itself.
        [0; 4]
    };
    Some(Header {
        fin: first & 0x80 != 0,
        rsv: (first >> 4) & 0x07,
        opcode: first & 0x0f,
        len,
        mask,
    })
}

fn check_close(body: &[u8]) -> Result<(), Violation> {
    let code = u16::from_be_bytes([body[0], body[1]]);
    if !sendable(code) {
        return Err(Violation::CloseCode(code));
    }
    std::str::from_utf8(&body[2..]).map_err(|_| Violation::CloseReason)?;
    Ok(())
}

/// The request body of a WebSocket upgrade, checked frame by frame, as the
/// payload actix-ws reads.
pub async fn checked(
    req: &actix_web::HttpRequest,
    body: actix_web::web::Payload,
) -> Result<actix_web::web::Payload, actix_web::Error> {
    use actix_web::FromRequest;
    let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
        Box::pin(Checked::new(body.into_inner()));
    let mut payload = actix_web::dev::Payload::from(stream);
    actix_web::web::Payload::from_request(req, &mut payload).await
}

/// A request body passed through a [`FrameCheck`].
pub struct Checked<S> {
    inner: S,
    check: FrameCheck,
    /// The violation to report once the bytes before it are out.
    failed: Option<Violation>,
    done: bool,
}

impl<S> Checked<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            check: FrameCheck::default(),
            failed: None,
            done: false,
        }
    }
}

impl<S> Stream for Checked<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(violation) = self.failed.take() {
            self.done = true;
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::other(
                violation.to_string(),
            )))));
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => match self.check.feed(&bytes) {
                Ok(()) => Poll::Ready(Some(Ok(bytes))),
                Err((valid, violation)) => {
                    self.failed = Some(violation);
                    if valid == 0 {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    } else {
                        Poll::Ready(Some(Ok(bytes.slice(..valid))))
                    }
                }
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked with a zero key, so the payload reads as is.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![first];
        match payload.len() {
            n @ 0..=125 => bytes.push(0x80 | n as u8),
            n if n <= usize::from(u16::MAX) => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                bytes.push(0x80 | 127);
                bytes.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        bytes.extend_from_slice(payload);
        bytes
    }

    fn check(bytes: &[u8]) -> Result<(), (usize, Violation)> {
        FrameCheck::default().feed(bytes)
    }

    #[test]
    fn valid_frames_pass_in_any_chopping() {
        let mut stream = frame(0x81, b"hello");
        stream.extend(frame(0x01, b"frag"));
        stream.extend(frame(0x89, b"ping"));
        stream.extend(frame(0x80, &vec![b'x'; 70_000]));
        stream.extend(frame(0x88, &[0x03, 0xe8, b'o', b'k']));
        assert_eq!(check(&stream), Ok(()));
        for chop in [1, 2, 3, 7, 13, 4096] {
            let mut check = FrameCheck::default();
            for piece in stream.chunks(chop) {
                assert_eq!(check.feed(piece), Ok(()), "chopped by {chop}");
            }
        }
    }

    #[test]
    fn a_masked_close_body_is_unmasked_before_it_is_checked() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let close = |body: &[u8]| {
            let mut bytes = vec![0x88, 0x80 | body.len() as u8];
            bytes.extend_from_slice(&mask);
            bytes.extend(body.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
            bytes
        };
        assert_eq!(check(&close(&[0x03, 0xe8, b'b', b'y', b'e'])), Ok(()));
        assert_eq!(
            check(&close(&1005_u16.to_be_bytes())),
            Err((0, Violation::CloseCode(1005)))
        );
    }

    #[test]
    fn what_the_rfc_forbids_is_refused_where_it_begins() {
        let text = frame(0x81, b"ok");
        let cases: Vec<(Vec<u8>, Violation)> = vec![
            (frame(0x91, b"rsv1"), Violation::ReservedBits),
            (frame(0xe9, b""), Violation::ReservedBits),
            (frame(0x83, b""), Violation::ReservedOpcode(3)),
            (frame(0x8b, b""), Violation::ReservedOpcode(11)),
            (frame(0x80, b"stray"), Violation::StrayContinuation),
            (
                [frame(0x01, b"frag1"), frame(0x81, b"frag2")].concat(),
                Violation::InterleavedMessage,
            ),
            (frame(0x09, b"fragmented ping"), Violation::BadControlFrame),
            (frame(0x89, &[b'p'; 126]), Violation::BadControlFrame),
            (frame(0x88, &[0x03]), Violation::ShortClose),
            (
                frame(0x88, &1004_u16.to_be_bytes()),
                Violation::CloseCode(1004),
            ),
            (
                frame(0x88, &999_u16.to_be_bytes()),
                Violation::CloseCode(999),
            ),
            (
                frame(0x88, &2000_u16.to_be_bytes()),
                Violation::CloseCode(2000),
            ),
            (
                frame(0x88, &[0x03, 0xe8, 0xce, 0xba, 0xe1]),
                Violation::CloseReason,
            ),
        ];
        for (bad, violation) in cases {
            let stream = [text.clone(), bad].concat();
            let start = if violation == Violation::InterleavedMessage {
                text.len() + frame(0x01, b"frag1").len()
            } else {
                text.len()
            };
            assert_eq!(
                check(&stream),
                Err((start, violation.clone())),
                "{violation}"
            );
        }
        for code in [1000_u16, 1003, 1007, 1011, 1012, 3000, 4999] {
            assert_eq!(check(&frame(0x88, &code.to_be_bytes())), Ok(()), "{code}");
        }
        assert_eq!(check(&frame(0x88, b"")), Ok(()), "a close with no body");
    }
}
