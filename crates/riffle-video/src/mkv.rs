//! Matroska as Kinesis Video carries it: EBML element headers, the
//! elements a producer sends (EBML header, Segment, Info, Tracks, Clusters
//! of SimpleBlocks or BlockGroups, Tags), a push demuxer that reads an
//! upload as it arrives, and the writers GetMedia's output needs.
//!
//! An upload is a sequence of MKV documents. Each Cluster is one fragment;
//! Segments and Clusters may have an unknown size (the producer SDK streams
//! them), in which case a Cluster ends where an element that cannot be its
//! child begins, or where the upload ends.

use bytes::{Bytes, BytesMut};

/// Element ids (with their length marker bits, as written).
pub mod id {
    pub const EBML: u32 = 0x1A45_DFA3;
    pub const EBML_VERSION: u32 = 0x4286;
    pub const EBML_READ_VERSION: u32 = 0x42F7;
    pub const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
    pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const DOC_TYPE_VERSION: u32 = 0x4287;
    pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub const SEGMENT: u32 = 0x1853_8067;
    pub const SEEK_HEAD: u32 = 0x114D_9B74;
    pub const INFO: u32 = 0x1549_A966;
    pub const TIMECODE_SCALE: u32 = 0x2A_D7B1;
    pub const SEGMENT_UID: u32 = 0x73A4;
    pub const MUXING_APP: u32 = 0x4D80;
    pub const WRITING_APP: u32 = 0x5741;
    pub const TRACKS: u32 = 0x1654_AE6B;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_UID: u32 = 0x73C5;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const TRACK_NAME: u32 = 0x536E;
    pub const CODEC_ID: u32 = 0x86;
    pub const CODEC_PRIVATE: u32 = 0x63A2;
    pub const CODEC_NAME: u32 = 0x25_8688;
    pub const DEFAULT_DURATION: u32 = 0x23_E383;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const AUDIO: u32 = 0xE1;
    pub const SAMPLING_FREQUENCY: u32 = 0xB5;
    pub const CHANNELS: u32 = 0x9F;
    pub const CLUSTER: u32 = 0x1F43_B675;
    pub const TIMECODE: u32 = 0xE7;
    pub const POSITION: u32 = 0xA7;
    pub const PREV_SIZE: u32 = 0xAB;
    pub const SILENT_TRACKS: u32 = 0x5854;
    pub const SIMPLE_BLOCK: u32 = 0xA3;
    pub const BLOCK_GROUP: u32 = 0xA0;
    pub const BLOCK: u32 = 0xA1;
    pub const BLOCK_DURATION: u32 = 0x9B;
    pub const REFERENCE_BLOCK: u32 = 0xFB;
    pub const ENCRYPTED_BLOCK: u32 = 0xAF;
    pub const CUES: u32 = 0x1C53_BB6B;
    pub const CHAPTERS: u32 = 0x1043_A770;
    pub const ATTACHMENTS: u32 = 0x1941_A469;
    pub const TAGS: u32 = 0x1254_C367;
    pub const TAG: u32 = 0x7373;
    pub const TARGETS: u32 = 0x63C0;
    pub const SIMPLE_TAG: u32 = 0x67C8;
    pub const TAG_NAME: u32 = 0x45A3;
    pub const TAG_STRING: u32 = 0x4487;
    pub const VOID: u32 = 0xEC;
    pub const CRC32: u32 = 0xBF;
}

/// The size field of an element whose size is unknown (all ones).
pub const UNKNOWN_SIZE: u64 = u64::MAX;

/// Matroska's default TimecodeScale: timecodes in milliseconds.
pub const DEFAULT_TIMECODE_SCALE: u64 = 1_000_000;

/// Why MKV data could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MkvError {
    #[error("invalid MKV data: {0}")]
    Invalid(String),
    #[error("an element of {size} bytes is larger than {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
}

fn invalid(m: impl Into<String>) -> MkvError {
    MkvError::Invalid(m.into())
}

/// An element header: id, size ([`UNKNOWN_SIZE`] when unknown) and how
/// many bytes the header took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u32,
    pub size: u64,
    pub len: usize,
}

