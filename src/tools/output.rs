//! Output plumbing shared by the tools: bounding what is fed back to the model (head and
//! tail kept), decoding UTF-8 across chunk boundaries, and streaming chunks to clients
//! without ever blocking on a slow consumer.

use std::collections::VecDeque;

use tokio::sync::mpsc::{self, error::TrySendError};

use super::{OutputStream, ToolOutput};

/// Keeps the first and the last `max` bytes of a byte stream of any length, so the
/// stream can be rendered bounded to `max` bytes with a `[… N bytes omitted …]` marker.
#[derive(Debug)]
pub(crate) struct HeadTail {
    max: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: usize,
}

impl HeadTail {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len();
        let room = self.max - self.head.len();
        self.head.extend_from_slice(&bytes[..room.min(bytes.len())]);
        if bytes.len() >= self.max {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.max..]);
        } else {
            self.tail.extend(bytes);
            let excess = self.tail.len().saturating_sub(self.max);
            self.tail.drain(..excess);
        }
    }

    /// The whole stream if it fits in `max` bytes; otherwise its head and tail around an
    /// omission marker, `max` bytes at most in all (unless `max` is smaller than the
    /// marker), cut on UTF-8 character boundaries.
    pub(crate) fn render(&self) -> String {
        if self.total <= self.max {
            return String::from_utf8_lossy(&self.head).into_owned();
        }
        // The marker for `total` omitted bytes is at least as long as the real one.
        let budget = self.max.saturating_sub(marker(self.total).len());
        let mut head_end = budget / 2;
        while head_end > 0 && is_continuation(self.head[head_end]) {
            head_end -= 1;
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        let mut tail_start = tail.len() - (budget - head_end).min(tail.len());
        while tail_start < tail.len() && is_continuation(tail[tail_start]) {
            tail_start += 1;
        }
        let omitted = self.total - head_end - (tail.len() - tail_start);
        format!(
            "{}{}{}",
            String::from_utf8_lossy(&self.head[..head_end]),
            marker(omitted),
            String::from_utf8_lossy(&tail[tail_start..])
        )
    }
}

fn marker(omitted: usize) -> String {
    format!("\n[… {omitted} bytes omitted …]\n")
}

fn is_continuation(byte: u8) -> bool {
    byte & 0b1100_0000 == 0b1000_0000
}

/// `text` bounded to `max` bytes, head and tail kept (see [`HeadTail::render`]).
pub(crate) fn bound(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut kept = HeadTail::new(max);
    kept.push(text.as_bytes());
    kept.render()
}

/// Decodes a byte stream as UTF-8 chunk by chunk, holding back a character split across
/// chunks; invalid bytes become U+FFFD.
#[derive(Debug, Default)]
pub(crate) struct Utf8Decoder {
    carry: Vec<u8>,
}

impl Utf8Decoder {
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> String {
        self.carry.extend_from_slice(bytes);
        let mut out = String::new();
        let mut rest: &[u8] = &self.carry;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    out.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(err) => {
                    let (valid, after) = rest.split_at(err.valid_up_to());
                    out.push_str(&String::from_utf8_lossy(valid));
                    match err.error_len() {
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        let carry = rest.to_vec();
        self.carry = carry;
        out
    }

    /// Whatever is held back at the end of the stream (an incomplete character).
    pub(crate) fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.carry).into_owned();
        self.carry.clear();
        rest
    }
}

/// At most this much output waits for a slow consumer; beyond it output is dropped from
/// the stream (a marker says how much) while the final outcome still has it, bounded.
const PENDING_CAP: usize = 64 * 1024;

/// Streams output through `try_send`, coalescing chunks while the channel is full so the
/// producer never waits for the consumer.
#[derive(Debug)]
pub(crate) struct StreamSink {
    sender: mpsc::Sender<ToolOutput>,
    pending: VecDeque<ToolOutput>,
    pending_bytes: usize,
    dropped: usize,
    closed: bool,
}

impl StreamSink {
    pub(crate) fn new(sender: mpsc::Sender<ToolOutput>) -> Self {
        Self {
            sender,
            pending: VecDeque::new(),
            pending_bytes: 0,
            dropped: 0,
            closed: false,
        }
    }

    pub(crate) fn push(&mut self, stream: OutputStream, text: String) {
        if self.closed || text.is_empty() {
            return;
        }
        self.flush();
        if self.dropped > 0 {
            let note = format!("[… {} bytes of output not streamed …]\n", self.dropped);
            if self.pending_bytes + note.len() + text.len() > PENDING_CAP {
                self.dropped += text.len();
                return;
            }
            self.dropped = 0;
            self.enqueue(stream, note);
        }
        if self.pending_bytes + text.len() > PENDING_CAP {
            self.dropped += text.len();
            return;
        }
        self.enqueue(stream, text);
        self.flush();
    }

    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Sends what the channel takes now.
    pub(crate) fn flush(&mut self) {
        while let Some(item) = self.pending.pop_front() {
            let len = item.text.len();
            match self.sender.try_send(item) {
                Ok(()) => self.pending_bytes -= len,
                Err(TrySendError::Full(item)) => {
                    self.pending.push_front(item);
                    break;
                }
                Err(TrySendError::Closed(_)) => {
                    self.closed = true;
                    self.pending.clear();
                    self.pending_bytes = 0;
                    break;
                }
            }
        }
    }

