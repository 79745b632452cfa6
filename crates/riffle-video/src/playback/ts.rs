//! MPEG-2 transport stream segments (ISO/IEC 13818-1) for HLS's
//! `MPEG_TS` container: a PAT and a PMT, then the fragments' frames as
//! PES packets in decode order, 188-byte packets throughout.
//!
//! - Video (H.264 stream type 0x1B, H.265 0x24): Annex B access units, each
//!   opened by an access unit delimiter, key frames preceded by the
//!   parameter sets of the track's CodecPrivate. The PCR rides on the
//!   video PID, in the first packet of every access unit.
//! - AAC (stream type 0x0F): one ADTS frame per PES packet.
//!
//! Times are 90 kHz ticks of the producer's clock since the epoch, modulo
//! 2^33, so segments cut from one stream continue each other. Decode times
//! lead presentation times by [`DECODE_DELAY`] (more when a fragment
//! reorders further), so the two never cross even with B-frames.

use super::codec::VideoCodec;
use super::{track_samples, Codec, Fragment, Media, MediaError, MediaTrack};

const PACKET: usize = 188;
const PAT_PID: u16 = 0;
const PMT_PID: u16 = 0x1000;
const FIRST_ES_PID: u16 = 0x100;
/// 90 kHz ticks by which decode times precede presentation times.
pub const DECODE_DELAY: i64 = 9_000;
const WRAP: i64 = 1 << 33;

/// A transport stream of the fragments' frames on the media's tracks.
pub fn segment(media: &Media, fragments: &[Fragment]) -> Result<Vec<u8>, MediaError> {
    let mut w = Writer {
        out: Vec::with_capacity(fragments.iter().map(size_hint).sum::<usize>() * 11 / 10 + 1024),
        cc: [0; 4],
    };
    let pcr_index = media.tracks.iter().position(|t| t.is_video()).unwrap_or(0);
    w.section(PAT_PID, 0, &pat());
    w.section(PMT_PID, 1, &pmt(media, pcr_index));

    // Every frame of every track as (decode time, track index, PES).
    let mut units: Vec<(i64, usize, Pes)> = Vec::new();
    for (ti, t) in media.tracks.iter().enumerate() {
        let scale = t.timescale();
        let to90 = |x: i64| (x as i128 * 90_000 / scale as i128) as i64;
        for samples in track_samples(fragments, t, 0) {
            let delay = samples
                .iter()
                .map(|s| -to90(s.cto))
                .max()
                .unwrap_or(0)
                .max(DECODE_DELAY);
            for s in &samples {
                let dts = to90(s.dts);
                let pts = to90(s.dts + s.cto);
                let pes = match &t.codec {
                    Codec::Video(v) => {
                        let mut es = Vec::with_capacity(s.data.len() + 64);
                        let aud: &[u8] = match v.codec {
                            VideoCodec::H264 => &[0, 0, 0, 1, 0x09, 0xF0],
                            VideoCodec::H265 => &[0, 0, 0, 1, 0x46, 0x01, 0x50],
                        };
                        es.extend_from_slice(aud);
                        if s.keyframe {
                            for p in &v.parameter_sets {
                                es.extend_from_slice(&[0, 0, 0, 1]);
                                es.extend_from_slice(p);
                            }
                        }
                        let delimiter = match v.codec {
                            VideoCodec::H264 => 9,
                            VideoCodec::H265 => 35,
                        };
                        for nal in v.nal_units(&s.data)? {
                            if v.nal_type(nal) == delimiter {
                                continue;
                            }
                            es.extend_from_slice(&[0, 0, 0, 1]);
                            es.extend_from_slice(nal);
                        }
                        Pes {
                            stream_id: 0xE0,
                            pts,
                            dts: Some(dts - delay),
                            keyframe: s.keyframe,
                            es,
                        }
                    }
                    Codec::Audio(a) => {
                        let mut es = Vec::with_capacity(s.data.len() + 7);
                        es.extend_from_slice(&a.adts_header(s.data.len())?);
                        es.extend_from_slice(&s.data);
                        Pes {
                            stream_id: 0xC0,
                            pts,
                            dts: None,
                            keyframe: true,
                            es,
                        }
                    }
                };
                units.push((pes.dts.unwrap_or(pes.pts), ti, pes));
            }
        }
    }
    units.sort_by_key(|(dts, ti, _)| (*dts, *ti));
    for (dts, ti, pes) in units {
        let pid = FIRST_ES_PID + ti as u16;
        let pcr = (ti == pcr_index).then_some(dts);
        w.pes(pid, ti + 2, &pes, pcr);
    }
    Ok(w.out)
}

