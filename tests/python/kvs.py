"""Kinesis Video helpers for the black-box suite: MKV made by ffmpeg, a
PutMedia upload sent the way the producer SDK sends it (HTTP/1.1, chunked,
SigV4 over an empty payload, acknowledgements read while uploading), and a
reader of GetMedia's Matroska output."""
import datetime
import hashlib
import hmac
import json
import shutil
import socket
import subprocess
import threading
import time

from conftest import REGION


def ffmpeg(*args):
    exe = shutil.which("ffmpeg")
    assert exe, "ffmpeg is installed by scripts/test"
    subprocess.run([exe, "-v", "error", "-y", *args], check=True)


def make_mkv(path, seconds=4, fps=25, gop=25, size="320x240", audio=False, codec="libx264"):
    """An H.264 (optionally + AAC) Matroska file with one key frame per
    `gop` frames; ffmpeg starts a cluster at every key frame."""
    args = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    args += ["-t", str(seconds), "-c:v", codec, "-g", str(gop), "-keyint_min", str(gop),
             "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-bf", "0"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "64k"]
    # ffmpeg starts a cluster at every video key frame.
    args += ["-f", "matroska", str(path)]
    ffmpeg(*args)
    return path.read_bytes()


UNKNOWN = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def streamed(mkv):
    """`mkv` as the producer SDK streams it: the Segment and every Cluster
    of unknown size, SeekHead and Cues dropped."""
    out = bytearray()
    i = 0
    while i < len(mkv):
        eid, n, _ = _vint(mkv, i, True)
        size, m, unknown = _vint(mkv, i + n, False)
        start = i + n + m
        if eid != 0x18538067:
            out += mkv[i:start + size]
            i = start + size
            continue
        out += mkv[i:i + n] + UNKNOWN
        end = len(mkv) if unknown else start + size
        j = start
        while j < end:
            cid, cn, _ = _vint(mkv, j, True)
            csize, cm, _ = _vint(mkv, j + cn, False)
            body = mkv[j + cn + cm:j + cn + cm + csize]
            if cid == 0x1F43B675:
                out += mkv[j:j + cn] + UNKNOWN + body
            elif cid not in (0x114D9B74, 0x1C53BB6B):
                out += mkv[j:j + cn + cm + csize]
            j += cn + cm + csize
        i = end
    return bytes(out)


