//! One keep-alive HTTP/1.1 client connection on a raw socket, for switchboard's HTTP transports:
//! requests one after the other, answers framed by `Content-Length`, chunked, or the end of the
//! connection, and a body read piece by piece as it streams (SSE).
//!
//! The caller's task reads and writes the socket itself, with no connection task or channel in
//! between, so the HTTP transports are timed with as little client overhead as the WebSocket one
//! (a hyper client connection costs two task hops per request and one per streamed chunk).

use std::net::{Ipv4Addr, SocketAddr};

use bytes::{Buf, BytesMut};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::net::{Context, Result, tcp_connect};

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Most response headers accepted.
const MAX_HEADERS: usize = 32;
/// Largest chunk-size line accepted (hex digits, extensions, CRLF).
const MAX_CHUNK_LINE: usize = 256;

/// See the module documentation.
pub struct HttpConn {
    stream: TcpStream,
    host: String,
    /// Bytes read and not yet consumed.
    buffer: BytesMut,
    /// The request being written, kept for its capacity.
    request: Vec<u8>,
}

/// How the end of a response body is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes are left.
    Length(usize),
    /// Chunked; this many bytes of the current chunk are left (0: a chunk-size line is next).
    Chunked(usize),
    /// Until the server closes the connection.
    Close,
    /// The body has been read.
    Done,
}

/// The body of an answer, read as it arrives.
pub struct Body<'a> {
    conn: &'a mut HttpConn,
    framing: Framing,
}

impl HttpConn {
    /// Connects from `src` to `dst`.
    pub async fn open(src: Ipv4Addr, dst: SocketAddr) -> Result<HttpConn> {
        let stream = tcp_connect(src, dst).await?;
        Ok(HttpConn {
            stream,
            host: dst.to_string(),
            buffer: BytesMut::with_capacity(4096),
            request: Vec::with_capacity(512),
        })
    }

    /// Sends one request and reads the answer's head; its body is read from the returned [`Body`].
    pub async fn start(
        &mut self,
        method: &str,
        path: &str,
        bearer: &str,
        body: Option<&str>,
    ) -> Result<(u16, Body<'_>)> {
        self.write_request(method, path, bearer, body).await?;
        let (status, framing) = self.read_head().await?;
        Ok((
            status,
            Body {
                conn: self,
                framing,
            },
        ))
    }

    /// Sends one request and reads the whole answer.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        bearer: &str,
        body: Option<&str>,
    ) -> Result<(u16, Vec<u8>)> {
        let (status, mut answer) = self.start(method, path, bearer, body).await?;
        let mut all = Vec::new();
        while let Some(piece) = answer.next().await? {
            all.extend_from_slice(&piece);
        }
        Ok((status, all))
    }

    async fn write_request(
        &mut self,
        method: &str,
        path: &str,
        bearer: &str,
        body: Option<&str>,
    ) -> Result<()> {
        use std::io::Write as _;
        let r = &mut self.request;
        r.clear();
        let head = match body {
            Some(body) => write!(
                r,
                "{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {bearer}\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                self.host,
                body.len()
            ),
            None => write!(
                r,
                "{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {bearer}\r\n\r\n",
                self.host
            ),
        };
        head.ctx("request head")?;
        r.extend_from_slice(body.unwrap_or_default().as_bytes());
        self.stream.write_all(r).await.ctx("http request")
    }

    /// Reads more bytes into the buffer; false at the end of the connection.
    async fn fill(&mut self) -> Result<bool> {
        self.buffer.reserve(4096);
        let n = self
            .stream
            .read_buf(&mut self.buffer)
            .await
            .ctx("http read")?;
        Ok(n > 0)
    }

    async fn fill_or_fail(&mut self, what: &str) -> Result<()> {
        if self.fill().await? {
            Ok(())
        } else {
            Err(format!("connection closed in the {what}"))
        }
    }

    async fn read_head(&mut self) -> Result<(u16, Framing)> {
        loop {
            if let Some((used, status, framing)) = parse_head(&self.buffer)? {
                self.buffer.advance(used);
                return Ok((status, framing));
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(format!("answer head over {MAX_HEAD} bytes"));
            }
            self.fill_or_fail("answer head").await?;
        }
    }
}

/// The head at the start of `buffer`, if complete: its length, status and body framing.
fn parse_head(buffer: &[u8]) -> Result<Option<(usize, u16, Framing)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let used = match response.parse(buffer).ctx("answer head")? {
        httparse::Status::Complete(used) => used,
        httparse::Status::Partial => return Ok(None),
    };
    let status = response.code.unwrap_or_default();
    let mut framing = Framing::Close;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if header.value.eq_ignore_ascii_case(b"chunked") {
                framing = Framing::Chunked(0);
            }
        } else if header.name.eq_ignore_ascii_case("content-length") && framing == Framing::Close {
            let length = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or("bad content-length")?;
            framing = Framing::Length(length);
        }
    }
    // Answers that never have a body.
    if status == 204 || status == 304 || (100..200).contains(&status) {
        framing = Framing::Length(0);
    }
    Ok(Some((used, status, framing)))
}

/// A chunk-size line at the start of `buffer`, if complete: its length and the chunk's size.
fn parse_chunk_line(buffer: &[u8]) -> Result<Option<(usize, usize)>> {
    let Some(lf) = buffer.iter().position(|&b| b == b'\n') else {
        if buffer.len() > MAX_CHUNK_LINE {
            return Err("chunk-size line too long".into());
        }
        return Ok(None);
    };
    let line = std::str::from_utf8(&buffer[..lf]).map_err(|_| "bad chunk-size line")?;
    let digits = line.trim_end_matches('\r');
    let digits = digits.split(';').next().unwrap_or_default().trim();
    let size =
        usize::from_str_radix(digits, 16).map_err(|_| format!("bad chunk size {digits:?}"))?;
    Ok(Some((lf + 1, size)))
}