fn size_hint(f: &Fragment) -> usize {
    f.cluster.frames.iter().map(|x| x.data.len()).sum()
}

struct Pes {
    stream_id: u8,
    pts: i64,
    dts: Option<i64>,
    keyframe: bool,
    es: Vec<u8>,
}

/// A 33-bit timestamp field with its 4-bit prefix and marker bits.
fn timestamp(prefix: u8, t: i64) -> [u8; 5] {
    let t = t.rem_euclid(WRAP) as u64;
    [
        (prefix << 4) | (((t >> 30) as u8 & 7) << 1) | 1,
        (t >> 22) as u8,
        (((t >> 15) as u8) << 1) | 1,
        (t >> 7) as u8,
        ((t as u8) << 1) | 1,
    ]
}

struct Writer {
    out: Vec<u8>,
    /// Continuity counters: PAT, PMT, then one per elementary stream.
    cc: [u8; 4],
}

impl Writer {
    fn next_cc(&mut self, slot: usize) -> u8 {
        let c = self.cc[slot];
        self.cc[slot] = (c + 1) & 0x0F;
        c
    }

    /// One PSI section in one packet (pointer field 0, 0xFF filling).
    fn section(&mut self, pid: u16, slot: usize, section: &[u8]) {
        let cc = self.next_cc(slot);
        let start = self.out.len();
        self.out
            .extend_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10 | cc, 0]);
        self.out.extend_from_slice(section);
        self.out.resize(start + PACKET, 0xFF);
    }

    /// A PES packet cut into transport packets; the first carries the PCR
    /// (and the random access flag on key frames), the last is filled out
    /// with adaptation-field stuffing.
    fn pes(&mut self, pid: u16, slot: usize, pes: &Pes, pcr: Option<i64>) {
        let mut header = vec![0, 0, 1, pes.stream_id, 0, 0, 0x80];
        match pes.dts {
            Some(dts) if dts != pes.pts => {
                header.extend_from_slice(&[0xC0, 10]);
                header.extend_from_slice(&timestamp(3, pes.pts));
                header.extend_from_slice(&timestamp(1, dts));
            }
            _ => {
                header.extend_from_slice(&[0x80, 5]);
                header.extend_from_slice(&timestamp(2, pes.pts));
            }
        }
        // Video may leave the length unbounded; audio frames always fit.
        let len = header.len() - 6 + pes.es.len();
        if len <= 0xFFFF {
            header[4..6].copy_from_slice(&(len as u16).to_be_bytes());
        }
        let mut payload = header;
        payload.extend_from_slice(&pes.es);

        let mut rest = &payload[..];
        let mut first = true;
        while !rest.is_empty() {
            let mut af = Vec::new();
            if first && (pcr.is_some() || pes.keyframe) {
                let mut flags = 0u8;
                if pes.keyframe {
                    flags |= 0x40;
                }
                af.push(0);
                if let Some(p) = pcr {
                    flags |= 0x10;
                    let base = p.rem_euclid(WRAP) as u64;
                    af.extend_from_slice(&[
                        (base >> 25) as u8,
                        (base >> 17) as u8,
                        (base >> 9) as u8,
                        (base >> 1) as u8,
                        ((base as u8 & 1) << 7) | 0x7E,
                        0,
                    ]);
                }
                af[0] = flags;
            }
            // Adaptation field bytes on the wire: its length byte, then af.
            let af_wire = if af.is_empty() { 0 } else { af.len() + 1 };
            let room = PACKET - 4 - af_wire;
            let take = rest.len().min(room);
            let stuffing = room - take;
            let cc = self.next_cc(slot);
            let has_af = af_wire > 0 || stuffing > 0;
            self.out.extend_from_slice(&[
                0x47,
                if first { 0x40 } else { 0 } | (pid >> 8) as u8 & 0x1F,
                pid as u8,
                if has_af { 0x30 } else { 0x10 } | cc,
            ]);
            if has_af {
                if af.is_empty() && stuffing == 1 {
                    // Just the length byte: an empty adaptation field.
                    self.out.push(0);
                } else {
                    if af.is_empty() {
                        af.push(0);
                        af.extend(std::iter::repeat_n(0xFF, stuffing - 2));
                    } else {
                        af.extend(std::iter::repeat_n(0xFF, stuffing));
                    }
                    self.out.push(af.len() as u8);
                    self.out.extend_from_slice(&af);
                }
            }
            self.out.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            first = false;
        }
    }
}

