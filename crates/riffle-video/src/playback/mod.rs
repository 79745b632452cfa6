//! The playback media layer: stored fragments turned into what players
//! read, as pure functions (no HTTP, no storage).
//!
//! - [`Fragment`]: one stored fragment (a Matroska Cluster, already parsed,
//!   and the stream header it was uploaded with) and its timestamps.
//! - [`Media`]: the tracks a session plays (H.264 or H.265 video, AAC
//!   audio) with their codec configurations, checked once; what fails
//!   here is the session's error ([`MediaError`]).
//! - [`fmp4`]: fragmented MP4 init and media segments, and whole clips.
//! - [`ts`]: MPEG-TS segments.
//! - [`hls`], [`dash`]: playlist and manifest text.
//! - [`image`]: one picture of a stream as JPEG or PNG.
//!
//! Timing: a frame's time is its fragment's producer timestamp plus the
//! frame's offset from its Cluster's timecode, so fragments with absolute
//! and with relative timecodes play alike. Block timecodes are
//! presentation times; decode times are the sorted presentation times of
//! a fragment's frames (B-frames reorder), which keeps a key frame's
//! presentation time equal to its decode time.

use std::sync::Arc;

use bytes::Bytes;

use crate::mkv::{ClusterFrames, StreamHeader, Track};

pub mod codec;
pub mod dash;
pub mod fmp4;
pub mod hls;
pub mod image;
pub mod ts;

use codec::{AudioConfig, VideoConfig};

/// One stored fragment as playback reads it.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// The fragment number AWS gives it (a decimal string).
    pub number: String,
    /// When the producer says the fragment began, in ms since the epoch.
    pub producer_ms: i64,
    /// When the service received it, in ms since the epoch.
    pub server_ms: i64,
    /// The stream header the fragment was uploaded with.
    pub header: Arc<StreamHeader>,
    /// The fragment's frames.
    pub cluster: ClusterFrames,
}

impl Fragment {
    /// A frame's time in ns since the epoch on the producer's clock.
    pub fn frame_ns(&self, timecode: i64) -> i128 {
        self.producer_ms as i128 * 1_000_000
            + (timecode as i128 - self.cluster.timecode as i128)
                * self.header.timecode_scale as i128
    }

    /// How long the fragment plays, in ms: from its first frame to the end
    /// of its last on its longest track (the last frame lasting its
    /// BlockDuration, its track's DefaultDuration or the frame interval
    /// before it).
    pub fn duration_ms(&self) -> f64 {
        let scale = self.header.timecode_scale as f64 / 1e6;
        let mut best = 0.0f64;
        for t in &self.header.tracks {
            let mut tcs: Vec<i64> = self
                .cluster
                .frames
                .iter()
                .filter(|f| f.track == t.number)
                .map(|f| f.timecode)
                .collect();
            if tcs.is_empty() {
                continue;
            }
            tcs.sort_unstable();
            let last = self
                .cluster
                .frames
                .iter()
                .rfind(|f| f.track == t.number)
                .and_then(|f| f.duration)
                .map(|d| d as f64 * scale)
                .or_else(|| (t.default_duration_ns > 0).then(|| t.default_duration_ns as f64 / 1e6))
                .or_else(|| {
                    (tcs.len() > 1)
                        .then(|| (tcs[tcs.len() - 1] - tcs[tcs.len() - 2]) as f64 * scale)
                })
                .unwrap_or(0.0);
            let span = (tcs[tcs.len() - 1] - tcs[0]) as f64 * scale + last;
            best = best.max(span);
        }
        best
    }
}

/// Why media cannot be played: AWS's exception for each case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// No track has a codec playback supports.
    #[error("{0}")]
    UnsupportedStreamMediaType(String),
    /// A played track has no codec private data.
    #[error("{0}")]
    MissingCodecPrivateData(String),
    /// A played track's codec private data cannot be read.
    #[error("{0}")]
    InvalidCodecPrivateData(String),
    /// A frame cannot be read with its track's codec.
    #[error("{0}")]
    InvalidMediaFrame(String),
}

