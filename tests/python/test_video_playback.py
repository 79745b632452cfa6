"""Kinesis Video playback: HLS (fragmented MP4 and MPEG-TS) and DASH
sessions played end to end by ffmpeg, their playlists, GetClip read by
ffprobe, GetImages decoded, and the errors, with boto3's
kinesis-video-archived-media client."""
import base64
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import botocore.exceptions
import pytest

from conftest import Server, unique
from kvs import PutMedia, make_mkv, streamed

START = 1_700_000_000


@pytest.fixture(scope="module")
def srv():
    s = Server("--status-delay-ms", "0").start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture(scope="module")
def archive(srv):
    return srv.client("kinesis-video-archived-media")


@pytest.fixture(scope="module")
def stream(srv, tmp_path_factory):
    """4 s of H.264 + AAC, four fragments, producer time START.."""
    kv = srv.client("kinesisvideo")
    name = unique("play")
    kv.create_stream(StreamName=name, DataRetentionInHours=24)
    data = make_mkv(tmp_path_factory.mktemp("play") / "av.mkv", seconds=4, audio=True)
    pm = PutMedia(srv.endpoint, name, start=START)
    pm.upload(streamed(data))
    assert pm.read_head() == 200
    acks = list(pm.acks())
    pm.close()
    assert [a["EventType"] for a in acks].count("PERSISTED") == 4
    return name


def probe(url, *extra):
    out = subprocess.run(
        [shutil.which("ffprobe"), "-v", "error", "-count_frames", *extra,
         "-show_entries", "stream=codec_type,codec_name,width,height,nb_read_frames",
         "-of", "json", url],
        check=True, capture_output=True, text=True, timeout=120)
    return sorted((s["codec_type"], s["codec_name"], s.get("width"), s.get("height"), s.get("nb_read_frames"))
                  for s in json.loads(out.stdout)["streams"])


