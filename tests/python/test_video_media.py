"""Kinesis Video data plane: PutMedia as the producer SDK sends it
(acknowledgements read while the upload continues), GetMedia (every
StartSelector, live tailing, AWS's fragment tags), ListFragments and
GetMediaForFragmentList with boto3, the errors, and PERSISTED fragments
surviving SIGKILL."""
import threading
import time

import botocore.exceptions
import pytest

from conftest import Server, unique
from kvs import PutMedia, elements, ffprobe, fragments_of, make_mkv, streamed

CLUSTER = 0x1F43B675


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
def mkv(tmp_path_factory):
    """4 s of 25 fps H.264, a key frame a second: four clusters."""
    return make_mkv(tmp_path_factory.mktemp("mkv") / "clip.mkv")


def clusters_of(data):
    """The bodies of a Matroska file's clusters, in order."""
    return [body for _, eid, body in elements(data) if eid == CLUSTER]


def new_stream(kv, retention=24):
    name = unique("video")
    kv.create_stream(StreamName=name, DataRetentionInHours=retention, MediaType="video/h264")
    return name


def put(srv, name, data, **kw):
    """Uploads `data` and returns every acknowledgement."""
    pm = PutMedia(srv.endpoint, name, **kw)
    pm.upload(data)
    assert pm.read_head() == 200
    acks = list(pm.acks())
    pm.close()
    return acks


