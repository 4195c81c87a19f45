//! `export`: one track of a pack as a file standard tools play.
//!
//! A VP9 track becomes IVF ([`crate::ivf`]) with the track's frame rate as time
//! base, so pts count frames (a track whose frames are not on that grid, a
//! clip copied at a variable rate, gets the 90 kHz clock as time base and its
//! ticks as pts); an Opus track becomes Ogg Opus ([`crate::ogg`])
//! with the encoder's look-ahead as pre-skip. ffprobe, ffmpeg, VLC and
//! browsers (Ogg) read both. The format follows the output's extension.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use synth_common::pack::{Codec, Reader, Track};

use crate::opus::{OpusFrameEncoder, DEFAULT_BITRATE};
use crate::{ivf, ogg, Error};

/// The container written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// IVF, for VP9.
    Ivf,
    /// Ogg Opus.
    Ogg,
}

impl Format {
    /// The format an output path asks for: `.ivf`, or `.ogg`/`.opus`.
    pub fn from_path(path: &Path) -> Result<Format, Error> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("ivf") => Ok(Format::Ivf),
            Some("ogg" | "opus") => Ok(Format::Ogg),
            _ => Err(Error::invalid(
                "output file",
                format!(
                    "{}: the name must end in .ivf (VP9 tracks) or .ogg/.opus (Opus tracks)",
                    path.display()
                ),
            )),
        }
    }

    fn codec(self) -> Codec {
        match self {
            Format::Ivf => Codec::Vp9,
            Format::Ogg => Codec::Opus,
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// The exported track.
    pub track: String,
    /// The container.
    pub format: Format,
    /// Frames (VP9) or packets (Opus) written.
    pub frames: u32,
    /// The file written.
    pub output: PathBuf,
}

/// Exports track `name` of the pack at `pack` to `output`.
pub fn export(pack: &Path, name: &str, output: &Path) -> Result<ExportSummary, Error> {
    let format = Format::from_path(output)?;
    let reader = Reader::open(pack).map_err(|source| Error::OpenPack {
        path: pack.to_path_buf(),
        source,
    })?;
    let id = reader
        .track_by_name(name)
        .ok_or_else(|| Error::NoSuchTrack {
            name: name.to_string(),
            available: reader
                .tracks()
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let track = &reader.tracks()[id];
    if track.codec != format.codec() {
        return Err(Error::invalid(
            "output file",
            format!(
                "{} holds {:?}, which does not go in {} (use {})",
                track.name,
                track.codec,
                output.display(),
                match track.codec {
                    Codec::Vp9 => ".ivf",
                    Codec::Opus => ".ogg",
                }
            ),
        ));
    }
    let write_err = |source| Error::Write {
        path: output.to_path_buf(),
        source,
    };
    let file = File::create(output).map_err(write_err)?;
    let mut out = BufWriter::new(file);
    match format {
        Format::Ivf => write_ivf(&reader, id, track, &mut out).map_err(write_err)?,
        Format::Ogg => {
            // The pack does not store the pre-skip; libopus's look-ahead depends only on
            // the sample rate and application, which every pack's encoder shares.
            let pre_skip = OpusFrameEncoder::new(DEFAULT_BITRATE)?.lookahead()? as u16;
            write_ogg(&reader, id, track, pre_skip, &mut out).map_err(write_err)?
        }
    }
    Ok(ExportSummary {
        track: track.name.clone(),
        format,
        frames: track.frame_count,
        output: output.to_path_buf(),
    })
}

fn write_ivf(
    reader: &Reader,
    id: usize,
    track: &Track,
    out: &mut BufWriter<File>,
) -> std::io::Result<()> {
    // Frame i at floor(i / fps) seconds, in ticks: how encoded tracks are timed.
    let on_grid = |i: usize, pts: u64| {
        let at = i as u128 * track.clock_rate as u128 * track.fps_den as u128
            / track.fps_num.max(1) as u128;
        at == pts as u128
    };
    let grid = reader
        .frames(id)
        .enumerate()
        .all(|(i, f)| on_grid(i, f.pts));
    let (rate, scale) = if grid {
        (track.fps_num, track.fps_den)
    } else {
        (track.clock_rate, 1)
    };
    ivf::write_header(
        out,
        *b"VP90",
        track.width,
        track.height,
        rate,
        scale,
        track.frame_count,
    )?;
    for (i, frame) in reader.frames(id).enumerate() {
        let pts = if grid { i as u64 } else { frame.pts };
        ivf::write_frame(out, pts, frame.data)?;
    }
    std::io::Write::flush(out)
}

fn write_ogg(
    reader: &Reader,
    id: usize,
    track: &Track,
    pre_skip: u16,
    out: &mut BufWriter<File>,
) -> std::io::Result<()> {
    // A fixed serial keeps exports byte-identical from run to run.
    let serial = ogg::crc32(track.name.as_bytes());
    let vendor = concat!("synth-encode ", env!("CARGO_PKG_VERSION"));
    let mut writer = ogg::OggOpusWriter::new(
        out,
        serial,
        track.channels.max(1),
        pre_skip,
        track.clock_rate,
        vendor,
    )?;
    // Packet durations in 48 kHz samples (Opus granules are always 48 kHz).
    for frame in reader.frames(id) {
        let samples = frame.duration as u64 * 48_000 / track.clock_rate.max(1) as u64;
        writer.push(frame.data, samples)?;
    }
    writer.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(
            Format::from_path(Path::new("a/b.ivf")).unwrap(),
            Format::Ivf
        );
        assert_eq!(Format::from_path(Path::new("b.OGG")).unwrap(), Format::Ogg);
        assert_eq!(Format::from_path(Path::new("b.opus")).unwrap(), Format::Ogg);
        for bad in ["b.webm", "b", "ivf"] {
            let err = Format::from_path(Path::new(bad)).unwrap_err();
            assert!(err.is_bad_input(), "{bad}");
        }
    }
}
