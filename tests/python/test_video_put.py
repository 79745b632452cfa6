"""`riffle video put` (a Matroska file uploaded through PutMedia as the
producer SDK sends it) checked with boto3's ListFragments and GetMedia,
its refusals and errors, and `riffle bench --phase video`."""
import re
import subprocess
import time

import pytest

from conftest import Server, riffle_bin, unique
from kvs import PutMedia, elements, ffmpeg, make_mkv, streamed

CLUSTER = 0x1F43B675
LINE = re.compile(r"^fragment (\d+) timecode (\d+) persisted (\d+\.\d) ms after its last byte$")


@pytest.fixture(scope="module")
def srv():
    s = Server("--status-delay-ms", "0").start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture(scope="module")
def kv(srv):
    return srv.client("kinesisvideo")


@pytest.fixture(scope="module")
def media(srv):
    return srv.client("kinesis-video-media")


@pytest.fixture(scope="module")
def archive(srv):
    return srv.client("kinesis-video-archived-media")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """4 s of 25 fps H.264, a key frame a second: four clusters."""
    path = tmp_path_factory.mktemp("mkv") / "clip.mkv"
    make_mkv(path)
    return path


def clusters_of(data):
    return [body for _, eid, body in elements(data) if eid == CLUSTER]


def riffle(*args, timeout=120):
    return subprocess.run([riffle_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          env={"PATH": "/usr/bin:/bin", "RUST_BACKTRACE": "0"})


def video_put(srv, path, stream, *flags):
    return riffle("video", "put", str(path), "--stream", stream, "--endpoint", srv.endpoint, *flags)


def fragment_lines(out):
    lines = out.stdout.splitlines()
    return [LINE.match(line).groups() for line in lines if line.startswith("fragment ")]


def test_a_file_is_uploaded_and_every_cluster_is_persisted_as_sent(srv, kv, media, archive, clip):
    name = unique("put")
    kv.create_stream(StreamName=name, DataRetentionInHours=24, MediaType="video/h264")
    before = time.time()
    out = video_put(srv, clip, name)
    assert out.returncode == 0, out.stderr
    frags = fragment_lines(out)
    assert [int(tc) for _, tc, _ in frags] == [0, 1000, 2000, 3000]
    assert all(float(ms) >= 0 for _, _, ms in frags)
    numbers = [n for n, _, _ in frags]
    assert out.stdout.splitlines()[-1].startswith(f"4 fragments of {clip} persisted in stream {name} in ")

    listed = archive.list_fragments(StreamName=name)["Fragments"]
    assert sorted((f["FragmentNumber"] for f in listed), key=int) == numbers
    listed.sort(key=lambda f: int(f["FragmentNumber"]))
    # RELATIVE timecodes from a producer start timestamp of now.
    starts = [f["ProducerTimestamp"].timestamp() for f in listed]
    assert before - 1 <= starts[0] <= time.time()
    assert [round(s - starts[0], 3) for s in starts] == [0.0, 1.0, 2.0, 3.0]
    assert [f["FragmentLengthInMilliseconds"] for f in listed] == [1000] * 4

    data = clip.read_bytes()
    body = media.get_media(StreamName=name, StartSelector={"StartSelectorType": "EARLIEST"})["Payload"].read()
    assert clusters_of(body) == clusters_of(data)
    body = archive.get_media_for_fragment_list(StreamName=name, Fragments=numbers)["Payload"].read()
    assert clusters_of(body) == clusters_of(data)


def test_realtime_paces_frames_and_create_makes_the_stream(srv, kv, media, tmp_path):
    path = tmp_path / "short.mkv"
    data = make_mkv(path, seconds=2)
    name = unique("live")
    started = time.monotonic()
    out = video_put(srv, path, name, "--realtime", "--create")
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == f"created stream {name} (DataRetentionInHours 24)"
    assert [int(tc) for _, tc, _ in fragment_lines(out)] == [0, 1000]
    # The last frame is at 1.96 s: a live upload cannot end sooner.
    assert elapsed >= 1.9
    info = kv.describe_stream(StreamName=name)["StreamInfo"]
    assert info["DataRetentionInHours"] == 24
    assert info["Status"] == "ACTIVE"
    body = media.get_media(StreamName=name, StartSelector={"StartSelectorType": "EARLIEST"})["Payload"].read()
    assert clusters_of(body) == clusters_of(data)


def test_a_missing_stream_without_create_is_the_aws_error(srv, clip):
    name = unique("missing")
    out = video_put(srv, clip, name)
    assert out.returncode == 1
    assert "fragment " not in out.stdout
    assert ("DescribeStream failed: ResourceNotFoundException (HTTP 404): "
            "The requested stream is not found or not active.") in out.stderr


def test_put_media_refused_over_http_is_reported(srv, kv, clip):
    name = unique("busy")
    kv.create_stream(StreamName=name, DataRetentionInHours=24)
    # Another producer holds the stream.
    other = PutMedia(srv.endpoint, name)
    other.send(streamed(clip.read_bytes())[:3000])
    assert other.read_head() == 200
    try:
        out = video_put(srv, clip, name)
    finally:
        other.end()
        list(other.acks())
        other.close()
    assert out.returncode == 1
    assert (f"PutMedia failed: ConnectionLimitExceededException (HTTP 400): "
            f"Stream {name} already has a PutMedia connection.") in out.stderr


def test_an_error_acknowledgement_ends_the_upload_with_its_id(srv, kv, clip, tmp_path):
    # Two documents whose timecodes start again at 0: AWS refuses the
    # fragment that goes back in time.
    path = tmp_path / "twice.mkv"
    path.write_bytes(clip.read_bytes() * 2)
    name = unique("back")
    kv.create_stream(StreamName=name, DataRetentionInHours=24)
    out = video_put(srv, path, name)
    assert out.returncode == 1
    assert ("PutMedia refused the fragment at timecode 0: ErrorId 4004 "
            "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS") in out.stderr


def test_files_that_are_not_matroska_are_refused(srv, kv, tmp_path):
    name = unique("nomkv")
    kv.create_stream(StreamName=name, DataRetentionInHours=24)
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n")
    out = video_put(srv, text, name)
    assert out.returncode == 1
    assert (f"{text} is neither Matroska, WebM nor MP4 (it begins with neither an EBML header "
            "nor an ftyp box)") in out.stderr
    frag = tmp_path / "frag.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "1", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-movflags", "frag_keyframe+empty_moov", str(frag))
    out = video_put(srv, frag, name)
    assert out.returncode == 1
    assert "fragmented MP4 is not read; remux it first: ffmpeg -i in.mp4 -c copy out.mkv" in out.stderr
    # A Matroska file cut inside a cluster is refused before it ends the
    # upload as if it were whole.
    cut = tmp_path / "cut.mkv"
    whole = make_mkv(tmp_path / "whole.mkv", seconds=2)
    cut.write_bytes(whole[:len(whole) // 2])
    out = video_put(srv, cut, name)
    assert out.returncode == 1
    assert "invalid MKV data" in out.stderr


def test_bench_video_phase_persists_and_lists_every_fragment(srv):
    out = riffle("bench", "--endpoint", srv.endpoint, "--phase", "video", "--video-streams", "2",
                 "--duration-secs", "3", timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    m = re.search(r"^video: 2 PutMedia streams .*?: (\d+) fragments persisted of (\d+) sent = .*; (\d+) errors$",
                  out.stdout, re.M)
    assert m, out.stdout
    persisted = int(m.group(1))
    # 3 s per stream: a 2 s fragment and the 1 s one the upload's end closes.
    assert (persisted, int(m.group(2)), int(m.group(3))) == (4, 4, 0)
    m = re.search(r"^video verify: (\d+) persisted, (\d+) listed by ListFragments, (\d+) lost$",
                  out.stdout, re.M)
    assert m, out.stdout
    assert (int(m.group(1)), int(m.group(3))) == (persisted, 0)
    assert int(m.group(2)) == persisted
    assert re.search(r"^video PERSISTED latency .*p50 [\d.]+ ms, p95 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms$",
                     out.stdout, re.M), out.stdout
    assert re.search(r"^HLS: ", out.stdout, re.M), out.stdout


@pytest.mark.parametrize("bframes", [0, 2])
def test_an_mp4_file_is_uploaded_with_the_same_frames(srv, kv, media, tmp_path, bframes):
    """H.264 (with and without B-frames) and AAC in MP4: remuxed without
    re-encoding, every decoded video frame identical to the file's."""
    mp4 = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i",
           "sine=frequency=440:sample_rate=48000", "-t", "4", "-c:v", "libx264", "-g", "25",
           "-bf", str(bframes), "-pix_fmt", "yuv420p", "-c:a", "aac", str(mp4))
    name = unique("mp4")
    kv.create_stream(StreamName=name, DataRetentionInHours=24)
    out = video_put(srv, mp4, name)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if LINE.match(line)]
    assert len(lines) == 4
    body = media.get_media(StreamName=name, StartSelector={"StartSelectorType": "EARLIEST"})["Payload"].read()
    got = tmp_path / "got.mkv"
    got.write_bytes(body)

    def frames(path, stream):
        r = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", f"0:{stream}",
                            "-f", "framemd5", "-"], capture_output=True, text=True, check=True)
        return [line.split(",")[-1].strip() for line in r.stdout.splitlines() if not line.startswith("#")]

    want = frames(mp4, "v")
    assert len(want) == 100
    assert frames(got, "v") == want
    # Every AAC frame too. The MP4's edit list skips the encoder's first
    # (priming) frame when it is played; Matroska plays that frame.
    audio = frames(got, "a")
    assert audio[1:] == frames(mp4, "a")