/// Reads the element header at the start of `b`: `Ok(None)` when more bytes
/// are needed.
pub fn read_header(b: &[u8]) -> Result<Option<Header>, MkvError> {
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return Err(invalid(format!("element id starting with 0x{first:02x}")));
    }
    if b.len() < id_len + 1 {
        return Ok(None);
    }
    let id = b[..id_len].iter().fold(0u32, |a, &x| (a << 8) | x as u32);
    let s0 = b[id_len];
    let size_len = s0.leading_zeros() as usize + 1;
    if size_len > 8 {
        return Err(invalid("element size of more than 8 bytes"));
    }
    if b.len() < id_len + size_len {
        return Ok(None);
    }
    let marker_mask = if size_len == 8 { 0 } else { 0xFFu8 >> size_len };
    let mut size = (s0 & marker_mask) as u64;
    let mut all_ones = (s0 & marker_mask) == marker_mask;
    for &x in &b[id_len + 1..id_len + size_len] {
        size = (size << 8) | x as u64;
        all_ones &= x == 0xFF;
    }
    Ok(Some(Header {
        id,
        size: if all_ones { UNKNOWN_SIZE } else { size },
        len: id_len + size_len,
    }))
}

/// The children of a known-size element body, as (id, body) pairs.
pub fn children(mut b: &[u8]) -> impl Iterator<Item = Result<(u32, &[u8]), MkvError>> {
    std::iter::from_fn(move || {
        if b.is_empty() {
            return None;
        }
        let h = match read_header(b) {
            Ok(Some(h)) => h,
            Ok(None) => {
                b = &[];
                return Some(Err(invalid("a truncated element header")));
            }
            Err(e) => {
                b = &[];
                return Some(Err(e));
            }
        };
        if h.size == UNKNOWN_SIZE || h.size > (b.len() - h.len) as u64 {
            b = &[];
            return Some(Err(invalid(format!(
                "element 0x{:x} runs past its parent",
                h.id
            ))));
        }
        let end = h.len + h.size as usize;
        let body = &b[h.len..end];
        b = &b[end..];
        Some(Ok((h.id, body)))
    })
}

/// An unsigned integer element's value.
pub fn uint(b: &[u8]) -> Result<u64, MkvError> {
    if b.len() > 8 {
        return Err(invalid("an unsigned integer of more than 8 bytes"));
    }
    Ok(b.iter().fold(0u64, |a, &x| (a << 8) | x as u64))
}

/// A float element's value (4 or 8 bytes).
pub fn float(b: &[u8]) -> Result<f64, MkvError> {
    match b.len() {
        0 => Ok(0.0),
        4 => Ok(f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64),
        8 => Ok(f64::from_be_bytes(b.try_into().expect("eight bytes"))),
        n => Err(invalid(format!("a float of {n} bytes"))),
    }
}

/// A string element's value (trailing NULs dropped).
pub fn string(b: &[u8]) -> String {
    let end = b.iter().rposition(|&x| x != 0).map_or(0, |p| p + 1);
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// One track of a stream's Tracks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Track {
    pub number: u64,
    pub uid: u64,
    /// 1 video, 2 audio, 17 subtitle, ...
    pub kind: u64,
    pub name: String,
    pub codec_id: String,
    pub codec_private: Bytes,
    pub codec_name: String,
    /// Nanoseconds per frame, when the producer gives it.
    pub default_duration_ns: u64,
    pub width: u32,
    pub height: u32,
    pub sampling_hz: f64,
    pub channels: u32,
}

impl Track {
    pub fn is_video(&self) -> bool {
        self.kind == 1
    }

    pub fn is_audio(&self) -> bool {
        self.kind == 2
    }
}

