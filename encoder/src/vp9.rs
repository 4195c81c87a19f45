//! Safe wrappers around libvpx's VP9 encoder and decoder.
//!
//! [`Encoder`] is set up for real-time calls: profile 0 (8-bit 4:2:0), one
//! pass, no look-ahead (`g_lag_in_frames = 0`, so every input frame comes out
//! at once as exactly one packet), CBR at the target bitrate, no frame drops,
//! and key frames only on the first frame and where the caller forces one
//! (libvpx places none of its own, so renditions encoded with the same
//! forced frames have their key frames at the same positions). The rate-control buffer and limits follow what WebRTC
//! uses for VP9 (1 s buffer, 0.5 s initial, 0.6 s optimal, q 2–56 on libvpx's
//! 0–63 scale, key frames capped at 9× an average frame, 50 % overshoot),
//! with the undershoot allowance cut from 50 % to 25 %: measured on the
//! upstream camera frames that brought 2–4 s loops from 2–5 % under the target
//! to within 2 %, and it leaves synthetic patterns unchanged.
//!
//! [`Decoder`] decodes frames back, for tests that prove a pack plays.
//!
//! libvpx contexts are plain C state with no thread affinity: they may move
//! between threads but must not be used from two at once, which `&mut self`
//! ensures.

use std::ffi::{c_int, c_uint, CStr};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr;

use vpx_sys as vpx;

use crate::yuv::I420;
use crate::Error;

/// Settings of one VP9 encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Frame width in pixels (even).
    pub width: u32,
    /// Frame height in pixels (even).
    pub height: u32,
    /// Frames per second (the time base is `1/fps`, one tick per frame).
    pub fps: u32,
    /// Target bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Longest distance between key frames, in frames (`kf_max_dist`; with
    /// automatic key frames off, only forced ones come, so it is a bound the
    /// caller keeps by forcing them).
    pub keyframe_interval: u32,
    /// Encoder threads (tiles and row multi-threading use them).
    pub threads: u32,
    /// libvpx `cpu-used` speed for the real-time deadline: 5 (slower, better) to 9.
    pub speed: i32,
    /// Sets `g_error_resilient`: frames do not depend on probability context
    /// updates, so a receiver recovers from a lost frame sooner (WebRTC turns
    /// it on for VP9 SVC only; off by default).
    pub error_resilient: bool,
}

impl EncoderConfig {
    /// Defaults for a `width`×`height` stream at `fps` and `bitrate_kbps`:
    /// one thread, speed 7, a key frame every 2 s.
    pub fn new(width: u32, height: u32, fps: u32, bitrate_kbps: u32) -> EncoderConfig {
        EncoderConfig {
            width,
            height,
            fps,
            bitrate_kbps,
            keyframe_interval: fps * 2,
            threads: 1,
            speed: 7,
            error_resilient: false,
        }
    }
}

/// A VP9 encoder (libvpx `vpx_codec_vp9_cx`).
pub struct Encoder {
    // Boxed so the context libvpx initialised never moves.
    ctx: Box<vpx::vpx_codec_ctx_t>,
    config: EncoderConfig,
    next_pts: i64,
}

// SAFETY: the encoder context is heap state owned by this value alone; libvpx
// has no thread-local or thread-affine state per context, and every use goes
// through `&mut self`, so it is never touched from two threads at once.
unsafe impl Send for Encoder {}

/// One compressed frame, borrowed from libvpx until the next encoder call.
#[derive(Debug, Clone, Copy)]
pub struct EncodedFrame<'a> {
    /// The VP9 frame (possibly a superframe) as it goes on the wire.
    pub data: &'a [u8],
    /// Whether libvpx flagged it as a key frame.
    pub key: bool,
    /// Its pts in frames since the encoder started.
    pub pts: i64,
}

/// The packets one [`Encoder::encode`] call produced.
pub struct Packets<'a> {
    ctx: *mut vpx::vpx_codec_ctx_t,
    iter: vpx::vpx_codec_iter_t,
    _encoder: PhantomData<&'a mut Encoder>,
}