def ffprobe(path, *entries):
    exe = shutil.which("ffprobe")
    out = subprocess.run(
        [exe, "-v", "error", "-count_frames", "-show_entries", ",".join(entries) or "stream",
         "-of", "json", str(path)],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


# -- SigV4 for a streamed PutMedia ------------------------------------------

def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_headers(host, path, headers, access="AKIDEXAMPLE", secret="secret", region=REGION, now=None):
    """The producer SDK's signature: every header signed, the payload hash
    that of an empty body (and no x-amz-content-sha256 header)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    h = {k.lower(): v.strip() for k, v in headers.items()}
    h["host"] = host
    h["x-amz-date"] = amz_date
    signed = sorted(h)
    canonical = "\n".join([
        "POST", path, "",
        "".join(f"{k}:{h[k]}\n" for k in signed),
        ";".join(signed),
        hashlib.sha256(b"").hexdigest(),
    ])
    scope = f"{date}/{region}/kinesisvideo/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = _sign(_sign(_sign(_sign(("AWS4" + secret).encode(), date), region), "kinesisvideo"), "aws4_request")
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    out = dict(headers)
    out["X-Amz-Date"] = amz_date
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
                            f"SignedHeaders={';'.join(signed)}, Signature={sig}")
    return out


class PutMedia:
    """One PutMedia connection: the upload is written from a thread while
    the caller reads acknowledgements as they arrive."""

    def __init__(self, endpoint, stream, timecode_type="RELATIVE", start=None, arn=None,
                 extra_headers=None, **sign):
        host = endpoint.split("//", 1)[1]
        self.sock = socket.create_connection(tuple([host.split(":")[0], int(host.split(":")[1])]))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        headers = {
            "user-agent": "riffle-tests/1.0",
            "x-amzn-fragment-timecode-type": timecode_type,
            "x-amzn-producer-start-timestamp": f"{time.time() if start is None else start:.3f}",
            "transfer-encoding": "chunked",
            "connection": "keep-alive",
        }
        if stream is not None:
            headers["x-amzn-stream-name"] = stream
        if arn is not None:
            headers["x-amzn-stream-arn"] = arn
        headers.update(extra_headers or {})
        headers = sigv4_headers(host, "/putMedia", headers, **sign)
        headers["content-type"] = "application/json"
        head = "POST /putMedia HTTP/1.1\r\nHost: " + host + "\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.sock.sendall(head.encode())
        self.file = self.sock.makefile("rb")
        self.status = None
        self.headers = {}
        self.writer = None

    def send(self, data):
        if data:
            self.sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def end(self):
        self.sock.sendall(b"0\r\n\r\n")

    def upload(self, data, chunk=4096, pace=0.0, end=True):
        """Writes `data` in chunks from a thread (`pace` seconds apart)."""
        def run():
            try:
                for i in range(0, len(data), chunk):
                    self.send(data[i:i + chunk])
                    if pace:
                        time.sleep(pace)
                if end:
                    self.end()
            except OSError:
                pass
        self.writer = threading.Thread(target=run, daemon=True)
        self.writer.start()

    def read_head(self):
        line = self.file.readline().decode()
        self.status = int(line.split()[1])
        while True:
            line = self.file.readline().decode().strip()
            if not line:
                break
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        return self.status

    def body_chunks(self):
        """The response body's chunks, as they arrive."""
        if "content-length" in self.headers:
            yield self.file.read(int(self.headers["content-length"]))
            return
        while True:
            size = self.file.readline()
            if not size:
                return
            n = int(size.strip() or b"0", 16)
            if n == 0:
                self.file.readline()
                return
            yield self.file.read(n)
            self.file.readline()

    def acks(self):
        """Acknowledgements as parsed JSON objects, as they arrive."""
        buf = b""
        for c in self.body_chunks():
            buf += c
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# -- Reading GetMedia's output -----------------------------------------------

def _vint(b, i, keep_marker):
    first = b[i]
    n = 1
    while n <= 8 and not first & (0x80 >> (n - 1)):
        n += 1
    v = first if keep_marker else first & (0xFF >> n)
    for x in b[i + 1:i + n]:
        v = (v << 8) | x
    unknown = not keep_marker and v == (1 << (7 * n)) - 1
    return v, n, unknown


MASTER = {0x18538067, 0x1F43B675, 0x1254C367, 0x7373, 0x67C8, 0x1654AE6B, 0xAE, 0x1549A966, 0xE0, 0xE1}


def elements(b):
    """A flat walk of a Matroska byte string: (depth, id, body) for every
    element, entering masters (unknown sizes run to their parent's end)."""
    out = []

    def walk(start, end, depth):
        i = start
        while i < end:
            eid, n, _ = _vint(b, i, True)
            size, m, unknown = _vint(b, i + n, False)
            body_start = i + n + m
            if eid == 0x18538067 and unknown:
                # Each document's Segment runs to the next EBML header.
                nxt = b.find(b"\x1a\x45\xdf\xa3", body_start)
                body_end = end if nxt < 0 else nxt
            else:
                body_end = end if unknown else body_start + size
            out.append((depth, eid, b[body_start:body_end]))
            if eid in MASTER:
                walk(body_start, body_end, depth + 1)
            i = body_end
    walk(0, len(b), 0)
    return out


def fragments_of(b):
    """GetMedia output split into documents: per fragment its AWS tags
    (name -> value), its cluster timecode and its blocks' (track, size,
    keyframe) in order."""
    docs = []
    cur = None
    tag_name = None
    for depth, eid, body in elements(b):
        if eid == 0x1A45DFA3:
            cur = {"tags": {}, "blocks": [], "timecode": None, "tracks": 0, "order": []}
            docs.append(cur)
        elif eid == 0xAE:
            cur["tracks"] += 1
        elif eid == 0x1254C367:
            cur["order"].append("Tags")
        elif eid == 0x1F43B675:
            cur["order"].append("Cluster")
        elif eid == 0xE7 and depth == 2:
            cur["timecode"] = int.from_bytes(body, "big")
        elif eid == 0x45A3:
            tag_name = body.decode()
        elif eid == 0x4487:
            cur["tags"][tag_name] = body.decode()
        elif eid == 0xA3:
            track = body[0] & 0x7F
            cur["blocks"].append((track, len(body) - 4, bool(body[3] & 0x80)))
    return docs
