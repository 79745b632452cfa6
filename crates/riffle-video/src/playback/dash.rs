//! MPEG-DASH manifests (ISO/IEC 23009-1): one Period, one AdaptationSet
//! per track, each Representation a SegmentList of fragmented MP4 media
//! segments (one per fragment, the track alone) with their timeline. The
//! HTTP layer chooses every URL; this only writes the XML.
//!
//! Segment times are the tracks' decode times since the epoch (as
//! [`super::fmp4::media_segments`] writes them with origin 0). A static
//! manifest (ON_DEMAND) starts its Period at the first segment through
//! `presentationTimeOffset`; a dynamic one (LIVE) sets
//! `availabilityStartTime` to the epoch so media time is wall-clock time.

use std::fmt::Write;

use super::hls::iso8601_ms;
use super::{track_samples, Codec, Fragment, MediaTrack};

/// A media segment of one track: its URL, start and duration in the
/// track's timescale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpdSegment {
    pub url: String,
    pub start: u64,
    pub duration: u64,
}

/// The start and duration of each fragment on one track, in the track's
/// timescale (fragments without frames of the track give `None`).
pub fn timeline(track: &MediaTrack, fragments: &[Fragment]) -> Vec<Option<(u64, u64)>> {
    track_samples(fragments, track, 0)
        .into_iter()
        .map(|s| {
            let first = s.first()?;
            let d: u64 = s.iter().map(|x| x.duration as u64).sum();
            Some((first.dts.max(0) as u64, d))
        })
        .collect()
}

/// One track of the manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct MpdTrack {
    pub track: MediaTrack,
    pub bandwidth: u64,
    pub init_url: String,
    pub segments: Vec<MpdSegment>,
}

/// Static (ON_DEMAND) or dynamic (LIVE, LIVE_REPLAY while it grows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpdType {
    Static,
    Dynamic {
        /// When the manifest was made, ms since the epoch.
        publish_ms: i64,
        /// How often players reload it, ms.
        update_period_ms: i64,
    },
}

/// The text of a manifest.
pub fn manifest(kind: MpdType, tracks: &[MpdTrack]) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\"",
    );
    let min_buffer = 2.0f64;
    let start_s = |t: &MpdTrack| {
        t.segments
            .first()
            .map_or(0.0, |g| g.start as f64 / t.track.timescale() as f64)
    };
    let end_s = |t: &MpdTrack| {
        t.segments.last().map_or(0.0, |g| {
            (g.start + g.duration) as f64 / t.track.timescale() as f64
        })
    };
    let start = tracks
        .iter()
        .filter(|t| !t.segments.is_empty())
        .map(start_s)
        .fold(f64::INFINITY, f64::min);
    let start = if start.is_finite() { start } else { 0.0 };
    match kind {
        MpdType::Static => {
            let end = tracks.iter().map(end_s).fold(start, f64::max);
            let _ = writeln!(
                s,
                " type=\"static\" mediaPresentationDuration=\"{}\" minBufferTime=\"{}\">",
                duration(end - start),
                duration(min_buffer)
            );
        }
        MpdType::Dynamic {
            publish_ms,
            update_period_ms,
        } => {
            let _ = writeln!(
                s,
                " type=\"dynamic\" availabilityStartTime=\"{}\" publishTime=\"{}\" \
                 minimumUpdatePeriod=\"{}\" timeShiftBufferDepth=\"{}\" minBufferTime=\"{}\">",
                iso8601_ms(0),
                iso8601_ms(publish_ms),
                duration(update_period_ms as f64 / 1000.0),
                duration(300.0),
                duration(min_buffer)
            );
        }
    }
    s.push_str("  <Period id=\"0\" start=\"PT0.000S\">\n");
    for (i, t) in tracks.iter().enumerate() {
        let ts = t.track.timescale();
        let (content, mime) = if t.track.is_video() {
            ("video", "video/mp4")
        } else {
            ("audio", "audio/mp4")
        };
        let _ = writeln!(
            s,
            "    <AdaptationSet id=\"{i}\" contentType=\"{content}\" mimeType=\"{mime}\" segmentAlignment=\"true\" startWithSAP=\"1\">"
        );
        let _ = write!(
            s,
            "      <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\"",
            t.track.number,
            t.bandwidth.max(1),
            t.track.codecs()
        );
        match &t.track.codec {
            Codec::Video(v) => {
                let _ = writeln!(s, " width=\"{}\" height=\"{}\">", v.width, v.height);
            }
            Codec::Audio(a) => {
                let _ = writeln!(s, " audioSamplingRate=\"{}\">", a.sample_rate);
                let _ = writeln!(
                    s,
                    "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{}\"/>",
                    a.channels
                );
            }
        }
        let pto = match kind {
            MpdType::Static => (start * ts as f64).round() as u64,
            MpdType::Dynamic { .. } => 0,
        };
        let _ = writeln!(
            s,
            "        <SegmentList timescale=\"{ts}\" presentationTimeOffset=\"{pto}\">"
        );
        let _ = writeln!(
            s,
            "          <Initialization sourceURL=\"{}\"/>",
            escape(&t.init_url)
        );
        s.push_str("          <SegmentTimeline>\n");
        let mut expected: Option<u64> = None;
        for g in &t.segments {
            // `t` only where the timeline does not simply continue.
            if expected == Some(g.start) {
                let _ = writeln!(s, "            <S d=\"{}\"/>", g.duration);
            } else {
                let _ = writeln!(s, "            <S t=\"{}\" d=\"{}\"/>", g.start, g.duration);
            }
            expected = Some(g.start + g.duration);
        }
        s.push_str("          </SegmentTimeline>\n");
        for g in &t.segments {
            let _ = writeln!(s, "          <SegmentURL media=\"{}\"/>", escape(&g.url));
        }
        s.push_str("        </SegmentList>\n      </Representation>\n    </AdaptationSet>\n");
    }
    s.push_str("  </Period>\n</MPD>\n");
    s
}

