//! HLS playlists (RFC 8216): the master playlist a session URL answers and
//! its media playlist. The HTTP layer chooses every URI; this only writes
//! the text.

use std::fmt::Write;

/// The one variant a master playlist lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The media playlist's URI.
    pub uri: String,
    /// Peak bits per second.
    pub bandwidth: u64,
    /// RFC 6381 codecs, comma-separated (`Media::codecs`).
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
}

/// A master playlist pointing at one media playlist.
pub fn master_playlist(v: &Variant) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let _ = write!(
        s,
        "#EXT-X-STREAM-INF:BANDWIDTH={},CODECS=\"{}\"",
        v.bandwidth.max(1),
        v.codecs
    );
    if let Some((w, h)) = v.resolution {
        let _ = write!(s, ",RESOLUTION={w}x{h}");
    }
    if let Some(r) = v.frame_rate {
        let _ = write!(s, ",FRAME-RATE={r:.3}");
    }
    let _ = write!(s, "\n{}\n", v.uri);
    s
}

/// How a media playlist may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    /// Segments are only added (`EXT-X-PLAYLIST-TYPE:EVENT`).
    Event,
    /// The playlist never changes (`EXT-X-PLAYLIST-TYPE:VOD`).
    Vod,
    /// A sliding window: no playlist type tag.
    Live,
}

/// One media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub uri: String,
    pub duration_s: f64,
    /// `EXT-X-PROGRAM-DATE-TIME` before the segment, ms since the epoch.
    pub program_date_time_ms: Option<i64>,
    /// `EXT-X-DISCONTINUITY` before the segment.
    pub discontinuity: bool,
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    pub media_sequence: u64,
    pub playlist_type: PlaylistType,
    /// The fMP4 init segment's URI (`EXT-X-MAP`); `None` for MPEG-TS.
    pub init_uri: Option<String>,
    pub segments: Vec<Segment>,
    /// No segment will be added (`EXT-X-ENDLIST`).
    pub ended: bool,
}

/// The text of a media playlist. EXT-X-TARGETDURATION is the longest
/// segment's duration rounded up (at least 1 s).
pub fn media_playlist(p: &MediaPlaylist) -> String {
    let target = p
        .segments
        .iter()
        .map(|s| s.duration_s.max(0.0).ceil() as u64)
        .max()
        .unwrap_or(0)
        .max(1);
    // EXT-X-MAP outside I-frame playlists needs version 6.
    let version = if p.init_uri.is_some() { 6 } else { 3 };
    let mut s = format!(
        "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
        p.media_sequence
    );
    match p.playlist_type {
        PlaylistType::Event => s.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
        PlaylistType::Vod => s.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
        PlaylistType::Live => {}
    }
    if let Some(init) = &p.init_uri {
        let _ = writeln!(s, "#EXT-X-MAP:URI=\"{init}\"");
    }
    for seg in &p.segments {
        if seg.discontinuity {
            s.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if let Some(ms) = seg.program_date_time_ms {
            let _ = writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601_ms(ms));
        }
        let _ = write!(s, "#EXTINF:{:.3},\n{}\n", seg.duration_s.max(0.0), seg.uri);
    }
    if p.ended {
        s.push_str("#EXT-X-ENDLIST\n");
    }
    s
}

/// `2023-11-14T22:13:20.021Z` for ms since the epoch (proleptic
/// Gregorian, UTC).
pub fn iso8601_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Days to civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_with_milliseconds() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(1_700_000_000_021), "2023-11-14T22:13:20.021Z");
        assert_eq!(iso8601_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn master_playlist_lists_the_variant() {
        let s = master_playlist(&Variant {
            uri: "getHLSMediaPlaylist.m3u8?SessionToken=abc".into(),
            bandwidth: 250_000,
            codecs: "avc1.64000d,mp4a.40.2".into(),
            resolution: Some((320, 240)),
            frame_rate: Some(25.0),
        });
        assert_eq!(
            s,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=250000,CODECS=\"avc1.64000d,mp4a.40.2\",RESOLUTION=320x240,FRAME-RATE=25.000\n\
             getHLSMediaPlaylist.m3u8?SessionToken=abc\n"
        );
    }

    #[test]
    fn media_playlists_carry_every_tag_asked_for() {
        let seg = |n: u32, d: f64, pdt: Option<i64>, disc: bool| Segment {
            uri: format!("getMP4MediaFragment.mp4?FragmentNumber={n}"),
            duration_s: d,
            program_date_time_ms: pdt,
            discontinuity: disc,
        };
        let p = MediaPlaylist {
            media_sequence: 7,
            playlist_type: PlaylistType::Event,
            init_uri: Some("getMP4InitFragment.mp4?SessionToken=t".into()),
            segments: vec![
                seg(1, 2.0, Some(1_700_000_000_000), false),
                seg(2, 2.0004, Some(1_700_000_002_000), false),
                seg(3, 1.5, Some(1_700_000_010_000), true),
            ],
            ended: true,
        };
        assert_eq!(
            media_playlist(&p),
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:7\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MAP:URI=\"getMP4InitFragment.mp4?SessionToken=t\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n#EXTINF:2.000,\ngetMP4MediaFragment.mp4?FragmentNumber=1\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z\n#EXTINF:2.000,\ngetMP4MediaFragment.mp4?FragmentNumber=2\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:30.000Z\n#EXTINF:1.500,\ngetMP4MediaFragment.mp4?FragmentNumber=3\n\
             #EXT-X-ENDLIST\n"
        );
        let live = MediaPlaylist {
            media_sequence: 0,
            playlist_type: PlaylistType::Live,
            init_uri: None,
            segments: vec![seg(9, 0.4, None, false)],
            ended: false,
        };
        assert_eq!(
            media_playlist(&live),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXTINF:0.400,\ngetMP4MediaFragment.mp4?FragmentNumber=9\n"
        );
    }
}