fn pat() -> Vec<u8> {
    let mut s = vec![0x00, 0xB0, 0, 0x00, 0x01, 0xC1, 0x00, 0x00];
    s.extend_from_slice(&[0x00, 0x01, 0xE0 | (PMT_PID >> 8) as u8, PMT_PID as u8]);
    finish_section(s)
}

fn stream_type(t: &MediaTrack) -> u8 {
    match &t.codec {
        Codec::Video(v) if v.codec == VideoCodec::H264 => 0x1B,
        Codec::Video(_) => 0x24,
        Codec::Audio(_) => 0x0F,
    }
}

fn pmt(media: &Media, pcr_index: usize) -> Vec<u8> {
    let pcr_pid = FIRST_ES_PID + pcr_index as u16;
    let mut s = vec![0x02, 0xB0, 0, 0x00, 0x01, 0xC1, 0x00, 0x00];
    s.extend_from_slice(&[0xE0 | (pcr_pid >> 8) as u8, pcr_pid as u8, 0xF0, 0x00]);
    for (i, t) in media.tracks.iter().enumerate() {
        let pid = FIRST_ES_PID + i as u16;
        s.extend_from_slice(&[
            stream_type(t),
            0xE0 | (pid >> 8) as u8,
            pid as u8,
            0xF0,
            0x00,
        ]);
    }
    finish_section(s)
}

/// Sets the section length (the CRC included) and appends the CRC.
fn finish_section(mut s: Vec<u8>) -> Vec<u8> {
    let len = s.len() - 3 + 4;
    s[1] = 0xB0 | (len >> 8) as u8;
    s[2] = len as u8;
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// CRC-32/MPEG-2: polynomial 0x04C11DB7, not reflected, no final XOR.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= (b as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_mpeg2_check_value() {
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn timestamps_wrap_at_33_bits_with_markers() {
        assert_eq!(timestamp(2, 0), [0x21, 0, 1, 0, 1]);
        assert_eq!(timestamp(2, WRAP), [0x21, 0, 1, 0, 1]);
        assert_eq!(timestamp(3, WRAP - 1), [0x3F, 0xFF, 0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn every_payload_length_fills_whole_packets() {
        for n in [
            1usize, 150, 169, 170, 171, 172, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185,
            400,
        ] {
            for pcr in [None, Some(123_456)] {
                let mut w = Writer {
                    out: Vec::new(),
                    cc: [0; 4],
                };
                let pes = Pes {
                    stream_id: 0xC0,
                    pts: 1,
                    dts: None,
                    keyframe: pcr.is_some(),
                    es: vec![0xAB; n],
                };
                w.pes(0x101, 2, &pes, pcr);
                assert_eq!(w.out.len() % PACKET, 0, "{n} {pcr:?}");
                // The payload is whole after the headers are removed.
                let mut got = Vec::new();
                for p in w.out.chunks(PACKET) {
                    assert_eq!(p[0], 0x47);
                    let start = if p[3] & 0x20 != 0 {
                        5 + p[4] as usize
                    } else {
                        4
                    };
                    got.extend_from_slice(&p[start..]);
                }
                assert_eq!(got.len(), 14 + n, "{n} {pcr:?}");
                assert!(got[14..].iter().all(|&b| b == 0xAB), "{n} {pcr:?}");
            }
        }
    }
}
