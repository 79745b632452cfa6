// The console's Kinesis Video pages in a real browser (Debian's Chromium
// driven by playwright-core): a stream created in the UI, H.264 made by
// ffmpeg uploaded with `riffle video put`, its fragments and the gap
// between two uploads on the timeline, chosen with the keyboard and
// played by the page's hls.js; read-only mode; signing. Writes the
// screenshots docs/console/video-*.png.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import {
  CreateStreamCommand,
  DescribeStreamCommand,
  KinesisVideoClient,
} from "@aws-sdk/client-kinesis-video";
import { KinesisVideoArchivedMediaClient, ListFragmentsCommand } from "@aws-sdk/client-kinesis-video-archived-media";

import { CREDENTIALS, REGION, Riffle, catchError, riffleBin } from "./harness.mjs";
import { CONSOLE, launch, shoot, skip as browserMissing, until } from "./console-harness.mjs";

const require = createRequire(import.meta.url);
const skip = browserMissing || (!existsSync("/usr/bin/ffmpeg") && "ffmpeg is missing (scripts/test installs Debian's ffmpeg)");


/**
 * A server started with `args`, Kinesis Video clients for it and a
 * browser, for the suite this is called in: the returned object is filled
 * before its tests run.
 */
function setUp(args = []) {
  const it = {};
  before(async () => {
    it.server = await Riffle.start({ args });
    const config = { endpoint: it.server.endpoint, region: REGION, credentials: CREDENTIALS, maxAttempts: 1 };
    it.kv = new KinesisVideoClient(config);
    it.archive = new KinesisVideoArchivedMediaClient(config);
    it.server.clients.push(it.kv, it.archive);
    it.browser = await launch();
  });
  after(async () => {
    await it.browser?.close();
    await it.server?.stop();
  });
  return it;
}