/// The tracks a Tracks element's body lists.
pub fn parse_tracks(body: &[u8]) -> Result<Vec<Track>, MkvError> {
    let mut out = Vec::new();
    for child in children(body) {
        let (cid, entry) = child?;
        if cid != id::TRACK_ENTRY {
            continue;
        }
        let mut t = Track {
            sampling_hz: 8000.0,
            channels: 1,
            ..Track::default()
        };
        for c in children(entry) {
            let (eid, v) = c?;
            match eid {
                id::TRACK_NUMBER => t.number = uint(v)?,
                id::TRACK_UID => t.uid = uint(v)?,
                id::TRACK_TYPE => t.kind = uint(v)?,
                id::TRACK_NAME => t.name = string(v),
                id::CODEC_ID => t.codec_id = string(v),
                id::CODEC_PRIVATE => t.codec_private = Bytes::copy_from_slice(v),
                id::CODEC_NAME => t.codec_name = string(v),
                id::DEFAULT_DURATION => t.default_duration_ns = uint(v)?,
                id::VIDEO => {
                    for vc in children(v) {
                        let (vid, vv) = vc?;
                        match vid {
                            id::PIXEL_WIDTH => t.width = uint(vv)? as u32,
                            id::PIXEL_HEIGHT => t.height = uint(vv)? as u32,
                            _ => {}
                        }
                    }
                }
                id::AUDIO => {
                    for ac in children(v) {
                        let (aid, av) = ac?;
                        match aid {
                            id::SAMPLING_FREQUENCY => t.sampling_hz = float(av)?,
                            id::CHANNELS => t.channels = uint(av)? as u32,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if t.number == 0 {
            return Err(invalid("a track without a TrackNumber"));
        }
        out.push(t);
    }
    Ok(out)
}

/// The TimecodeScale an Info element's body gives.
pub fn parse_timecode_scale(body: &[u8]) -> Result<u64, MkvError> {
    for c in children(body) {
        let (cid, v) = c?;
        if cid == id::TIMECODE_SCALE {
            let s = uint(v)?;
            if s == 0 {
                return Err(invalid("a TimecodeScale of 0"));
            }
            return Ok(s);
        }
    }
    Ok(DEFAULT_TIMECODE_SCALE)
}

/// One frame of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub track: u64,
    /// In TimecodeScale units: the cluster's timecode plus the block's.
    pub timecode: i64,
    pub keyframe: bool,
    /// BlockDuration, in TimecodeScale units, when given.
    pub duration: Option<u64>,
    pub data: Bytes,
}

/// A cluster's timecode and frames (laced blocks split into frames).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterFrames {
    pub timecode: u64,
    pub frames: Vec<Frame>,
}

/// Reads a Cluster element's body.
pub fn parse_cluster(body: &Bytes) -> Result<ClusterFrames, MkvError> {
    let mut out = ClusterFrames::default();
    let base = body.as_ptr() as usize;
    let slice = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        body.slice(start..start + s.len())
    };
    for c in children(body) {
        let (cid, v) = c?;
        match cid {
            id::TIMECODE => out.timecode = uint(v)?,
            id::SIMPLE_BLOCK => {
                let b = parse_block(&slice(v))?;
                let keyframe = b.flags & 0x80 != 0;
                push_frames(&mut out, b, keyframe, None);
            }
            id::BLOCK_GROUP => {
                let mut block = None;
                let mut referenced = false;
                let mut duration = None;
                for g in children(v) {
                    let (gid, gv) = g?;
                    match gid {
                        id::BLOCK => block = Some(parse_block(&slice(gv))?),
                        id::REFERENCE_BLOCK => referenced = true,
                        id::BLOCK_DURATION => duration = Some(uint(gv)?),
                        _ => {}
                    }
                }
                let block = block.ok_or_else(|| invalid("a BlockGroup without a Block"))?;
                push_frames(&mut out, block, !referenced, duration);
            }
            _ => {}
        }
    }
    Ok(out)
}

fn push_frames(out: &mut ClusterFrames, b: Block, keyframe: bool, duration: Option<u64>) {
    let timecode = out.timecode as i64 + b.relative as i64;
    let n = b.frames.len();
    for (i, data) in b.frames.into_iter().enumerate() {
        out.frames.push(Frame {
            track: b.track,
            timecode,
            keyframe,
            // A laced block's duration covers all its frames.
            duration: if i + 1 == n { duration } else { None },
            data,
        });
    }
}

/// A Block or SimpleBlock: track, relative timecode, flags and its frames.
struct Block {
    track: u64,
    relative: i16,
    flags: u8,
    frames: Vec<Bytes>,
}

/// Reads a data-size style variable integer (marker removed).
fn vint(b: &[u8]) -> Result<(u64, usize), MkvError> {
    let first = *b.first().ok_or_else(|| invalid("a truncated block"))?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || b.len() < len {
        return Err(invalid("a malformed variable-size integer in a block"));
    }
    let mask = if len == 8 { 0 } else { 0xFFu8 >> len };
    let v = b[1..len]
        .iter()
        .fold((first & mask) as u64, |a, &x| (a << 8) | x as u64);
    Ok((v, len))
}

fn parse_block(b: &Bytes) -> Result<Block, MkvError> {
    let (track, n) = vint(b)?;
    if b.len() < n + 3 {
        return Err(invalid("a truncated block header"));
    }
    let relative = i16::from_be_bytes([b[n], b[n + 1]]);
    let flags = b[n + 2];
    let mut pos = n + 3;
    let lacing = (flags >> 1) & 3;
    let frames = if lacing == 0 {
        vec![b.slice(pos..)]
    } else {
        let count = *b.get(pos).ok_or_else(|| invalid("a truncated lace"))? as usize + 1;
        pos += 1;
        let mut sizes = Vec::with_capacity(count);
        match lacing {
            // Xiph lacing: sizes as runs of 255.
            1 => {
                for _ in 0..count - 1 {
                    let mut s = 0usize;
                    loop {
                        let x = *b.get(pos).ok_or_else(|| invalid("a truncated lace"))?;
                        pos += 1;
                        s += x as usize;
                        if x != 255 {
                            break;
                        }
                    }
                    sizes.push(s);
                }
            }
            // EBML lacing: the first size, then signed differences.
            3 => {
                let (first, l) = vint(&b[pos.min(b.len())..])?;
                pos += l;
                sizes.push(first as usize);
                let mut prev = first as i64;
                for _ in 1..count - 1 {
                    let (raw, l) = vint(&b[pos.min(b.len())..])?;
                    pos += l;
                    let bias = (1i64 << (7 * l - 1)) - 1;
                    prev += raw as i64 - bias;
                    if prev < 0 {
                        return Err(invalid("a negative laced frame size"));
                    }
                    sizes.push(prev as usize);
                }
            }
            // Fixed-size lacing.
            _ => {
                let rest = b.len().saturating_sub(pos);
                if rest % count != 0 {
                    return Err(invalid("fixed-size lacing that does not divide the block"));
                }
                sizes = vec![rest / count; count - 1];
            }
        }
        let used: usize = sizes.iter().sum();
        if pos + used > b.len() {
            return Err(invalid("laced frames run past their block"));
        }
        let mut frames = Vec::with_capacity(count);
        for s in sizes {
            frames.push(b.slice(pos..pos + s));
            pos += s;
        }
        frames.push(b.slice(pos..));
        frames
    };
    Ok(Block {
        track,
        relative,
        flags,
        frames,
    })
}

/// Whether an element id can be a child of a Cluster.
fn is_cluster_child(eid: u32) -> bool {
    matches!(
        eid,
        id::TIMECODE
            | id::POSITION
            | id::PREV_SIZE
            | id::SILENT_TRACKS
            | id::SIMPLE_BLOCK
            | id::BLOCK_GROUP
            | id::ENCRYPTED_BLOCK
            | id::VOID
            | id::CRC32
    )
}

/// The stream description an upload gives before its clusters.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamHeader {
    pub timecode_scale: u64,
    pub tracks: Vec<Track>,
    /// The Info and Tracks elements as received.
    pub raw: Bytes,
}

/// What the demuxer found.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new stream header (the first, or one a new MKV document brings).
    Header(std::sync::Arc<StreamHeader>),
    /// A cluster began; its timecode once read.
    ClusterStart { timecode: u64 },
    /// A whole cluster: its timecode and its children as received.
    Cluster { timecode: u64, body: Bytes },
    /// A Segment-level Tags element, as received.
    Tags(Bytes),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Before an EBML header.
    Top,
    /// Inside a Segment.
    Segment,
    /// Inside a Cluster of unknown size.
    Cluster,
}

