//! What a writer sends from one take of its outbox: the frames in order, a
//! long text in fragments.
//!
//! tungstenite copies each frame it is given into its write buffer, which
//! never shrinks: one large frame (a v2 `history` of 50 long messages, a
//! `userList` of thousands of names) would pin that much memory on the
//! connection for good. So a text longer than [`FRAGMENT_BYTES`] goes out as
//! a fragmented message (RFC 6455, 5.4): a Text frame and Continuation
//! frames, each sharing the text's bytes, which every WebSocket client
//! reassembles into the same message.

use std::collections::VecDeque;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::frame::Frame;
use async_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use super::outbox::Outgoing;

/// The largest frame sent for a text; a longer text is fragmented. Most chat
/// frames are smaller, and go out as one frame, as before.
pub(crate) const FRAGMENT_BYTES: usize = 512;

/// Frames taken from the outbox, being written.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    frames: VecDeque<Outgoing>,
    /// How much of the first frame's text has gone out in fragments.
    sent_of_first: usize,
}

impl From<VecDeque<Outgoing>> for Batch {
    fn from(frames: VecDeque<Outgoing>) -> Self {
        Batch {
            frames,
            sent_of_first: 0,
        }
    }
}

impl Batch {
    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The next WebSocket message to feed, with the bytes of the outbox it
    /// completes: a frame's whole length once its last fragment is taken,
    /// 0 for the fragments before.
    pub(crate) fn next_message(&mut self) -> Option<(Message, usize)> {
        let text = match self.frames.front()? {
            Outgoing::Text(text) if text.len() > FRAGMENT_BYTES => text,
            _ => {
                let frame = self.frames.pop_front()?;
                let len = frame.len();
                return Some((frame.into_message(), len));
            }
        };
        let len = text.len();
        let start = self.sent_of_first;
        let end = len.min(start + FRAGMENT_BYTES);
        let opcode = if start == 0 {
            Data::Text
        } else {
            Data::Continue
        };
        let is_final = end == len;
        // A fragment may end inside a UTF-8 sequence: only the whole message
        // has to be valid UTF-8 (RFC 6455, 5.6).
        let bytes = async_tungstenite::tungstenite::Bytes::from(text.clone());
        let fragment = Frame::message(bytes.slice(start..end), OpCode::Data(opcode), is_final);
        if is_final {
            self.frames.pop_front();
            self.sent_of_first = 0;
            Some((Message::Frame(fragment), len))
        } else {
            self.sent_of_first = end;
            Some((Message::Frame(fragment), 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use async_tungstenite::tungstenite::{Bytes, Utf8Bytes};

    use super::*;

    fn text(s: &str) -> Outgoing {
        Outgoing::Text(Utf8Bytes::from(s.to_owned()))
    }

    /// Every message of the batch: (opcode, final, payload, bytes done).
    fn drain(batch: &mut Batch) -> Vec<(String, bool, Vec<u8>, usize)> {
        std::iter::from_fn(|| batch.next_message())
            .map(|(message, done)| match message {
                Message::Text(t) => ("text".into(), true, t.as_bytes().to_vec(), done),
                Message::Ping(p) => ("ping".into(), true, p.to_vec(), done),
                Message::Frame(f) => {
                    let kind = match f.header().opcode {
                        OpCode::Data(Data::Text) => "text fragment",
                        OpCode::Data(Data::Continue) => "continuation",
                        other => panic!("unexpected opcode {other:?}"),
                    };
                    (kind.into(), f.header().is_final, f.payload().to_vec(), done)
                }
                other => panic!("unexpected message {other:?}"),
            })
            .collect()
    }

    #[test]
    fn short_texts_and_pings_go_out_whole() {
        let short = "x".repeat(FRAGMENT_BYTES);
        let mut batch = Batch::from(VecDeque::from([
            text("hi"),
            Outgoing::Ping(Bytes::from_static(b"p")),
            text(&short),
        ]));
        let sent = drain(&mut batch);
        assert_eq!(
            sent,
            [
                ("text".into(), true, b"hi".to_vec(), 2),
                ("ping".into(), true, b"p".to_vec(), 1),
                (
                    "text".into(),
                    true,
                    short.clone().into_bytes(),
                    FRAGMENT_BYTES
                ),
            ]
        );
        assert!(batch.is_empty());
    }

    #[test]
    fn a_long_text_goes_out_in_fragments_that_make_it_up_and_count_once() {
        // Multi-byte characters, so that fragments split them.
        let long: String = "é€".repeat(FRAGMENT_BYTES);
        let mut batch = Batch::from(VecDeque::from([text(&long), text("after")]));
        let sent = drain(&mut batch);
        let (fragments, rest) = sent.split_at(sent.len() - 1);
        assert_eq!(rest, [("text".into(), true, b"after".to_vec(), 5)]);
        assert_eq!(fragments.len(), long.len().div_ceil(FRAGMENT_BYTES));
        assert!(fragments.iter().all(|f| f.2.len() <= FRAGMENT_BYTES));
        let kinds: Vec<_> = fragments.iter().map(|f| (f.0.as_str(), f.1)).collect();
        let mut expected = vec![("text fragment", false)];
        expected.resize(fragments.len() - 1, ("continuation", false));
        expected.push(("continuation", true));
        assert_eq!(kinds, expected);
        let whole: Vec<u8> = fragments.iter().flat_map(|f| f.2.clone()).collect();
        assert_eq!(whole, long.as_bytes());
        let counted: Vec<usize> = fragments.iter().map(|f| f.3).collect();
        let mut expected = vec![0; fragments.len() - 1];
        expected.push(long.len());
        assert_eq!(counted, expected, "the outbox is told once, at the end");
    }
}