/** `riffle video put FILE --stream NAME`: its output lines. */
function put(server, file, stream) {
  return execFileSync(riffleBin(), ["video", "put", file, "--stream", stream, "--endpoint", server.endpoint], {
    encoding: "utf8",
    timeout: 60000,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

const fmtMs = (ms) => new Date(ms).toISOString().replace("T", " ");

/** The timeline as drawn: fragments and gaps. */
function drawn(page) {
  return page.$eval("svg.fragments", (svg) => ({
    fragments: [...svg.querySelectorAll("rect.frag")].map((r) => ({
      number: r.dataset.fragmentNumber,
      start: Number(r.dataset.start),
      duration: Number(r.dataset.duration),
      selected: r.classList.contains("selected"),
    })),
    gaps: [...svg.querySelectorAll("g.gap")].map((g) => [Number(g.dataset.from), Number(g.dataset.to)]),
  }));
}

/** The player's state, from the page. */
function playback(page) {
  return page.$eval("section.player video", (v) => {
    const q = v.getVideoPlaybackQuality();
    return { time: v.currentTime, frames: q.totalVideoFrames, width: v.videoWidth, height: v.videoHeight, mode: v.dataset.mode ?? null };
  });
}

/** The media segments the session's HLS playlist lists. */
async function segments(page) {
  const master = await page.$eval("a.session", (a) => a.href);
  const text = await (await fetch(master)).text();
  const media = new URL(text.split("\n").find((l) => l && !l.startsWith("#")), master).href;
  return (await (await fetch(media)).text()).split("\n").filter((l) => l.startsWith("#EXTINF")).length;
}

test("the vendored hls.js is the pinned package's ES module, byte for byte", () => {
  const pinned = JSON.parse(readFileSync(join(CONSOLE, "package.json"), "utf8")).dependencies["hls.js"];
  const lock = JSON.parse(readFileSync(join(CONSOLE, "package-lock.json"), "utf8"));
  assert.equal(lock.packages["node_modules/hls.js"].version, pinned);
  assert.equal(require("hls.js/package.json").version, pinned);
  const dist = dirname(require.resolve("hls.js/dist/hls.min.js"));
  assert.ok(readFileSync(join(CONSOLE, "vendor", "hls.light.min.mjs")).equals(readFileSync(join(dist, "hls.light.min.mjs"))));
  assert.ok(readFileSync(join(CONSOLE, "vendor", "hls.LICENSE.txt")).equals(readFileSync(join(dist, "..", "LICENSE"))));
});

describe("the console's video pages, read-write", { skip }, () => {
  const it = setUp();
  let server, kv, archive, page, dir;
  before(async () => {
    ({ server, kv, archive } = it);
    page = await it.browser.newPage({ viewport: { width: 1280, height: 860 } });
    dir = mkdtempSync(join(tmpdir(), "riffle-console-video-"));
    // Two seconds of H.264, a key frame a second: two fragments an upload.
    execFileSync("ffmpeg", [
      "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2",
      "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-bf", "0", "-f", "matroska", join(dir, "clip.mkv"),
    ]);
    // Twenty seconds, for a camera uploading in real time.
    execFileSync("ffmpeg", [
      "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "20",
      "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-bf", "0", "-f", "matroska", join(dir, "live.mkv"),
    ]);
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  test("create in the UI, upload twice, see fragments and the gap, choose with the keyboard, play, delete", { timeout: 180000 }, async () => {
    const name = "console-cam";
    await page.goto(`${server.endpoint}/`);
    await page.waitForSelector("#mode:text('read-write')");
    await page.keyboard.press("g");
    await page.keyboard.press("v");
    await page.waitForSelector("text=No video streams yet.");
    assert.equal(new URL(page.url()).hash, "#/video");
    assert.equal(await page.$eval("a[data-nav=video]", (a) => a.hasAttribute("aria-current")), true);

    // Create through the form, with a retention.
    await page.keyboard.press("n");
    await page.fill("form.create input[name=StreamName]", name);
    await page.fill("form.create input[name=DataRetentionInHours]", "2");
    await page.click("form.create button[type=submit]");
    await page.waitForSelector(`tr[data-video-stream="${name}"] .status-ACTIVE`);
    const info = (await kv.send(new DescribeStreamCommand({ StreamName: name }))).StreamInfo;
    assert.deepEqual([info.MediaType, info.DataRetentionInHours, info.Status], ["video/h264", 2, "ACTIVE"]);
    await kv.send(new CreateStreamCommand({ StreamName: "console-doorbell", DataRetentionInHours: 168, MediaType: "video/h265" }));
    await page.waitForSelector('tr[data-video-stream="console-doorbell"] .status-ACTIVE');
    const cells = () =>
      page.$$eval("tr[data-video-stream]", (trs) => trs.map((tr) => [...tr.children].slice(0, 6).map((td) => td.textContent)));
    const rows = await until(async () => {
      const r = await cells();
      return r.every((c) => c[4]) && r;
    }, "the data endpoints");
    assert.deepEqual(rows, [
      ["console-cam", "ACTIVE", "video/h264", "2 h", server.endpoint, fmtMs(info.CreationTime.getTime()).replace(/\.\d{3}Z$/, "Z")],
      ["console-doorbell", "ACTIVE", "video/h265", "168 h", server.endpoint, rows[1][5]],
    ]);
    // The filter.
    await page.keyboard.press("/");
    await page.keyboard.type("door");
    assert.deepEqual((await cells()).map((c) => c[0]), ["console-doorbell"]);
    await page.fill("[data-filter]", "");
    await page.$eval("[data-filter]", (f) => f.blur());
    await shoot(page, "video-list");

    // Two uploads a few seconds apart: a gap between them.
    const first = put(server, join(dir, "clip.mkv"), name);
    await sleep(3500);
    const second = put(server, join(dir, "clip.mkv"), name);
    const listed = (await archive.send(new ListFragmentsCommand({ StreamName: name }))).Fragments.sort(
      (a, b) => a.ProducerTimestamp - b.ProducerTimestamp,
    );
    assert.equal(listed.length, 4, `${first}\n${second}`);
    const ms = (d) => d.getTime();

    // The stream's page: description, the upload hint, the timeline.
    await page.click(`a[href="#/video/${name}"]`);
    await page.waitForSelector("[data-fact=endpoint] code:text('http')");
    const facts = await page.$$eval("[data-fact]", (dds) => Object.fromEntries(dds.map((d) => [d.dataset.fact, d.textContent])));
    assert.deepEqual(
      { arn: facts.arn, mediaType: facts.mediaType, retention: facts.retention, endpoint: facts.endpoint, version: facts.version },
      { arn: info.StreamARN, mediaType: "video/h264", retention: "2 hours", endpoint: server.endpoint, version: info.Version },
    );
    assert.equal(await page.textContent("pre.hint"), `riffle video put FILE --stream ${name} --endpoint ${server.endpoint}`);
    await page.waitForSelector("svg.fragments rect.frag >> nth=3");
    const timeline = await drawn(page);
    assert.deepEqual(
      timeline.fragments,
      listed.map((f) => ({ number: f.FragmentNumber, start: ms(f.ProducerTimestamp), duration: f.FragmentLengthInMilliseconds, selected: true })),
    );
    assert.deepEqual(timeline.gaps, [[ms(listed[1].ProducerTimestamp) + listed[1].FragmentLengthInMilliseconds, ms(listed[2].ProducerTimestamp)]]);
    assert.ok(timeline.gaps[0][1] - timeline.gaps[0][0] >= 1000, JSON.stringify(timeline.gaps));
    assert.match(await page.textContent(".timeline-summary"), /^4 fragments, [\d.]+ KiB, 4 s of media from .* to .*; 1 gap\.$/);

    // A custom range (local time, whole seconds) around the second upload only.
    const local = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 19);
    await page.selectOption("select[name=range]", "custom");
    await page.fill("input[name=from]", local(Math.floor(ms(listed[2].ProducerTimestamp) / 1000) * 1000));
    await page.fill("input[name=to]", local(Math.ceil(ms(listed[3].ProducerTimestamp) / 1000) * 1000 + 1000));
    await page.click("text=Show fragments");
    await page.waitForFunction(() => document.querySelectorAll("svg.fragments rect.frag").length === 2);
    assert.deepEqual((await drawn(page)).fragments.map((f) => f.number), [listed[2].FragmentNumber, listed[3].FragmentNumber]);
    assert.deepEqual((await drawn(page)).gaps, []);
    await page.selectOption("select[name=range]", "3600");
    await page.click("text=Show fragments");
    await page.waitForFunction(() => document.querySelectorAll("svg.fragments rect.frag").length === 4);
    assert.deepEqual((await drawn(page)).fragments.map((f) => f.selected), [true, true, true, true]);

    // The keyboard: focus shows a fragment; Enter chooses it, Shift+End extends.
    await page.focus("svg.fragments rect.frag >> nth=0");
    await page.keyboard.press("ArrowRight");
    const shown = await page.$$eval("dl.fragment [data-fact]", (dds) => Object.fromEntries(dds.map((d) => [d.dataset.fact, d.textContent])));
    const kib = (n) => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`);
    assert.deepEqual(shown, {
      number: listed[1].FragmentNumber,
      producer: fmtMs(ms(listed[1].ProducerTimestamp)),
      server: fmtMs(ms(listed[1].ServerTimestamp)),
      duration: `${listed[1].FragmentLengthInMilliseconds / 1000} s`,
      size: kib(listed[1].FragmentSizeInBytes),
    });
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("Enter");
    assert.deepEqual((await drawn(page)).fragments.map((f) => f.selected), [false, false, true, false]);
    assert.match(await page.textContent("p.chosen"), /^Chosen: 1 fragment, /);

    // Play the one chosen fragment: the session lists just it.
    await page.click("button[data-play=ON_DEMAND]");
    await page.waitForSelector("a.session:not([hidden])");
    assert.equal(await segments(page), 1);

    // Shift+End: the second upload's two fragments; then all four.
    await page.focus("svg.fragments rect.frag >> nth=2");
    await page.keyboard.press("Shift+End");
    assert.deepEqual((await drawn(page)).fragments.map((f) => f.selected), [false, false, true, true]);
    assert.match(await page.textContent("p.chosen"), /^Chosen: 2 fragments, /);
    await page.click("button[data-select-all]");
    assert.match(await page.textContent("p.chosen"), /^Chosen: 4 fragments, /);

    // Play all four on demand: frames decoded, time advancing.
    await page.click("button[data-play=ON_DEMAND]");
    const playing = await until(async () => {
      const p = await playback(page);
      return p.time > 1.5 && p.frames > 0 && p;
    }, "the video to play", 30000);
    assert.deepEqual([playing.width, playing.height, playing.mode], [320, 240, "ON_DEMAND"]);
    assert.equal(await segments(page), 4);
    assert.deepEqual(await page.$$eval("section.player .error", (e) => e.map((x) => x.textContent)), []);
    const later = await until(async () => {
      const p = await playback(page);
      return p.time > playing.time && p;
    }, "the time to advance");
    assert.ok(later.frames >= playing.frames, JSON.stringify({ playing, later }));
    await page.$eval("section.player video", (v) => v.pause());
    await shoot(page, "video-stream", true);

    // Live: a camera uploading in real time, played at its newest fragments.
    const camera = spawn(riffleBin(), ["video", "put", join(dir, "live.mkv"), "--stream", name, "--endpoint", server.endpoint, "--realtime"], {
      stdio: "ignore",
    });
    try {
      await until(
        async () => (await archive.send(new ListFragmentsCommand({ StreamName: name }))).Fragments.length >= 7,
        "the camera's first fragments",
        20000,
      );
      await page.click("button[data-play=LIVE]");
      const live = await until(async () => {
        const p = await playback(page);
        return p.mode === "LIVE" && p.frames > 0 && p;
      }, "live playback", 30000);
      const onward = await until(async () => {
        const p = await playback(page);
        return p.time > live.time + 1 && p;
      }, "live time to advance", 20000);
      assert.deepEqual([onward.width, onward.height], [320, 240]);
      assert.deepEqual(await page.$$eval("section.player .error", (e) => e.map((x) => x.textContent)), []);
    } finally {
      camera.kill();
    }

    // Live again once the newest fragment is more than 30 s old on the server's clock.
    await server.advanceClock(60000);
    await page.click("button[data-play=LIVE]");
    const err = await page.waitForSelector("section.player .error");
    assert.equal(await err.textContent(), "ResourceNotFoundException: No fragments found in the stream for the streaming request.");

    // Delete from the list, after typing the name.
    await page.click("a[data-nav=video]");
    await page.click(`button[aria-label="Delete ${name}"]`);
    await page.fill("dialog.confirm input[name=confirm]", name);
    await page.click("dialog.confirm button.danger");
    await page.waitForSelector(`tr[data-video-stream="${name}"]`, { state: "detached" });
    const gone = await catchError(() => kv.send(new DescribeStreamCommand({ StreamName: name })));
    assert.equal(gone.name, "ResourceNotFoundException");
  });
});

describe("the console's video pages, read-only", { skip }, () => {
  const it = setUp(["--console", "read-only"]);

  test("lists and describes, offers no create or delete, and the server refuses them", { timeout: 60000 }, async () => {
    const { server, kv, browser } = it;
    await kv.send(new CreateStreamCommand({ StreamName: "made-by-the-sdk", DataRetentionInHours: 1 }));
    const page = await browser.newPage({ viewport: { width: 1280, height: 700 } });
    await page.goto(`${server.endpoint}/_riffle/console/#/video`);
    await page.waitForSelector("#mode:text('read-only')");
    await page.waitForSelector('tr[data-video-stream="made-by-the-sdk"] .status-ACTIVE');
    assert.equal(await page.$("button[data-new]"), null);
    assert.equal(await page.$("tr[data-video-stream] button"), null);
    await page.click('a[href="#/video/made-by-the-sdk"]');
    await page.waitForSelector("[data-fact=retention]:text('1 hours')");
    await page.waitForSelector("text=No fragments in this range.");
    assert.equal(await page.$("button.danger"), null);
    // What the page would send, refused by the server all the same.
    const refused = await page.evaluate(async () => {
      const answers = [];
      for (const [path, body] of [
        ["createStream", { StreamName: "refused" }],
        ["deleteStream", { StreamARN: "arn:aws:kinesisvideo:us-east-1:000000000000:stream/made-by-the-sdk/1" }],
      ]) {
        const r = await fetch(`/${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-riffle-console": "1" },
          body: JSON.stringify(body),
        });
        answers.push({ status: r.status, body: await r.text() });
      }
      return answers;
    });
    const denied = (op) => ({
      status: 400,
      body: JSON.stringify({
        __type: "AccessDeniedException",
        message: `The console is read-only on this server: ${op} changes state (riffle serve --console read-write allows it)`,
      }),
    });
    assert.deepEqual(refused, [denied("CreateStream"), denied("DeleteStream")]);
    assert.equal((await kv.send(new DescribeStreamCommand({ StreamName: "made-by-the-sdk" }))).StreamInfo.Status, "ACTIVE");
    const none = await catchError(() => kv.send(new DescribeStreamCommand({ StreamName: "refused" })));
    assert.equal(none.name, "ResourceNotFoundException");
  });
});

describe("the console's video pages on a server that checks signatures", { skip }, () => {
  const it = setUp(["--credential-pairs", `${CREDENTIALS.accessKeyId}:${CREDENTIALS.secretAccessKey}`]);

  test("signs its Kinesis Video calls, at the data endpoint too", { timeout: 60000 }, async () => {
    const { server, kv, browser } = it;
    await kv.send(new CreateStreamCommand({ StreamName: "signed-cam", DataRetentionInHours: 24 }));
    const page = await browser.newPage({ viewport: { width: 1280, height: 700 } });
    await page.goto(`${server.endpoint}/_riffle/console/#/video`);
    await page.fill("input[name=accessKeyId]", CREDENTIALS.accessKeyId);
    await page.fill("input[name=secretAccessKey]", CREDENTIALS.secretAccessKey);
    await page.click("form.signin button[type=submit]");
    await page.waitForSelector('tr[data-video-stream="signed-cam"] .status-ACTIVE');
    await page.click('a[href="#/video/signed-cam"]');
    await page.waitForSelector("text=No fragments in this range.");
    // GetHLSStreamingSessionURL, signed, answers AWS's error for a stream without fragments.
    await page.click("button[data-play=LIVE]");
    const err = await page.waitForSelector("section.player .error");
    assert.equal(await err.textContent(), "ResourceNotFoundException: No fragments found in the stream for the streaming request.");
  });
});
