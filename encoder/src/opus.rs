//! Opus encoding: 48 kHz mono, 20 ms frames, VOIP application, constant bitrate.
//!
//! The encoder runs in hard CBR (`OPUS_SET_VBR(0)`): every 20 ms packet at
//! 32 kb/s is exactly 80 bytes, pauses included. A load test wants that: the
//! bandwidth a synthetic client sends is known in advance, the measured
//! bitrate of the track equals its target, and the packet sizes match what
//! the project's earlier measurements of real clients found (about 80
//! bytes). DTX is off, so a packet goes out every 20 ms even in pauses, as
//! browsers do; in-band FEC is off because it would eat into the fixed bit
//! budget.
//!
//! [`OpusFrameEncoder`] is also the "live" encoder a benchmark uses to compare
//! encoding on the fly with replaying a pack.

use crate::plan::{AUDIO_CLOCK, AUDIO_FRAME_TICKS};
use crate::Error;

/// Samples in one 20 ms frame at 48 kHz.
pub const FRAME_SAMPLES: usize = AUDIO_FRAME_TICKS as usize;
/// Default bitrate, bit/s.
pub const DEFAULT_BITRATE: u32 = 32_000;
/// Lowest and highest bitrate libopus accepts for mono, bit/s.
pub const BITRATE_RANGE: std::ops::RangeInclusive<u32> = 6_000..=510_000;
/// Largest packet we make room for: RFC 6716 recommends 1275 bytes per
/// 20 ms frame, and a 60 ms packet holds three.
const MAX_PACKET: usize = 4000;

/// Frame lengths libopus encodes in one packet that are whole milliseconds:
/// 10, 20, 40 and 60 ms, in 48 kHz samples.
pub const FRAME_LENGTHS: [usize; 4] = [480, 960, 1920, 2880];

/// Encodes frames of 48 kHz mono PCM (20 ms unless told) into Opus packets.
pub struct OpusFrameEncoder {
    encoder: opus::Encoder,
    packet: Vec<u8>,
    bitrate: u32,
    frame: usize,
}

impl OpusFrameEncoder {
    /// A CBR VOIP encoder of 20 ms frames at `bitrate` bit/s.
    pub fn new(bitrate: u32) -> Result<OpusFrameEncoder, Error> {
        OpusFrameEncoder::with_frame(bitrate, FRAME_SAMPLES)
    }

    /// A CBR VOIP encoder of frames of `frame` samples (one of
    /// [`FRAME_LENGTHS`]) at `bitrate` bit/s.
    pub fn with_frame(bitrate: u32, frame: usize) -> Result<OpusFrameEncoder, Error> {
        if !FRAME_LENGTHS.contains(&frame) {
            return Err(Error::invalid(
                "Opus frame",
                format!(
                    "{} ms (this encoder makes 10, 20, 40 or 60 ms frames)",
                    frame as f64 / 48.0
                ),
            ));
        }
        if !BITRATE_RANGE.contains(&bitrate) {
            return Err(Error::invalid(
                "audio bitrate",
                format!(
                    "{} kb/s (must be {}..={})",
                    bitrate as f64 / 1000.0,
                    BITRATE_RANGE.start() / 1000,
                    BITRATE_RANGE.end() / 1000
                ),
            ));
        }
        let mut encoder =
            opus::Encoder::new(AUDIO_CLOCK, opus::Channels::Mono, opus::Application::Voip)?;
        encoder.set_bitrate(opus::Bitrate::Bits(bitrate as i32))?;
        encoder.set_vbr(false)?;
        encoder.set_signal(opus::Signal::Voice)?;
        encoder.set_inband_fec(false)?;
        encoder.set_dtx(false)?;
        Ok(OpusFrameEncoder {
            encoder,
            packet: vec![0; MAX_PACKET],
            bitrate,
            frame,
        })
    }

    /// The bitrate this encoder was built for, bit/s.
    pub fn bitrate(&self) -> u32 {
        self.bitrate
    }

    /// Encodes one frame of exactly the encoder's frame length (20 ms:
    /// [`FRAME_SAMPLES`], unless made [`OpusFrameEncoder::with_frame`]); the
    /// packet is valid until the next call.
    pub fn encode(&mut self, pcm: &[f32]) -> Result<&[u8], Error> {
        if pcm.len() != self.frame {
            return Err(Error::invalid(
                "audio frame",
                format!(
                    "{} samples (Opus frames here are {})",
                    pcm.len(),
                    self.frame
                ),
            ));
        }
        let n = self.encoder.encode_float(pcm, &mut self.packet)?;
        Ok(&self.packet[..n])
    }

    /// The encoder's algorithmic delay in 48 kHz samples: the Ogg Opus pre-skip.
    pub fn lookahead(&mut self) -> Result<u32, Error> {
        Ok(self.encoder.get_lookahead()? as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbr_packets_have_the_bitrate_size_and_decode_to_960_samples() {
        let mut enc = OpusFrameEncoder::new(32_000).unwrap();
        let mut dec = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
        let mut out = vec![0f32; 5760];
        for k in 0..20 {
            // Alternate silence and noise-like content: CBR keeps the size anyway.
            let pcm: Vec<f32> = (0..FRAME_SAMPLES)
                .map(|i| {
                    if k % 2 == 0 {
                        0.0
                    } else {
                        ((i * 7919) % 200) as f32 / 400.0 - 0.25
                    }
                })
                .collect();
            let packet = enc.encode(&pcm).unwrap().to_vec();
            assert_eq!(packet.len(), 80, "frame {k}");
            assert_eq!(dec.decode_float(&packet, &mut out, false).unwrap(), 960);
        }
        assert_eq!(enc.lookahead().unwrap(), 312);
    }

    #[test]
    fn rejects_wrong_frame_sizes_and_bitrates() {
        assert!(OpusFrameEncoder::new(1_000).is_err());
        let mut enc = OpusFrameEncoder::new(DEFAULT_BITRATE).unwrap();
        assert!(enc.encode(&[0.0; 480]).is_err());
    }
}