/// Reads an upload incrementally: [`Demuxer::push`] takes bytes as they
/// arrive and returns what became complete.
pub struct Demuxer {
    buf: BytesMut,
    level: Level,
    /// Bytes of a known-size element to skip that have not arrived yet.
    skip: u64,
    info: Option<Bytes>,
    tracks: Option<Bytes>,
    cluster: BytesMut,
    cluster_timecode: Option<u64>,
    /// The largest element (or unknown-size cluster) held in memory.
    limit: u64,
}

impl Demuxer {
    /// A demuxer that refuses elements larger than `limit` bytes.
    pub fn new(limit: u64) -> Demuxer {
        Demuxer {
            buf: BytesMut::new(),
            level: Level::Top,
            skip: 0,
            info: None,
            tracks: None,
            cluster: BytesMut::new(),
            cluster_timecode: None,
            limit,
        }
    }

    /// Bytes held that are not part of a finished event yet.
    pub fn pending(&self) -> usize {
        self.buf.len() + self.cluster.len()
    }

    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Event>, MkvError> {
        let mut data = data;
        if self.skip > 0 {
            let n = (self.skip as usize).min(data.len());
            self.skip -= n as u64;
            data = &data[n..];
        }
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        self.run(&mut out)?;
        Ok(out)
    }

