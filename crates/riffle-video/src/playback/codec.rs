//! Codec configurations read from Matroska CodecPrivate data: H.264's
//! AVCDecoderConfigurationRecord (avcC), H.265's
//! HEVCDecoderConfigurationRecord (hvcC) and AAC's AudioSpecificConfig,
//! plus the parameter-set fields playback needs (picture size, RFC 6381
//! codecs strings) and NAL unit framing (length-prefixed ↔ Annex B).

use bytes::Bytes;

use super::MediaError;
use crate::mkv::Track;

/// Matroska codec ids of the video codecs playback knows.
pub const H264: &str = "V_MPEG4/ISO/AVC";
pub const H265: &str = "V_MPEGH/ISO/HEVC";

pub fn is_video_codec(codec_id: &str) -> bool {
    codec_id == H264 || codec_id == H265
}

/// Which video codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
}

/// A video track's decoder configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    pub codec: VideoCodec,
    /// The avcC / hvcC record (built from the parameter sets when the
    /// producer sent them in Annex B form).
    pub record: Bytes,
    /// Bytes of each NAL unit's length prefix in frames.
    pub nal_length_size: usize,
    /// SPS and PPS (H.264) or VPS, SPS and PPS (H.265), in that order.
    pub parameter_sets: Vec<Bytes>,
    /// Frames carry Annex B start codes rather than length prefixes.
    pub annex_b_frames: bool,
    pub width: u32,
    pub height: u32,
}

fn missing(t: &Track) -> MediaError {
    MediaError::MissingCodecPrivateData(format!(
        "No codec private data was found in track {} ({}).",
        t.number, t.codec_id
    ))
}

fn bad(t: &Track, why: &str) -> MediaError {
    MediaError::InvalidCodecPrivateData(format!(
        "The codec private data of track {} ({}) is not valid: {why}.",
        t.number, t.codec_id
    ))
}

impl VideoConfig {
    /// The configuration of an H.264 or H.265 track.
    pub fn from_track(t: &Track) -> Result<VideoConfig, MediaError> {
        let codec = match t.codec_id.as_str() {
            H264 => VideoCodec::H264,
            H265 => VideoCodec::H265,
            other => {
                return Err(MediaError::UnsupportedStreamMediaType(format!(
                    "The codec ID of track {} ({other}) is not supported for playback: \
                     it must be V_MPEG4/ISO/AVC or V_MPEGH/ISO/HEVC.",
                    t.number
                )))
            }
        };
        let cpd = &t.codec_private;
        if cpd.is_empty() {
            return Err(missing(t));
        }
        let mut cfg = if cpd.starts_with(&[0, 0, 1]) || cpd.starts_with(&[0, 0, 0, 1]) {
            let nals: Vec<Bytes> = split_annex_b(cpd).map(|n| cpd.slice_ref(n)).collect();
            from_annex_b(codec, nals).ok_or_else(|| bad(t, "the parameter sets are incomplete"))?
        } else {
            match codec {
                VideoCodec::H264 => parse_avcc(cpd),
                VideoCodec::H265 => parse_hvcc(cpd),
            }
            .ok_or_else(|| bad(t, "the decoder configuration record is malformed"))?
        };
        let sps = match codec {
            VideoCodec::H264 => cfg.parameter_sets.iter().find(|p| nal_type(codec, p) == 7),
            VideoCodec::H265 => cfg.parameter_sets.iter().find(|p| nal_type(codec, p) == 33),
        }
        .ok_or_else(|| bad(t, "it has no sequence parameter set"))?;
        let size = match codec {
            VideoCodec::H264 => h264_sps_size(sps),
            VideoCodec::H265 => h265_sps_size(sps),
        };
        let (w, h) = match size {
            Some(s) => s,
            None if t.width > 0 && t.height > 0 => (t.width, t.height),
            None => return Err(bad(t, "its sequence parameter set cannot be read")),
        };
        cfg.width = if t.width > 0 { t.width } else { w };
        cfg.height = if t.height > 0 { t.height } else { h };
        Ok(cfg)
    }