/// An xs:duration in seconds (`PT4.000S`).
fn duration(secs: f64) -> String {
    format!("PT{:.3}S", secs.max(0.0))
}

/// Escapes text for an XML attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_manifest_runs_on_wall_clock_time() {
        use crate::mkv::{StreamHeader, Track};
        use bytes::Bytes;
        let avcc: &[u8] = &[
            0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9,
            0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03,
            0x20, 0xf1, 0x42, 0x99, 0x60, 0x01, 0x00, 0x01, 0x68,
        ];
        let header = StreamHeader {
            timecode_scale: 1_000_000,
            tracks: vec![Track {
                number: 1,
                kind: 1,
                codec_id: "V_MPEG4/ISO/AVC".into(),
                codec_private: Bytes::from_static(avcc),
                ..Track::default()
            }],
            raw: Bytes::new(),
        };
        let media = crate::playback::Media::from_header(&header).unwrap();
        let seg = |n: u32, start: u64| MpdSegment {
            url: format!("getMP4MediaFragment.mp4?SessionToken=t&FragmentNumber={n}"),
            start,
            duration: 90_000,
        };
        let mpd = manifest(
            MpdType::Dynamic {
                publish_ms: 1_700_000_004_000,
                update_period_ms: 2_000,
            },
            &[MpdTrack {
                track: media.tracks[0].clone(),
                bandwidth: 150_000,
                init_url: "getMP4InitFragment.mp4?SessionToken=t".into(),
                segments: vec![
                    seg(1, 153_000_000_000_000),
                    seg(2, 153_000_000_090_000),
                    seg(3, 153_000_000_270_000),
                ],
            }],
        );
        assert_eq!(
            mpd,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="dynamic" availabilityStartTime="1970-01-01T00:00:00.000Z" publishTime="2023-11-14T22:13:24.000Z" minimumUpdatePeriod="PT2.000S" timeShiftBufferDepth="PT300.000S" minBufferTime="PT2.000S">
  <Period id="0" start="PT0.000S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">
      <Representation id="1" bandwidth="150000" codecs="avc1.64000d" width="320" height="240">
        <SegmentList timescale="90000" presentationTimeOffset="0">
          <Initialization sourceURL="getMP4InitFragment.mp4?SessionToken=t"/>
          <SegmentTimeline>
            <S t="153000000000000" d="90000"/>
            <S d="90000"/>
            <S t="153000000270000" d="90000"/>
          </SegmentTimeline>
          <SegmentURL media="getMP4MediaFragment.mp4?SessionToken=t&amp;FragmentNumber=1"/>
          <SegmentURL media="getMP4MediaFragment.mp4?SessionToken=t&amp;FragmentNumber=2"/>
          <SegmentURL media="getMP4MediaFragment.mp4?SessionToken=t&amp;FragmentNumber=3"/>
        </SegmentList>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"#
        );
    }

    #[test]
    fn urls_are_escaped_in_attributes() {
        assert_eq!(
            escape("a.mp4?SessionToken=x&FragmentNumber=1\"<>'"),
            "a.mp4?SessionToken=x&amp;FragmentNumber=1&quot;&lt;&gt;&apos;"
        );
        assert_eq!(duration(4.0), "PT4.000S");
    }
}