def decode_errors(url):
    r = subprocess.run([shutil.which("ffmpeg"), "-v", "error", "-i", url, "-f", "null", "-"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stderr


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.headers["Content-Type"], r.read()


def on_demand(**kw):
    sel = {"FragmentSelectorType": "PRODUCER_TIMESTAMP",
           "TimestampRange": {"StartTimestamp": START, "EndTimestamp": START + 10}}
    return dict(PlaybackMode="ON_DEMAND", HLSFragmentSelector=sel, **kw)


def error_of(call, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_hls_fmp4_on_demand_plays_every_frame(srv, archive, stream):
    url = archive.get_hls_streaming_session_url(StreamName=stream, **on_demand())["HLSStreamingSessionURL"]
    assert url.startswith(f"{srv.endpoint}/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=")
    ctype, master = get(url)
    assert ctype == "application/vnd.apple.mpegurl"
    lines = master.decode().splitlines()
    assert lines[0] == "#EXTM3U"
    inf = next(line for line in lines if line.startswith("#EXT-X-STREAM-INF:"))
    assert 'CODECS="avc1.' in inf and "mp4a.40.2" in inf and "RESOLUTION=320x240" in inf
    media_uri = lines[lines.index(inf) + 1]
    _, playlist = get(url.rsplit("/", 1)[0] + "/" + media_uri)
    text = playlist.decode()
    assert text.count("#EXTINF:1.000,") == 4
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
    assert "#EXT-X-MAP:URI=\"getMP4InitFragment.mp4?" in text
    # The producer clock's default: no discontinuities; no dates unless asked.
    assert "#EXT-X-DISCONTINUITY" not in text and "PROGRAM-DATE-TIME" not in text
    numbers = [line.split("FragmentNumber=")[1].split("&")[0] for line in text.splitlines()
               if line.startswith("getMP4MediaFragment.mp4")]
    stored = [f["FragmentNumber"] for f in archive.list_fragments(StreamName=stream)["Fragments"]]
    assert numbers == stored
    assert probe(url) == [("audio", "aac", None, None, "189"), ("video", "h264", 320, 240, "100")]
    decode_errors(url)


def test_hls_mpeg_ts_with_dates_and_discontinuities(srv, archive, stream):
    url = archive.get_hls_streaming_session_url(
        StreamName=stream, ContainerFormat="MPEG_TS", DisplayFragmentTimestamp="ALWAYS",
        DiscontinuityMode="ALWAYS", **on_demand())["HLSStreamingSessionURL"]
    _, master = get(url)
    media_uri = [line for line in master.decode().splitlines() if line and not line.startswith("#")][0]
    _, playlist = get(url.rsplit("/", 1)[0] + "/" + media_uri)
    text = playlist.decode()
    assert text.count("#EXT-X-DISCONTINUITY") == 4
    assert [line for line in text.splitlines() if line.startswith("#EXT-X-PROGRAM-DATE-TIME:")] == [
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z",
        # ffmpeg starts the later clusters with an audio block.
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:21.002Z",
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.005Z",
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:23.008Z"]
    assert "EXT-X-MAP" not in text
    seg = [line for line in text.splitlines() if line.startswith("getTSFragment.ts")][0]
    ctype, ts = get(url.rsplit("/", 1)[0] + "/" + seg)
    assert ctype == "video/mp2t" and len(ts) % 188 == 0 and ts[0] == 0x47
    streams = probe(url)
    assert [s[:4] for s in streams] == [("audio", "aac", None, None), ("video", "h264", 320, 240)]
    assert streams[1][4] == "100"
    decode_errors(url)


def test_hls_live_lists_the_newest_fragments(srv, archive, stream, tmp_path):
    name = unique("live")
    srv.client("kinesisvideo").create_stream(StreamName=name, DataRetentionInHours=1)
    assert error_of(archive.get_hls_streaming_session_url, StreamName=name) == ("ResourceNotFoundException", 404)
    data = make_mkv(tmp_path / "live.mkv", seconds=8)
    pm = PutMedia(srv.endpoint, name)
    pm.upload(streamed(data))
    assert pm.read_head() == 200
    list(pm.acks())
    pm.close()
    url = archive.get_hls_streaming_session_url(StreamName=name)["HLSStreamingSessionURL"]
    _, master = get(url)
    media_uri = [line for line in master.decode().splitlines() if line and not line.startswith("#")][0]
    _, playlist = get(url.rsplit("/", 1)[0] + "/" + media_uri)
    text = playlist.decode()
    stored = [f["FragmentNumber"] for f in archive.list_fragments(StreamName=name)["Fragments"]]
    listed = [line.split("FragmentNumber=")[1].split("&")[0] for line in text.splitlines()
              if line.startswith("getMP4MediaFragment.mp4")]
    assert listed == stored[-5:]
    assert "#EXT-X-MEDIA-SEQUENCE:0" in text
    assert "#EXT-X-ENDLIST" not in text and "PLAYLIST-TYPE" not in text
    # The server clock's default: a discontinuity before every fragment.
    assert text.count("#EXT-X-DISCONTINUITY") == 5


def test_dash_on_demand_plays_every_frame(srv, archive, stream):
    url = archive.get_dash_streaming_session_url(
        StreamName=stream, PlaybackMode="ON_DEMAND",
        DASHFragmentSelector={"FragmentSelectorType": "PRODUCER_TIMESTAMP",
                              "TimestampRange": {"StartTimestamp": START, "EndTimestamp": START + 10}},
    )["DASHStreamingSessionURL"]
    assert url.startswith(f"{srv.endpoint}/dash/v1/getDASHManifest.mpd?SessionToken=")
    ctype, mpd = get(url)
    assert ctype == "application/dash+xml"
    assert 'type="static"' in mpd.decode()
    decode_errors(url)
    r = subprocess.run([shutil.which("ffmpeg"), "-v", "error", "-i", url, "-map", "0:v", "-f", "framemd5", "-"],
                       capture_output=True, text=True, timeout=120, check=True)
    assert len([line for line in r.stdout.splitlines() if not line.startswith("#")]) == 100


def test_get_clip_is_an_mp4_of_the_range(srv, archive, stream, tmp_path):
    out = archive.get_clip(StreamName=stream, ClipFragmentSelector={
        "FragmentSelectorType": "PRODUCER_TIMESTAMP",
        "TimestampRange": {"StartTimestamp": START + 1, "EndTimestamp": START + 2.5}})
    assert out["ContentType"] == "video/mp4"
    path = tmp_path / "clip.mp4"
    path.write_bytes(out["Payload"].read())
    assert probe(str(path))[1] == ("video", "h264", 320, 240, "50")
    fmt = subprocess.run([shutil.which("ffprobe"), "-v", "error", "-show_entries", "stream=duration",
                          "-select_streams", "v", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    assert abs(float(json.loads(fmt)["streams"][0]["duration"]) - 2.0) < 0.1
    assert error_of(archive.get_clip, StreamName=stream, ClipFragmentSelector={
        "FragmentSelectorType": "PRODUCER_TIMESTAMP",
        "TimestampRange": {"StartTimestamp": START + 100, "EndTimestamp": START + 200}}) == (
        "ResourceNotFoundException", 404)


def test_get_images_samples_the_stream(srv, archive, stream, tmp_path):
    out = archive.get_images(
        StreamName=stream, ImageSelectorType="PRODUCER_TIMESTAMP", StartTimestamp=START + 0.5,
        EndTimestamp=START + 5, SamplingInterval=1000, Format="JPEG",
        FormatConfig={"JPEGQuality": "90"}, WidthPixels=160, MaxResults=4)
    images = out["Images"]
    assert [i["TimeStamp"].timestamp() for i in images] == [START + 0.5, START + 1.5, START + 2.5, START + 3.5]
    assert [i.get("Error") for i in images] == [None] * 4
    for k, img in enumerate(images):
        path = tmp_path / f"{k}.jpg"
        path.write_bytes(base64.b64decode(img["ImageContent"]))
        assert probe(str(path)) == [("video", "mjpeg", 160, 120, "1")]
    rest = archive.get_images(
        StreamName=stream, ImageSelectorType="PRODUCER_TIMESTAMP", StartTimestamp=START + 0.5,
        EndTimestamp=START + 5, SamplingInterval=1000, Format="PNG", NextToken=out["NextToken"])
    assert [(i["TimeStamp"].timestamp(), i.get("Error")) for i in rest["Images"]] == [(START + 4.5, "NO_MEDIA")]
    assert "NextToken" not in rest
    assert error_of(archive.get_images, StreamName=stream, ImageSelectorType="PRODUCER_TIMESTAMP",
                    StartTimestamp=START, EndTimestamp=START + 301, SamplingInterval=1000,
                    Format="PNG") == ("InvalidArgumentException", 400)


def test_session_errors(srv, archive, stream):
    kv = srv.client("kinesisvideo")
    name = unique("noretain")
    kv.create_stream(StreamName=name, DataRetentionInHours=0)
    assert error_of(archive.get_hls_streaming_session_url, StreamName=name) == ("NoDataRetentionException", 400)
    assert error_of(archive.get_hls_streaming_session_url, StreamName="nope") == ("ResourceNotFoundException", 404)
    assert error_of(archive.get_hls_streaming_session_url, StreamName=stream,
                    PlaybackMode="ON_DEMAND") == ("InvalidArgumentException", 400)
    assert error_of(archive.get_hls_streaming_session_url, StreamName=stream, **on_demand(ContainerFormat="AVI")) == (
        "InvalidArgumentException", 400)
    with pytest.raises(urllib.error.HTTPError) as e:
        get(f"{srv.endpoint}/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=nope")
    assert e.value.code == 403
    assert json.loads(e.value.read())["__type"] == "NotAuthorizedException"
    # A session ends when it expires.
    url = archive.get_hls_streaming_session_url(StreamName=stream, Expires=300, **on_demand())["HLSStreamingSessionURL"]
    get(url)
    srv.advance_clock(301_000)
    with pytest.raises(urllib.error.HTTPError) as e:
        get(url)
    assert e.value.code == 403


def media_playlist(url):
    _, master = get(url)
    media_uri = [line for line in master.decode().splitlines() if line and not line.startswith("#")][0]
    _, playlist = get(url.rsplit("/", 1)[0] + "/" + media_uri)
    return playlist.decode()


def test_live_replay_grows_at_real_time_and_discontinuities_follow_gaps(start_server, tmp_path):
    srv = start_server("--status-delay-ms", "0")
    archive = srv.client("kinesis-video-archived-media")
    name = unique("replay")
    srv.client("kinesisvideo").create_stream(StreamName=name, DataRetentionInHours=24)
    data = streamed(make_mkv(tmp_path / "v.mkv", seconds=4))
    # Two uploads, the second 10 s of producer time after the first ends.
    for start in (START, START + 14):
        pm = PutMedia(srv.endpoint, name, start=start)
        pm.upload(data)
        assert pm.read_head() == 200
        assert [a["EventType"] for a in pm.acks()].count("PERSISTED") == 4
        pm.close()
    sel = {"FragmentSelectorType": "PRODUCER_TIMESTAMP", "TimestampRange": {"StartTimestamp": START}}
    url = archive.get_hls_streaming_session_url(
        StreamName=name, PlaybackMode="LIVE_REPLAY", HLSFragmentSelector=sel,
        MaxMediaPlaylistFragmentResults=20)["HLSStreamingSessionURL"]

    def listed(text):
        return [line.split("FragmentNumber=")[1].split("&")[0] for line in text.splitlines()
                if line.startswith("getMP4MediaFragment.mp4")]

    stored = [f["FragmentNumber"] for f in archive.list_fragments(StreamName=name)["Fragments"]]
    # At first only the fragment at the start; then as much as has been
    # replayed (the server's clock moves on).
    assert listed(media_playlist(url)) == stored[:1]
    srv.advance_clock(2_500)
    assert listed(media_playlist(url)) == stored[:3]
    srv.advance_clock(20_000)
    text = media_playlist(url)
    assert listed(text) == stored
    assert "#EXT-X-ENDLIST" not in text
    # ON_DISCONTINUITY: one marker, where the 10 s gap is.
    od = archive.get_hls_streaming_session_url(
        StreamName=name, PlaybackMode="ON_DEMAND", DiscontinuityMode="ON_DISCONTINUITY",
        HLSFragmentSelector={"FragmentSelectorType": "PRODUCER_TIMESTAMP",
                             "TimestampRange": {"StartTimestamp": START, "EndTimestamp": START + 60}},
    )["HLSStreamingSessionURL"]
    lines = media_playlist(od).splitlines()
    marks = [i for i, line in enumerate(lines) if line == "#EXT-X-DISCONTINUITY"]
    assert len(marks) == 1
    after = next(line for line in lines[marks[0]:] if line.startswith("getMP4MediaFragment.mp4"))
    assert stored[4] in after