    /// The upload ended: a cluster of unknown size ends with it.
    pub fn finish(&mut self) -> Result<Vec<Event>, MkvError> {
        let mut out = Vec::new();
        if self.level == Level::Cluster {
            self.end_cluster(&mut out)?;
        }
        if !self.buf.is_empty() || self.skip > 0 {
            return Err(invalid("the upload ended inside an element"));
        }
        Ok(out)
    }

    fn run(&mut self, out: &mut Vec<Event>) -> Result<(), MkvError> {
        while self.skip == 0 {
            let Some(h) = read_header(&self.buf)? else {
                return Ok(());
            };
            match self.level {
                Level::Top => {
                    if h.id != id::EBML {
                        return Err(invalid(format!(
                            "expected an EBML header, found element 0x{:x}",
                            h.id
                        )));
                    }
                    let Some(_) = self.take_whole(h)? else {
                        return Ok(());
                    };
                    self.level = Level::Segment;
                    self.info = None;
                    self.tracks = None;
                }
                Level::Segment => match h.id {
                    id::EBML => self.level = Level::Top,
                    // Entered, whatever its size: its children follow.
                    id::SEGMENT => {
                        let _ = self.buf.split_to(h.len);
                    }
                    id::CLUSTER if h.size == UNKNOWN_SIZE => {
                        let _ = self.buf.split_to(h.len);
                        self.level = Level::Cluster;
                        self.cluster.clear();
                        self.cluster_timecode = None;
                    }
                    id::CLUSTER => {
                        let Some(body) = self.take_whole(h)? else {
                            return Ok(());
                        };
                        self.cluster.clear();
                        self.cluster.extend_from_slice(&body);
                        self.cluster_timecode = None;
                        for c in children(&body) {
                            let (cid, v) = c?;
                            if cid == id::TIMECODE {
                                let tc = uint(v)?;
                                self.cluster_timecode = Some(tc);
                                out.push(Event::ClusterStart { timecode: tc });
                                break;
                            }
                        }
                        self.end_cluster(out)?;
                    }
                    id::INFO | id::TRACKS => {
                        let Some(whole) = self.take_whole_raw(h)? else {
                            return Ok(());
                        };
                        if h.id == id::INFO {
                            self.info = Some(whole);
                        } else {
                            self.tracks = Some(whole);
                            self.emit_header(out)?;
                        }
                    }
                    // Fragment metadata: it annotates the next cluster.
                    id::TAGS => {
                        let Some(whole) = self.take_whole_raw(h)? else {
                            return Ok(());
                        };
                        out.push(Event::Tags(whole));
                    }
                    _ if h.size == UNKNOWN_SIZE => {
                        return Err(invalid(format!(
                            "element 0x{:x} of unknown size inside a Segment",
                            h.id
                        )));
                    }
                    // SeekHead, Cues, Void, Chapters, ...: not kept.
                    _ => {
                        let total = h.len as u64 + h.size;
                        let have = self.buf.len() as u64;
                        if have >= total {
                            let _ = self.buf.split_to(total as usize);
                        } else {
                            self.buf.clear();
                            self.skip = total - have;
                        }
                    }
                },
                Level::Cluster => {
                    if !is_cluster_child(h.id) {
                        self.end_cluster(out)?;
                        continue;
                    }
                    if h.size == UNKNOWN_SIZE {
                        return Err(invalid(format!(
                            "cluster child 0x{:x} of unknown size",
                            h.id
                        )));
                    }
                    let total = h.len as u64 + h.size;
                    if self.cluster.len() as u64 + total > self.limit {
                        return Err(MkvError::TooLarge {
                            size: self.cluster.len() as u64 + total,
                            limit: self.limit,
                        });
                    }
                    if (self.buf.len() as u64) < total {
                        return Ok(());
                    }
                    let child = self.buf.split_to(total as usize);
                    if h.id == id::TIMECODE && self.cluster_timecode.is_none() {
                        let tc = uint(&child[h.len..])?;
                        self.cluster_timecode = Some(tc);
                        out.push(Event::ClusterStart { timecode: tc });
                    }
                    self.cluster.extend_from_slice(&child);
                }
            }
        }
        Ok(())
    }