    /// Last flush; what the channel does not take now is dropped from the stream.
    pub(crate) fn finish(mut self) {
        self.flush();
        if self.pending_bytes + self.dropped > 0 {
            tracing::debug!(
                not_streamed = self.pending_bytes + self.dropped,
                "tool output channel full; the rest of the output is only in the result"
            );
        }
    }

    fn enqueue(&mut self, stream: OutputStream, text: String) {
        self.pending_bytes += text.len();
        if let Some(last) = self.pending.back_mut()
            && last.stream == stream
        {
            last.text.push_str(&text);
        } else {
            self.pending.push_back(ToolOutput { stream, text });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_keeps_short_text() {
        assert_eq!(bound("hello", 5), "hello");
        assert_eq!(bound("", 0), "");
    }

    #[test]
    fn bound_keeps_head_and_tail() {
        let text: String = (0..1000).map(|i| format!("{i:04}\n")).collect();
        let out = bound(&text, 200);
        assert!(out.len() <= 200, "{} bytes", out.len());
        assert!(out.starts_with("0000\n0001\n"), "{out}");
        assert!(out.ends_with("0998\n0999\n"), "{out}");
        let (head, rest) = out.split_once("\n[… ").expect("marker");
        let (omitted, tail) = rest.split_once(" bytes omitted …]\n").expect("marker");
        let omitted: usize = omitted.parse().expect("number");
        assert!(text.starts_with(head) && text.ends_with(tail));
        assert_eq!(head.len() + omitted + tail.len(), text.len());
        assert!(out.len() >= 190, "uses the budget: {}", out.len());
    }

    #[test]
    fn bound_cuts_on_char_boundaries() {
        let text = "é".repeat(500);
        for max in 40..80 {
            let out = bound(&text, max);
            assert!(out.len() <= max, "{max}: {}", out.len());
            assert!(!out.contains(char::REPLACEMENT_CHARACTER), "{out}");
            let shown = out.matches('é').count() * 2;
            assert!(out.contains(&format!("[… {} bytes omitted …]", 1000 - shown)));
        }
    }

    #[test]
    fn head_tail_streams_in_pieces() {
        let mut kept = HeadTail::new(20);
        for i in 0..100u8 {
            kept.push(&[b'a' + i % 26]);
        }
        let whole: String = (0..100u8).map(|i| char::from(b'a' + i % 26)).collect();
        assert_eq!(kept.render(), bound(&whole, 20));
        let mut small = HeadTail::new(20);
        small.push(b"0123456789");
        small.push(b"0123456789");
        assert_eq!(small.render(), "01234567890123456789");
    }

    #[test]
    fn decoder_joins_split_characters() {
        let bytes = "aé€😀z".as_bytes();
        for split in 0..bytes.len() {
            let mut decoder = Utf8Decoder::default();
            let mut out = decoder.decode(&bytes[..split]);
            out.push_str(&decoder.decode(&bytes[split..]));
            out.push_str(&decoder.finish());
            assert_eq!(out, "aé€😀z", "split at {split}");
        }
        let mut decoder = Utf8Decoder::default();
        assert_eq!(decoder.decode(b"a\xffb\xe2\x82"), "a\u{fffd}b");
        assert_eq!(decoder.finish(), "\u{fffd}");
    }

    #[tokio::test]
    async fn sink_coalesces_and_drops_without_blocking() {
        let (sender, mut receiver) = mpsc::channel(1);
        let mut sink = StreamSink::new(sender);
        sink.push(OutputStream::Stdout, "a".into());
        sink.push(OutputStream::Stdout, "b".into());
        sink.push(OutputStream::Stdout, "c".into());
        sink.push(OutputStream::Stderr, "e".into());
        let big = "x".repeat(PENDING_CAP);
        sink.push(OutputStream::Stdout, big.clone());
        assert_eq!(receiver.recv().await.map(|o| o.text), Some("a".to_string()));
        sink.push(OutputStream::Stdout, "d".into());
        assert_eq!(
            receiver.recv().await.map(|o| o.text),
            Some("bc".to_string())
        );
        sink.flush();
        let next = receiver.recv().await.expect("stderr chunk");
        assert_eq!(
            (next.stream, next.text.as_str()),
            (OutputStream::Stderr, "e")
        );
        sink.flush();
        let next = receiver.recv().await.expect("marker");
        assert_eq!(
            next.text,
            format!("[… {} bytes of output not streamed …]\nd", PENDING_CAP)
        );
        sink.finish();
        assert!(receiver.recv().await.is_none());
    }
}
