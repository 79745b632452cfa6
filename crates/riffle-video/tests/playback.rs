//! The playback media layer against real media: ffmpeg encodes test
//! sources to Matroska, the demuxer reads them as an upload, and ffprobe /
//! ffmpeg check what playback makes of them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use riffle_video::mkv::{parse_cluster, Demuxer, Event, StreamHeader};
use riffle_video::playback::{dash, fmp4, hls, ts, Fragment, Media};
use serde_json::Value;

/// When the stream "began": producer timestamps are this plus the cluster
/// timecodes.
const EPOCH_MS: i64 = 1_700_000_000_000;

fn have_ffmpeg() -> bool {
    let ok = |bin: &str| {
        Command::new(bin)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ok("ffmpeg") && ok("ffprobe") {
        return true;
    }
    eprintln!("SKIPPED: ffmpeg and ffprobe are needed for the playback tests");
    false
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}

/// Encodes 4 s of testsrc (320x240, 25 fps, a key frame every second)
/// and, with `audio`, a 440 Hz sine as AAC.
fn encode(dir: &Dir, name: &str, video_codec: &str, audio: bool) -> Vec<u8> {
    let out = dir.path(name);
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
    ]);
    if audio {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    }
    cmd.args([
        "-t",
        "4",
        "-c:v",
        video_codec,
        "-g",
        "25",
        "-pix_fmt",
        "yuv420p",
    ]);
    if video_codec == "libx265" {
        // Closed GOPs, as Kinesis Video producers send: each fragment
        // decodes alone (x265's default open GOPs lead with pictures that
        // reference the previous fragment).
        cmd.args(["-x265-params", "log-level=error:open-gop=0"]);
    }
    if audio {
        cmd.args(["-c:a", "aac"]);
    }
    cmd.args(["-f", "matroska"]).arg(&out);
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(out).unwrap()
}

/// The upload as stored fragments, fed to the demuxer in 1000-byte pieces.
fn fragments(upload: &[u8]) -> Vec<Fragment> {
    let mut d = Demuxer::new(16 << 20);
    let mut events = Vec::new();
    for piece in upload.chunks(1000) {
        events.extend(d.push(piece).unwrap());
    }
    events.extend(d.finish().unwrap());
    let mut header: Option<Arc<StreamHeader>> = None;
    let mut out = Vec::new();
    for e in events {
        match e {
            Event::Header(h) => header = Some(h),
            Event::Cluster { body, .. } => {
                let h = header.clone().expect("a header before clusters");
                let cluster = parse_cluster(&body).unwrap();
                let ms = (cluster.timecode as i128 * h.timecode_scale as i128 / 1_000_000) as i64;
                out.push(Fragment {
                    number: format!("9134385233318150{:05}", out.len()),
                    producer_ms: EPOCH_MS + ms,
                    server_ms: EPOCH_MS + ms + 250,
                    header: h,
                    cluster,
                });
            }
            Event::ClusterStart { .. } | Event::Tags(_) => {}
        }
    }
    out
}

/// How long after the first fragment's earliest frame its first video
/// frame comes, in seconds.
fn video_lead_s(frags: &[Fragment]) -> f64 {
    let f = &frags[0];
    let video = f
        .header
        .tracks
        .iter()
        .find(|t| t.is_video())
        .unwrap()
        .number;
    let first = f.cluster.frames.iter().map(|x| x.timecode).min().unwrap();
    let first_video = f
        .cluster
        .frames
        .iter()
        .filter(|x| x.track == video)
        .map(|x| x.timecode)
        .min()
        .unwrap();
    (first_video - first) as f64 * f.header.timecode_scale as f64 / 1e9
}

fn ffprobe(path: &Path) -> Value {
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,codec_type,width,height,duration,nb_read_frames,sample_rate,channels:format=duration,format_name",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "", "ffprobe complained");
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Decodes the whole file; ffmpeg must report no error. Returns how many
/// video frames came out.
fn decodes_cleanly(path: &Path) -> usize {
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:v?",
            "-vsync",
            "passthrough",
            "-f",
            "framemd5",
            "-",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "", "decoding {path:?}");
    let o2 = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        o2.status.success(),
        "{}",
        String::from_utf8_lossy(&o2.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o2.stderr), "", "decoding {path:?}");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.starts_with("0,"))
        .count()
}

