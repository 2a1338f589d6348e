//! Reading requests and writing replies: the RESP2 wire format (laid out byte by byte in
//! the [parent module](super)).
//!
//! [`Parser`] is incremental: bytes go in with [`Parser::feed`] as the socket delivers
//! them, in pieces of any size, and [`Parser::next`] hands out each request once its last
//! byte has arrived. A request cut anywhere (inside a length, between `\r` and `\n`, in the
//! middle of a value) waits in the parser's state for the next piece; nothing is parsed
//! twice. Every length is checked against [`ParseLimits`] before anything is kept, and a
//! bulk string's buffer grows as its bytes arrive rather than being reserved from the
//! length a client announced.
//!
//! [`Reply`] is the other direction: the five kinds of RESP2 reply, encoded by
//! [`Reply::encode`].

use super::inline;

/// The longest line the parser accepts, `\r\n` excluded: an inline command, or the header
/// (`*N`, `$N`) of an array or bulk string. 64 KiB, as Redis.
pub const MAX_LINE: usize = 64 << 10;

/// The most elements one request's array may have: 1024 * 1024, as Redis.
pub const MAX_ARRAY: usize = 1 << 20;

/// The most bytes of bulk strings one request may carry in total: 64 MiB (four of the
/// largest values). Bounds what one connection holds while a request is arriving.
pub const MAX_REQUEST: usize = 64 << 20;

/// What the parser accepts; a request over any of these is a [`ProtocolError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// The longest bulk string: the server's largest value.
    pub max_bulk: usize,
    /// The most elements of one array ([`MAX_ARRAY`]).
    pub max_array: usize,
    /// The longest line ([`MAX_LINE`]).
    pub max_line: usize,
    /// The most bulk-string bytes of one request ([`MAX_REQUEST`]).
    pub max_request: usize,
}

impl ParseLimits {
    /// The server's limits: bulk strings up to `max_bulk` bytes, the constants above.
    pub fn new(max_bulk: usize) -> ParseLimits {
        ParseLimits {
            max_bulk,
            max_array: MAX_ARRAY,
            max_line: MAX_LINE,
            max_request: MAX_REQUEST,
        }
    }
}

/// Bytes that are not a request the server can read. Where the next request would start is
/// lost, so the server answers `-ERR Protocol error: ...` and closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Protocol error: {}", self.0)
    }
}

/// One request: the command name and its arguments, as the client sent them.
pub type Request = Vec<Vec<u8>>;

/// An array request being read.
#[derive(Debug)]
struct Partial {
    /// The elements read so far.
    args: Vec<Vec<u8>>,
    /// How many elements the header announced.
    expected: usize,
    /// The bulk-string bytes announced so far (checked against `max_request`).
    bytes: usize,
    /// The bulk string whose header was read and whose body is arriving.
    bulk: Option<Bulk>,
}

/// A bulk string's body being read.
#[derive(Debug)]
struct Bulk {
    data: Vec<u8>,
    len: usize,
}

/// The incremental request reader (see the module documentation).
#[derive(Debug)]
pub struct Parser {
    limits: ParseLimits,
    /// Bytes received and not yet consumed start at `pos`. What stays between two feeds is
    /// at most one unfinished line (bulk bodies are moved out as they arrive).
    buf: Vec<u8>,
    pos: usize,
    partial: Option<Partial>,
}

impl Parser {
    /// A parser with nothing received yet.
    pub fn new(limits: ParseLimits) -> Parser {
        Parser {
            limits,
            buf: Vec::new(),
            pos: 0,
            partial: None,
        }
    }

    /// Appends bytes received from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// True when no request is half read: every byte fed has been handed out.
    pub fn is_idle(&self) -> bool {
        self.partial.is_none() && self.pos == self.buf.len()
    }

