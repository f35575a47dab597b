//! The in-process gRPC call: length-prefixed framing of the request, and reading the
//! response — messages split across or packed into body chunks, then the status from the
//! trailers (or from the headers of a trailers-only response).

use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt as _;
use tonic::Code;

use super::error::code_from_http;
use super::route::percent_decode;

/// `-bin` metadata is base64, with or without padding.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// One gRPC message frame: flag 0 (uncompressed), big-endian length, the message.
pub fn encode_frame(message: &[u8]) -> Result<Bytes, String> {
    let len = u32::try_from(message.len()).map_err(|_| "message too large".to_owned())?;
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.extend_from_slice(&[0]);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    Ok(frame.freeze())
}

/// Splits a byte stream into length-prefixed gRPC messages, whatever the chunking.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete message, if buffered.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, String> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        if self.buf[0] != 0 {
            return Err(format!(
                "unsupported gRPC frame flag {} (compressed messages are not requested)",
                self.buf[0]
            ));
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        self.buf.advance(5);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Whether bytes of an incomplete frame are left.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// The final status of a call, with the headers that carried it (for `retry-after`,
/// `www-authenticate`).
#[derive(Clone, Debug)]
pub struct GrpcStatus {
    pub code: Code,
    pub message: String,
    /// Encoded `google.rpc.Status` from `grpc-status-details-bin` (maybe empty).
    pub details: Bytes,
    pub headers: HeaderMap,
}

impl GrpcStatus {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Bytes::new(),
            headers: HeaderMap::new(),
        }
    }

    /// The status in `headers`, if `grpc-status` is there. Never panics on bad input.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let raw = headers.get("grpc-status")?;
        let code = raw
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .map(Code::from_i32)
            .unwrap_or(Code::Unknown);
        let message = headers
            .get("grpc-message")
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
            .map(|m| percent_decode(&m, false).unwrap_or(m))
            .unwrap_or_default();
        let details = headers
            .get("grpc-status-details-bin")
            .and_then(|v| {
                BASE64
                    .decode(v.as_bytes())
                    .map_err(|err| tracing::warn!(%err, "bad grpc-status-details-bin"))
                    .ok()
            })
            .map(Bytes::from)
            .unwrap_or_default();
        Some(Self {
            code,
            message,
            details,
            headers: headers.clone(),
        })
    }

    fn from_tonic(status: &tonic::Status) -> Self {
        Self {
            code: status.code(),
            message: status.message().to_owned(),
            details: Bytes::copy_from_slice(status.details()),
            headers: status.metadata().clone().into_headers(),
        }
    }
}

/// What reading the call yields next.
#[derive(Debug)]
pub enum Item {
    Message(Bytes),
    /// The call ended; after this, `next` keeps returning the same status.
    End(GrpcStatus),
}

/// The response side of an in-process call.
pub struct GrpcStream {
    body: tonic::body::Body,
    decoder: FrameDecoder,
    /// The response headers (kept for `retry-after` and friends).
    headers: HeaderMap,
    http_status: http::StatusCode,
    end: Option<GrpcStatus>,
}

