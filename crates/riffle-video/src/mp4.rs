//! MP4 (ISO BMFF) files turned into the Matroska PutMedia takes, without
//! re-encoding: the samples of the first H.264 or H.265 video track and
//! the first AAC track, read from the sample tables of `moov` (`stts`,
//! `ctts`, `stsc`, `stsz`, `stco`/`co64`, `stss`, an edit list's start),
//! written as one Cluster per video key frame (every 2 s for audio alone)
//! with millisecond timecodes; the codec configurations (`avcC`, `hvcC`,
//! the AudioSpecificConfig in `esds`) become the tracks' CodecPrivate.
//! Fragmented MP4 (`moof`) is not read.

use crate::mkv::{self, id};

type Result<T> = std::result::Result<T, String>;

/// A box: its type and body.
struct Atom<'a> {
    kind: [u8; 4],
    body: &'a [u8],
}

fn atoms(mut b: &[u8]) -> Result<Vec<Atom<'_>>> {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let size32 = u32::from_be_bytes(b[..4].try_into().expect("4 bytes")) as u64;
        let kind: [u8; 4] = b[4..8].try_into().expect("4 bytes");
        let (header, size) = match size32 {
            0 => (8, b.len() as u64),
            1 => {
                if b.len() < 16 {
                    return Err("a truncated 64-bit box size".into());
                }
                (
                    16,
                    u64::from_be_bytes(b[8..16].try_into().expect("8 bytes")),
                )
            }
            n => (8, n),
        };
        if size < header as u64 || size > b.len() as u64 {
            return Err(format!(
                "box {} runs past its parent",
                String::from_utf8_lossy(&kind)
            ));
        }
        out.push(Atom {
            kind,
            body: &b[header..size as usize],
        });
        b = &b[size as usize..];
    }
    Ok(out)
}

fn child<'a>(b: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>> {
    Ok(atoms(b)?
        .into_iter()
        .find(|a| &a.kind == kind)
        .map(|a| a.body))
}

fn need<'a>(b: &'a [u8], kind: &[u8; 4]) -> Result<&'a [u8]> {
    child(b, kind)?.ok_or_else(|| format!("no {} box", String::from_utf8_lossy(kind)))
}

fn u32_at(b: &[u8], i: usize) -> Result<u32> {
    b.get(i..i + 4)
        .map(|x| u32::from_be_bytes(x.try_into().expect("4 bytes")))
        .ok_or_else(|| "a truncated box".to_owned())
}

fn u64_at(b: &[u8], i: usize) -> Result<u64> {
    b.get(i..i + 8)
        .map(|x| u64::from_be_bytes(x.try_into().expect("8 bytes")))
        .ok_or_else(|| "a truncated box".to_owned())
}

fn u16_at(b: &[u8], i: usize) -> Result<u16> {
    b.get(i..i + 2)
        .map(|x| u16::from_be_bytes(x.try_into().expect("2 bytes")))
        .ok_or_else(|| "a truncated box".to_owned())
}