    /// The body of a known-size element once all of it arrived.
    fn take_whole(&mut self, h: Header) -> Result<Option<Bytes>, MkvError> {
        Ok(self
            .take_whole_raw(h)?
            .map(|mut whole| whole.split_off(h.len)))
    }

    /// A known-size element, header included, once all of it arrived.
    fn take_whole_raw(&mut self, h: Header) -> Result<Option<Bytes>, MkvError> {
        if h.size == UNKNOWN_SIZE {
            return Err(invalid(format!(
                "element 0x{:x} must have a known size",
                h.id
            )));
        }
        let total = h.len as u64 + h.size;
        if total > self.limit {
            return Err(MkvError::TooLarge {
                size: total,
                limit: self.limit,
            });
        }
        if (self.buf.len() as u64) < total {
            return Ok(None);
        }
        Ok(Some(self.buf.split_to(total as usize).freeze()))
    }

    fn emit_header(&mut self, out: &mut Vec<Event>) -> Result<(), MkvError> {
        let tracks_raw = self.tracks.clone().unwrap_or_default();
        let th = read_header(&tracks_raw)?.ok_or_else(|| invalid("an empty Tracks element"))?;
        let tracks = parse_tracks(&tracks_raw[th.len..])?;
        let (scale, info_raw) = match &self.info {
            Some(info) => {
                let ih = read_header(info)?.ok_or_else(|| invalid("an empty Info element"))?;
                (parse_timecode_scale(&info[ih.len..])?, info.clone())
            }
            None => (DEFAULT_TIMECODE_SCALE, Bytes::new()),
        };
        let mut raw = BytesMut::with_capacity(info_raw.len() + tracks_raw.len());
        raw.extend_from_slice(&info_raw);
        raw.extend_from_slice(&tracks_raw);
        out.push(Event::Header(std::sync::Arc::new(StreamHeader {
            timecode_scale: scale,
            tracks,
            raw: raw.freeze(),
        })));
        Ok(())
    }

    fn end_cluster(&mut self, out: &mut Vec<Event>) -> Result<(), MkvError> {
        self.level = Level::Segment;
        let body = std::mem::take(&mut self.cluster).freeze();
        let timecode = self
            .cluster_timecode
            .take()
            .ok_or_else(|| invalid("a Cluster without a Timecode"))?;
        out.push(Event::Cluster { timecode, body });
        Ok(())
    }
}