impl Body<'_> {
    /// The next piece of the body, or `None` at its end. The piece is split off the read buffer,
    /// not copied out of it.
    pub async fn next(&mut self) -> Result<Option<BytesMut>> {
        loop {
            let conn = &mut *self.conn;
            match self.framing {
                Framing::Done | Framing::Length(0) => {
                    self.framing = Framing::Done;
                    return Ok(None);
                }
                Framing::Length(left) => {
                    if conn.buffer.is_empty() {
                        conn.fill_or_fail("answer body").await?;
                    }
                    let take = left.min(conn.buffer.len());
                    self.framing = Framing::Length(left - take);
                    return Ok(Some(conn.buffer.split_to(take)));
                }
                Framing::Close => {
                    if conn.buffer.is_empty() && !conn.fill().await? {
                        self.framing = Framing::Done;
                        return Ok(None);
                    }
                    return Ok(Some(conn.buffer.split()));
                }
                Framing::Chunked(0) => match parse_chunk_line(&conn.buffer)? {
                    None => conn.fill_or_fail("chunk size").await?,
                    Some((used, 0)) => {
                        conn.buffer.advance(used);
                        self.finish_trailers().await?;
                        return Ok(None);
                    }
                    Some((used, size)) => {
                        conn.buffer.advance(used);
                        // The chunk's data is followed by its own CRLF.
                        self.framing = Framing::Chunked(size + 2);
                    }
                },
                Framing::Chunked(left) => {
                    // Whole chunks are returned: an SSE event is never split by this reader.
                    while conn.buffer.len() < left {
                        conn.fill_or_fail("chunk").await?;
                    }
                    let mut chunk = conn.buffer.split_to(left);
                    if !chunk.ends_with(b"\r\n") {
                        return Err("a chunk does not end with CRLF".into());
                    }
                    chunk.truncate(left - 2);
                    self.framing = Framing::Chunked(0);
                    if !chunk.is_empty() {
                        return Ok(Some(chunk));
                    }
                }
            }
        }
    }

    /// Reads the trailer section after the last chunk, up to its closing empty line.
    async fn finish_trailers(&mut self) -> Result<()> {
        let conn = &mut *self.conn;
        loop {
            match conn.buffer.iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    let empty = conn.buffer[..lf].iter().all(|&b| b == b'\r');
                    conn.buffer.advance(lf + 1);
                    if empty {
                        self.framing = Framing::Done;
                        return Ok(());
                    }
                }
                None => conn.fill_or_fail("chunk trailer").await?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_give_status_and_framing() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n{\"a\":1}";
        let (used, status, framing) = parse_head(head).unwrap().unwrap();
        assert_eq!((status, framing), (200, Framing::Length(12)));
        assert_eq!(&head[used..], b"{\"a\":1}");
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse_head(head).unwrap().unwrap().2, Framing::Chunked(0));
        let head = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(parse_head(head).unwrap().unwrap().2, Framing::Length(0));
        let head = b"HTTP/1.1 200 OK\r\n\r\n";
        assert_eq!(parse_head(head).unwrap().unwrap().2, Framing::Close);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-le").unwrap(), None);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
    }

    #[test]
    fn chunk_lines_give_sizes() {
        assert_eq!(parse_chunk_line(b"1a\r\nxyz").unwrap(), Some((4, 26)));
        assert_eq!(parse_chunk_line(b"0;ext=1\r\n").unwrap(), Some((9, 0)));
        assert_eq!(parse_chunk_line(b"1a").unwrap(), None);
        assert!(parse_chunk_line(b"zz\r\n").is_err());
    }

    /// A real socket pair: answers of each framing, chunks split across reads, one connection
    /// reused for every request.
    #[tokio::test]
    async fn answers_of_every_framing_are_read_over_one_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let answers: [&[&[u8]]; 3] = [
                &[b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel", b"lo"],
                &[
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
                    b"cde\r\n3\r",
                    b"\nfgh\r\n0\r\n\r\n",
                ],
                &[b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"],
            ];
            for answer in answers {
                let mut request = vec![0; 1024];
                let n = socket.read(&mut request).await.unwrap();
                seen.push(String::from_utf8_lossy(&request[..n]).into_owned());
                for piece in answer {
                    socket.write_all(piece).await.unwrap();
                    socket.flush().await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
            seen
        });
        let mut conn = HttpConn::open(Ipv4Addr::LOCALHOST, addr).await.unwrap();
        let answer = conn.call("POST", "/x", "t", Some("{}")).await.unwrap();
        assert_eq!(answer, (200, b"hello".to_vec()));
        let (status, mut body) = conn.start("GET", "/events", "t", None).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body.next().await.unwrap().as_deref(), Some(&b"abcde"[..]));
        assert_eq!(body.next().await.unwrap().as_deref(), Some(&b"fgh"[..]));
        assert_eq!(body.next().await.unwrap(), None);
        let answer = conn.call("GET", "/poll", "t", None).await.unwrap();
        assert_eq!(answer, (503, Vec::new()));
        let seen = server.await.unwrap();
        assert!(seen[0].starts_with("POST /x HTTP/1.1\r\n"));
        assert!(seen[0].contains("authorization: Bearer t\r\n"));
        assert!(seen[0].ends_with("content-length: 2\r\n\r\n{}"));
        assert!(seen[1].starts_with("GET /events HTTP/1.1\r\n"));
        assert!(!seen[1].contains("content-length"));
    }
}