impl MediaError {
    /// The AWS error type (`__type`).
    pub fn aws_type(&self) -> &'static str {
        match self {
            MediaError::UnsupportedStreamMediaType(_) => "UnsupportedStreamMediaTypeException",
            MediaError::MissingCodecPrivateData(_) => "MissingCodecPrivateDataException",
            MediaError::InvalidCodecPrivateData(_) => "InvalidCodecPrivateDataException",
            MediaError::InvalidMediaFrame(_) => "InvalidMediaFrameException",
        }
    }
}

/// The codec of a played track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    Video(VideoConfig),
    Audio(AudioConfig),
}

/// A played track: its number in the stream header, its id in MP4 and
/// TS output (1-based position among the played tracks) and its codec.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaTrack {
    pub number: u64,
    pub id: u32,
    pub track: Track,
    pub codec: Codec,
}

impl MediaTrack {
    /// Ticks per second of the track's MP4 timeline.
    pub fn timescale(&self) -> u32 {
        match &self.codec {
            Codec::Video(_) => 90_000,
            Codec::Audio(a) => a.sample_rate,
        }
    }

    /// The RFC 6381 codecs parameter (`avc1.64001f`, `mp4a.40.2`, ...).
    pub fn codecs(&self) -> String {
        match &self.codec {
            Codec::Video(v) => v.codecs(),
            Codec::Audio(a) => a.codecs(),
        }
    }

    pub fn is_video(&self) -> bool {
        matches!(self.codec, Codec::Video(_))
    }
}

/// The tracks a session plays: at most one video track (H.264 or H.265)
/// and one audio track (AAC), in that order.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    pub tracks: Vec<MediaTrack>,
}

impl Media {
    /// The played tracks of a stream header. AWS plays track 1 as video
    /// and, optionally, track 2 as AAC audio; this takes the first video
    /// and the first AAC track, whatever their numbers.
    pub fn from_header(header: &StreamHeader) -> Result<Media, MediaError> {
        let mut tracks = Vec::new();
        let video = header
            .tracks
            .iter()
            .find(|t| t.is_video() || codec::is_video_codec(&t.codec_id));
        if let Some(t) = video {
            let v = VideoConfig::from_track(t)?;
            tracks.push((t, Codec::Video(v)));
        }
        if let Some(t) = header.tracks.iter().find(|t| t.codec_id == "A_AAC") {
            tracks.push((t, Codec::Audio(AudioConfig::from_track(t)?)));
        }
        if tracks.is_empty() {
            let ids: Vec<&str> = header.tracks.iter().map(|t| t.codec_id.as_str()).collect();
            return Err(MediaError::UnsupportedStreamMediaType(format!(
                "The codec IDs of the stream's tracks ({}) are not supported for playback: \
                 track 1 must be V_MPEG4/ISO/AVC or V_MPEGH/ISO/HEVC and track 2, if any, A_AAC.",
                ids.join(", ")
            )));
        }
        Ok(Media {
            tracks: tracks
                .into_iter()
                .enumerate()
                .map(|(i, (t, codec))| MediaTrack {
                    number: t.number,
                    id: i as u32 + 1,
                    track: t.clone(),
                    codec,
                })
                .collect(),
        })
    }

    /// The same media with only the track numbered `number` (DASH serves
    /// each track apart); `None` when it is not played.
    pub fn only(&self, number: u64) -> Option<Media> {
        let mut t = self.tracks.iter().find(|t| t.number == number)?.clone();
        t.id = 1;
        Some(Media { tracks: vec![t] })
    }

    pub fn video(&self) -> Option<&MediaTrack> {
        self.tracks.iter().find(|t| t.is_video())
    }

    pub fn audio(&self) -> Option<&MediaTrack> {
        self.tracks.iter().find(|t| !t.is_video())
    }