def error_of(call, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_put_media_acknowledges_each_fragment_while_the_upload_continues(srv, kv, archive, mkv):
    name = new_stream(kv)
    up = streamed(mkv)
    # Where each cluster starts in the streamed upload.
    starts = [i for i in range(len(up) - 3) if up[i:i + 4] == b"\x1f\x43\xb6\x75"]
    assert len(starts) == 4
    pm = PutMedia(srv.endpoint, name, start=1_700_000_000.250)
    # A cluster of unknown size ends where the next one begins.
    pm.send(up[:starts[1] + 12])
    assert pm.read_head() == 200
    assert pm.headers["content-type"] == "application/json"
    acks = pm.acks()
    seen = []
    # The first fragment is acknowledged as persisted before the second
    # is sent: the acknowledgements come while the upload is open.
    while not seen or seen[-1]["EventType"] != "PERSISTED":
        a = next(acks)
        if a["EventType"] != "IDLE":
            seen.append(a)
    pm.send(up[starts[1] + 12:])
    pm.end()
    seen.extend(acks)
    pm.close()
    by_tc = {}
    for a in seen:
        by_tc.setdefault(a["FragmentTimecode"], []).append(a["EventType"])
    assert by_tc == {tc: ["BUFFERING", "RECEIVED", "PERSISTED"] for tc in (0, 1000, 2000, 3000)}
    numbers = [a["FragmentNumber"] for a in seen if a["EventType"] == "PERSISTED"]
    assert all(isinstance(n, str) and n.isdigit() for n in numbers)
    assert [int(n) for n in numbers] == sorted(int(n) for n in numbers)
    assert len(set(numbers)) == 4
    for a in seen:
        assert set(a) == {"EventType", "FragmentTimecode", "FragmentNumber"}
    # The same numbers on every acknowledgement of a fragment.
    assert {a["FragmentNumber"] for a in seen} == set(numbers)

    frags = archive.list_fragments(StreamName=name)["Fragments"]
    assert [f["FragmentNumber"] for f in frags] == numbers
    assert [f["ProducerTimestamp"].timestamp() for f in frags] == [
        1_700_000_000.25, 1_700_000_001.25, 1_700_000_002.25, 1_700_000_003.25]
    assert [f["FragmentLengthInMilliseconds"] for f in frags] == [1000] * 4
    assert all(abs(f["ServerTimestamp"].timestamp() - time.time()) < 60 for f in frags)
    assert all(f["FragmentSizeInBytes"] > 8000 for f in frags)


def test_get_media_returns_the_uploaded_clusters_byte_for_byte_with_aws_tags(srv, kv, media, mkv, tmp_path):
    name = new_stream(kv)
    acks = put(srv, name, streamed(mkv), start=1_700_000_000)
    numbers = [a["FragmentNumber"] for a in acks if a["EventType"] == "PERSISTED"]
    out = media.get_media(StreamName=name, StartSelector={"StartSelectorType": "EARLIEST"})
    assert out["ContentType"] == "video/webm"
    body = out["Payload"].read()
    docs = fragments_of(body)
    assert [d["tags"]["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] for d in docs] == numbers
    assert [d["tags"]["AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"] for d in docs] == [
        "1700000000.000", "1700000001.000", "1700000002.000", "1700000003.000"]
    for i, d in enumerate(docs):
        server = d["tags"]["AWS_KINESISVIDEO_SERVER_TIMESTAMP"]
        assert len(server.split(".")[1]) == 3
        assert abs(float(server) - time.time()) < 60
        assert d["tags"]["AWS_KINESISVIDEO_CONTINUATION_TOKEN"] == d["tags"]["AWS_KINESISVIDEO_FRAGMENT_NUMBER"]
        assert int(d["tags"]["AWS_KINESISVIDEO_MILLIS_BEHIND_NOW"]) >= 0
        # Tracks, then the fragment's tags, the cluster, the producer's
        # Tags that came before the cluster (ffmpeg's ENCODER tag, before
        # the first), then the trailing AWS tags.
        assert d["tracks"] == 1
        assert d["order"] == ["Tags", "Cluster", "Tags", "Tags"] if i == 0 else ["Tags", "Cluster", "Tags"]
    assert "libx264" in docs[0]["tags"]["ENCODER"]
    assert [d["timecode"] for d in docs] == [0, 1000, 2000, 3000]
    # The clusters as uploaded (timecodes as sent, blocks untouched).
    assert clusters_of(body) == clusters_of(mkv)
    path = tmp_path / "out.mkv"
    path.write_bytes(body)
    probe = ffprobe(path, "stream=codec_name,width,height,nb_read_frames")
    assert probe["streams"] == [
        {"codec_name": "h264", "width": 320, "height": 240, "nb_read_frames": "100"}]


def test_get_media_start_selectors(srv, kv, media, mkv):
    name = new_stream(kv)
    acks = put(srv, name, mkv, start=1_700_000_000)
    numbers = [a["FragmentNumber"] for a in acks if a["EventType"] == "PERSISTED"]

    def read(**sel):
        out = media.get_media(StreamName=name, StartSelector=sel)["Payload"].read()
        return [d["tags"]["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] for d in fragments_of(out)]

    assert read(StartSelectorType="FRAGMENT_NUMBER", AfterFragmentNumber=numbers[1]) == numbers[2:]
    assert read(StartSelectorType="CONTINUATION_TOKEN", ContinuationToken=numbers[0]) == numbers[1:]
    assert read(StartSelectorType="PRODUCER_TIMESTAMP", StartTimestamp=1_700_000_001.5) == numbers[1:]
    assert read(StartSelectorType="PRODUCER_TIMESTAMP", StartTimestamp=1_700_000_002) == numbers[2:]
    assert read(StartSelectorType="SERVER_TIMESTAMP", StartTimestamp=time.time() - 600) == numbers
    assert read(StartSelectorType="SERVER_TIMESTAMP", StartTimestamp=time.time() + 600) == []
    assert read(StartSelectorType="NOW") == []
    assert error_of(media.get_media, StreamName=name,
                    StartSelector={"StartSelectorType": "FRAGMENT_NUMBER"}) == ("InvalidArgumentException", 400)
    assert error_of(media.get_media, StreamName=name,
                    StartSelector={"StartSelectorType": "FRAGMENT_NUMBER",
                                   "AfterFragmentNumber": "12345"}) == ("InvalidArgumentException", 400)
    assert error_of(media.get_media, StreamName="nope",
                    StartSelector={"StartSelectorType": "NOW"}) == ("ResourceNotFoundException", 404)


def test_get_media_tails_a_live_upload(srv, kv, media, mkv):
    name = new_stream(kv)
    got = {}

    def reader():
        out = media.get_media(StreamName=name, StartSelector={"StartSelectorType": "NOW"})
        got["body"] = out["Payload"].read()

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.5)
    pm = PutMedia(srv.endpoint, name)
    pm.upload(streamed(mkv), chunk=2048, pace=0.01)
    assert pm.read_head() == 200
    acks = list(pm.acks())
    pm.close()
    t.join(30)
    numbers = [a["FragmentNumber"] for a in acks if a["EventType"] == "PERSISTED"]
    docs = fragments_of(got["body"])
    assert [d["tags"]["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] for d in docs] == numbers
    assert clusters_of(got["body"]) == clusters_of(mkv)


def test_list_fragments_ranges_and_pages(srv, kv, archive, mkv):
    name = new_stream(kv)
    put(srv, name, mkv, start=1_700_000_000)
    all_numbers = [f["FragmentNumber"] for f in archive.list_fragments(StreamName=name)["Fragments"]]
    page = archive.list_fragments(StreamName=name, MaxResults=3)
    assert [f["FragmentNumber"] for f in page["Fragments"]] == all_numbers[:3]
    rest = archive.list_fragments(StreamName=name, NextToken=page["NextToken"])
    assert [f["FragmentNumber"] for f in rest["Fragments"]] == all_numbers[3:]
    assert "NextToken" not in rest
    # Both ends inclusive, on the fragment's start.
    ranged = archive.list_fragments(StreamName=name, FragmentSelector={
        "FragmentSelectorType": "PRODUCER_TIMESTAMP",
        "TimestampRange": {"StartTimestamp": 1_700_000_001, "EndTimestamp": 1_700_000_002}})
    assert [f["FragmentNumber"] for f in ranged["Fragments"]] == all_numbers[1:3]
    assert error_of(archive.list_fragments, StreamName=name, NextToken="AAAA") == ("InvalidArgumentException", 400)
    assert error_of(archive.list_fragments, StreamName="nope") == ("ResourceNotFoundException", 404)


def test_get_media_for_fragment_list_in_the_order_named(srv, kv, archive, mkv):
    name = new_stream(kv)
    acks = put(srv, name, mkv)
    numbers = [a["FragmentNumber"] for a in acks if a["EventType"] == "PERSISTED"]
    out = archive.get_media_for_fragment_list(StreamName=name, Fragments=[numbers[2], numbers[0]])
    body = out["Payload"].read()
    docs = fragments_of(body)
    assert [d["tags"]["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] for d in docs] == [numbers[2], numbers[0]]
    assert clusters_of(body) == [clusters_of(mkv)[2], clusters_of(mkv)[0]]
    assert error_of(archive.get_media_for_fragment_list, StreamName=name,
                    Fragments=[numbers[0] + "7"]) == ("ResourceNotFoundException", 404)


def test_audio_and_video_in_one_fragment(srv, kv, media, tmp_path):
    data = make_mkv(tmp_path / "av.mkv", seconds=2, audio=True)
    name = new_stream(kv)
    acks = put(srv, name, streamed(data))
    assert [a["EventType"] for a in acks if a["EventType"] != "BUFFERING"].count("PERSISTED") == len(clusters_of(data))
    body = media.get_media(StreamName=name, StartSelector={"StartSelectorType": "EARLIEST"})["Payload"].read()
    assert clusters_of(body) == clusters_of(data)
    assert {d["tracks"] for d in fragments_of(body)} == {2}
    path = tmp_path / "got.mkv"
    path.write_bytes(body)
    codecs = [s["codec_name"] for s in ffprobe(path, "stream=codec_name")["streams"]]
    assert codecs == ["h264", "aac"]


def test_put_media_refusals(srv, kv, mkv):
    pm = PutMedia(srv.endpoint, "no-such-stream")
    pm.end()
    assert pm.read_head() == 404
    assert pm.headers["x-amzn-errortype"] == "ResourceNotFoundException"
    pm.close()
    name = new_stream(kv)
    pm = PutMedia(srv.endpoint, name, timecode_type="SOMETIMES")
    pm.end()
    assert pm.read_head() == 400
    assert pm.headers["x-amzn-errortype"] == "InvalidArgumentException"
    pm.close()
    # One producer at a time.
    first = PutMedia(srv.endpoint, name)
    first.send(streamed(mkv)[:5000])
    assert first.read_head() == 200
    second = PutMedia(srv.endpoint, name)
    second.end()
    assert second.read_head() == 400
    assert second.headers["x-amzn-errortype"] == "ConnectionLimitExceededException"
    second.close()
    first.end()
    list(first.acks())
    first.close()
    # Not Matroska: an ERROR acknowledgement with AWS's id, then the end.
    acks = put(srv, name, b"this is not a matroska file at all")
    assert acks == [{"EventType": "ERROR", "ErrorId": 4006, "ErrorCode": "INVALID_MKV_DATA"}]
    # The same clusters again in one upload: timecodes go back.
    acks = put(srv, name, streamed(mkv) + streamed(mkv))
    errors = [a for a in acks if a["EventType"] == "ERROR"]
    assert [(a["FragmentTimecode"], a["ErrorId"], a["ErrorCode"]) for a in errors] == [
        (tc, 4004, "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS") for tc in (0, 1000, 2000, 3000)]
    assert [a["FragmentTimecode"] for a in acks if a["EventType"] == "PERSISTED"] == [0, 1000, 2000, 3000]


def test_persisted_fragments_survive_sigkill(start_server, mkv):
    srv = start_server("--status-delay-ms", "0")
    kv = srv.client("kinesisvideo")
    name = new_stream(kv)
    data = streamed(mkv)
    acks = put(srv, name, data)
    persisted = [a["FragmentNumber"] for a in acks if a["EventType"] == "PERSISTED"]
    assert len(persisted) == 4
    # A second upload cut off by the kill mid-way.
    pm = PutMedia(srv.endpoint, name, start=time.time() + 10)
    pm.send(data[:len(data) // 2])
    assert pm.read_head() == 200
    more = []
    for a in pm.acks():
        more.append(a)
        if a["EventType"] == "PERSISTED":
            persisted.append(a["FragmentNumber"])
        if len([x for x in more if x["EventType"] == "PERSISTED"]) == 1:
            break
    srv.kill()
    pm.close()
    srv.restart()
    archive = srv.client("kinesis-video-archived-media")
    stored = [f["FragmentNumber"] for f in archive.list_fragments(StreamName=name)["Fragments"]]
    assert stored[:len(persisted)] == persisted
    body = srv.client("kinesis-video-archived-media").get_media_for_fragment_list(
        StreamName=name, Fragments=persisted[:4])["Payload"].read()
    assert clusters_of(body) == clusters_of(mkv)


def test_retention_drops_old_fragments_and_delete_removes_them(start_server, mkv):
    srv = start_server("--status-delay-ms", "0")
    kv = srv.client("kinesisvideo")
    archive = srv.client("kinesis-video-archived-media")
    name = new_stream(kv, retention=1)
    put(srv, name, mkv)
    assert len(archive.list_fragments(StreamName=name)["Fragments"]) == 4
    srv.advance_clock(30 * 60 * 1000)
    time.sleep(1.5)
    assert len(archive.list_fragments(StreamName=name)["Fragments"]) == 4
    srv.advance_clock(31 * 60 * 1000)
    deadline = time.time() + 10
    while archive.list_fragments(StreamName=name)["Fragments"] and time.time() < deadline:
        time.sleep(0.2)
    assert archive.list_fragments(StreamName=name)["Fragments"] == []
    # Deleted, then created again: the new stream starts empty.
    put(srv, name, mkv)
    assert len(archive.list_fragments(StreamName=name)["Fragments"]) == 4
    kv.delete_stream(StreamARN=kv.describe_stream(StreamName=name)["StreamInfo"]["StreamARN"])
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            kv.describe_stream(StreamName=name)
            time.sleep(0.2)
        except botocore.exceptions.ClientError:
            break
    kv.create_stream(StreamName=name, DataRetentionInHours=1)
    assert archive.list_fragments(StreamName=name)["Fragments"] == []


def test_put_media_signed_as_the_producer_sdk_signs(start_server, mkv):
    srv = start_server("--status-delay-ms", "0", "--credential-pairs", "AKIDTEST:secret")
    kv = srv.client("kinesisvideo")
    name = new_stream(kv)
    acks = put(srv, name, streamed(mkv), access="AKIDTEST", secret="secret")
    assert [a["EventType"] for a in acks].count("PERSISTED") == 4
    pm = PutMedia(srv.endpoint, name, access="AKIDTEST", secret="wrong")
    pm.end()
    assert pm.read_head() == 403
    assert pm.headers["x-amzn-errortype"] == "InvalidSignatureException"
    pm.close()
    pm = PutMedia(srv.endpoint, name, access="AKIDOTHER", secret="secret")
    pm.end()
    assert pm.read_head() == 403
    assert pm.headers["x-amzn-errortype"] == "UnrecognizedClientException"
    pm.close()


def tags_element(pairs):
    """A Segment-level Tags element of SimpleTags."""
    def el(eid, body):
        n = len(body)
        return eid + bytes([0x10, n >> 16 & 0xFF, n >> 8 & 0xFF, n & 0xFF]) + body
    simple = b"".join(el(b"\x67\xc8", el(b"\x45\xa3", k.encode()) + el(b"\x44\x87", v.encode()))
                      for k, v in pairs)
    return el(b"\x12\x54\xc3\x67", el(b"\x73\x73", el(b"\x63\xc0", b"") + simple))


def test_fragment_metadata_travels_with_its_fragment(srv, kv, media, mkv):
    name = new_stream(kv)
    up = streamed(mkv)
    starts = [i for i in range(len(up) - 3) if up[i:i + 4] == b"\x1f\x43\xb6\x75"]
    # Metadata for the second fragment; the end-of-fragment marker closes
    # the third early and is not kept.
    up = (up[:starts[1]] + tags_element([("camera", "door"), ("zone", "north")])
          + up[starts[1]:starts[3]] + tags_element([("AWS_KINESISVIDEO_END_OF_FRAGMENT", "")])
          + up[starts[3]:])
    acks = put(srv, name, up)
    assert [a["EventType"] for a in acks].count("PERSISTED") == 4
    body = media.get_media(StreamName=name, StartSelector={"StartSelectorType": "EARLIEST"})["Payload"].read()
    docs = fragments_of(body)
    assert docs[1]["tags"]["camera"] == "door" and docs[1]["tags"]["zone"] == "north"
    assert all("camera" not in d["tags"] for d in docs[2:])
    assert all("AWS_KINESISVIDEO_END_OF_FRAGMENT" not in d["tags"] for d in docs)
    assert clusters_of(body) == clusters_of(mkv)


def test_get_media_serves_three_connections_per_stream(srv, kv, mkv):
    name = new_stream(kv)
    put(srv, name, mkv)
    # Three live readers hold their connections open (NOW waits for new
    # fragments); a fourth is refused.
    readers = []
    for _ in range(3):
        r = Reader(srv, name)
        assert r.status == 200
        readers.append(r)
    fourth = Reader(srv, name)
    assert (fourth.status, fourth.error) == (400, "ConnectionLimitExceededException")
    for r in readers:
        r.close()


class Reader:
    """A raw GetMedia request from NOW, its head read, its body left open."""

    def __init__(self, srv, name):
        import http.client
        import json as _json
        host, port = srv.endpoint.split("//")[1].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=10)
        self.conn.request("POST", "/getMedia", body=_json.dumps(
            {"StreamName": name, "StartSelector": {"StartSelectorType": "NOW"}}),
            headers={"content-type": "application/json"})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.error = self.resp.getheader("x-amzn-ErrorType")

    def close(self):
        self.conn.close()


def test_metrics_count_fragments_in_and_out(srv, kv, media, mkv):
    import urllib.request
    name = new_stream(kv)
    acks = put(srv, name, streamed(mkv))
    size = sum(len(b) for b in clusters_of(mkv))
    media.get_media(StreamName=name, StartSelector={"StartSelectorType": "EARLIEST"})["Payload"].read()
    text = urllib.request.urlopen(srv.endpoint + "/metrics", timeout=5).read().decode()
    mine = {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("riffle_video_") and f'stream="{name}"' in line}
    assert mine["riffle_video_putmedia_incoming_fragments_total"] == 4
    assert mine["riffle_video_getmedia_outgoing_fragments_total"] == 4
    assert mine["riffle_video_stored_fragments"] == 4
    assert mine["riffle_video_putmedia_errors_total"] == 0
    assert mine["riffle_video_putmedia_connections"] == 0
    # Stored bytes: each fragment's header, cluster and tags.
    assert mine["riffle_video_putmedia_incoming_bytes_total"] == mine["riffle_video_stored_bytes"] > size
    assert len([a for a in acks if a["EventType"] == "PERSISTED"]) == 4