    /// The next complete request, `None` when its bytes have not all arrived yet.
    ///
    /// # Errors
    /// [`ProtocolError`] for malformed bytes or a length over a limit; the parser is then
    /// of no further use.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Request>, ProtocolError> {
        loop {
            let partial = match self.partial.take() {
                Some(partial) => partial,
                None => {
                    let Some(&first) = self.buf.get(self.pos) else {
                        return Ok(None);
                    };
                    if first != b'*' {
                        match self.inline()? {
                            None => return Ok(None),
                            // An empty line is skipped, as Redis does.
                            Some(args) if args.is_empty() => continue,
                            Some(args) => return Ok(Some(args)),
                        }
                    }
                    match self.array_header()? {
                        None => return Ok(None),
                        // `*0` and `*-1` ask for nothing: skipped, as Redis does.
                        Some(None) => continue,
                        Some(Some(partial)) => partial,
                    }
                }
            };
            return self.elements(partial);
        }
    }

    /// Reads an inline command's line and splits it into words.
    fn inline(&mut self) -> Result<Option<Request>, ProtocolError> {
        let Some((start, end)) = self.line("inline request")? else {
            return Ok(None);
        };
        let mut line = &self.buf[start..end];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        inline::split(line).map(Some)
    }

    /// Reads `*N\r\n`: `Some(None)` for an array of no elements.
    fn array_header(&mut self) -> Result<Option<Option<Partial>>, ProtocolError> {
        let Some(count) = self.header("multibulk")? else {
            return Ok(None);
        };
        if count <= 0 {
            return Ok(Some(None));
        }
        let expected = usize::try_from(count).unwrap_or(usize::MAX);
        if expected > self.limits.max_array {
            return Err(ProtocolError(format!(
                "array of {count} elements is over the limit of {} elements",
                self.limits.max_array
            )));
        }
        Ok(Some(Some(Partial {
            args: Vec::with_capacity(expected.min(16)),
            expected,
            bytes: 0,
            bulk: None,
        })))
    }

    /// Reads the elements of `partial` as far as the bytes go; keeps it for the next feed
    /// when they run out.
    fn elements(&mut self, mut partial: Partial) -> Result<Option<Request>, ProtocolError> {
        loop {
            if let Some(mut bulk) = partial.bulk.take() {
                if !self.bulk_body(&mut bulk)? {
                    partial.bulk = Some(bulk);
                    self.partial = Some(partial);
                    return Ok(None);
                }
                partial.args.push(bulk.data);
            }
            if partial.args.len() == partial.expected {
                return Ok(Some(partial.args));
            }
            match self.bulk_header(&mut partial)? {
                Some(bulk) => partial.bulk = Some(bulk),
                None => {
                    self.partial = Some(partial);
                    return Ok(None);
                }
            }
        }
    }

    /// Reads `$N\r\n`, checks `N`, and starts the body.
    fn bulk_header(&mut self, partial: &mut Partial) -> Result<Option<Bulk>, ProtocolError> {
        let Some(&first) = self.buf.get(self.pos) else {
            return Ok(None);
        };
        if first != b'$' {
            return Err(ProtocolError(format!(
                "expected '$', got '{}'",
                char::from(first).escape_default()
            )));
        }
        let Some(len) = self.header("bulk")? else {
            return Ok(None);
        };
        let len = usize::try_from(len)
            .map_err(|_| ProtocolError(format!("invalid bulk length {len}")))?;
        if len > self.limits.max_bulk {
            return Err(ProtocolError(format!(
                "bulk string of {len} bytes is over the limit of {} bytes (the largest value)",
                self.limits.max_bulk
            )));
        }
        partial.bytes = partial.bytes.saturating_add(len);
        if partial.bytes > self.limits.max_request {
            return Err(ProtocolError(format!(
                "request of over {} bytes is over the limit of {} bytes",
                partial.bytes, self.limits.max_request
            )));
        }
        // Only what has arrived is reserved; the rest grows as it comes.
        let arrived = self.buf.len() - self.pos;
        Ok(Some(Bulk {
            data: Vec::with_capacity(len.min(arrived)),
            len,
        }))
    }

    /// Copies what has arrived of `bulk`'s body; true once it and its `\r\n` are read.
    fn bulk_body(&mut self, bulk: &mut Bulk) -> Result<bool, ProtocolError> {
        let wanted = bulk.len - bulk.data.len();
        let take = wanted.min(self.buf.len() - self.pos);
        bulk.data
            .extend_from_slice(&self.buf[self.pos..self.pos + take]);
        self.pos += take;
        if bulk.data.len() < bulk.len || self.buf.len() - self.pos < 2 {
            return Ok(false);
        }
        if &self.buf[self.pos..self.pos + 2] != b"\r\n" {
            return Err(ProtocolError(format!(
                "a bulk string of {} bytes is not followed by \\r\\n",
                bulk.len
            )));
        }
        self.pos += 2;
        Ok(true)
    }

    /// Reads a header line (`*N\r\n` or `$N\r\n`) and returns `N`.
    fn header(&mut self, what: &str) -> Result<Option<i64>, ProtocolError> {
        let Some((start, end)) = self.line(what)? else {
            return Ok(None);
        };
        let line = &self.buf[start..end];
        let invalid = || ProtocolError(format!("invalid {what} length"));
        let digits = line.strip_suffix(b"\r").ok_or_else(invalid)?;
        parse_integer(&digits[1..]).ok_or_else(invalid).map(Some)
    }

    /// Finds the next `\n`: the line's range (without the `\n`), consumed; `None` when the
    /// line has not ended yet.
    fn line(&mut self, what: &str) -> Result<Option<(usize, usize)>, ProtocolError> {
        let rest = &self.buf[self.pos..];
        let too_long = || {
            ProtocolError(format!(
                "too big {what} line (over the limit of {} bytes)",
                self.limits.max_line
            ))
        };
        match rest.iter().position(|&b| b == b'\n') {
            Some(len) if len > self.limits.max_line + 1 => Err(too_long()),
            Some(len) => {
                let start = self.pos;
                self.pos += len + 1;
                Ok(Some((start, start + len)))
            }
            None if rest.len() > self.limits.max_line + 1 => Err(too_long()),
            None => Ok(None),
        }
    }
}