impl GrpcStream {
    pub fn new(response: http::Response<tonic::body::Body>) -> Self {
        let (parts, body) = response.into_parts();
        // Trailers-only: the status is in the headers and there is nothing else to read.
        let end = GrpcStatus::from_headers(&parts.headers);
        Self {
            body,
            decoder: FrameDecoder::default(),
            headers: parts.headers,
            http_status: parts.status,
            end,
        }
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The next message or the final status. Cancel-safe: all state lives in `self`
    /// between polls of the body.
    pub async fn next(&mut self) -> Item {
        loop {
            if let Some(end) = &self.end {
                return Item::End(end.clone());
            }
            match self.decoder.next_message() {
                Ok(Some(message)) => return Item::Message(message),
                Ok(None) => {}
                Err(err) => {
                    self.end = Some(GrpcStatus::new(Code::Internal, err));
                    continue;
                }
            }
            match self.body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.decoder.push(&data),
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            self.finish(Some(&trailers));
                        }
                    }
                },
                Some(Err(status)) => self.end = Some(GrpcStatus::from_tonic(&status)),
                None => self.finish(None),
            }
        }
    }

    fn finish(&mut self, trailers: Option<&HeaderMap>) {
        let status = if self.decoder.has_partial() {
            GrpcStatus::new(Code::Internal, "the gRPC response ended inside a message")
        } else if let Some(status) = trailers.and_then(GrpcStatus::from_headers) {
            status
        } else if self.http_status != http::StatusCode::OK {
            let mut status = GrpcStatus::new(
                code_from_http(self.http_status),
                format!("the gRPC service answered HTTP {}", self.http_status),
            );
            status.headers = self.headers.clone();
            status
        } else {
            GrpcStatus::new(Code::Internal, "the gRPC response ended without a status")
        };
        self.end = Some(status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Frame;

    fn response_of(
        frames: Vec<Frame<Bytes>>,
        headers: HeaderMap,
    ) -> http::Response<tonic::body::Body> {
        let stream =
            futures::stream::iter(frames.into_iter().map(Ok::<_, std::convert::Infallible>));
        let mut response = http::Response::new(tonic::body::Body::new(
            http_body_util::StreamBody::new(stream),
        ));
        *response.headers_mut() = headers;
        response
    }

    fn ok_trailers() -> HeaderMap {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().expect("header"));
        trailers
    }

    #[test]
    fn frame_roundtrip() {
        let frame = encode_frame(b"hello").expect("frame");
        assert_eq!(&frame[..], b"\x00\x00\x00\x00\x05hello");
        let mut decoder = FrameDecoder::default();
        decoder.push(&frame);
        assert_eq!(
            decoder.next_message().expect("ok").as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(decoder.next_message().expect("ok"), None);
        assert!(!decoder.has_partial());
    }

    #[test]
    fn decoder_handles_split_and_packed_chunks() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&encode_frame(b"first message").expect("frame"));
        bytes.extend_from_slice(&encode_frame(b"").expect("frame"));
        bytes.extend_from_slice(&encode_frame(b"third").expect("frame"));
        // Feed one byte at a time: every split point, including inside the header.
        let mut decoder = FrameDecoder::default();
        let mut out = Vec::new();
        for b in &bytes {
            decoder.push(std::slice::from_ref(b));
            while let Some(m) = decoder.next_message().expect("ok") {
                out.push(m);
            }
        }
        assert_eq!(
            out,
            vec![
                Bytes::from("first message"),
                Bytes::new(),
                Bytes::from("third")
            ]
        );
        // And all at once.
        let mut decoder = FrameDecoder::default();
        decoder.push(&bytes);
        let mut count = 0;
        while decoder.next_message().expect("ok").is_some() {
            count += 1;
        }
        assert_eq!(count, 3);
    }

    #[test]
    fn decoder_rejects_compressed() {
        let mut decoder = FrameDecoder::default();
        decoder.push(b"\x01\x00\x00\x00\x01x");
        assert!(decoder.next_message().is_err());
    }

    #[tokio::test]
    async fn stream_reads_messages_across_chunks_then_trailers() {
        let mut bytes = BytesMut::new();
        bytes.extend_from_slice(&encode_frame(b"aaaa").expect("frame"));
        bytes.extend_from_slice(&encode_frame(b"bbbbbb").expect("frame"));
        let bytes = bytes.freeze();
        // Chunks: half of the first frame; its rest plus the start of the second; the rest.
        let frames = vec![
            Frame::data(bytes.slice(0..4)),
            Frame::data(bytes.slice(4..12)),
            Frame::data(bytes.slice(12..)),
            Frame::trailers(ok_trailers()),
        ];
        let mut stream = GrpcStream::new(response_of(frames, HeaderMap::new()));
        assert!(matches!(stream.next().await, Item::Message(m) if m == "aaaa"));
        assert!(matches!(stream.next().await, Item::Message(m) if m == "bbbbbb"));
        assert!(matches!(stream.next().await, Item::End(s) if s.code == Code::Ok));
        assert!(matches!(stream.next().await, Item::End(s) if s.code == Code::Ok));
    }

    #[tokio::test]
    async fn trailers_only_and_error_statuses() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", "5".parse().expect("header"));
        headers.insert(
            "grpc-message",
            "session%20sessions%2Fx%20not%20found"
                .parse()
                .expect("header"),
        );
        headers.insert("grpc-status-details-bin", "CAU".parse().expect("header"));
        let mut stream = GrpcStream::new(response_of(vec![], headers));
        let Item::End(status) = stream.next().await else {
            panic!("expected the end");
        };
        assert_eq!(status.code, Code::NotFound);
        assert_eq!(status.message, "session sessions/x not found");
        assert_eq!(&status.details[..], b"\x08\x05");

        // A truncated message is an error, not silently dropped.
        let frame = encode_frame(b"abcdef").expect("frame");
        let frames = vec![
            Frame::data(frame.slice(0..7)),
            Frame::trailers(ok_trailers()),
        ];
        let mut stream = GrpcStream::new(response_of(frames, HeaderMap::new()));
        assert!(matches!(stream.next().await, Item::End(s) if s.code == Code::Internal));

        // No status at all.
        let mut stream = GrpcStream::new(response_of(vec![], HeaderMap::new()));
        assert!(matches!(stream.next().await, Item::End(s) if s.code == Code::Internal));
    }

    #[test]
    fn bad_status_headers_do_not_panic() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", "banana".parse().expect("header"));
        headers.insert(
            "grpc-status-details-bin",
            "!!!not base64".parse().expect("header"),
        );
        let status = GrpcStatus::from_headers(&headers).expect("status");
        assert_eq!(status.code, Code::Unknown);
        assert!(status.details.is_empty());
    }
}