    /// The RFC 6381 codecs parameter.
    pub fn codecs(&self) -> String {
        let r = &self.record;
        match self.codec {
            VideoCodec::H264 => format!("avc1.{:02x}{:02x}{:02x}", r[1], r[2], r[3]),
            VideoCodec::H265 => {
                let space = ["", "A", "B", "C"][(r[1] >> 6) as usize];
                let tier = if r[1] & 0x20 != 0 { 'H' } else { 'L' };
                let profile = r[1] & 0x1F;
                let compat = u32::from_be_bytes([r[2], r[3], r[4], r[5]]).reverse_bits();
                let mut s = format!("hvc1.{space}{profile}.{compat:X}.{tier}{}", r[12]);
                let constraints = &r[6..12];
                let used = constraints
                    .iter()
                    .rposition(|&b| b != 0)
                    .map_or(0, |p| p + 1);
                for b in &constraints[..used] {
                    s.push_str(&format!(".{b:X}"));
                }
                s
            }
        }
    }

    /// A frame's NAL units.
    pub fn nal_units<'a>(&self, frame: &'a [u8]) -> Result<Vec<&'a [u8]>, MediaError> {
        if self.annex_b_frames {
            return Ok(split_annex_b(frame).collect());
        }
        let n = self.nal_length_size;
        let mut out = Vec::new();
        let mut rest = frame;
        while !rest.is_empty() {
            if rest.len() < n {
                return Err(frame_error("a NAL unit length prefix is truncated"));
            }
            let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
            rest = &rest[n..];
            if len > rest.len() {
                return Err(frame_error("a NAL unit runs past its frame"));
            }
            out.push(&rest[..len]);
            rest = &rest[len..];
        }
        Ok(out)
    }

    /// A frame as MP4 stores it: NAL units with this record's length
    /// prefixes.
    pub fn to_length_prefixed(&self, frame: &Bytes) -> Result<Bytes, MediaError> {
        if !self.annex_b_frames {
            return Ok(frame.clone());
        }
        let mut out = Vec::with_capacity(frame.len() + 8);
        for nal in split_annex_b(frame) {
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            out.extend_from_slice(nal);
        }
        Ok(Bytes::from(out))
    }

    /// The type of a NAL unit.
    pub fn nal_type(&self, nal: &[u8]) -> u8 {
        nal_type(self.codec, nal)
    }
}

fn frame_error(why: &str) -> MediaError {
    MediaError::InvalidMediaFrame(format!(
        "One or more frames could not be parsed based on the specified codec: {why}."
    ))
}

pub fn nal_type(codec: VideoCodec, nal: &[u8]) -> u8 {
    match (codec, nal.first()) {
        (_, None) => 0xFF,
        (VideoCodec::H264, Some(b)) => b & 0x1F,
        (VideoCodec::H265, Some(b)) => (b >> 1) & 0x3F,
    }
}

/// The NAL units of an Annex B byte stream (start codes removed).
pub fn split_annex_b(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= b.len() {
        if b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1 {
            starts.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &(_, begin)) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(b.len(), |s| s.0);
        // The zero of a four-byte start code and trailing zeros belong to
        // no NAL unit.
        while end > begin && b[end - 1] == 0 {
            end -= 1;
        }
        if end > begin {
            out.push(&b[begin..end]);
        }
    }
    out.into_iter()
}

fn parse_avcc(r: &Bytes) -> Option<VideoConfig> {
    if r.len() < 7 || r[0] != 1 {
        return None;
    }
    let nal_length_size = (r[4] & 3) as usize + 1;
    let mut sets = Vec::new();
    let mut pos = 5;
    for _ in 0..2 {
        let count = if sets.is_empty() {
            *r.get(pos)? & 0x1F
        } else {
            *r.get(pos)?
        };
        pos += 1;
        for _ in 0..count {
            let len = u16::from_be_bytes([*r.get(pos)?, *r.get(pos + 1)?]) as usize;
            pos += 2;
            sets.push(r.get(pos..pos + len).map(|_| r.slice(pos..pos + len))?);
            pos += len;
        }
    }
    Some(VideoConfig {
        codec: VideoCodec::H264,
        record: r.clone(),
        nal_length_size,
        parameter_sets: sets,
        annex_b_frames: false,
        width: 0,
        height: 0,
    })
}