fn stream<'a>(probe: &'a Value, kind: &str) -> &'a Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} stream in {probe}"))
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.as_f64().unwrap(),
        other => panic!("not a number: {other}"),
    }
}

fn assert_close(got: f64, want: f64, tolerance: f64, what: &str) {
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: {got} is not {want} ± {tolerance}"
    );
}

/// The video stream of a probe: codec, size and every frame.
fn check_video(probe: &Value, codec: &str) {
    let v = stream(probe, "video");
    assert_eq!(v["codec_name"], codec, "{probe}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(num(&v["nb_read_frames"]), 100.0, "{probe}");
}

fn check_audio(probe: &Value) {
    let a = stream(probe, "audio");
    assert_eq!(a["codec_name"], "aac");
    assert_eq!(num(&a["sample_rate"]), 48000.0);
    assert_eq!(a["channels"].as_u64(), Some(1));
    // 4 s of 1024-sample frames, the encoder's priming frame included.
    let frames = num(&a["nb_read_frames"]);
    assert!((188.0..=190.0).contains(&frames), "{frames} audio frames");
}

#[test]
fn clips_are_fragmented_mp4_that_play_whole() {
    if !have_ffmpeg() {
        return;
    }
    let dir = Dir::new();
    for (name, codec, audio, probe_codec) in [
        ("av.mkv", "libx264", true, "h264"),
        ("v.mkv", "libx264", false, "h264"),
        ("hevc.mkv", "libx265", false, "hevc"),
    ] {
        let frags = fragments(&encode(&dir, name, codec, audio));
        assert_eq!(frags.len(), 4, "{name}: one fragment per key frame");
        let media = Media::from_header(&frags[0].header).unwrap();
        assert_eq!(media.tracks.len(), 1 + audio as usize);
        let clip = fmp4::clip(&media, &frags).unwrap();
        let path = dir.write(&format!("{name}.mp4"), &clip);
        let probe = ffprobe(&path);
        check_video(&probe, probe_codec);
        if audio {
            check_audio(&probe);
        }
        // ffmpeg counts a track's duration from the clip's start; video
        // begins `lead` after audio when the audio came first.
        let lead = video_lead_s(&frags);
        assert_close(
            num(&stream(&probe, "video")["duration"]),
            4.0 + lead,
            0.04,
            name,
        );
        if audio {
            // 189 frames of 1024 samples.
            assert_close(
                num(&stream(&probe, "audio")["duration"]),
                4.032,
                0.021,
                name,
            );
        }
        // ffmpeg presents B-frame video from its first decode time plus
        // the largest reordering (two frames here), as it does for the
        // fragmented MP4 it writes itself.
        let format = num(&probe["format"]["duration"]);
        assert!(
            (4.0..=4.0 + lead + 0.12).contains(&format),
            "{name}: {format}"
        );
        assert_eq!(decodes_cleanly(&path), 100);
    }
}

#[test]
fn hls_fmp4_segments_join_into_one_stream() {
    if !have_ffmpeg() {
        return;
    }
    let dir = Dir::new();
    let frags = fragments(&encode(&dir, "av.mkv", "libx264", true));
    let media = Media::from_header(&frags[0].header).unwrap();
    // Init, then each fragment served alone (as a player fetches them).
    let mut joined = fmp4::init_segment(&media);
    for (i, f) in frags.iter().enumerate() {
        let seg = fmp4::media_segments(&media, std::slice::from_ref(f), i as u32 + 1, 0).unwrap();
        joined.extend_from_slice(&seg);
    }
    let path = dir.write("joined.mp4", &joined);
    let probe = ffprobe(&path);
    check_video(&probe, "h264");
    check_audio(&probe);
    assert_eq!(decodes_cleanly(&path), 100);
}

#[test]
fn transport_stream_segments_play_alone_and_joined() {
    if !have_ffmpeg() {
        return;
    }
    let dir = Dir::new();
    for (name, codec, audio, probe_codec) in [
        ("av.mkv", "libx264", true, "h264"),
        ("hevc.mkv", "libx265", false, "hevc"),
    ] {
        let frags = fragments(&encode(&dir, name, codec, audio));
        let media = Media::from_header(&frags[0].header).unwrap();
        // The whole stream as one segment.
        let whole = ts::segment(&media, &frags).unwrap();
        assert_eq!(whole.len() % 188, 0);
        let path = dir.write(&format!("{name}.ts"), &whole);
        let probe = ffprobe(&path);
        check_video(&probe, probe_codec);
        if audio {
            check_audio(&probe);
        }
        assert_close(num(&stream(&probe, "video")["duration"]), 4.0, 0.04, name);
        assert_eq!(decodes_cleanly(&path), 100);
        // One segment per fragment, as HLS serves them, played in turn.
        let mut joined = Vec::new();
        for f in &frags {
            let seg = ts::segment(&media, std::slice::from_ref(f)).unwrap();
            let p = dir.write("one.ts", &seg);
            let video = media.video().unwrap().number;
            let frames = f.cluster.frames.iter().filter(|x| x.track == video).count();
            assert_eq!(decodes_cleanly(&p), frames);
            joined.extend_from_slice(&seg);
        }
        let path = dir.write(&format!("{name}.joined.ts"), &joined);
        check_video(&ffprobe(&path), probe_codec);
        assert_eq!(decodes_cleanly(&path), 100);
    }
}

/// Each fragment's playing time, from the fragments as HLS lists them.
fn hls_segments(frags: &[Fragment], ext: &str) -> Vec<hls::Segment> {
    frags
        .iter()
        .enumerate()
        .map(|(i, f)| hls::Segment {
            uri: format!("seg{i}.{ext}"),
            duration_s: f.duration_ms() / 1000.0,
            program_date_time_ms: Some(f.producer_ms),
            discontinuity: false,
        })
        .collect()
}

#[test]
fn hls_playlists_of_both_containers_play_in_ffmpeg() {
    if !have_ffmpeg() {
        return;
    }
    let dir = Dir::new();
    let frags = fragments(&encode(&dir, "av.mkv", "libx264", true));
    let media = Media::from_header(&frags[0].header).unwrap();
    let durations: Vec<f64> = frags.iter().map(|f| f.duration_ms()).collect();
    // Key frames every second: the last fragment ends a frame after its
    // last video frame, the audio running a little past.
    assert!(
        durations.iter().all(|d| (960.0..=1120.0).contains(d)),
        "{durations:?}"
    );

    for (container, ext) in [("ts", "ts"), ("fmp4", "m4s")] {
        for (i, f) in frags.iter().enumerate() {
            let seg = if container == "ts" {
                ts::segment(&media, std::slice::from_ref(f)).unwrap()
            } else {
                fmp4::media_segments(&media, std::slice::from_ref(f), i as u32 + 1, 0).unwrap()
            };
            dir.write(&format!("seg{i}.{ext}"), &seg);
        }
        let init_uri = (container == "fmp4").then(|| {
            dir.write("init.mp4", &fmp4::init_segment(&media));
            "init.mp4".to_string()
        });
        let media_playlist = hls::media_playlist(&hls::MediaPlaylist {
            media_sequence: 0,
            playlist_type: hls::PlaylistType::Vod,
            init_uri,
            segments: hls_segments(&frags, ext),
            ended: true,
        });
        assert!(
            media_playlist.contains("#EXT-X-TARGETDURATION:2\n"),
            "{media_playlist}"
        );
        dir.write(&format!("{container}.m3u8"), media_playlist.as_bytes());
        let master = hls::master_playlist(&hls::Variant {
            uri: format!("{container}.m3u8"),
            bandwidth: 200_000,
            codecs: media.codecs(),
            resolution: Some((320, 240)),
            frame_rate: None,
        });
        assert!(
            master.contains("CODECS=\"avc1.64000d,mp4a.40.2\""),
            "{master}"
        );
        let path = dir.write(&format!("master-{container}.m3u8"), master.as_bytes());
        let probe = ffprobe(&path);
        check_video(&probe, "h264");
        check_audio(&probe);
        assert_eq!(decodes_cleanly(&path), 100);
    }
}

#[test]
fn dash_manifests_list_each_track_apart() {
    if !have_ffmpeg() {
        return;
    }
    let dir = Dir::new();
    let frags = fragments(&encode(&dir, "av.mkv", "libx264", true));
    let media = Media::from_header(&frags[0].header).unwrap();
    let mut tracks = Vec::new();
    for t in &media.tracks {
        let alone = media.only(t.number).unwrap();
        let init = format!("init-{}.mp4", t.number);
        dir.write(&init, &fmp4::init_segment(&alone));
        let mut segments = Vec::new();
        for (i, (f, timing)) in frags.iter().zip(dash::timeline(t, &frags)).enumerate() {
            let (start, duration) = timing.unwrap();
            let name = format!("seg-{}-{i}.m4s", t.number);
            let seg =
                fmp4::media_segments(&alone, std::slice::from_ref(f), i as u32 + 1, 0).unwrap();
            dir.write(&name, &seg);
            segments.push(dash::MpdSegment {
                url: name,
                start,
                duration,
            });
        }
        tracks.push(dash::MpdTrack {
            track: alone.tracks[0].clone(),
            bandwidth: 100_000,
            init_url: init,
            segments,
        });
    }
    // The video timeline: 90 kHz, 40 ms frames, continuous.
    let v = &tracks[0].segments;
    assert_eq!(v.iter().map(|s| s.duration).sum::<u64>(), 100 * 3600);
    for w in v.windows(2) {
        assert_eq!(w[0].start + w[0].duration, w[1].start);
    }
    let mpd = dash::manifest(dash::MpdType::Static, &tracks);
    assert!(mpd.contains("type=\"static\""), "{mpd}");
    let path = dir.write("stream.mpd", mpd.as_bytes());
    // ffprobe's frame count through the DASH demuxer misses the frame its
    // probing consumed; decoding shows every frame.
    let probe = ffprobe(&path);
    let v = stream(&probe, "video");
    assert_eq!(
        (
            v["codec_name"].as_str(),
            v["width"].as_u64(),
            v["height"].as_u64()
        ),
        (Some("h264"), Some(320), Some(240))
    );
    check_audio(&probe);
    assert_eq!(decodes_cleanly(&path), 100);
}

/// The frame ffmpeg decodes at `index` of the source, as RGB.
fn reference_frame(source: &Path, index: usize, dir: &Dir) -> image::RgbImage {
    let out = dir.path(&format!("ref-{index}.png"));
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(source)
        .args(["-vf", &format!("select=eq(n\\,{index})"), "-frames:v", "1"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    image::open(out).unwrap().to_rgb8()
}

/// Mean absolute difference per channel.
fn difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

#[test]
fn images_are_the_key_frame_at_or_before_the_time() {
    use riffle_video::playback::image::{render, Clock, ImageError, ImageFormat, ImageRequest};
    if !have_ffmpeg() {
        return;
    }
    let dir = Dir::new();
    let frags = fragments(&encode(&dir, "av.mkv", "libx264", true));
    let req = |at_ms: i64, format: ImageFormat, width, height| ImageRequest {
        at_ms,
        clock: Clock::Producer,
        format,
        width,
        height,
    };
    // 1.5 s in: the second fragment's key frame (frame 25, at 1.021 s).
    let at = EPOCH_MS + 1500;
    let reference = reference_frame(&dir.path("av.mkv"), 25, &dir);

    let png = render(&frags, &req(at, ImageFormat::Png, None, None)).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let got = image::load_from_memory(&png).unwrap().to_rgb8();
    assert_eq!(got.dimensions(), (320, 240));
    // Not a uniform picture: testsrc's colour bars and gradient.
    let (p0, p1) = (got.get_pixel(20, 20), got.get_pixel(300, 200));
    assert_ne!(p0, p1);
    let d = difference(&got, &reference);
    assert!(d < 3.0, "PNG differs from ffmpeg's decoding by {d}");
    // Two spots, colour by colour, within a small tolerance.
    for (x, y) in [(40, 40), (160, 200), (290, 120)] {
        let (a, b) = (got.get_pixel(x, y), reference.get_pixel(x, y));
        for c in 0..3 {
            assert!(a[c].abs_diff(b[c]) <= 12, "({x},{y}): {a:?} vs {b:?}");
        }
    }

    let jpeg = render(
        &frags,
        &req(at, ImageFormat::Jpeg { quality: 90 }, None, None),
    )
    .unwrap();
    assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF]);
    let got = image::load_from_memory(&jpeg).unwrap().to_rgb8();
    let d = difference(&got, &reference);
    assert!(d < 6.0, "JPEG differs from ffmpeg's decoding by {d}");
    let small = render(
        &frags,
        &req(at, ImageFormat::Jpeg { quality: 1 }, None, None),
    )
    .unwrap();
    assert!(
        small.len() < jpeg.len() / 2,
        "{} vs {}",
        small.len(),
        jpeg.len()
    );

    // Sizes: one side keeps the aspect ratio, both stretch.
    for (w, h, want) in [
        (Some(160), None, (160, 120)),
        (None, Some(60), (80, 60)),
        (Some(100), Some(50), (100, 50)),
    ] {
        let b = render(&frags, &req(at, ImageFormat::Png, w, h)).unwrap();
        let img = image::load_from_memory(&b).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), want);
    }
    let half = render(&frags, &req(at, ImageFormat::Png, Some(160), None)).unwrap();
    let half = image::load_from_memory(&half).unwrap().to_rgb8();
    let want = image::imageops::resize(&reference, 160, 120, image::imageops::FilterType::Triangle);
    let d = difference(&half, &want);
    assert!(d < 3.0, "scaled PNG differs by {d}");

    // The first key frame at its own time; none before the stream or past it.
    let first = render(&frags, &req(EPOCH_MS + 21, ImageFormat::Png, None, None)).unwrap();
    let first = image::load_from_memory(&first).unwrap().to_rgb8();
    let frame0 = reference_frame(&dir.path("av.mkv"), 0, &dir);
    assert!(difference(&first, &frame0) < 3.0);
    // The tolerance tells frames apart: frames 0 and 25 differ more.
    let apart = difference(&frame0, &reference);
    assert!(apart > 3.0, "{apart}");
    assert_eq!(
        render(
            &frags,
            &req(EPOCH_MS + 10_000, ImageFormat::Png, None, None)
        ),
        Err(ImageError::NoMedia)
    );
    assert_eq!(
        render(&frags, &req(EPOCH_MS - 5_000, ImageFormat::Png, None, None)),
        Err(ImageError::NoMedia)
    );
    // Server timestamps run 250 ms behind producer ones here.
    let server = ImageRequest {
        clock: Clock::Server,
        ..req(EPOCH_MS + 21 + 250, ImageFormat::Png, None, None)
    };
    assert_eq!(
        render(&frags, &server).unwrap(),
        render(&frags, &req(EPOCH_MS + 21, ImageFormat::Png, None, None)).unwrap()
    );

    // H.265 cannot be pictured here: MEDIA_ERROR.
    let hevc = fragments(&encode(&dir, "hevc.mkv", "libx265", false));
    let err = render(&hevc, &req(EPOCH_MS + 500, ImageFormat::Png, None, None)).unwrap_err();
    assert_eq!(err.aws_value(), "MEDIA_ERROR");
}