impl<'a> Iterator for Packets<'a> {
    type Item = EncodedFrame<'a>;

    fn next(&mut self) -> Option<EncodedFrame<'a>> {
        loop {
            // SAFETY: `ctx` is a live, initialised encoder context, borrowed
            // mutably for 'a through `_encoder`; `iter` is the iterator libvpx
            // handed out for this batch, starting at null.
            let pkt = unsafe { vpx::vpx_codec_get_cx_data(self.ctx, &mut self.iter) };
            if pkt.is_null() {
                return None;
            }
            // SAFETY: a non-null packet points into the context's output list,
            // valid until the next vpx_codec_encode call.
            let pkt = unsafe { &*pkt };
            if pkt.kind != vpx::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                continue;
            }
            // SAFETY: for a frame packet the `frame` member of the union is the active one.
            let frame = unsafe { pkt.data.frame };
            // SAFETY: libvpx guarantees `buf` holds `sz` bytes, left untouched until
            // the next vpx_codec_encode, which needs the `&mut Encoder` that this
            // iterator holds for 'a.
            let data =
                unsafe { std::slice::from_raw_parts(frame.buf as *const u8, frame.sz as usize) };
            return Some(EncodedFrame {
                data,
                key: frame.flags & vpx::VPX_FRAME_IS_KEY != 0,
                pts: frame.pts,
            });
        }
    }
}