fn parse_hvcc(r: &Bytes) -> Option<VideoConfig> {
    if r.len() < 23 || r[0] != 1 {
        return None;
    }
    let nal_length_size = (r[21] & 3) as usize + 1;
    let arrays = r[22];
    let mut pos = 23;
    let mut sets = Vec::new();
    for _ in 0..arrays {
        pos += 1;
        let count = u16::from_be_bytes([*r.get(pos)?, *r.get(pos + 1)?]);
        pos += 2;
        for _ in 0..count {
            let len = u16::from_be_bytes([*r.get(pos)?, *r.get(pos + 1)?]) as usize;
            pos += 2;
            sets.push(r.get(pos..pos + len).map(|_| r.slice(pos..pos + len))?);
            pos += len;
        }
    }
    // VPS, SPS, PPS: the order decoders want them in.
    sets.sort_by_key(|s| nal_type(VideoCodec::H265, s));
    sets.retain(|s| matches!(nal_type(VideoCodec::H265, s), 32..=34));
    Some(VideoConfig {
        codec: VideoCodec::H265,
        record: r.clone(),
        nal_length_size,
        parameter_sets: sets,
        annex_b_frames: false,
        width: 0,
        height: 0,
    })
}

/// A configuration from parameter sets sent as an Annex B stream.
fn from_annex_b(codec: VideoCodec, nals: Vec<Bytes>) -> Option<VideoConfig> {
    let of = |t: u8| -> Vec<Bytes> {
        nals.iter()
            .filter(|n| nal_type(codec, n) == t)
            .cloned()
            .collect()
    };
    let mut rec = Vec::new();
    let sets: Vec<Bytes> = match codec {
        VideoCodec::H264 => {
            let (sps, pps) = (of(7), of(8));
            let first = sps.first()?;
            if first.len() < 4 || pps.is_empty() {
                return None;
            }
            rec.extend_from_slice(&[
                1,
                first[1],
                first[2],
                first[3],
                0xFF,
                0xE0 | sps.len() as u8,
            ]);
            for s in &sps {
                rec.extend_from_slice(&(s.len() as u16).to_be_bytes());
                rec.extend_from_slice(s);
            }
            rec.push(pps.len() as u8);
            for p in &pps {
                rec.extend_from_slice(&(p.len() as u16).to_be_bytes());
                rec.extend_from_slice(p);
            }
            sps.into_iter().chain(pps).collect()
        }
        VideoCodec::H265 => {
            let (vps, sps, pps) = (of(32), of(33), of(34));
            let first = sps.first()?;
            if vps.is_empty() || pps.is_empty() {
                return None;
            }
            // The profile, tier and level fields come from the SPS's
            // profile_tier_level (after its 2-byte header and 1 byte).
            let ptl = unescape(first.get(3..15)?);
            if ptl.len() < 12 {
                return None;
            }
            rec.push(1);
            rec.extend_from_slice(&ptl[..12]);
            rec.extend_from_slice(&[0xF0, 0x00, 0xFC, 0xFD, 0xF8, 0xF8, 0x00, 0x00, 0x0F]);
            rec.push(3);
            for (t, list) in [(32u8, &vps), (33, &sps), (34, &pps)] {
                rec.push(0x80 | t);
                rec.extend_from_slice(&(list.len() as u16).to_be_bytes());
                for n in list.iter() {
                    rec.extend_from_slice(&(n.len() as u16).to_be_bytes());
                    rec.extend_from_slice(n);
                }
            }
            vps.into_iter().chain(sps).chain(pps).collect()
        }
    };
    Some(VideoConfig {
        codec,
        record: Bytes::from(rec),
        nal_length_size: 4,
        parameter_sets: sets,
        annex_b_frames: true,
        width: 0,
        height: 0,
    })
}

/// A NAL unit's payload with emulation prevention bytes removed.
pub fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut zeros = 0;
    for &x in b {
        if zeros >= 2 && x == 3 {
            zeros = 0;
            continue;
        }
        zeros = if x == 0 { zeros + 1 } else { 0 };
        out.push(x);
    }
    out
}