/// A decimal integer, optionally negative, with no sign, space or leading `+`; `None` for
/// anything else or an overflow.
pub fn parse_integer(digits: &[u8]) -> Option<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if negative { -value } else { value })
}

/// A reply, in one of RESP2's five kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK\r\n`: a short status, no `\r` or `\n` in it.
    Simple(&'static str),
    /// `-ERR message\r\n`: the text after `-` (its first word is the error's kind).
    Error(String),
    /// `:42\r\n`.
    Integer(i64),
    /// `$5\r\nhello\r\n`: any bytes.
    Bulk(Vec<u8>),
    /// `$-1\r\n`: the null bulk string, "no such key".
    Null,
    /// `*2\r\n` and then each element.
    Array(Vec<Reply>),
}

impl Reply {
    /// `-ERR message`: a `\r` or `\n` in `message` becomes a space, since the line ends at
    /// the first `\r\n`.
    pub fn err(message: impl std::fmt::Display) -> Reply {
        let text = format!("ERR {message}").replace(['\r', '\n'], " ");
        Reply::Error(text)
    }

    /// A bulk string of text.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::Bulk(text.into().into_bytes())
    }

    /// Appends the reply's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(text) => line(out, b'+', text.as_bytes()),
            Reply::Error(text) => line(out, b'-', text.as_bytes()),
            Reply::Integer(n) => line(out, b':', n.to_string().as_bytes()),
            Reply::Bulk(bytes) => {
                line(out, b'$', bytes.len().to_string().as_bytes());
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Null => out.extend_from_slice(b"$-1\r\n"),
            Reply::Array(items) => {
                line(out, b'*', items.len().to_string().as_bytes());
                for item in items {
                    item.encode(out);
                }
            }
        }
    }
}