impl Encoder {
    /// Opens a VP9 encoder with `config`.
    pub fn new(config: EncoderConfig) -> Result<Encoder, Error> {
        let EncoderConfig {
            width,
            height,
            fps,
            bitrate_kbps,
            keyframe_interval,
            threads,
            speed,
            error_resilient,
        } = config;
        if width == 0 || height == 0 || width % 2 != 0 || height % 2 != 0 {
            return Err(Error::invalid(
                "video size",
                format!("{width}x{height} (VP9 4:2:0 needs even, non-zero sizes)"),
            ));
        }
        if fps == 0 || bitrate_kbps == 0 || keyframe_interval == 0 || threads == 0 {
            return Err(Error::invalid(
                "encoder settings",
                "fps, bitrate, key-frame interval and threads must be non-zero",
            ));
        }
        // SAFETY: a plain constructor call with no arguments.
        let iface = unsafe { vpx::vpx_codec_vp9_cx() };
        let mut cfg = MaybeUninit::<vpx::vpx_codec_enc_cfg_t>::uninit();
        // SAFETY: `cfg` is valid for writes of one config; libvpx fills every field.
        let err = unsafe { vpx::vpx_codec_enc_config_default(iface, cfg.as_mut_ptr(), 0) };
        check(None, err, "vpx_codec_enc_config_default")?;
        // SAFETY: vpx_codec_enc_config_default returned OK, so it wrote the whole struct.
        let mut cfg = unsafe { cfg.assume_init() };
        cfg.g_w = width;
        cfg.g_h = height;
        cfg.g_profile = 0;
        cfg.g_bit_depth = vpx::vpx_bit_depth::VPX_BITS_8;
        cfg.g_input_bit_depth = 8;
        cfg.g_timebase = vpx::vpx_rational {
            num: 1,
            den: fps as c_int,
        };
        cfg.g_threads = threads;
        cfg.g_lag_in_frames = 0;
        cfg.g_pass = vpx::vpx_enc_pass::VPX_RC_ONE_PASS;
        cfg.g_error_resilient = if error_resilient {
            vpx::VPX_ERROR_RESILIENT_DEFAULT
        } else {
            0
        };
        cfg.rc_end_usage = vpx::vpx_rc_mode::VPX_CBR;
        cfg.rc_target_bitrate = bitrate_kbps;
        // Every input frame must come out: the pack needs one packet per frame.
        cfg.rc_dropframe_thresh = 0;
        cfg.rc_resize_allowed = 0;
        cfg.rc_min_quantizer = 2;
        cfg.rc_max_quantizer = 56;
        cfg.rc_undershoot_pct = 25;
        cfg.rc_overshoot_pct = 50;
        cfg.rc_buf_sz = 1000;
        cfg.rc_buf_initial_sz = 500;
        cfg.rc_buf_optimal_sz = 600;
        // Key frames only where the caller forces them: libvpx adds none of
        // its own (a scene cut would put one in one rendition and not in
        // another), so every rendition has them at the same positions and a
        // client can switch between renditions at any of them.
        cfg.kf_mode = vpx::vpx_kf_mode::VPX_KF_DISABLED;
        cfg.kf_min_dist = 0;
        cfg.kf_max_dist = keyframe_interval;

        let mut ctx = Box::new(MaybeUninit::<vpx::vpx_codec_ctx_t>::uninit());
        // SAFETY: `ctx` is valid for writes and `cfg` is a complete config; the ABI
        // version is the one the bindings were generated for (libvpx 1.12).
        let err = unsafe {
            vpx::vpx_codec_enc_init_ver(
                ctx.as_mut_ptr(),
                iface,
                &cfg,
                0,
                vpx::VPX_ENCODER_ABI_VERSION as c_int,
            )
        };
        if err != vpx::vpx_codec_err_t::VPX_CODEC_OK {
            // The context is not initialised, so there is nothing to destroy.
            return Err(vpx_error(None, err, "vpx_codec_enc_init"));
        }
        // SAFETY: vpx_codec_enc_init_ver returned OK, so the context is initialised.
        let ctx = unsafe { Box::from_raw(Box::into_raw(ctx).cast::<vpx::vpx_codec_ctx_t>()) };
        let mut encoder = Encoder {
            ctx,
            config,
            next_pts: 0,
        };
        use vpx::vp8e_enc_control_id::*;
        let tile_log2 =
            (threads.max(1).ilog2() as c_int).min(((width / 256).max(1)).ilog2() as c_int);
        encoder.control(VP8E_SET_CPUUSED as c_int, speed, "VP8E_SET_CPUUSED")?;
        // Cyclic-refresh AQ, as WebRTC uses in real time: steadier quality and rate.
        encoder.control(VP9E_SET_AQ_MODE as c_int, 3, "VP9E_SET_AQ_MODE")?;
        // No denoiser: the grain is there on purpose, like a camera's.
        encoder.control(
            VP9E_SET_NOISE_SENSITIVITY as c_int,
            0,
            "VP9E_SET_NOISE_SENSITIVITY",
        )?;
        // Key frames at most 9x an average frame (WebRTC: 0.5 * 600 ms * fps / 10).
        let max_intra = (300 * fps / 10).max(300) as c_int;
        encoder.control(
            VP8E_SET_MAX_INTRA_BITRATE_PCT as c_int,
            max_intra,
            "VP8E_SET_MAX_INTRA_BITRATE_PCT",
        )?;
        encoder.control(
            VP9E_SET_TILE_COLUMNS as c_int,
            tile_log2,
            "VP9E_SET_TILE_COLUMNS",
        )?;
        encoder.control(
            VP9E_SET_ROW_MT as c_int,
            (threads > 1) as c_int,
            "VP9E_SET_ROW_MT",
        )?;
        encoder.control(
            VP9E_SET_COLOR_SPACE as c_int,
            vpx::vpx_color_space::VPX_CS_BT_601 as c_int,
            "VP9E_SET_COLOR_SPACE",
        )?;
        encoder.control(
            VP9E_SET_COLOR_RANGE as c_int,
            vpx::vpx_color_range::VPX_CR_STUDIO_RANGE as c_int,
            "VP9E_SET_COLOR_RANGE",
        )?;
        Ok(encoder)
    }