/// Reads bits MSB first; reading past the end is `None`.
struct Bits<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn u(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.b.get(self.pos / 8)?;
            v = (v << 1) | ((byte >> (7 - self.pos % 8)) & 1) as u32;
            self.pos += 1;
        }
        Some(v)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.pos += n;
        (self.pos <= self.b.len() * 8).then_some(())
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.u(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some(((1u64 << zeros) - 1 + self.u(zeros)? as u64) as u32)
    }

    fn se(&mut self) -> Option<i32> {
        let k = self.ue()? as i64;
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) } as i32)
    }
}

/// The cropped picture size an H.264 SPS gives.
pub fn h264_sps_size(sps: &[u8]) -> Option<(u32, u32)> {
    let rbsp = unescape(sps.get(1..)?);
    let mut r = Bits { b: &rbsp, pos: 0 };
    let profile = r.u(8)?;
    r.skip(16)?;
    r.ue()?;
    let mut chroma = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma = r.ue()?;
        if chroma == 3 && r.u(1)? == 1 {
            chroma = 0;
        }
        r.ue()?;
        r.ue()?;
        r.u(1)?;
        if r.u(1)? == 1 {
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if r.u(1)? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?;
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.u(1)?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?;
    r.u(1)?;
    let w_mbs = r.ue()? + 1;
    let h_units = r.ue()? + 1;
    let frame_mbs_only = r.u(1)?;
    if frame_mbs_only == 0 {
        r.u(1)?;
    }
    r.u(1)?;
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.u(1)? == 1 {
        cl = r.ue()?;
        cr = r.ue()?;
        ct = r.ue()?;
        cb = r.ue()?;
    }
    let (sub_w, sub_h) = match chroma {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let (unit_x, unit_y) = if chroma == 0 {
        (1, 2 - frame_mbs_only)
    } else {
        (sub_w, sub_h * (2 - frame_mbs_only))
    };
    let w = (w_mbs * 16).checked_sub(unit_x * (cl + cr))?;
    let h = ((2 - frame_mbs_only) * h_units * 16).checked_sub(unit_y * (ct + cb))?;
    Some((w, h))
}

/// The cropped picture size an H.265 SPS gives.
pub fn h265_sps_size(sps: &[u8]) -> Option<(u32, u32)> {
    let rbsp = unescape(sps.get(2..)?);
    let mut r = Bits { b: &rbsp, pos: 0 };
    r.u(4)?;
    let sub_layers = r.u(3)? as usize;
    r.u(1)?;
    r.skip(96)?;
    let mut present = Vec::new();
    for _ in 0..sub_layers {
        present.push((r.u(1)?, r.u(1)?));
    }
    if sub_layers > 0 {
        r.skip(2 * (8 - sub_layers))?;
    }
    for (p, l) in present {
        r.skip(88 * p as usize + 8 * l as usize)?;
    }
    r.ue()?;
    let chroma = r.ue()?;
    let mut separate = 0;
    if chroma == 3 {
        separate = r.u(1)?;
    }
    let w = r.ue()?;
    let h = r.ue()?;
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.u(1)? == 1 {
        cl = r.ue()?;
        cr = r.ue()?;
        ct = r.ue()?;
        cb = r.ue()?;
    }
    let (sw, sh) = match (chroma, separate) {
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        _ => (1, 1),
    };
    Some((
        w.checked_sub(sw * (cl + cr))?,
        h.checked_sub(sh * (ct + cb))?,
    ))
}

/// An AAC track's AudioSpecificConfig, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioConfig {
    pub config: Bytes,
    /// The audio object type (2 = AAC LC; 5 and 29 signal SBR / PS on top
    /// of `core_object_type`).
    pub object_type: u8,
    /// The object type of the AAC core (what ADTS headers carry).
    pub core_object_type: u8,
    /// The core's sampling frequency index (15: explicit rate).
    pub frequency_index: u8,
    /// The core sampling rate: the timescale of the track.
    pub sample_rate: u32,
    pub channels: u8,
    /// Samples per frame (1024, or 960).
    pub frame_samples: u32,
}

const AAC_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

impl AudioConfig {
    pub fn from_track(t: &Track) -> Result<AudioConfig, MediaError> {
        if t.codec_private.is_empty() {
            return Err(missing(t));
        }
        parse_asc(&t.codec_private).ok_or_else(|| bad(t, "the AudioSpecificConfig is malformed"))
    }

    /// The RFC 6381 codecs parameter.
    pub fn codecs(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// The 7-byte ADTS header of a raw frame of `len` bytes.
    pub fn adts_header(&self, len: usize) -> Result<[u8; 7], MediaError> {
        if !(1..=4).contains(&self.core_object_type) || self.frequency_index > 12 {
            return Err(MediaError::InvalidCodecPrivateData(format!(
                "AAC with audio object type {} at {} Hz cannot be carried in MPEG-TS.",
                self.core_object_type, self.sample_rate
            )));
        }
        let full = len + 7;
        if full >= 1 << 13 {
            return Err(frame_error("an AAC frame is larger than ADTS allows"));
        }
        let profile = self.core_object_type - 1;
        let ch = self.channels & 7;
        Ok([
            0xFF,
            0xF1,
            (profile << 6) | (self.frequency_index << 2) | (ch >> 2),
            ((ch & 3) << 6) | (full >> 11) as u8,
            (full >> 3) as u8,
            (((full & 7) as u8) << 5) | 0x1F,
            0xFC,
        ])
    }
}

fn parse_asc(b: &[u8]) -> Option<AudioConfig> {
    let mut r = Bits { b, pos: 0 };
    let object_type = |r: &mut Bits| -> Option<u8> {
        let t = r.u(5)?;
        Some(if t == 31 { 32 + r.u(6)? } else { t } as u8)
    };
    let rate = |r: &mut Bits| -> Option<(u8, u32)> {
        let i = r.u(4)? as u8;
        if i == 15 {
            Some((15, r.u(24)?))
        } else {
            Some((i, *AAC_RATES.get(i as usize)?))
        }
    };
    let aot = object_type(&mut r)?;
    let (index, sample_rate) = rate(&mut r)?;
    let channels = r.u(4)? as u8;
    let mut core = aot;
    if aot == 5 || aot == 29 {
        rate(&mut r)?;
        core = object_type(&mut r)?;
    }
    let mut frame_samples = 1024;
    if matches!(core, 1..=4 | 6 | 7 | 17 | 19..=23) && r.u(1)? == 1 {
        frame_samples = 960;
    }
    if sample_rate == 0 {
        return None;
    }
    Some(AudioConfig {
        config: Bytes::copy_from_slice(b),
        object_type: aot,
        core_object_type: core,
        frequency_index: index,
        sample_rate,
        channels,
        frame_samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_splits_on_three_and_four_byte_start_codes() {
        let b = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 0,
        ];
        let nals: Vec<&[u8]> = split_annex_b(&b).collect();
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4][..]]
        );
    }

    #[test]
    fn aac_lc_and_he_aac_configs_are_read() {
        // AAC LC, 48 kHz, stereo.
        let lc = parse_asc(&[0x11, 0x90]).unwrap();
        assert_eq!(
            (
                lc.object_type,
                lc.core_object_type,
                lc.frequency_index,
                lc.sample_rate,
                lc.channels,
                lc.frame_samples
            ),
            (2, 2, 3, 48000, 2, 1024)
        );
        assert_eq!(lc.codecs(), "mp4a.40.2");
        assert_eq!(
            lc.adts_header(100).unwrap(),
            [0xFF, 0xF1, 0x4C, 0x80, 0x0D, 0x7F, 0xFC]
        );
        // HE-AAC (explicit SBR): 24 kHz core, 48 kHz output, stereo.
        let he = parse_asc(&[0x2B, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!(
            (
                he.object_type,
                he.core_object_type,
                he.sample_rate,
                he.channels
            ),
            (5, 2, 24000, 2)
        );
        assert!(parse_asc(&[0x17]).is_none());
    }

    #[test]
    fn h264_sps_gives_the_cropped_size() {
        // x264's SPS for 320x240, High profile.
        let sps = [
            0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03,
            0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
        ];
        assert_eq!(h264_sps_size(&sps), Some((320, 240)));
        assert_eq!(h264_sps_size(&sps[..4]), None);
    }
}