/// Appends an element id.
pub fn put_id(out: &mut Vec<u8>, eid: u32) {
    let bytes = eid.to_be_bytes();
    let skip = bytes.iter().position(|&b| b != 0).unwrap_or(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends a size in the fewest bytes that hold it (never all ones).
pub fn put_size(out: &mut Vec<u8>, size: u64) {
    let mut len = 1;
    while len < 8 && size >= (1u64 << (7 * len)) - 1 {
        len += 1;
    }
    let v = size | (1u64 << (7 * len));
    out.extend_from_slice(&v.to_be_bytes()[8 - len..]);
}

/// Appends an element with the given body.
pub fn put_element(out: &mut Vec<u8>, eid: u32, body: &[u8]) {
    put_id(out, eid);
    put_size(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// Appends an unsigned integer element.
pub fn put_uint(out: &mut Vec<u8>, eid: u32, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().position(|&b| b != 0).unwrap_or(7);
    put_element(out, eid, &bytes[skip..]);
}

/// Appends the header of an element of unknown size.
pub fn put_unknown_size(out: &mut Vec<u8>, eid: u32) {
    put_id(out, eid);
    out.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
}

/// The EBML header of a Matroska document.
pub fn ebml_header() -> Vec<u8> {
    let mut body = Vec::new();
    put_uint(&mut body, id::EBML_VERSION, 1);
    put_uint(&mut body, id::EBML_READ_VERSION, 1);
    put_uint(&mut body, id::EBML_MAX_ID_LENGTH, 4);
    put_uint(&mut body, id::EBML_MAX_SIZE_LENGTH, 8);
    put_element(&mut body, id::DOC_TYPE, b"matroska");
    put_uint(&mut body, id::DOC_TYPE_VERSION, 2);
    put_uint(&mut body, id::DOC_TYPE_READ_VERSION, 2);
    let mut out = Vec::new();
    put_element(&mut out, id::EBML, &body);
    out
}

/// The (name, value) of every SimpleTag in a whole Tags element.
pub fn simple_tags(raw: &[u8]) -> Result<Vec<(String, String)>, MkvError> {
    let h = read_header(raw)?.ok_or_else(|| invalid("an empty Tags element"))?;
    let mut out = Vec::new();
    for tag in children(&raw[h.len..]) {
        let (tid, tag) = tag?;
        if tid != id::TAG {
            continue;
        }
        for st in children(tag) {
            let (sid, st) = st?;
            if sid != id::SIMPLE_TAG {
                continue;
            }
            let (mut name, mut value) = (String::new(), String::new());
            for f in children(st) {
                let (fid, v) = f?;
                match fid {
                    id::TAG_NAME => name = string(v),
                    id::TAG_STRING => value = string(v),
                    _ => {}
                }
            }
            out.push((name, value));
        }
    }
    Ok(out)
}

/// A Tags element of SimpleTags (name, value), one Tag with empty Targets.
pub fn tags(pairs: &[(&str, String)]) -> Vec<u8> {
    let mut tag = Vec::new();
    put_element(&mut tag, id::TARGETS, &[]);
    for (name, value) in pairs {
        let mut simple = Vec::new();
        put_element(&mut simple, id::TAG_NAME, name.as_bytes());
        put_element(&mut simple, id::TAG_STRING, value.as_bytes());
        put_element(&mut tag, id::SIMPLE_TAG, &simple);
    }
    let mut tags = Vec::new();
    put_element(&mut tags, id::TAG, &tag);
    let mut out = Vec::new();
    put_element(&mut out, id::TAGS, &tags);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple_block(track: u8, rel: i16, key: bool, data: &[u8]) -> Vec<u8> {
        let mut b = vec![0x80 | track];
        b.extend_from_slice(&rel.to_be_bytes());
        b.push(if key { 0x80 } else { 0 });
        b.extend_from_slice(data);
        let mut out = Vec::new();
        put_element(&mut out, id::SIMPLE_BLOCK, &b);
        out
    }

    fn tracks_element() -> Vec<u8> {
        let mut video = Vec::new();
        put_uint(&mut video, id::PIXEL_WIDTH, 640);
        put_uint(&mut video, id::PIXEL_HEIGHT, 480);
        let mut entry = Vec::new();
        put_uint(&mut entry, id::TRACK_NUMBER, 1);
        put_uint(&mut entry, id::TRACK_UID, 7);
        put_uint(&mut entry, id::TRACK_TYPE, 1);
        put_element(&mut entry, id::CODEC_ID, b"V_MPEG4/ISO/AVC");
        put_element(&mut entry, id::CODEC_PRIVATE, &[1, 2, 3]);
        put_element(&mut entry, id::VIDEO, &video);
        let mut tracks = Vec::new();
        put_element(&mut tracks, id::TRACK_ENTRY, &entry);
        let mut out = Vec::new();
        put_element(&mut out, id::TRACKS, &tracks);
        out
    }

    /// An upload as the producer SDK streams it: unknown-size Segment and
    /// Clusters.
    fn upload(clusters: &[(u64, Vec<Vec<u8>>)]) -> Vec<u8> {
        let mut out = ebml_header();
        put_unknown_size(&mut out, id::SEGMENT);
        let mut info = Vec::new();
        put_uint(&mut info, id::TIMECODE_SCALE, 1_000_000);
        put_element(&mut out, id::INFO, &info);
        out.extend_from_slice(&tracks_element());
        for (tc, blocks) in clusters {
            put_unknown_size(&mut out, id::CLUSTER);
            put_uint(&mut out, id::TIMECODE, *tc);
            for b in blocks {
                out.extend_from_slice(b);
            }
        }
        out
    }

    #[test]
    fn sizes_round_trip_and_unknown_is_all_ones() {
        for v in [
            0u64,
            1,
            126,
            127,
            128,
            16_382,
            16_383,
            1 << 40,
            (1 << 56) - 2,
        ] {
            let mut b = Vec::new();
            put_id(&mut b, id::CLUSTER);
            put_size(&mut b, v);
            let h = read_header(&b).unwrap().unwrap();
            assert_eq!((h.id, h.size, h.len), (id::CLUSTER, v, b.len()), "{v}");
        }
        let mut b = Vec::new();
        put_unknown_size(&mut b, id::SEGMENT);
        assert_eq!(read_header(&b).unwrap().unwrap().size, UNKNOWN_SIZE);
        assert_eq!(read_header(&[0x1F, 0x43]).unwrap(), None);
        assert!(read_header(&[0x00, 0x81]).is_err());
    }

    #[test]
    fn demuxes_streamed_clusters_fed_a_byte_at_a_time() {
        let up = upload(&[
            (
                1000,
                vec![
                    simple_block(1, 0, true, b"key"),
                    simple_block(1, 33, false, b"p1"),
                ],
            ),
            (2000, vec![simple_block(1, 0, true, b"key2")]),
        ]);
        let mut d = Demuxer::new(1 << 20);
        let mut events = Vec::new();
        for b in &up {
            events.extend(d.push(std::slice::from_ref(b)).unwrap());
        }
        events.extend(d.finish().unwrap());
        let header = match &events[0] {
            Event::Header(h) => h.clone(),
            e => panic!("{e:?}"),
        };
        assert_eq!(header.timecode_scale, 1_000_000);
        assert_eq!(header.tracks.len(), 1);
        let t = &header.tracks[0];
        assert_eq!(
            (
                t.number,
                t.codec_id.as_str(),
                t.width,
                t.height,
                &t.codec_private[..]
            ),
            (1, "V_MPEG4/ISO/AVC", 640, 480, &[1u8, 2, 3][..])
        );
        assert_eq!(events[1], Event::ClusterStart { timecode: 1000 });
        let Event::Cluster { timecode, body } = &events[2] else {
            panic!("{:?}", events[2]);
        };
        assert_eq!(*timecode, 1000);
        let frames = parse_cluster(body).unwrap();
        assert_eq!(frames.timecode, 1000);
        assert_eq!(
            frames
                .frames
                .iter()
                .map(|f| (f.timecode, f.keyframe, &f.data[..]))
                .collect::<Vec<_>>(),
            vec![(1000, true, &b"key"[..]), (1033, false, &b"p1"[..])]
        );
        assert_eq!(events[3], Event::ClusterStart { timecode: 2000 });
        assert!(matches!(&events[4], Event::Cluster { timecode: 2000, .. }));
        assert_eq!(events.len(), 5);
    }

    #[test]
    fn laced_blocks_split_into_frames() {
        // Xiph lacing of three frames: 2, 300 and the rest (1).
        let mut b = vec![0x82, 0, 0, 0x80 | 0x02, 2, 2, 255, 45];
        b.extend_from_slice(&[7u8; 2]);
        b.extend_from_slice(&[8u8; 300]);
        b.push(9);
        let mut body = Vec::new();
        put_uint(&mut body, id::TIMECODE, 0);
        put_element(&mut body, id::SIMPLE_BLOCK, &b);
        let f = parse_cluster(&Bytes::from(body)).unwrap().frames;
        assert_eq!(
            f.iter()
                .map(|f| (f.track, f.data.len()))
                .collect::<Vec<_>>(),
            vec![(2, 2), (2, 300), (2, 1)]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut d = Demuxer::new(1 << 20);
        assert!(d.push(b"not mkv at all").is_err());
        let mut d = Demuxer::new(64);
        let up = upload(&[(0, vec![simple_block(1, 0, true, &[0u8; 200])])]);
        assert!(matches!(d.push(&up), Err(MkvError::TooLarge { .. })));
        for cut in 0..40 {
            let bytes: Vec<u8> = (0..cut).map(|i| (i * 37 % 256) as u8).collect();
            let _ = parse_cluster(&Bytes::from(bytes.clone()));
            let _ = Demuxer::new(1 << 16).push(&bytes);
        }
    }
}
