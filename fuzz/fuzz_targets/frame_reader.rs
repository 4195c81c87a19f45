//! The framed wire's reader on any bytes, fed in chunks of any size: it
//! never panics, hands out exactly the frames a whole-buffer decode finds,
//! in order, never holds a whole frame it has not handed out, and ends the
//! stream with the error that the bytes after the last frame call for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synth_common::framing::{frame, FrameError, FrameReader, HEADER_LEN, MAX_FRAME};

/// The length a frame prefix at the start of `rest` gives, if whole.
fn prefix(rest: &[u8]) -> Option<usize> {
    let p: [u8; 4] = rest.get(..HEADER_LEN)?.try_into().ok()?;
    Some(u32::from_be_bytes(p) as usize)
}

fuzz_target!(|data: &[u8]| {
    // The first byte sets the chunk size (1 to 256); the rest is the stream.
    let Some((&k, stream)) = data.split_first() else {
        return;
    };
    let chunk = k as usize + 1;
    let mut r = FrameReader::new();
    let mut frames = Vec::new();
    let (mut pushed, mut taken) = (0usize, 0usize);
    let mut failed = None;
    'feed: for c in stream.chunks(chunk) {
        r.push(c);
        pushed += c.len();
        loop {
            match r.next() {
                Ok(Some(f)) => {
                    assert!(!f.is_empty() && f.len() <= MAX_FRAME);
                    taken += HEADER_LEN + f.len();
                    frames.push(f);
                }
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    break 'feed;
                }
            }
        }
        // Drained: what it holds is the start of one frame, never a whole one.
        assert_eq!(r.buffered(), pushed - taken);
        if let Some(len) = prefix(&stream[taken..pushed]) {
            assert!(pushed - taken < HEADER_LEN + len);
        }
    }
    // The frames, framed again, are the stream's first bytes.
    let mut again = Vec::new();
    for f in &frames {
        frame(f, &mut again);
    }
    assert_eq!(&stream[..again.len()], &again[..]);
    let rest = &stream[again.len()..];
    let end = match failed {
        Some(e) => Err(e),
        None => r.finish(),
    };
    match end {
        Ok(()) => assert!(rest.is_empty()),
        Err(FrameError::TruncatedHeader) => assert!(!rest.is_empty() && rest.len() < HEADER_LEN),
        Err(FrameError::TruncatedPayload { expected }) => {
            assert_eq!(prefix(rest), Some(expected));
            assert!(rest.len() < HEADER_LEN + expected);
        }
        Err(FrameError::Malformed { len }) => {
            assert_eq!(prefix(rest).map(|l| l as u64), Some(len));
            assert!(len == 0 || len > MAX_FRAME as u64);
        }
        Err(e) => panic!("an error the reader does not make: {e:?}"),
    }
});