    /// The codecs attribute of a playlist: every track's, comma-separated.
    pub fn codecs(&self) -> String {
        self.tracks
            .iter()
            .map(|t| t.codecs())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One sample of a track, timed in the track's timescale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Decode time.
    pub dts: i64,
    /// Presentation time minus decode time.
    pub cto: i64,
    pub duration: u32,
    pub keyframe: bool,
    /// The frame as stored (AVCC/HVCC length-prefixed NAL units for video,
    /// a raw AAC frame for audio).
    pub data: Bytes,
}

impl Sample {
    pub fn pts(&self) -> i64 {
        self.dts + self.cto
    }
}

/// Converts ns to ticks of `timescale`, rounding to nearest.
fn ticks(ns: i128, timescale: u32) -> i64 {
    let t = ns * timescale as i128;
    let q = t.div_euclid(1_000_000_000);
    let r = t.rem_euclid(1_000_000_000);
    (q + i128::from(r >= 500_000_000)) as i64
}

/// The samples of each fragment on one track, timed on a timeline whose
/// zero is `origin_ms` (ms since the epoch on the producer's clock). A
/// fragment's last sample lasts until the next fragment's first when the
/// two follow each other (less than a second apart), otherwise its
/// BlockDuration, its track's DefaultDuration or the interval before it.
pub fn track_samples(
    fragments: &[Fragment],
    track: &MediaTrack,
    origin_ms: i64,
) -> Vec<Vec<Sample>> {
    let ts = track.timescale();
    let origin = origin_ms as i128 * 1_000_000;
    let mut out: Vec<Vec<Sample>> = Vec::with_capacity(fragments.len());
    for f in fragments {
        let scale = f.header.timecode_scale as i128;
        let frames: Vec<_> = f
            .cluster
            .frames
            .iter()
            .filter(|fr| fr.track == track.number)
            .collect();
        let pts: Vec<i64> = frames
            .iter()
            .map(|fr| ticks(f.frame_ns(fr.timecode) - origin, ts))
            .collect();
        let mut samples: Vec<Sample> = match &track.codec {
            Codec::Video(_) => {
                let mut sorted = pts.clone();
                sorted.sort_unstable();
                frames
                    .iter()
                    .zip(pts.iter().zip(&sorted))
                    .map(|(fr, (&p, &d))| Sample {
                        dts: d,
                        cto: p - d,
                        duration: 0,
                        keyframe: fr.keyframe,
                        data: fr.data.clone(),
                    })
                    .collect()
            }
            Codec::Audio(a) => {
                // AAC frames hold a fixed number of samples; timecodes
                // (often in ms) are coarser than that, so only the first
                // frame's timecode places the run.
                let mut first = pts.first().copied().unwrap_or(0);
                // A fragment that continues the previous one without a gap
                // (within a frame) continues its sample count too.
                if let Some(end) = out
                    .last()
                    .and_then(|p| p.last())
                    .map(|s| s.dts + s.duration as i64)
                {
                    if (first - end).abs() < a.frame_samples as i64 {
                        first = end;
                    }
                }
                frames
                    .iter()
                    .enumerate()
                    .map(|(i, fr)| Sample {
                        dts: first + i as i64 * a.frame_samples as i64,
                        cto: 0,
                        duration: a.frame_samples,
                        keyframe: true,
                        data: fr.data.clone(),
                    })
                    .collect()
            }
        };
        if track.is_video() {
            for i in 1..samples.len() {
                let d = samples[i].dts - samples[i - 1].dts;
                samples[i - 1].duration = d.clamp(0, u32::MAX as i64) as u32;
            }
            if let Some(last) = samples.last_mut() {
                let fr = frames[frames.len() - 1];
                let fallback = fr
                    .duration
                    .map(|d| ticks(d as i128 * scale, ts))
                    .or_else(|| {
                        (track.track.default_duration_ns > 0)
                            .then(|| ticks(track.track.default_duration_ns as i128, ts))
                    })
                    .or_else(|| {
                        (pts.len() > 1).then(|| (pts[pts.len() - 1] - pts[pts.len() - 2]).abs())
                    })
                    .unwrap_or(ts as i64 / 30);
                last.duration = fallback.clamp(1, u32::MAX as i64) as u32;
            }
        }
        // The previous fragment's last sample lasts until this one begins.
        if let (Some(prev), Some(first)) = (out.last_mut(), samples.first()) {
            if let Some(last) = prev.last_mut() {
                let gap = first.dts - last.dts;
                if gap > 0 && gap < ts as i64 && track.is_video() {
                    last.duration = gap as u32;
                }
            }
        }
        out.push(samples);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mkv::Frame;

    fn track(number: u64, kind: u64, codec_id: &str, cpd: &[u8]) -> Track {
        Track {
            number,
            kind,
            codec_id: codec_id.into(),
            codec_private: Bytes::copy_from_slice(cpd),
            width: 320,
            height: 240,
            ..Track::default()
        }
    }

    fn header(tracks: Vec<Track>) -> StreamHeader {
        StreamHeader {
            timecode_scale: 1_000_000,
            tracks,
            raw: Bytes::new(),
        }
    }

    /// x264's avcC for 320x240 High profile.
    const AVCC: [u8; 36] = [
        0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41,
        0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1,
        0x42, 0x99, 0x60, 0x01, 0x00, 0x00,
    ];

    #[test]
    fn unplayable_headers_get_aws_errors() {
        let err = |tracks| Media::from_header(&header(tracks)).unwrap_err().aws_type();
        assert_eq!(
            err(vec![track(1, 1, "V_VP8", b"")]),
            "UnsupportedStreamMediaTypeException"
        );
        assert_eq!(
            err(vec![track(1, 1, "V_MPEG4/ISO/AVC", b"")]),
            "MissingCodecPrivateDataException"
        );
        assert_eq!(
            err(vec![track(1, 1, "V_MPEG4/ISO/AVC", &[1, 2, 3])]),
            "InvalidCodecPrivateDataException"
        );
        assert_eq!(
            err(vec![
                track(1, 1, "V_MPEG4/ISO/AVC", &AVCC[..33]),
                track(2, 2, "A_AAC", &[0x11, 0x90])
            ]),
            "InvalidCodecPrivateDataException"
        );
        assert_eq!(
            err(vec![track(1, 1, "V_MPEGH/ISO/HEVC", &[1; 22]),]),
            "InvalidCodecPrivateDataException"
        );
    }

    #[test]
    fn a_frame_with_a_broken_length_prefix_is_an_invalid_frame() {
        let mut avcc = AVCC.to_vec();
        // One PPS of 4 bytes.
        avcc[33..36].copy_from_slice(&[1, 0, 4]);
        avcc.extend_from_slice(&[0x68, 0xeb, 0xe3, 0xcb]);
        let h = Arc::new(header(vec![track(1, 1, "V_MPEG4/ISO/AVC", &avcc)]));
        let media = Media::from_header(&h).unwrap();
        assert_eq!(media.codecs(), "avc1.64000d");
        let frame = |data: &'static [u8]| Fragment {
            number: "1".into(),
            producer_ms: 1000,
            server_ms: 1000,
            header: h.clone(),
            cluster: ClusterFrames {
                timecode: 0,
                frames: vec![Frame {
                    track: 1,
                    timecode: 0,
                    keyframe: true,
                    duration: None,
                    data: Bytes::from_static(data),
                }],
            },
        };
        let bad = frame(&[0, 0, 0, 9, 0x65, 1]);
        assert_eq!(
            ts::segment(&media, &[bad]).unwrap_err().aws_type(),
            "InvalidMediaFrameException"
        );
        // MP4 keeps frames as they are: the same frame is stored whole.
        let ok = frame(&[0, 0, 0, 2, 0x65, 1]);
        let seg = fmp4::media_segments(&media, &[ok], 1, 0).unwrap();
        assert!(seg.ends_with(&[0, 0, 0, 14, b'm', b'd', b'a', b't', 0, 0, 0, 2, 0x65, 1]));
    }

    #[test]
    fn ticks_round_to_nearest_on_both_sides_of_zero() {
        assert_eq!(ticks(40_000_000, 90_000), 3600);
        assert_eq!(ticks(-40_000_000, 90_000), -3600);
        assert_eq!(ticks(1, 90_000), 0);
        assert_eq!(ticks(1_000_000, 44_100), 44);
        assert_eq!(
            ticks(1_700_000_000_000 * 1_000_000, 90_000),
            153_000_000_000_000
        );
    }
}