#[test]
fn mp4_files_become_matroska_with_every_sample_and_bad_ones_are_errors() {
    if !have_ffmpeg() {
        return;
    }
    let dir = Dir::new();
    let out = dir.path("av.mp4");
    let o = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t", "4", "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p",
        ])
        .args(["-c:a", "aac"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mp4 = std::fs::read(&out).unwrap();
    let mkv = riffle_video::mp4::to_matroska(&mp4).unwrap();
    let frags = fragments(&mkv);
    assert_eq!(frags.len(), 4, "a fragment per key frame");
    let count = |track: u64| -> usize {
        frags
            .iter()
            .map(|f| f.cluster.frames.iter().filter(|x| x.track == track).count())
            .sum()
    };
    assert_eq!(count(1), 100);
    // Every AAC frame of the file, the encoder's priming frame included.
    let probe = ffprobe(&out);
    let audio_frames = stream(&probe, "audio")["nb_read_frames"]
        .as_str()
        .unwrap()
        .parse::<usize>()
        .unwrap();
    assert_eq!(count(2), audio_frames + 1);
    assert!(frags
        .iter()
        .all(|f| f.cluster.frames.first().is_some_and(|x| x.keyframe)));
    // Whatever the damage, an error and never a panic.
    for cut in (0..mp4.len()).step_by(997) {
        let _ = riffle_video::mp4::to_matroska(&mp4[..cut]);
    }
    let mut flipped = mp4.clone();
    for i in (0..flipped.len()).step_by(331) {
        flipped[i] ^= 0x5A;
        let _ = riffle_video::mp4::to_matroska(&flipped);
    }
    assert!(riffle_video::mp4::to_matroska(b"not an mp4 at all").is_err());
}
