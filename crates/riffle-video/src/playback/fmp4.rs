//! Fragmented MP4 (ISO/IEC 14496-12, CMAF-style): an init segment (ftyp,
//! moov with an mvex) and media segments (moof + mdat per fragment).
//!
//! The boxes are written here directly: playback needs some twenty fixed
//! layouts and no parsing, less than a box library's API would take.
//!
//! Video tracks run at 90 kHz, AAC tracks at their sampling rate. Decode
//! times start at the first key frame's presentation time and
//! composition offsets may be negative (`trun` version 1), so no edit list
//! is needed.

use super::codec::VideoCodec;
use super::{track_samples, Codec, Fragment, Media, MediaError, MediaTrack, Sample};

/// Appends a box: size, type, body written by `f`.
fn bx(out: &mut Vec<u8>, kind: &[u8; 4], f: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(kind);
    f(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Appends a full box (version and flags after the type).
fn full(out: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32, f: impl FnOnce(&mut Vec<u8>)) {
    bx(out, kind, |o| {
        o.push(version);
        o.extend_from_slice(&flags.to_be_bytes()[1..]);
        f(o);
    });
}

fn u16be(o: &mut Vec<u8>, v: u16) {
    o.extend_from_slice(&v.to_be_bytes());
}

fn u32be(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_be_bytes());
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// The init segment of `media`: ftyp and a moov describing every track
/// with an empty sample table and a trex.
pub fn init_segment(media: &Media) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    bx(&mut out, b"ftyp", |o| {
        o.extend_from_slice(b"iso6");
        u32be(o, 0);
        for brand in [b"iso6", b"isom", b"iso5", b"mp41", b"dash", b"cmfc"] {
            o.extend_from_slice(brand);
        }
    });
    bx(&mut out, b"moov", |o| {
        full(o, b"mvhd", 0, 0, |o| {
            u32be(o, 0); // creation_time
            u32be(o, 0); // modification_time
            u32be(o, 1000); // timescale
            u32be(o, 0); // duration: unknown, fragments follow
            u32be(o, 0x0001_0000); // rate 1.0
            u16be(o, 0x0100); // volume 1.0
            o.extend_from_slice(&[0; 10]);
            MATRIX.iter().for_each(|&m| u32be(o, m));
            o.extend_from_slice(&[0; 24]);
            u32be(o, media.tracks.len() as u32 + 1); // next_track_ID
        });
        for t in &media.tracks {
            trak(o, t);
        }
        bx(o, b"mvex", |o| {
            for t in &media.tracks {
                full(o, b"trex", 0, 0, |o| {
                    u32be(o, t.id);
                    u32be(o, 1); // default_sample_description_index
                    u32be(o, 0);
                    u32be(o, 0);
                    u32be(o, 0);
                });
            }
        });
    });
    out
}

fn trak(o: &mut Vec<u8>, t: &MediaTrack) {
    let (w, h) = match &t.codec {
        Codec::Video(v) => (v.width, v.height),
        Codec::Audio(_) => (0, 0),
    };
    bx(o, b"trak", |o| {
        // Flags: enabled, in movie, in preview.
        full(o, b"tkhd", 0, 7, |o| {
            u32be(o, 0);
            u32be(o, 0);
            u32be(o, t.id);
            u32be(o, 0); // reserved
            u32be(o, 0); // duration
            o.extend_from_slice(&[0; 8]);
            u16be(o, 0); // layer
            u16be(o, if t.is_video() { 0 } else { 1 }); // alternate_group
            u16be(o, if t.is_video() { 0 } else { 0x0100 }); // volume
            u16be(o, 0);
            MATRIX.iter().for_each(|&m| u32be(o, m));
            u32be(o, w << 16);
            u32be(o, h << 16);
        });
        bx(o, b"mdia", |o| {
            full(o, b"mdhd", 0, 0, |o| {
                u32be(o, 0);
                u32be(o, 0);
                u32be(o, t.timescale());
                u32be(o, 0);
                u16be(o, 0x55C4); // language "und"
                u16be(o, 0);
            });
            full(o, b"hdlr", 0, 0, |o| {
                u32be(o, 0);
                o.extend_from_slice(if t.is_video() { b"vide" } else { b"soun" });
                o.extend_from_slice(&[0; 12]);
                let name: &[u8] = if t.is_video() {
                    b"VideoHandler\0"
                } else {
                    b"SoundHandler\0"
                };
                o.extend_from_slice(name);
            });
            bx(o, b"minf", |o| {
                if t.is_video() {
                    full(o, b"vmhd", 0, 1, |o| o.extend_from_slice(&[0; 8]));
                } else {
                    full(o, b"smhd", 0, 0, |o| o.extend_from_slice(&[0; 4]));
                }
                bx(o, b"dinf", |o| {
                    full(o, b"dref", 0, 0, |o| {
                        u32be(o, 1);
                        // Flag 1: the media is in this file.
                        full(o, b"url ", 0, 1, |_| {});
                    });
                });
                bx(o, b"stbl", |o| {
                    full(o, b"stsd", 0, 0, |o| {
                        u32be(o, 1);
                        sample_entry(o, t);
                    });
                    full(o, b"stts", 0, 0, |o| u32be(o, 0));
                    full(o, b"stsc", 0, 0, |o| u32be(o, 0));
                    full(o, b"stsz", 0, 0, |o| {
                        u32be(o, 0);
                        u32be(o, 0);
                    });
                    full(o, b"stco", 0, 0, |o| u32be(o, 0));
                });
            });
        });
    });
}

fn sample_entry(o: &mut Vec<u8>, t: &MediaTrack) {
    match &t.codec {
        Codec::Video(v) => {
            let (entry, config) = match v.codec {
                VideoCodec::H264 => (b"avc1", b"avcC"),
                VideoCodec::H265 => (b"hvc1", b"hvcC"),
            };
            bx(o, entry, |o| {
                o.extend_from_slice(&[0; 6]);
                u16be(o, 1); // data_reference_index
                o.extend_from_slice(&[0; 16]);
                u16be(o, v.width.min(u16::MAX as u32) as u16);
                u16be(o, v.height.min(u16::MAX as u32) as u16);
                u32be(o, 0x0048_0000); // 72 dpi
                u32be(o, 0x0048_0000);
                u32be(o, 0);
                u16be(o, 1); // frame_count
                o.extend_from_slice(&[0; 32]); // compressorname
                u16be(o, 0x0018); // depth
                u16be(o, 0xFFFF); // pre_defined = -1
                bx(o, config, |o| o.extend_from_slice(&v.record));
            });
        }
        Codec::Audio(a) => {
            bx(o, b"mp4a", |o| {
                o.extend_from_slice(&[0; 6]);
                u16be(o, 1);
                o.extend_from_slice(&[0; 8]);
                u16be(o, a.channels.max(1) as u16);
                u16be(o, 16); // samplesize
                u32be(o, 0);
                // 16.16 fixed point; rates above 65535 Hz do not fit and
                // are read from the AudioSpecificConfig.
                u32be(
                    o,
                    if a.sample_rate < 65536 {
                        a.sample_rate << 16
                    } else {
                        0
                    },
                );
                full(o, b"esds", 0, 0, |o| esds(o, t.id, &a.config));
            });
        }
    }
}

/// Appends an MPEG-4 descriptor: tag, size (in as many 7-bit groups as
/// needed), body.
fn descriptor(o: &mut Vec<u8>, tag: u8, body: &[u8]) {
    o.push(tag);
    let len = body.len();
    let mut groups = vec![(len & 0x7F) as u8];
    let mut rest = len >> 7;
    while rest > 0 {
        groups.push(0x80 | (rest & 0x7F) as u8);
        rest >>= 7;
    }
    groups.reverse();
    o.extend_from_slice(&groups);
    o.extend_from_slice(body);
}

fn esds(o: &mut Vec<u8>, id: u32, asc: &[u8]) {
    let mut dsi = Vec::new();
    descriptor(&mut dsi, 0x05, asc);
    let mut dcd = vec![0x40, 0x15]; // MPEG-4 audio, audio stream
    dcd.extend_from_slice(&[0, 0, 0]); // bufferSizeDB
    dcd.extend_from_slice(&[0; 8]); // maxBitrate, avgBitrate
    dcd.extend_from_slice(&dsi);
    let mut es = Vec::new();
    es.extend_from_slice(&(id as u16).to_be_bytes());
    es.push(0);
    descriptor(&mut es, 0x04, &dcd);
    descriptor(&mut es, 0x06, &[0x02]);
    descriptor(o, 0x03, &es);
}

/// Sample flags of a sync sample (depends on no other) and of others.
const SYNC: u32 = 0x0200_0000;
const NON_SYNC: u32 = 0x0101_0000;

/// The media segments of `fragments`: one moof + mdat per fragment (its
/// samples of every track of `media`), sequence numbers counting up from
/// `sequence`. Times are on a timeline whose zero is `origin_ms` (ms since
/// the epoch; 0 keeps absolute times, as HLS and DASH sessions do). A
/// fragment with no samples of the media's tracks adds nothing.
pub fn media_segments(
    media: &Media,
    fragments: &[Fragment],
    sequence: u32,
    origin_ms: i64,
) -> Result<Vec<u8>, MediaError> {
    let per_track: Vec<Vec<Vec<Sample>>> = media
        .tracks
        .iter()
        .map(|t| track_samples(fragments, t, origin_ms))
        .collect();
    let mut out = Vec::new();
    let mut seq = sequence;
    for i in 0..fragments.len() {
        let tracks: Vec<(&MediaTrack, &[Sample])> = media
            .tracks
            .iter()
            .zip(&per_track)
            .map(|(t, s)| (t, s[i].as_slice()))
            .filter(|(_, s)| !s.is_empty())
            .collect();
        if tracks.is_empty() {
            continue;
        }
        fragment(&mut out, seq, &tracks)?;
        seq = seq.wrapping_add(1);
    }
    Ok(out)
}

fn fragment(
    out: &mut Vec<u8>,
    seq: u32,
    tracks: &[(&MediaTrack, &[Sample])],
) -> Result<(), MediaError> {
    // Sample payloads first: video frames in MP4's framing.
    let mut payloads: Vec<Vec<bytes::Bytes>> = Vec::with_capacity(tracks.len());
    for (t, samples) in tracks {
        let mut p = Vec::with_capacity(samples.len());
        for s in samples.iter() {
            p.push(match &t.codec {
                Codec::Video(v) => v.to_length_prefixed(&s.data)?,
                Codec::Audio(_) => s.data.clone(),
            });
        }
        payloads.push(p);
    }
    let moof_start = out.len();
    let mut offset_fields = Vec::with_capacity(tracks.len());
    bx(out, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| u32be(o, seq));
        for ((t, samples), data) in tracks.iter().zip(&payloads) {
            bx(o, b"traf", |o| {
                // default-base-is-moof: data offsets count from the moof.
                full(o, b"tfhd", 0, 0x02_0000, |o| u32be(o, t.id));
                full(o, b"tfdt", 1, 0, |o| {
                    o.extend_from_slice(&(samples[0].dts.max(0) as u64).to_be_bytes())
                });
                // data offset, duration, size, flags, composition offset.
                full(o, b"trun", 1, 0x0F01, |o| {
                    u32be(o, samples.len() as u32);
                    offset_fields.push(o.len());
                    u32be(o, 0);
                    for (s, d) in samples.iter().zip(data) {
                        u32be(o, s.duration);
                        u32be(o, d.len() as u32);
                        u32be(o, if s.keyframe { SYNC } else { NON_SYNC });
                        o.extend_from_slice(
                            &(s.cto.clamp(i32::MIN as i64, i32::MAX as i64) as i32).to_be_bytes(),
                        );
                    }
                });
            });
        }
    });
    let moof_len = out.len() - moof_start;
    let total: usize = payloads.iter().flatten().map(|d| d.len()).sum();
    let mut pos = moof_len + 8;
    for (field, data) in offset_fields.into_iter().zip(&payloads) {
        out[field..field + 4].copy_from_slice(&(pos as u32).to_be_bytes());
        pos += data.iter().map(|d| d.len()).sum::<usize>();
    }
    u32be(out, (total + 8) as u32);
    out.extend_from_slice(b"mdat");
    for d in payloads.iter().flatten() {
        out.extend_from_slice(d);
    }
    Ok(())
}

/// A whole clip (GetClip): the init segment and one moof + mdat per
/// fragment, its timeline starting at the first fragment's earliest frame.
pub fn clip(media: &Media, fragments: &[Fragment]) -> Result<Vec<u8>, MediaError> {
    let origin = fragments.first().map_or(0, |f| start_ms(media, f));
    let mut out = init_segment(media);
    out.extend_from_slice(&media_segments(media, fragments, 1, origin)?);
    Ok(out)
}

/// The time of a fragment's earliest frame on the played tracks, in ms
/// since the epoch (rounded down).
pub fn start_ms(media: &Media, f: &Fragment) -> i64 {
    f.cluster
        .frames
        .iter()
        .filter(|fr| media.tracks.iter().any(|t| t.number == fr.track))
        .map(|fr| f.frame_ns(fr.timecode))
        .min()
        .map_or(f.producer_ms, |ns| ns.div_euclid(1_000_000) as i64)
}