/// `kind`, `text`, `\r\n`.
fn line(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
    out.push(kind);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ParseLimits {
        ParseLimits {
            max_bulk: 100,
            max_array: 8,
            max_line: 32,
            max_request: 150,
        }
    }

    fn args(words: &[&str]) -> Request {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    /// Feeds `input` whole and collects every request, then the error if any.
    fn parse_all(input: &[u8]) -> (Vec<Request>, Option<ProtocolError>) {
        let mut parser = Parser::new(limits());
        parser.feed(input);
        let mut out = Vec::new();
        loop {
            match parser.next() {
                Ok(Some(request)) => out.push(request),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    const PIPELINE: &[u8] = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhe\r\nl\r\n\
          PING\r\n*0\r\n\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n  echo \"a b\\n\" 'c'\n";

    fn pipeline_requests() -> Vec<Request> {
        vec![
            args(&["SET", "k", "he\r\nl"]),
            args(&["PING"]),
            args(&["GET", ""]),
            args(&["echo", "a b\n", "c"]),
        ]
    }

    #[test]
    fn arrays_inline_and_skipped_requests() {
        assert_eq!(parse_all(PIPELINE), (pipeline_requests(), None));
    }

    #[test]
    fn every_split_of_the_stream_gives_the_same_requests() {
        for cut in 0..=PIPELINE.len() {
            for second in cut..=PIPELINE.len() {
                let mut parser = Parser::new(limits());
                let mut out = Vec::new();
                for piece in [
                    &PIPELINE[..cut],
                    &PIPELINE[cut..second],
                    &PIPELINE[second..],
                ] {
                    parser.feed(piece);
                    while let Some(request) = parser.next().expect("valid") {
                        out.push(request);
                    }
                }
                assert_eq!(out, pipeline_requests(), "cut at {cut} and {second}");
                assert!(parser.is_idle());
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let mut parser = Parser::new(limits());
        let mut out = Vec::new();
        for &b in PIPELINE {
            parser.feed(&[b]);
            while let Some(request) = parser.next().expect("valid") {
                out.push(request);
            }
        }
        assert_eq!(out, pipeline_requests());
    }

    #[test]
    fn a_half_read_request_is_not_idle() {
        let mut parser = Parser::new(limits());
        parser.feed(b"*2\r\n$3\r\nGET\r\n$3\r\nab");
        assert_eq!(parser.next(), Ok(None));
        assert!(!parser.is_idle());
        parser.feed(b"c\r\n");
        assert_eq!(parser.next(), Ok(Some(args(&["GET", "abc"]))));
        assert!(parser.is_idle());
    }

    fn error_of(input: &[u8]) -> String {
        let (_, error) = parse_all(input);
        error.expect("an error").to_string()
    }

    #[test]
    fn malformed_input_is_an_error_after_the_good_requests() {
        let (good, error) = parse_all(b"PING\r\n*1\r\n+PING\r\n");
        assert_eq!(good, vec![args(&["PING"])]);
        assert_eq!(error.expect("error").0, "expected '$', got '+'");
        for (input, expected) in [
            (&b"*x\r\n"[..], "invalid multibulk length"),
            (b"*1\n", "invalid multibulk length"),
            (b"*1\r\n$\r\n", "invalid bulk length"),
            (b"*1\r\n$-1\r\n", "invalid bulk length -1"),
            (b"*1\r\n$+3\r\n", "invalid bulk length"),
            (b"*1\r\n$99999999999999999999\r\n", "invalid bulk length"),
            (b"*1\r\n$2\r\nabcd", "not followed by \\r\\n"),
            (b"GET \"abc\n", "unbalanced quotes"),
        ] {
            let error = error_of(input);
            assert!(error.contains(expected), "{input:?}: {error}");
        }
    }

    #[test]
    fn lengths_over_the_limits_are_refused_before_their_bytes_arrive() {
        let error = |input: &[u8]| parse_all(input).1.map(|e| e.0);
        let array = error(b"*9\r\n");
        assert_eq!(
            array.as_deref(),
            Some("array of 9 elements is over the limit of 8 elements")
        );
        let bulk = error(b"*1\r\n$101\r\n").expect("over max_bulk");
        assert!(
            bulk.contains("bulk string of 101 bytes is over the limit of 100"),
            "{bulk}"
        );
        // Within every limit, a request waits for its bytes.
        assert_eq!(error(b"*8\r\n$100\r\n"), None);
        let mut request = b"*2\r\n$100\r\n".to_vec();
        request.extend_from_slice(&[b'v'; 100]);
        request.extend_from_slice(b"\r\n$50\r\n");
        assert_eq!(error(&request), None);
        request.truncate(request.len() - 5);
        request.extend_from_slice(b"$51\r\n");
        let total = error(&request).expect("over max_request");
        assert!(
            total.contains("over 151 bytes is over the limit of 150"),
            "{total}"
        );
    }

    #[test]
    fn a_line_over_the_limit_is_refused_with_or_without_its_end() {
        let long = [b'a'; 40];
        let mut unended = long.to_vec();
        assert!(error_of(&unended).contains("too big inline request line"));
        unended.push(b'\n');
        assert!(error_of(&unended).contains("over the limit of 32 bytes"));
        let mut header = b"*1".to_vec();
        header.extend_from_slice(&[b'0'; 40]);
        assert!(error_of(&header).contains("too big multibulk line"));
        // 32 bytes and its `\r\n` is within the limit.
        let mut fits = [b'a'; 32].to_vec();
        fits.extend_from_slice(b"\r\n");
        assert_eq!(parse_all(&fits), (vec![vec![vec![b'a'; 32]]], None));
    }

    #[test]
    fn a_bulk_buffer_grows_with_what_arrived() {
        let mut parser = Parser::new(limits());
        parser.feed(b"*1\r\n$100\r\nab");
        assert_eq!(parser.next(), Ok(None));
        let reserved = parser
            .partial
            .as_ref()
            .and_then(|p| p.bulk.as_ref())
            .map(|b| b.data.capacity());
        assert!(reserved.is_some_and(|c| c < 100), "{reserved:?}");
    }

    #[test]
    fn integers() {
        assert_eq!(parse_integer(b"0"), Some(0));
        assert_eq!(parse_integer(b"-12"), Some(-12));
        assert_eq!(parse_integer(b"9223372036854775807"), Some(i64::MAX));
        for bad in [&b""[..], b"-", b"1a", b" 1", b"9223372036854775808", b"+1"] {
            assert_eq!(parse_integer(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn replies_encode_to_their_bytes() {
        let reply = Reply::Array(vec![
            Reply::Simple("OK"),
            Reply::err("bad\r\nline"),
            Reply::Integer(-3),
            Reply::Bulk(b"a\r\nb".to_vec()),
            Reply::Null,
            Reply::Array(vec![]),
            Reply::text(""),
        ]);
        let mut out = Vec::new();
        reply.encode(&mut out);
        assert_eq!(
            out,
            b"*7\r\n+OK\r\n-ERR bad  line\r\n:-3\r\n$4\r\na\r\nb\r\n$-1\r\n*0\r\n$0\r\n\r\n"
        );
    }
}