    /// The settings this encoder was opened with.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    fn control(&mut self, id: c_int, value: c_int, name: &'static str) -> Result<(), Error> {
        // SAFETY: the context is initialised; every control used here takes one int.
        let err = unsafe { vpx::vpx_codec_control_(&mut *self.ctx, id, value) };
        check(Some(&mut self.ctx), err, name)
    }

    /// Encodes `frame` (the configured size) as the next frame; `force_key`
    /// makes it a key frame. Returns the packets it produced, normally exactly one.
    pub fn encode(&mut self, frame: &I420, force_key: bool) -> Result<Packets<'_>, Error> {
        if (frame.width(), frame.height()) != (self.config.width, self.config.height) {
            return Err(Error::invalid(
                "video frame",
                format!(
                    "{}x{} given to a {}x{} encoder",
                    frame.width(),
                    frame.height(),
                    self.config.width,
                    self.config.height
                ),
            ));
        }
        let mut img = MaybeUninit::<vpx::vpx_image_t>::uninit();
        // SAFETY: `img` is valid for writes; the buffer holds the Y, U and V
        // planes back to back with strides width, width/2 and width/2, which is
        // what vpx_img_wrap computes for I420 with alignment 1. libvpx only
        // reads input pictures, so handing it a pointer derived from `&I420` is fine.
        let wrapped = unsafe {
            vpx::vpx_img_wrap(
                img.as_mut_ptr(),
                vpx::vpx_img_fmt::VPX_IMG_FMT_I420,
                frame.width() as c_uint,
                frame.height() as c_uint,
                1,
                frame.data().as_ptr() as *mut u8,
            )
        };
        if wrapped.is_null() {
            return Err(Error::Vpx {
                op: "vpx_img_wrap",
                message: "could not wrap the picture".into(),
            });
        }
        // SAFETY: vpx_img_wrap returned non-null, so it initialised `img`.
        let mut img = unsafe { img.assume_init() };
        img.cs = vpx::vpx_color_space::VPX_CS_BT_601;
        img.range = vpx::vpx_color_range::VPX_CR_STUDIO_RANGE;
        let flags = if force_key {
            vpx::VPX_EFLAG_FORCE_KF as vpx::vpx_enc_frame_flags_t
        } else {
            0
        };
        let pts = self.next_pts;
        self.next_pts += 1;
        // SAFETY: the context is initialised and `img` points at a complete picture
        // of the configured size, alive for the whole call.
        let err = unsafe {
            vpx::vpx_codec_encode(
                &mut *self.ctx,
                &img,
                pts,
                1,
                flags,
                vpx::VPX_DL_REALTIME as std::ffi::c_ulong,
            )
        };
        check(Some(&mut self.ctx), err, "vpx_codec_encode")?;
        Ok(self.packets())
    }

    /// Tells the encoder no more frames come and returns what it still held
    /// (nothing with `g_lag_in_frames = 0`, but the API asks for it).
    pub fn flush(&mut self) -> Result<Packets<'_>, Error> {
        // SAFETY: the context is initialised; a null image means end of stream.
        let err = unsafe {
            vpx::vpx_codec_encode(
                &mut *self.ctx,
                ptr::null(),
                self.next_pts,
                1,
                0,
                vpx::VPX_DL_REALTIME as std::ffi::c_ulong,
            )
        };
        check(Some(&mut self.ctx), err, "vpx_codec_encode (flush)")?;
        Ok(self.packets())
    }

    fn packets(&mut self) -> Packets<'_> {
        Packets {
            ctx: &mut *self.ctx,
            iter: ptr::null(),
            _encoder: PhantomData,
        }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` and is destroyed only here.
        unsafe {
            vpx::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// A VP9 decoder (libvpx `vpx_codec_vp9_dx`).
pub struct Decoder {
    ctx: Box<vpx::vpx_codec_ctx_t>,
}

// SAFETY: as for `Encoder`: owned C state, used only through `&mut self`.
unsafe impl Send for Decoder {}

impl Decoder {
    /// Opens a single-threaded VP9 decoder.
    pub fn new() -> Result<Decoder, Error> {
        let cfg = vpx::vpx_codec_dec_cfg_t {
            threads: 1,
            w: 0,
            h: 0,
        };
        let mut ctx = Box::new(MaybeUninit::<vpx::vpx_codec_ctx_t>::uninit());
        // SAFETY: `ctx` is valid for writes, `cfg` is complete, and the ABI version
        // matches the bindings.
        let err = unsafe {
            vpx::vpx_codec_dec_init_ver(
                ctx.as_mut_ptr(),
                vpx::vpx_codec_vp9_dx(),
                &cfg,
                0,
                vpx::VPX_DECODER_ABI_VERSION as c_int,
            )
        };
        if err != vpx::vpx_codec_err_t::VPX_CODEC_OK {
            return Err(vpx_error(None, err, "vpx_codec_dec_init"));
        }
        // SAFETY: vpx_codec_dec_init_ver returned OK, so the context is initialised.
        let ctx = unsafe { Box::from_raw(Box::into_raw(ctx).cast::<vpx::vpx_codec_ctx_t>()) };
        Ok(Decoder { ctx })
    }

    /// Decodes one frame; returns the (width, height) of the picture it shows,
    /// or `None` if the frame shows nothing (a hidden frame).
    pub fn decode(&mut self, data: &[u8]) -> Result<Option<(u32, u32)>, Error> {
        let mut size = None;
        self.decode_with(data, |img| size = Some((img.d_w, img.d_h)))?;
        Ok(size)
    }

    /// Decodes one frame and copies the picture it shows out as I420.
    pub fn decode_picture(&mut self, data: &[u8]) -> Result<Option<I420>, Error> {
        let mut picture = None;
        let mut format_ok = true;
        self.decode_with(data, |img| {
            if img.fmt != vpx::vpx_img_fmt::VPX_IMG_FMT_I420 || img.d_w % 2 != 0 || img.d_h % 2 != 0
            {
                format_ok = false;
                return;
            }
            let mut out = I420::new(img.d_w, img.d_h);
            let (w, h) = (img.d_w as usize, img.d_h as usize);
            let (y, u, v) = out.planes_mut();
            for (plane, dst, pw, ph) in [(0, y, w, h), (1, u, w / 2, h / 2), (2, v, w / 2, h / 2)] {
                let stride = img.stride[plane] as usize;
                for row in 0..ph {
                    // SAFETY: libvpx's picture has `ph` rows of `stride` >= `pw` bytes in
                    // this plane, valid until the next decode call.
                    let src = unsafe {
                        std::slice::from_raw_parts(img.planes[plane].add(row * stride), pw)
                    };
                    dst[row * pw..(row + 1) * pw].copy_from_slice(src);
                }
            }
            picture = Some(out);
        })?;
        if !format_ok {
            return Err(Error::Vpx {
                op: "vpx_codec_get_frame",
                message: "decoded picture is not 8-bit I420 with even sizes".into(),
            });
        }
        Ok(picture)
    }

    fn decode_with(
        &mut self,
        data: &[u8],
        mut each: impl FnMut(&vpx::vpx_image_t),
    ) -> Result<(), Error> {
        let len = c_uint::try_from(data.len())
            .map_err(|_| Error::invalid("VP9 frame", "larger than 4 GiB"))?;
        // SAFETY: the context is initialised and `data` is readable for `len` bytes.
        let err = unsafe {
            vpx::vpx_codec_decode(&mut *self.ctx, data.as_ptr(), len, ptr::null_mut(), 0)
        };
        check(Some(&mut self.ctx), err, "vpx_codec_decode")?;
        let mut iter: vpx::vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: the context is initialised; `iter` starts at null for this batch.
            let img = unsafe { vpx::vpx_codec_get_frame(&mut *self.ctx, &mut iter) };
            if img.is_null() {
                return Ok(());
            }
            // SAFETY: a non-null image stays valid until the next decode call.
            each(unsafe { &*img });
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` and is destroyed only here.
        unsafe {
            vpx::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

fn check(
    ctx: Option<&mut vpx::vpx_codec_ctx_t>,
    err: vpx::vpx_codec_err_t,
    op: &'static str,
) -> Result<(), Error> {
    if err == vpx::vpx_codec_err_t::VPX_CODEC_OK {
        Ok(())
    } else {
        Err(vpx_error(ctx, err, op))
    }
}

fn vpx_error(
    ctx: Option<&mut vpx::vpx_codec_ctx_t>,
    err: vpx::vpx_codec_err_t,
    op: &'static str,
) -> Error {
    // SAFETY: vpx_codec_err_to_string returns a static NUL-terminated string.
    let mut message = unsafe { CStr::from_ptr(vpx::vpx_codec_err_to_string(err)) }
        .to_string_lossy()
        .into_owned();
    if let Some(ctx) = ctx {
        // SAFETY: the context is initialised; the detail is null or a NUL-terminated
        // string owned by the context.
        let detail = unsafe { vpx::vpx_codec_error_detail(ctx) };
        if !detail.is_null() {
            // SAFETY: checked non-null above.
            let detail = unsafe { CStr::from_ptr(detail) }.to_string_lossy();
            message = format!("{message} ({detail})");
        }
    }
    Error::Vpx { op, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::Rng;

    fn noisy_frame(w: u32, h: u32, rng: &mut Rng) -> I420 {
        let mut f = I420::new(w, h);
        f.data_mut()[..(w * h) as usize].fill(120);
        f.add_grain(rng, 8);
        f
    }

    #[test]
    fn encodes_one_packet_per_frame_and_decodes_back() {
        let mut enc = Encoder::new(EncoderConfig::new(160, 96, 30, 200)).unwrap();
        let mut dec = Decoder::new().unwrap();
        let mut rng = Rng::new(1);
        for i in 0..10 {
            let frame = noisy_frame(160, 96, &mut rng);
            let packets: Vec<(Vec<u8>, bool, i64)> = enc
                .encode(&frame, i == 5)
                .unwrap()
                .map(|p| (p.data.to_vec(), p.key, p.pts))
                .collect();
            assert_eq!(packets.len(), 1, "frame {i}");
            let (data, key, pts) = &packets[0];
            assert_eq!(*key, i == 0 || i == 5, "frame {i}");
            assert_eq!(*pts, i as i64);
            assert_eq!(dec.decode(data).unwrap(), Some((160, 96)));
        }
        assert_eq!(enc.flush().unwrap().count(), 0);
    }

    /// libvpx adds no key frame of its own, even past `keyframe_interval`.
    #[test]
    fn key_frames_come_only_where_forced() {
        let mut config = EncoderConfig::new(64, 64, 30, 200);
        config.keyframe_interval = 3;
        let mut enc = Encoder::new(config).unwrap();
        let mut rng = Rng::new(2);
        let keys: Vec<usize> = (0..12)
            .filter(|&i| {
                let frame = noisy_frame(64, 64, &mut rng);
                enc.encode(&frame, i == 7).unwrap().any(|p| p.key)
            })
            .collect();
        assert_eq!(keys, vec![0, 7]);
    }

    #[test]
    fn decoded_picture_resembles_the_source() {
        let mut enc = Encoder::new(EncoderConfig::new(64, 64, 30, 500)).unwrap();
        let mut dec = Decoder::new().unwrap();
        let mut src = I420::new(64, 64);
        {
            let (y, u, v) = src.planes_mut();
            for (i, p) in y.iter_mut().enumerate() {
                *p = 16 + (i % 64) as u8 * 3;
            }
            u.fill(90);
            v.fill(240);
        }
        let data = enc
            .encode(&src, true)
            .unwrap()
            .next()
            .unwrap()
            .data
            .to_vec();
        let out = dec.decode_picture(&data).unwrap().unwrap();
        let err = |a: &[u8], b: &[u8]| {
            a.iter()
                .zip(b)
                .map(|(&x, &y)| (x as i32 - y as i32).abs())
                .max()
                .unwrap()
        };
        assert!(
            err(src.y(), out.y()) <= 6,
            "luma error {}",
            err(src.y(), out.y())
        );
        assert!(err(src.u(), out.u()) <= 4);
        assert!(err(src.v(), out.v()) <= 4);
    }

    #[test]
    fn rejects_bad_sizes_and_garbage() {
        assert!(Encoder::new(EncoderConfig::new(161, 96, 30, 200)).is_err());
        let mut enc = Encoder::new(EncoderConfig::new(160, 96, 30, 200)).unwrap();
        assert!(enc.encode(&I420::new(320, 96), false).is_err());
        let mut dec = Decoder::new().unwrap();
        assert!(dec.decode(&[0x12, 0x34, 0x56, 0x78, 0x9a]).is_err());
    }
}