/// A full box's entries after its version/flags and count.
fn table(b: &[u8], width: usize) -> Result<Vec<&[u8]>> {
    let n = u32_at(b, 4)? as usize;
    let rows = b.get(8..8 + n * width).ok_or("a truncated sample table")?;
    Ok(rows.chunks(width).collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Video,
    Audio,
}

/// One sample: decode and presentation times in the track's timescale,
/// where its bytes are, whether it is a sync sample.
#[derive(Debug, Clone, Copy)]
struct Sample {
    dts: i64,
    pts: i64,
    offset: u64,
    size: u32,
    sync: bool,
}

struct TrackIn {
    kind: Kind,
    codec_id: &'static str,
    codec_private: Vec<u8>,
    timescale: u32,
    width: u16,
    height: u16,
    sample_rate: u32,
    channels: u16,
    samples: Vec<Sample>,
    /// The first sample's duration, for DefaultDuration.
    first_delta: u32,
}

/// The AudioSpecificConfig in an `esds` box's descriptors.
fn audio_specific_config(esds: &[u8]) -> Result<Vec<u8>> {
    // Skip version/flags, then walk descriptors (tag, expandable size).
    let mut b = esds.get(4..).ok_or("a truncated esds")?;
    fn descriptor(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let tag = *b.first()?;
        let mut len = 0usize;
        let mut i = 1;
        loop {
            let x = *b.get(i)?;
            len = (len << 7) | (x & 0x7F) as usize;
            i += 1;
            if x & 0x80 == 0 || i > 4 {
                break;
            }
        }
        let body = b.get(i..i + len)?;
        Some((tag, body, &b[i + len..]))
    }
    while let Some((tag, body, rest)) = descriptor(b) {
        match tag {
            // ES_Descriptor: ES_ID, flags (and optional fields), then
            // nested descriptors.
            0x03 => {
                let flags = *body.get(2).ok_or("a truncated ES descriptor")?;
                let mut skip = 3;
                if flags & 0x80 != 0 {
                    skip += 2;
                }
                if flags & 0x40 != 0 {
                    skip += 1 + *body.get(skip).ok_or("a truncated ES descriptor")? as usize;
                }
                if flags & 0x20 != 0 {
                    skip += 2;
                }
                b = body.get(skip..).ok_or("a truncated ES descriptor")?;
                continue;
            }
            // DecoderConfigDescriptor: 13 bytes, then DecoderSpecificInfo.
            0x04 => {
                b = body.get(13..).ok_or("a truncated decoder config")?;
                continue;
            }
            0x05 => return Ok(body.to_vec()),
            _ => b = rest,
        }
    }
    Err("no AudioSpecificConfig in esds".into())
}

fn read_track(trak: &[u8], file_len: usize) -> Result<Option<TrackIn>> {
    let mdia = need(trak, b"mdia")?;
    let mdhd = need(mdia, b"mdhd")?;
    let timescale = if mdhd.first() == Some(&1) {
        u32_at(mdhd, 20)?
    } else {
        u32_at(mdhd, 12)?
    };
    if timescale == 0 {
        return Err("a track with a timescale of 0".into());
    }
    let hdlr = need(mdia, b"hdlr")?;
    let handler = hdlr.get(8..12).ok_or("a truncated hdlr")?;
    let stbl = need(need(mdia, b"minf")?, b"stbl")?;
    let stsd = need(stbl, b"stsd")?;
    let entries = atoms(stsd.get(8..).ok_or("a truncated stsd")?)?;
    let Some(entry) = entries.first() else {
        return Ok(None);
    };
    let mut t = TrackIn {
        kind: Kind::Video,
        codec_id: "",
        codec_private: Vec::new(),
        timescale,
        width: 0,
        height: 0,
        sample_rate: 0,
        channels: 0,
        samples: Vec::new(),
        first_delta: 0,
    };
    match (handler, &entry.kind) {
        (b"vide", b"avc1" | b"avc3" | b"hvc1" | b"hev1") => {
            // VisualSampleEntry: 78 bytes before its child boxes.
            let e = entry.body;
            t.width = u16_at(e, 24)?;
            t.height = u16_at(e, 26)?;
            let kids = e.get(78..).ok_or("a truncated video sample entry")?;
            let (config, codec) = if matches!(&entry.kind, b"avc1" | b"avc3") {
                (need(kids, b"avcC")?, "V_MPEG4/ISO/AVC")
            } else {
                (need(kids, b"hvcC")?, "V_MPEGH/ISO/HEVC")
            };
            t.codec_private = config.to_vec();
            t.codec_id = codec;
        }
        (b"soun", b"mp4a") => {
            // AudioSampleEntry: 28 bytes before its child boxes.
            let e = entry.body;
            t.kind = Kind::Audio;
            t.channels = u16_at(e, 16)?;
            t.sample_rate = u32_at(e, 24)? >> 16;
            let kids = e.get(28..).ok_or("a truncated audio sample entry")?;
            t.codec_private = audio_specific_config(need(kids, b"esds")?)?;
            t.codec_id = "A_AAC";
        }
        _ => return Ok(None),
    }
    // Sizes.
    let stsz = need(stbl, b"stsz")?;
    let fixed = u32_at(stsz, 4)?;
    let count = u32_at(stsz, 8)? as usize;
    // A sample has at least one byte: no table may claim more samples
    // than the file has bytes.
    if count > file_len {
        return Err("a sample count larger than the file".into());
    }
    let sizes: Vec<u32> = if fixed != 0 {
        vec![fixed; count]
    } else {
        let rows = stsz.get(12..12 + count * 4).ok_or("a truncated stsz")?;
        rows.chunks(4)
            .map(|r| u32::from_be_bytes(r.try_into().expect("4 bytes")))
            .collect()
    };
    // Decode times.
    let mut dts = Vec::with_capacity(count);
    let mut at = 0i64;
    for row in table(need(stbl, b"stts")?, 8)? {
        let (count, delta) = (u32_at(row, 0)?, u32_at(row, 4)?);
        if t.first_delta == 0 {
            t.first_delta = delta;
        }
        for _ in 0..count.min((sizes.len() - dts.len().min(sizes.len())) as u32) {
            dts.push(at);
            at += delta as i64;
        }
    }
    let n = dts.len();
    // Composition offsets.
    let mut cto = vec![0i64; n];
    if let Some(ctts) = child(stbl, b"ctts")? {
        let signed = ctts.first() == Some(&1);
        let mut i = 0;
        for row in table(ctts, 8)? {
            let count = u32_at(row, 0)?;
            let raw = u32_at(row, 4)?;
            let off = if signed {
                raw as i32 as i64
            } else {
                raw as i64
            };
            for _ in 0..count.min((n - i.min(n)) as u32) {
                cto[i] = off;
                i += 1;
            }
        }
    }
    // Chunk offsets.
    let chunks: Vec<u64> = if let Some(stco) = child(stbl, b"stco")? {
        table(stco, 4)?
            .into_iter()
            .map(|r| u32_at(r, 0).map(|v| v as u64))
            .collect::<Result<_>>()?
    } else {
        table(need(stbl, b"co64")?, 8)?
            .into_iter()
            .map(|r| u64_at(r, 0))
            .collect::<Result<_>>()?
    };
    // Samples per chunk.
    let stsc: Vec<(u32, u32)> = table(need(stbl, b"stsc")?, 12)?
        .into_iter()
        .map(|r| Ok((u32_at(r, 0)?, u32_at(r, 4)?)))
        .collect::<Result<_>>()?;
    let sync: Option<Vec<u32>> = match child(stbl, b"stss")? {
        Some(stss) => Some(
            table(stss, 4)?
                .into_iter()
                .map(|r| u32_at(r, 0))
                .collect::<Result<_>>()?,
        ),
        None => None,
    };
    // Where the presentation starts (an edit list's first media time).
    let shift = match child(trak, b"edts")?
        .map(|e| child(e, b"elst"))
        .transpose()?
    {
        Some(Some(elst)) => {
            let v1 = elst.first() == Some(&1);
            let rows = table(elst, if v1 { 20 } else { 12 })?;
            rows.iter()
                .find_map(|r| {
                    let mt = if v1 {
                        u64_at(r, 8).ok()? as i64
                    } else {
                        u32_at(r, 4).ok()? as i32 as i64
                    };
                    (mt >= 0).then_some(mt)
                })
                .unwrap_or(0)
        }
        _ => 0,
    };
    let mut sample = 0usize;
    for (ci, &offset) in chunks.iter().enumerate() {
        let chunk_no = ci as u32 + 1;
        let per = stsc
            .iter()
            .rev()
            .find(|(first, _)| *first <= chunk_no)
            .map_or(0, |(_, n)| *n);
        let mut at = offset;
        for _ in 0..per {
            if sample >= n || sample >= sizes.len() {
                break;
            }
            let size = sizes[sample];
            t.samples.push(Sample {
                dts: dts[sample] - shift,
                pts: dts[sample] + cto[sample] - shift,
                offset: at,
                size,
                sync: t.kind == Kind::Audio
                    || sync
                        .as_ref()
                        .is_none_or(|s| s.binary_search(&(sample as u32 + 1)).is_ok()),
            });
            at += size as u64;
            sample += 1;
        }
    }
    Ok(Some(t))
}

fn ms(t: &TrackIn, ticks: i64) -> i64 {
    (ticks as i128 * 1000 / t.timescale as i128) as i64
}

fn simple_block(track: u8, rel: i64, key: bool, data: &[u8]) -> Result<Vec<u8>> {
    let rel = i16::try_from(rel).map_err(|_| "a frame more than 32 s from its cluster's start")?;
    let mut b = Vec::with_capacity(data.len() + 4);
    b.push(0x80 | track);
    b.extend_from_slice(&rel.to_be_bytes());
    b.push(if key { 0x80 } else { 0 });
    b.extend_from_slice(data);
    let mut out = Vec::with_capacity(b.len() + 9);
    mkv::put_element(&mut out, id::SIMPLE_BLOCK, &b);
    Ok(out)
}

/// An MP4 file as Matroska with the same samples.
pub fn to_matroska(data: &[u8]) -> Result<Vec<u8>> {
    let top = atoms(data)?;
    if top.iter().any(|a| &a.kind == b"moof") {
        return Err(
            "fragmented MP4 is not read; remux it first: ffmpeg -i in.mp4 -c copy out.mkv".into(),
        );
    }
    let moov = top
        .iter()
        .find(|a| &a.kind == b"moov")
        .ok_or("no moov box: not an MP4 file")?;
    let mut video = None;
    let mut audio = None;
    for trak in atoms(moov.body)?.into_iter().filter(|a| &a.kind == b"trak") {
        if let Some(t) = read_track(trak.body, data.len())? {
            match t.kind {
                Kind::Video if video.is_none() => video = Some(t),
                Kind::Audio if audio.is_none() => audio = Some(t),
                _ => {}
            }
        }
    }
    if video.is_none() && audio.is_none() {
        return Err("no H.264, H.265 or AAC track".into());
    }
    let tracks: Vec<(u8, &TrackIn)> = [video.as_ref(), audio.as_ref()]
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, t)| (i as u8 + 1, t))
        .collect();
    let bytes = |s: &Sample| -> Result<&[u8]> {
        data.get(s.offset as usize..(s.offset + s.size as u64) as usize)
            .ok_or_else(|| "a sample outside the file".to_owned())
    };

    let mut out = mkv::ebml_header();
    mkv::put_unknown_size(&mut out, id::SEGMENT);
    let mut info = Vec::new();
    mkv::put_uint(&mut info, id::TIMECODE_SCALE, mkv::DEFAULT_TIMECODE_SCALE);
    mkv::put_element(&mut info, id::MUXING_APP, b"riffle");
    mkv::put_element(&mut info, id::WRITING_APP, b"riffle");
    mkv::put_element(&mut out, id::INFO, &info);
    let mut entries = Vec::new();
    for (number, t) in &tracks {
        let mut e = Vec::new();
        mkv::put_uint(&mut e, id::TRACK_NUMBER, *number as u64);
        mkv::put_uint(&mut e, id::TRACK_UID, *number as u64);
        mkv::put_uint(
            &mut e,
            id::TRACK_TYPE,
            if t.kind == Kind::Video { 1 } else { 2 },
        );
        mkv::put_element(&mut e, id::CODEC_ID, t.codec_id.as_bytes());
        mkv::put_element(&mut e, id::CODEC_PRIVATE, &t.codec_private);
        if t.first_delta > 0 && t.kind == Kind::Video {
            mkv::put_uint(
                &mut e,
                id::DEFAULT_DURATION,
                t.first_delta as u64 * 1_000_000_000 / t.timescale as u64,
            );
        }
        let mut sub = Vec::new();
        if t.kind == Kind::Video {
            mkv::put_uint(&mut sub, id::PIXEL_WIDTH, t.width as u64);
            mkv::put_uint(&mut sub, id::PIXEL_HEIGHT, t.height as u64);
            mkv::put_element(&mut e, id::VIDEO, &sub);
        } else {
            sub.extend_from_slice(&[0xB5, 0x88]);
            sub.extend_from_slice(&(t.sample_rate as f64).to_be_bytes());
            mkv::put_uint(&mut sub, id::CHANNELS, t.channels as u64);
            mkv::put_element(&mut e, id::AUDIO, &sub);
        }
        mkv::put_element(&mut entries, id::TRACK_ENTRY, &e);
    }
    mkv::put_element(&mut out, id::TRACKS, &entries);

    // Cluster starts: each video key frame's time, or every 2 s.
    let mut starts: Vec<i64> = match &video {
        Some(v) => v
            .samples
            .iter()
            .filter(|s| s.sync)
            .map(|s| ms(v, s.pts))
            .collect(),
        None => {
            let a = audio.as_ref().expect("a track");
            let end = a.samples.last().map_or(0, |s| ms(a, s.pts));
            (0..=end / 2000).map(|k| k * 2000).collect()
        }
    };
    starts.sort_unstable();
    starts.dedup();
    if starts.is_empty() {
        return Err("no key frame to start a fragment at".into());
    }
    // Every block, in decode order per track, placed in the cluster whose
    // span holds its time (the first cluster takes what comes earlier).
    let mut clusters: Vec<Vec<(i64, usize, Vec<u8>)>> = vec![Vec::new(); starts.len()];
    for (number, t) in &tracks {
        let mut cluster = 0usize;
        for (k, s) in t.samples.iter().enumerate() {
            let at = ms(t, s.pts);
            if t.kind == Kind::Video {
                // Video follows decode order: a key frame opens its cluster.
                if s.sync {
                    cluster = starts.partition_point(|&c| c <= at).saturating_sub(1);
                }
            } else {
                cluster = starts.partition_point(|&c| c <= at).saturating_sub(1);
            }
            let rel = at - starts[cluster];
            let block = simple_block(*number, rel, s.sync, bytes(s)?)?;
            // Blocks go in decode order: video by its decode times (B
            // frames keep their place), audio merged in by time.
            clusters[cluster].push((ms(t, s.dts), k * 2 + *number as usize, block));
        }
    }
    for (c, mut blocks) in clusters.into_iter().enumerate() {
        if blocks.is_empty() {
            continue;
        }
        blocks.sort_by_key(|(at, order, _)| (*at, *order));
        let mut body = Vec::new();
        let start = u64::try_from(starts[c]).map_err(|_| "a key frame before time 0")?;
        mkv::put_uint(&mut body, id::TIMECODE, start);
        for (_, _, b) in &blocks {
            body.extend_from_slice(b);
        }
        mkv::put_element(&mut out, id::CLUSTER, &body);
    }
    Ok(out)
}
