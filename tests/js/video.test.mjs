// Kinesis Video Streams with the JS SDK v3 over cleartext HTTP/2: every
// operation of @aws-sdk/client-kinesis-video, client-kinesis-video-media and
// client-kinesis-video-archived-media, media uploaded by a PutMedia client
// (HTTP/1.1, chunked, acknowledgements read while the upload is open) from
// an MKV made by ffmpeg, clips and images checked by ffprobe, and an HLS
// session played by hls.js in headless Chromium.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  CreateSignalingChannelCommand,
  CreateStreamCommand,
  DeleteEdgeConfigurationCommand,
  DeleteSignalingChannelCommand,
  DeleteStreamCommand,
  DescribeEdgeConfigurationCommand,
  DescribeImageGenerationConfigurationCommand,
  DescribeMappedResourceConfigurationCommand,
  DescribeMediaStorageConfigurationCommand,
  DescribeNotificationConfigurationCommand,
  DescribeSignalingChannelCommand,
  DescribeStreamCommand,
  DescribeStreamStorageConfigurationCommand,
  GetDataEndpointCommand,
  GetSignalingChannelEndpointCommand,
  KinesisVideoClient,
  ListEdgeAgentConfigurationsCommand,
  ListSignalingChannelsCommand,
  ListStreamsCommand,
  ListTagsForResourceCommand,
  ListTagsForStreamCommand,
  StartEdgeConfigurationUpdateCommand,
  TagResourceCommand,
  TagStreamCommand,
  UntagResourceCommand,
  UntagStreamCommand,
  UpdateDataRetentionCommand,
  UpdateImageGenerationConfigurationCommand,
  UpdateMediaStorageConfigurationCommand,
  UpdateNotificationConfigurationCommand,
  UpdateSignalingChannelCommand,
  UpdateStreamCommand,
  UpdateStreamStorageConfigurationCommand,
} from "@aws-sdk/client-kinesis-video";
import { GetMediaCommand, KinesisVideoMediaClient } from "@aws-sdk/client-kinesis-video-media";
import {
  GetClipCommand,
  GetDASHStreamingSessionURLCommand,
  GetHLSStreamingSessionURLCommand,
  GetImagesCommand,
  GetMediaForFragmentListCommand,
  KinesisVideoArchivedMediaClient,
  ListFragmentsCommand,
} from "@aws-sdk/client-kinesis-video-archived-media";
import { NodeHttp2Handler } from "@smithy/node-http-handler";

import { ACCOUNT, CREDENTIALS, REGION, Riffle, catchError, errorShape } from "./harness.mjs";

const require = createRequire(import.meta.url);
const CHROMIUM = "/usr/bin/chromium";
// The producer clock of the uploads: fragments start at START, START + 1, ...
const START = 1_700_000_000;
const KMS_DEFAULT = `arn:aws:kms:${REGION}:${ACCOUNT}:alias/aws/kinesisvideo`;
const STREAM_NOT_FOUND = {
  name: "ResourceNotFoundException",
  message: "The requested stream is not found or not active.",
  fault: "client",
  httpStatusCode: 404,
};
const CHANNEL_NOT_FOUND = { ...STREAM_NOT_FOUND, message: "The requested channel is not found or not active." };
const HUB = `arn:aws:iot:${REGION}:${ACCOUNT}:thing/hub-js`;
const SECRET = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:camera-js`;
const CLUSTER = 0x1f43b675;
const API_NAMES = [
  "PUT_MEDIA",
  "GET_MEDIA",
  "LIST_FRAGMENTS",
  "GET_MEDIA_FOR_FRAGMENT_LIST",
  "GET_HLS_STREAMING_SESSION_URL",
  "GET_DASH_STREAMING_SESSION_URL",
  "GET_CLIP",
  "GET_IMAGES",
];

let counter = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${Date.now()}-${counter++}`;

/** A response without the SDK's $metadata. */
function body(r) {
  const { $metadata, ...rest } = r;
  assert.equal($metadata.httpStatusCode, 200);
  return rest;
}

// -- Matroska ---------------------------------------------------------------

function vint(b, i, keepMarker) {
  const first = b[i];
  let n = 1;
  while (n <= 8 && !(first & (0x80 >> (n - 1)))) n++;
  let v = BigInt(keepMarker ? first : first & (0xff >> n));
  for (let k = 1; k < n; k++) v = (v << 8n) | BigInt(b[i + k]);
  const unknown = !keepMarker && v === (1n << BigInt(7 * n)) - 1n;
  return { v: unknown ? -1 : Number(v), n, unknown };
}

const MASTERS = new Set([
  0x18538067, 0x1f43b675, 0x1254c367, 0x7373, 0x67c8, 0x1654ae6b, 0xae, 0x1549a966, 0xe0, 0xe1,
]);
const EBML = Buffer.from([0x1a, 0x45, 0xdf, 0xa3]);

/** A flat walk of Matroska bytes: {depth, id, body} per element, masters entered. */
function elements(b) {
  const out = [];
  const walk = (start, end, depth) => {
    let i = start;
    while (i < end) {
      const id = vint(b, i, true);
      const size = vint(b, i + id.n, false);
      const bodyStart = i + id.n + size.n;
      let bodyEnd;
      if (id.v === 0x18538067 && size.unknown) {
        // A streamed Segment runs to the next document's EBML header.
        const next = b.indexOf(EBML, bodyStart);
        bodyEnd = next < 0 ? end : next;
      } else {
        bodyEnd = size.unknown ? end : bodyStart + size.v;
      }
      out.push({ depth, id: id.v, body: b.subarray(bodyStart, bodyEnd) });
      if (MASTERS.has(id.v)) walk(bodyStart, bodyEnd, depth + 1);
      i = bodyEnd;
    }
  };
  walk(0, b.length, 0);
  return out;
}

/** GetMedia output split into documents: each one's tags (name -> value) and cluster timecode. */
function documentsOf(b) {
  const docs = [];
  let cur;
  let name;
  for (const { depth, id, body: e } of elements(b)) {
    if (id === 0x1a45dfa3) {
      cur = { tags: {}, timecode: null, clusters: 0 };
      docs.push(cur);
    } else if (id === CLUSTER) {
      cur.clusters++;
    } else if (id === 0xe7 && depth === 2) {
      cur.timecode = e.readUIntBE(0, e.length);
    } else if (id === 0x45a3) {
      name = e.toString();
    } else if (id === 0x4487) {
      cur.tags[name] = e.toString();
    }
  }
  return docs;
}

/** How many times the tag `name` occurs in Matroska bytes. */
function tagCount(b, name) {
  return elements(b).filter(({ id, body: e }) => id === 0x45a3 && e.toString() === name).length;
}

const clustersOf = (b) => elements(b).filter((e) => e.id === CLUSTER).map((e) => Buffer.from(e.body));

// -- ffmpeg / ffprobe -------------------------------------------------------

function ffprobeStreams(path) {
  const out = execFileSync(
    "ffprobe",
    [
      "-v", "error", "-count_frames",
      "-show_entries", "stream=codec_type,codec_name,width,height,nb_read_frames",
      "-of", "json", path,
    ],
    { encoding: "utf8", timeout: 120000, stdio: ["ignore", "pipe", "pipe"] },
  );
  return JSON.parse(out).streams;
}

// -- PutMedia ---------------------------------------------------------------

/**
 * One PutMedia upload as the producer SDK sends it: POST /putMedia over
 * HTTP/1.1 with a chunked body that stays open while acknowledgements
 * (JSON lines) are read from the response.
 */
class PutMedia {
  constructor(endpoint, stream, start) {
    const url = new URL(endpoint);
    this.req = httpRequest({
      host: url.hostname,
      port: url.port,
      method: "POST",
      path: "/putMedia",
      agent: false,
      headers: {
        "x-amzn-stream-name": stream,
        "x-amzn-fragment-timecode-type": "RELATIVE",
        "x-amzn-producer-start-timestamp": start.toFixed(3),
        "transfer-encoding": "chunked",
        "content-type": "application/json",
      },
    });
    this.req.setNoDelay(true);
    this.response = new Promise((ok, fail) => {
      this.req.once("response", ok);
      this.req.once("error", fail);
    });
    this.req.flushHeaders();
  }

  write(data) {
    this.req.write(data);
  }

  end() {
    this.req.end();
  }

  /** Acknowledgements as parsed objects, as they arrive. */
  async *acks() {
    const res = await this.response;
    res.setEncoding("utf8");
    let buf = "";
    for await (const chunk of res) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) yield JSON.parse(line);
      }
    }
  }
}

/** Uploads `data` whole; returns the acknowledgements other than IDLE. */
async function putAll(endpoint, stream, data, start = START) {
  const pm = new PutMedia(endpoint, stream, start);
  pm.write(data);
  pm.end();
  const res = await pm.response;
  assert.equal(res.statusCode, 200);
  const acks = [];
  for await (const a of pm.acks()) if (a.EventType !== "IDLE") acks.push(a);
  return acks;
}

const persisted = (acks) => acks.filter((a) => a.EventType === "PERSISTED").map((a) => a.FragmentNumber);

// ---------------------------------------------------------------------------

describe("kinesis video with the JS SDK v3", () => {
  let server;
  let kv;
  let media;
  let archive;
  let dir;
  let mkv;

  const h2 = () => new NodeHttp2Handler({ requestTimeout: 30000, sessionTimeout: 30000 });
  const config = () => ({
    endpoint: server.endpoint,
    region: REGION,
    credentials: CREDENTIALS,
    maxAttempts: 1,
    requestHandler: h2(),
  });

  before(async () => {
    server = await Riffle.start();
    kv = new KinesisVideoClient(config());
    media = new KinesisVideoMediaClient(config());
    archive = new KinesisVideoArchivedMediaClient(config());
    server.clients.push(kv, media, archive);
    dir = mkdtempSync(join(tmpdir(), "riffle-js-video-"));
    const path = join(dir, "out.mkv");
    execFileSync("ffmpeg", [
      "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "4",
      "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-bf", "0", "-f", "matroska", path,
    ]);
    mkv = readFileSync(path);
  });

  after(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const describeStream = async (name) => (await kv.send(new DescribeStreamCommand({ StreamName: name }))).StreamInfo;
  const createStream = async (retention = 24, extra = {}) => {
    const name = unique("cam");
    const { StreamARN } = await kv.send(
      new CreateStreamCommand({ StreamName: name, DataRetentionInHours: retention, ...extra }),
    );
    return { name, arn: StreamARN };
  };

  test("streams: create, describe, list, update, retention, endpoints, both tag families, delete", async () => {
    const name = unique("cam");
    const before = Date.now();
    const created = body(
      await kv.send(
        new CreateStreamCommand({
          StreamName: name,
          DeviceName: "dev-1",
          MediaType: "video/h264",
          DataRetentionInHours: 24,
          Tags: { team: "video" },
        }),
      ),
    );
    const m = created.StreamARN.match(new RegExp(`^arn:aws:kinesisvideo:${REGION}:${ACCOUNT}:stream/${name}/(\\d+)$`));
    assert.ok(m, created.StreamARN);
    const arn = created.StreamARN;
    const createdMs = Number(m[1]);
    assert.ok(createdMs >= before - 1000 && createdMs <= Date.now() + 1000);

    const info = body(await kv.send(new DescribeStreamCommand({ StreamName: name }))).StreamInfo;
    assert.match(info.Version, /^[A-Za-z0-9]{20}$/);
    assert.ok(info.CreationTime instanceof Date);
    assert.equal(info.CreationTime.getTime(), createdMs);
    assert.deepEqual(info, {
      DeviceName: "dev-1",
      StreamName: name,
      StreamARN: arn,
      MediaType: "video/h264",
      KmsKeyId: KMS_DEFAULT,
      Version: info.Version,
      Status: "ACTIVE",
      CreationTime: info.CreationTime,
      DataRetentionInHours: 24,
    });
    assert.deepEqual((await kv.send(new DescribeStreamCommand({ StreamARN: arn }))).StreamInfo, info);

    // ListStreams: by prefix, paged.
    const prefix = unique("list");
    const names = [0, 1, 2].map((i) => `${prefix}-${i}`);
    for (const n of names) await kv.send(new CreateStreamCommand({ StreamName: n }));
    const cond = { ComparisonOperator: "BEGINS_WITH", ComparisonValue: prefix };
    const page1 = body(await kv.send(new ListStreamsCommand({ MaxResults: 2, StreamNameCondition: cond })));
    assert.deepEqual(page1.StreamInfoList.map((s) => s.StreamName), names.slice(0, 2));
    assert.equal(typeof page1.NextToken, "string");
    const page2 = body(
      await kv.send(new ListStreamsCommand({ MaxResults: 2, StreamNameCondition: cond, NextToken: page1.NextToken })),
    );
    assert.deepEqual(page2.StreamInfoList.map((s) => s.StreamName), names.slice(2));
    assert.equal(page2.NextToken, undefined);
    const listed = body(
      await kv.send(new ListStreamsCommand({ StreamNameCondition: { ComparisonOperator: "BEGINS_WITH", ComparisonValue: name } })),
    );
    assert.deepEqual(listed, { StreamInfoList: [info] });

    // UpdateStream: version checked, a new version.
    const stale = await catchError(() =>
      kv.send(new UpdateStreamCommand({ StreamName: name, CurrentVersion: "stale", DeviceName: "d2" })),
    );
    assert.deepEqual(errorShape(stale), {
      name: "VersionMismatchException",
      message: `The stream version stale does not match the current version of stream ${name}.`,
      fault: "client",
      httpStatusCode: 400,
    });
    assert.deepEqual(
      body(
        await kv.send(
          new UpdateStreamCommand({ StreamARN: arn, CurrentVersion: info.Version, DeviceName: "d2", MediaType: "video/h265" }),
        ),
      ),
      {},
    );
    const updated = await describeStream(name);
    assert.notEqual(updated.Version, info.Version);
    assert.deepEqual(updated, { ...info, DeviceName: "d2", MediaType: "video/h265", Version: updated.Version });

    // UpdateDataRetention both ways.
    await kv.send(
      new UpdateDataRetentionCommand({
        StreamName: name,
        CurrentVersion: updated.Version,
        Operation: "INCREASE_DATA_RETENTION",
        DataRetentionChangeInHours: 6,
      }),
    );
    const longer = await describeStream(name);
    assert.equal(longer.DataRetentionInHours, 30);
    assert.notEqual(longer.Version, updated.Version);
    const tooMuch = await catchError(() =>
      kv.send(
        new UpdateDataRetentionCommand({
          StreamName: name,
          CurrentVersion: longer.Version,
          Operation: "DECREASE_DATA_RETENTION",
          DataRetentionChangeInHours: 31,
        }),
      ),
    );
    assert.deepEqual(errorShape(tooMuch), {
      name: "InvalidArgumentException",
      message: `The data retention of stream ${name} is 30 hours; it cannot be decreased by 31.`,
      fault: "client",
      httpStatusCode: 400,
    });
    await kv.send(
      new UpdateDataRetentionCommand({
        StreamARN: arn,
        CurrentVersion: longer.Version,
        Operation: "DECREASE_DATA_RETENTION",
        DataRetentionChangeInHours: 29,
      }),
    );
    assert.equal((await describeStream(name)).DataRetentionInHours, 1);

    // GetDataEndpoint: every APIName, by name and by ARN.
    for (const api of API_NAMES) {
      assert.deepEqual(body(await kv.send(new GetDataEndpointCommand({ StreamName: name, APIName: api }))), {
        DataEndpoint: server.endpoint,
      });
    }
    assert.deepEqual(body(await kv.send(new GetDataEndpointCommand({ StreamARN: arn, APIName: "GET_HLS_STREAMING_SESSION_URL" }))), {
      DataEndpoint: server.endpoint,
    });
    const badApi = await catchError(() => kv.send(new GetDataEndpointCommand({ StreamName: name, APIName: "PLAY" })));
    assert.deepEqual(errorShape(badApi), {
      name: "InvalidArgumentException",
      message:
        "1 validation error detected: Value 'PLAY' at 'aPIName' failed to satisfy constraint: " +
        `Member must satisfy enum value set: [${API_NAMES.join(", ")}]`,
      fault: "client",
      httpStatusCode: 400,
    });

    // The stream tag family.
    assert.deepEqual(body(await kv.send(new TagStreamCommand({ StreamName: name, Tags: { b: "2", team: "cams" } }))), {});
    assert.deepEqual(body(await kv.send(new ListTagsForStreamCommand({ StreamName: name }))), {
      Tags: { team: "cams", b: "2" },
    });
    assert.deepEqual(body(await kv.send(new UntagStreamCommand({ StreamARN: arn, TagKeyList: ["team", "missing"] }))), {});
    assert.deepEqual((await kv.send(new ListTagsForStreamCommand({ StreamARN: arn }))).Tags, { b: "2" });
    // The resource tag family, on the same tags.
    assert.deepEqual(
      body(await kv.send(new TagResourceCommand({ ResourceARN: arn, Tags: [{ Key: "env", Value: "dev" }, { Key: "k", Value: "" }] }))),
      {},
    );
    assert.deepEqual(body(await kv.send(new ListTagsForResourceCommand({ ResourceARN: arn }))), {
      Tags: { b: "2", env: "dev", k: "" },
    });
    assert.deepEqual(body(await kv.send(new UntagResourceCommand({ ResourceARN: arn, TagKeyList: ["k", "b"] }))), {});
    assert.deepEqual((await kv.send(new ListTagsForStreamCommand({ StreamName: name }))).Tags, { env: "dev" });
    const tooMany = await catchError(() =>
      kv.send(new TagStreamCommand({ StreamName: name, Tags: Object.fromEntries([...Array(50).keys()].map((i) => [`k${i}`, "v"])) })),
    );
    assert.deepEqual(errorShape(tooMany), {
      name: "TagsPerResourceExceededLimitException",
      message: "A resource can have at most 50 tags.",
      fault: "client",
      httpStatusCode: 400,
    });

    // DeleteStream: version checked, then gone.
    const last = await describeStream(name);
    const wrong = await catchError(() => kv.send(new DeleteStreamCommand({ StreamARN: arn, CurrentVersion: "nope" })));
    assert.equal(errorShape(wrong).name, "VersionMismatchException");
    assert.deepEqual(body(await kv.send(new DeleteStreamCommand({ StreamARN: arn, CurrentVersion: last.Version }))), {});
    assert.deepEqual(errorShape(await catchError(() => describeStream(name))), STREAM_NOT_FOUND);
    assert.deepEqual(errorShape(await catchError(() => kv.send(new DeleteStreamCommand({ StreamARN: arn })))), STREAM_NOT_FOUND);
    for (const n of names) {
      await kv.send(new DeleteStreamCommand({ StreamARN: (await describeStream(n)).StreamARN }));
    }
    assert.deepEqual((await kv.send(new ListStreamsCommand({ StreamNameCondition: cond }))).StreamInfoList, []);
  });

  test("signaling channels: create, describe, list, update, endpoints, tags, delete", async () => {
    const name = unique("ch");
    const created = body(
      await kv.send(
        new CreateSignalingChannelCommand({
          ChannelName: name,
          ChannelType: "SINGLE_MASTER",
          SingleMasterConfiguration: { MessageTtlSeconds: 30 },
          Tags: [{ Key: "team", Value: "video" }],
        }),
      ),
    );
    const arn = created.ChannelARN;
    assert.match(arn, new RegExp(`^arn:aws:kinesisvideo:${REGION}:${ACCOUNT}:channel/${name}/\\d+$`));
    const info = body(await kv.send(new DescribeSignalingChannelCommand({ ChannelName: name }))).ChannelInfo;
    assert.ok(info.CreationTime instanceof Date);
    assert.equal(info.CreationTime.getTime(), Number(arn.split("/").pop()));
    assert.match(info.Version, /^[A-Za-z0-9]{20}$/);
    assert.deepEqual(info, {
      ChannelName: name,
      ChannelARN: arn,
      ChannelType: "SINGLE_MASTER",
      ChannelStatus: "ACTIVE",
      CreationTime: info.CreationTime,
      SingleMasterConfiguration: { MessageTtlSeconds: 30 },
      Version: info.Version,
    });
    assert.deepEqual((await kv.send(new DescribeSignalingChannelCommand({ ChannelARN: arn }))).ChannelInfo, info);
    assert.deepEqual(
      body(
        await kv.send(
          new ListSignalingChannelsCommand({ ChannelNameCondition: { ComparisonOperator: "BEGINS_WITH", ComparisonValue: name } }),
        ),
      ),
      { ChannelInfoList: [info] },
    );

    assert.deepEqual(
      body(
        await kv.send(
          new UpdateSignalingChannelCommand({
            ChannelARN: arn,
            CurrentVersion: info.Version,
            SingleMasterConfiguration: { MessageTtlSeconds: 90 },
          }),
        ),
      ),
      {},
    );
    const updated = (await kv.send(new DescribeSignalingChannelCommand({ ChannelARN: arn }))).ChannelInfo;
    assert.notEqual(updated.Version, info.Version);
    assert.deepEqual(updated, { ...info, SingleMasterConfiguration: { MessageTtlSeconds: 90 }, Version: updated.Version });
    const stale = await catchError(() =>
      kv.send(new UpdateSignalingChannelCommand({ ChannelARN: arn, CurrentVersion: info.Version })),
    );
    assert.deepEqual(errorShape(stale), {
      name: "VersionMismatchException",
      message: `The channel version ${info.Version} does not match the current version of signaling channel ${name}.`,
      fault: "client",
      httpStatusCode: 400,
    });

    const ws = server.endpoint.replace("http://", "ws://");
    assert.deepEqual(body(await kv.send(new GetSignalingChannelEndpointCommand({ ChannelARN: arn }))), {
      ResourceEndpointList: [
        { Protocol: "WSS", ResourceEndpoint: ws },
        { Protocol: "HTTPS", ResourceEndpoint: server.endpoint },
      ],
    });
    assert.deepEqual(
      (
        await kv.send(
          new GetSignalingChannelEndpointCommand({
            ChannelARN: arn,
            SingleMasterChannelEndpointConfiguration: { Protocols: ["HTTPS"], Role: "VIEWER" },
          }),
        )
      ).ResourceEndpointList,
      [{ Protocol: "HTTPS", ResourceEndpoint: server.endpoint }],
    );

    assert.deepEqual(body(await kv.send(new ListTagsForResourceCommand({ ResourceARN: arn }))), { Tags: { team: "video" } });
    await kv.send(new TagResourceCommand({ ResourceARN: arn, Tags: [{ Key: "b", Value: "2" }] }));
    await kv.send(new UntagResourceCommand({ ResourceARN: arn, TagKeyList: ["team"] }));
    assert.deepEqual((await kv.send(new ListTagsForResourceCommand({ ResourceARN: arn }))).Tags, { b: "2" });

    const fullMesh = await catchError(() =>
      kv.send(new CreateSignalingChannelCommand({ ChannelName: unique("ch"), ChannelType: "FULL_MESH" })),
    );
    assert.deepEqual(errorShape(fullMesh), {
      name: "InvalidArgumentException",
      message: "ChannelType FULL_MESH is not supported; SINGLE_MASTER is the only supported channel type.",
      fault: "client",
      httpStatusCode: 400,
    });
    assert.deepEqual(
      body(await kv.send(new DeleteSignalingChannelCommand({ ChannelARN: arn, CurrentVersion: updated.Version }))),
      {},
    );
    assert.deepEqual(
      errorShape(await catchError(() => kv.send(new DescribeSignalingChannelCommand({ ChannelName: name })))),
      CHANNEL_NOT_FOUND,
    );
    assert.deepEqual(
      errorShape(await catchError(() => kv.send(new ListTagsForResourceCommand({ ResourceARN: arn })))),
      CHANNEL_NOT_FOUND,
    );
  });

  test("configurations: media storage, mapped resources, image generation, notification, edge, storage tier", async () => {
    const { name, arn } = await createStream();
    const ch = unique("ch");
    const chArn = (await kv.send(new CreateSignalingChannelCommand({ ChannelName: ch }))).ChannelARN;

    // Media storage and the mapped resource it makes.
    assert.deepEqual(body(await kv.send(new DescribeMediaStorageConfigurationCommand({ ChannelName: ch }))), {
      MediaStorageConfiguration: { Status: "DISABLED" },
    });
    assert.deepEqual(body(await kv.send(new DescribeMappedResourceConfigurationCommand({ StreamName: name }))), {
      MappedResourceConfigurationList: [],
    });
    assert.deepEqual(
      body(
        await kv.send(
          new UpdateMediaStorageConfigurationCommand({
            ChannelARN: chArn,
            MediaStorageConfiguration: { Status: "ENABLED", StreamARN: arn },
          }),
        ),
      ),
      {},
    );
    assert.deepEqual(body(await kv.send(new DescribeMediaStorageConfigurationCommand({ ChannelARN: chArn }))), {
      MediaStorageConfiguration: { Status: "ENABLED", StreamARN: arn },
    });
    assert.deepEqual(body(await kv.send(new DescribeMappedResourceConfigurationCommand({ StreamARN: arn, MaxResults: 1 }))), {
      MappedResourceConfigurationList: [{ Type: "SIGNALING_CHANNEL", ARN: chArn }],
    });
    const { name: dry, arn: dryArn } = await createStream(0);
    const noRetention = await catchError(() =>
      kv.send(
        new UpdateMediaStorageConfigurationCommand({
          ChannelARN: chArn,
          MediaStorageConfiguration: { Status: "ENABLED", StreamARN: dryArn },
        }),
      ),
    );
    assert.deepEqual(errorShape(noRetention), {
      name: "NoDataRetentionException",
      message: `The stream ${dry} has no data retention; media storage needs a stream that keeps its data.`,
      fault: "client",
      httpStatusCode: 400,
    });

    // Image generation.
    const images = {
      Status: "ENABLED",
      ImageSelectorType: "PRODUCER_TIMESTAMP",
      DestinationConfig: { Uri: "s3://frames-bucket/door", DestinationRegion: REGION },
      SamplingInterval: 3000,
      Format: "JPEG",
      FormatConfig: { JPEGQuality: "80" },
      WidthPixels: 640,
      HeightPixels: 480,
    };
    assert.deepEqual(body(await kv.send(new DescribeImageGenerationConfigurationCommand({ StreamName: name }))), {});
    assert.deepEqual(
      body(await kv.send(new UpdateImageGenerationConfigurationCommand({ StreamName: name, ImageGenerationConfiguration: images }))),
      {},
    );
    assert.deepEqual(body(await kv.send(new DescribeImageGenerationConfigurationCommand({ StreamARN: arn }))), {
      ImageGenerationConfiguration: images,
    });
    const badInterval = await catchError(() =>
      kv.send(
        new UpdateImageGenerationConfigurationCommand({
          StreamName: name,
          ImageGenerationConfiguration: { ...images, SamplingInterval: 100 },
        }),
      ),
    );
    assert.deepEqual(errorShape(badInterval), {
      name: "InvalidArgumentException",
      message: "SamplingInterval must be between 200 and 20000 milliseconds.",
      fault: "client",
      httpStatusCode: 400,
    });
    const dryImages = await catchError(() =>
      kv.send(new UpdateImageGenerationConfigurationCommand({ StreamName: dry, ImageGenerationConfiguration: images })),
    );
    assert.deepEqual(errorShape(dryImages), {
      name: "NoDataRetentionException",
      message: `The stream ${dry} has no data retention (DataRetentionInHours is 0).`,
      fault: "client",
      httpStatusCode: 400,
    });
    await kv.send(new UpdateImageGenerationConfigurationCommand({ StreamName: name }));
    assert.deepEqual(body(await kv.send(new DescribeImageGenerationConfigurationCommand({ StreamName: name }))), {});

    // Notification.
    const topic = { Status: "ENABLED", DestinationConfig: { Uri: `arn:aws:sns:${REGION}:${ACCOUNT}:fragments` } };
    assert.deepEqual(body(await kv.send(new DescribeNotificationConfigurationCommand({ StreamName: name }))), {});
    assert.deepEqual(
      body(await kv.send(new UpdateNotificationConfigurationCommand({ StreamARN: arn, NotificationConfiguration: topic }))),
      {},
    );
    assert.deepEqual(body(await kv.send(new DescribeNotificationConfigurationCommand({ StreamName: name }))), {
      NotificationConfiguration: topic,
    });

    // Edge configuration: start, describe, list by hub, delete.
    const edge = {
      HubDeviceArn: HUB,
      RecorderConfig: {
        MediaSourceConfig: { MediaUriSecretArn: SECRET, MediaUriType: "RTSP_URI" },
        ScheduleConfig: { ScheduleExpression: "0 0/5 * * * ?", DurationInSeconds: 120 },
      },
      UploaderConfig: { ScheduleConfig: { ScheduleExpression: "0 0 * * * ?", DurationInSeconds: 600 } },
      DeletionConfig: {
        EdgeRetentionInHours: 48,
        LocalSizeConfig: { MaxLocalMediaSizeInMB: 1024, StrategyOnFullSize: "DELETE_OLDEST_MEDIA" },
        DeleteAfterUpload: false,
      },
    };
    const noEdge = {
      name: "StreamEdgeConfigurationNotFoundException",
      message: `The stream ${name} has no edge configuration.`,
      fault: "client",
      httpStatusCode: 404,
    };
    assert.deepEqual(
      errorShape(await catchError(() => kv.send(new DescribeEdgeConfigurationCommand({ StreamName: name })))),
      noEdge,
    );
    const started = body(await kv.send(new StartEdgeConfigurationUpdateCommand({ StreamName: name, EdgeConfig: edge })));
    assert.ok(started.CreationTime instanceof Date);
    assert.deepEqual(started, {
      StreamName: name,
      StreamARN: arn,
      CreationTime: started.CreationTime,
      LastUpdatedTime: started.CreationTime,
      SyncStatus: "SYNCING",
      EdgeConfig: edge,
    });
    const synced = { ...started, SyncStatus: "IN_SYNC" };
    assert.deepEqual(body(await kv.send(new DescribeEdgeConfigurationCommand({ StreamARN: arn }))), synced);
    assert.deepEqual(body(await kv.send(new ListEdgeAgentConfigurationsCommand({ HubDeviceArn: HUB }))), {
      EdgeConfigs: [synced],
    });
    assert.deepEqual(body(await kv.send(new DeleteEdgeConfigurationCommand({ StreamName: name }))), {});
    assert.deepEqual(
      errorShape(await catchError(() => kv.send(new DescribeEdgeConfigurationCommand({ StreamName: name })))),
      noEdge,
    );
    assert.deepEqual((await kv.send(new ListEdgeAgentConfigurationsCommand({ HubDeviceArn: HUB }))).EdgeConfigs, []);

    // Stream storage tier.
    assert.deepEqual(body(await kv.send(new DescribeStreamStorageConfigurationCommand({ StreamName: name }))), {
      StreamName: name,
      StreamARN: arn,
      StreamStorageConfiguration: { DefaultStorageTier: "HOT" },
    });
    const version = (await describeStream(name)).Version;
    assert.deepEqual(
      body(
        await kv.send(
          new UpdateStreamStorageConfigurationCommand({
            StreamARN: arn,
            CurrentVersion: version,
            StreamStorageConfiguration: { DefaultStorageTier: "WARM" },
          }),
        ),
      ),
      {},
    );
    assert.deepEqual(
      (await kv.send(new DescribeStreamStorageConfigurationCommand({ StreamARN: arn }))).StreamStorageConfiguration,
      { DefaultStorageTier: "WARM" },
    );
    assert.notEqual((await describeStream(name)).Version, version);
  });

  test("error shapes: not found 404, invalid argument 400, no data retention", async () => {
    const missing = unique("none");
    assert.deepEqual(
      errorShape(await catchError(() => kv.send(new DescribeStreamCommand({ StreamName: missing })))),
      STREAM_NOT_FOUND,
    );
    const nf = await catchError(() => kv.send(new DescribeStreamCommand({ StreamName: missing })));
    assert.equal(nf.$metadata.httpStatusCode, 404);
    assert.deepEqual(
      errorShape(await catchError(() => kv.send(new DescribeStreamCommand({})))),
      {
        name: "InvalidArgumentException",
        message: "Either StreamName or StreamARN must be specified.",
        fault: "client",
        httpStatusCode: 400,
      },
    );
    assert.deepEqual(errorShape(await catchError(() => kv.send(new CreateStreamCommand({ StreamName: "bad name" })))), {
      name: "InvalidArgumentException",
      message:
        "1 validation error detected: Value 'bad name' at 'streamName' failed to satisfy constraint: " +
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
      fault: "client",
      httpStatusCode: 400,
    });
    const { name: dry } = await createStream(0);
    const noRetention = {
      name: "NoDataRetentionException",
      message: `The stream ${dry} does not retain data (DataRetentionInHours is 0).`,
      fault: "client",
      httpStatusCode: 400,
    };
    assert.deepEqual(
      errorShape(await catchError(() => archive.send(new GetHLSStreamingSessionURLCommand({ StreamName: dry })))),
      noRetention,
    );
    assert.deepEqual(
      errorShape(await catchError(() => archive.send(new GetDASHStreamingSessionURLCommand({ StreamName: dry })))),
      noRetention,
    );
    // The data plane's not found, through each client.
    for (const call of [
      () => media.send(new GetMediaCommand({ StreamName: missing, StartSelector: { StartSelectorType: "NOW" } })),
      () => archive.send(new ListFragmentsCommand({ StreamName: missing })),
      () => archive.send(new GetHLSStreamingSessionURLCommand({ StreamName: missing })),
      () => archive.send(new GetMediaForFragmentListCommand({ StreamName: missing, Fragments: ["1"] })),
    ]) {
      const e = await catchError(call);
      assert.deepEqual([e.name, e.$metadata.httpStatusCode], ["ResourceNotFoundException", 404]);
    }
    // A stream with nothing in it has no session.
    const { name: empty } = await createStream(1);
    const none = await catchError(() => archive.send(new GetHLSStreamingSessionURLCommand({ StreamName: empty })));
    assert.deepEqual([none.name, none.$metadata.httpStatusCode], ["ResourceNotFoundException", 404]);
  });

  describe("media", () => {
    let name;
    let numbers;
    let acks;

    before(async () => {
      ({ name } = await createStream(24, { MediaType: "video/h264" }));
      // Where each cluster starts in the file.
      const starts = [];
      for (let i = mkv.indexOf(Buffer.from([0x1f, 0x43, 0xb6, 0x75])); i >= 0; ) {
        starts.push(i);
        i = mkv.indexOf(Buffer.from([0x1f, 0x43, 0xb6, 0x75]), i + 1);
      }
      assert.equal(starts.length, 4);
      const pm = new PutMedia(server.endpoint, name, START);
      // The first cluster and the head of the second: the first fragment is
      // complete, and its acknowledgements come while the upload is open.
      pm.write(mkv.subarray(0, starts[1] + 12));
      const res = await pm.response;
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers["content-type"], "application/json");
      const it = pm.acks();
      acks = [];
      while (!acks.some((a) => a.EventType === "PERSISTED")) {
        const { value, done } = await it.next();
        assert.ok(!done, "the response ended before the first fragment persisted");
        if (value.EventType !== "IDLE") acks.push(value);
      }
      assert.equal(acks.filter((a) => a.EventType === "PERSISTED").length, 1);
      pm.write(mkv.subarray(starts[1] + 12));
      pm.end();
      for await (const a of it) if (a.EventType !== "IDLE") acks.push(a);
      numbers = persisted(acks);
    }, { timeout: 60000 });

    test("PutMedia acknowledges every fragment: BUFFERING, RECEIVED, PERSISTED", () => {
      const byTimecode = {};
      for (const a of acks) {
        assert.deepEqual(Object.keys(a).sort(), ["EventType", "FragmentNumber", "FragmentTimecode"]);
        (byTimecode[a.FragmentTimecode] ??= []).push(a.EventType);
      }
      assert.deepEqual(byTimecode, {
        0: ["BUFFERING", "RECEIVED", "PERSISTED"],
        1000: ["BUFFERING", "RECEIVED", "PERSISTED"],
        2000: ["BUFFERING", "RECEIVED", "PERSISTED"],
        3000: ["BUFFERING", "RECEIVED", "PERSISTED"],
      });
      assert.equal(new Set(numbers).size, 4);
      for (const n of numbers) assert.match(n, /^\d+$/);
      assert.deepEqual([...numbers].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)), numbers);
    });

    test("ListFragments: the fragments acknowledged, with their timestamps", async () => {
      const out = body(await archive.send(new ListFragmentsCommand({ StreamName: name })));
      assert.deepEqual(Object.keys(out), ["Fragments"]);
      const frags = out.Fragments;
      assert.deepEqual(frags.map((f) => f.FragmentNumber), numbers);
      const clusters = clustersOf(mkv);
      for (const [i, f] of frags.entries()) {
        assert.ok(f.ServerTimestamp instanceof Date);
        assert.ok(Math.abs(f.ServerTimestamp.getTime() - Date.now()) < 60000);
        assert.ok(f.FragmentSizeInBytes > clusters[i].length, `${f.FragmentSizeInBytes} > ${clusters[i].length}`);
        assert.deepEqual(f, {
          FragmentNumber: numbers[i],
          FragmentSizeInBytes: f.FragmentSizeInBytes,
          ProducerTimestamp: new Date((START + i) * 1000),
          ServerTimestamp: f.ServerTimestamp,
          FragmentLengthInMilliseconds: 1000,
        });
      }
      const page = await archive.send(new ListFragmentsCommand({ StreamName: name, MaxResults: 3 }));
      assert.deepEqual(page.Fragments.map((f) => f.FragmentNumber), numbers.slice(0, 3));
      const rest = await archive.send(new ListFragmentsCommand({ StreamName: name, NextToken: page.NextToken }));
      assert.deepEqual(rest.Fragments.map((f) => f.FragmentNumber), numbers.slice(3));
      assert.equal(rest.NextToken, undefined);
      const ranged = await archive.send(
        new ListFragmentsCommand({
          StreamName: name,
          FragmentSelector: {
            FragmentSelectorType: "PRODUCER_TIMESTAMP",
            TimestampRange: { StartTimestamp: new Date((START + 1) * 1000), EndTimestamp: new Date((START + 2) * 1000) },
          },
        }),
      );
      assert.deepEqual(ranged.Fragments.map((f) => f.FragmentNumber), numbers.slice(1, 3));
      const bad = await catchError(() => archive.send(new ListFragmentsCommand({ StreamName: name, NextToken: "AAAA" })));
      assert.deepEqual([bad.name, bad.$metadata.httpStatusCode], ["InvalidArgumentException", 400]);
    });

    test("GetMedia streams every fragment with AWS's tags, clusters byte for byte", async () => {
      const out = await media.send(new GetMediaCommand({ StreamName: name, StartSelector: { StartSelectorType: "EARLIEST" } }));
      assert.equal(out.$metadata.httpStatusCode, 200);
      assert.equal(out.ContentType, "video/webm");
      const got = Buffer.from(await out.Payload.transformToByteArray());
      // One fragment-number tag per fragment, naming the fragments ListFragments lists.
      assert.equal(tagCount(got, "AWS_KINESISVIDEO_FRAGMENT_NUMBER"), 4);
      const docs = documentsOf(got);
      const listed = (await archive.send(new ListFragmentsCommand({ StreamName: name }))).Fragments.map((f) => f.FragmentNumber);
      assert.deepEqual(docs.map((d) => d.tags.AWS_KINESISVIDEO_FRAGMENT_NUMBER), listed);
      assert.deepEqual(listed, numbers);
      assert.deepEqual(docs.map((d) => d.tags.AWS_KINESISVIDEO_PRODUCER_TIMESTAMP), [
        "1700000000.000",
        "1700000001.000",
        "1700000002.000",
        "1700000003.000",
      ]);
      assert.deepEqual(docs.map((d) => d.tags.AWS_KINESISVIDEO_CONTINUATION_TOKEN), numbers);
      assert.deepEqual(docs.map((d) => [d.timecode, d.clusters]), [[0, 1], [1000, 1], [2000, 1], [3000, 1]]);
      for (const d of docs) {
        assert.match(d.tags.AWS_KINESISVIDEO_SERVER_TIMESTAMP, /^\d+\.\d{3}$/);
        assert.match(d.tags.AWS_KINESISVIDEO_MILLIS_BEHIND_NOW, /^\d+$/);
      }
      assert.deepEqual(clustersOf(got), clustersOf(mkv));
      const path = join(dir, "getmedia.mkv");
      writeFileSync(path, got);
      assert.deepEqual(ffprobeStreams(path), [
        { codec_name: "h264", codec_type: "video", width: 320, height: 240, nb_read_frames: "100" },
      ]);

      // A start selector: after the second fragment.
      const after2 = await media.send(
        new GetMediaCommand({
          StreamARN: (await describeStream(name)).StreamARN,
          StartSelector: { StartSelectorType: "FRAGMENT_NUMBER", AfterFragmentNumber: numbers[1] },
        }),
      );
      const tail = Buffer.from(await after2.Payload.transformToByteArray());
      assert.deepEqual(documentsOf(tail).map((d) => d.tags.AWS_KINESISVIDEO_FRAGMENT_NUMBER), numbers.slice(2));
      const bad = await catchError(() =>
        media.send(new GetMediaCommand({ StreamName: name, StartSelector: { StartSelectorType: "FRAGMENT_NUMBER" } })),
      );
      assert.deepEqual([bad.name, bad.$metadata.httpStatusCode], ["InvalidArgumentException", 400]);
    });

    test("GetMediaForFragmentList: the fragments in the order named", async () => {
      const out = await archive.send(new GetMediaForFragmentListCommand({ StreamName: name, Fragments: [numbers[2], numbers[0]] }));
      assert.equal(out.$metadata.httpStatusCode, 200);
      assert.equal(out.ContentType, "video/webm");
      const got = Buffer.from(await out.Payload.transformToByteArray());
      assert.deepEqual(documentsOf(got).map((d) => d.tags.AWS_KINESISVIDEO_FRAGMENT_NUMBER), [numbers[2], numbers[0]]);
      const clusters = clustersOf(mkv);
      assert.deepEqual(clustersOf(got), [clusters[2], clusters[0]]);
      const missing = await catchError(() =>
        archive.send(new GetMediaForFragmentListCommand({ StreamName: name, Fragments: [`${numbers[0]}7`] })),
      );
      assert.deepEqual([missing.name, missing.$metadata.httpStatusCode], ["ResourceNotFoundException", 404]);
    });

    const range = (from, to) => ({
      StartTimestamp: new Date((START + from) * 1000),
      EndTimestamp: new Date((START + to) * 1000),
    });

    test("GetHLSStreamingSessionURL: an fMP4 playlist of the fragments", async () => {
      const out = body(
        await archive.send(
          new GetHLSStreamingSessionURLCommand({
            StreamName: name,
            PlaybackMode: "ON_DEMAND",
            HLSFragmentSelector: { FragmentSelectorType: "PRODUCER_TIMESTAMP", TimestampRange: range(0, 10) },
          }),
        ),
      );
      assert.deepEqual(Object.keys(out), ["HLSStreamingSessionURL"]);
      const url = out.HLSStreamingSessionURL;
      assert.ok(url.startsWith(`${server.endpoint}/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=`), url);
      const master = await fetch(url, { headers: { origin: "http://player.example" } });
      assert.equal(master.status, 200);
      assert.equal(master.headers.get("content-type"), "application/vnd.apple.mpegurl");
      // Pages of any origin may read the session's resources, errors included.
      assert.equal(master.headers.get("access-control-allow-origin"), "*");
      const refused = await fetch(url.replace(/SessionToken=[^&]+/, "SessionToken=nope"), {
        headers: { origin: "http://player.example" },
      });
      assert.equal(refused.status, 403);
      assert.equal(refused.headers.get("access-control-allow-origin"), "*");
      assert.equal((await refused.json()).__type, "NotAuthorizedException");
      const lines = (await master.text()).split("\n");
      assert.equal(lines[0], "#EXTM3U");
      const inf = lines.find((l) => l.startsWith("#EXT-X-STREAM-INF:"));
      assert.match(inf, /CODECS="avc1\.[0-9a-f]{6}"/);
      assert.match(inf, /RESOLUTION=320x240/);
      const playlist = await (await fetch(new URL(lines[lines.indexOf(inf) + 1], url))).text();
      assert.equal(playlist.match(/#EXTINF:1\.000,/g).length, 4);
      assert.match(playlist, /#EXT-X-PLAYLIST-TYPE:VOD/);
      assert.match(playlist, /#EXT-X-MAP:URI="getMP4InitFragment\.mp4\?/);
      assert.ok(playlist.trimEnd().endsWith("#EXT-X-ENDLIST"));
      const listed = playlist
        .split("\n")
        .filter((l) => l.startsWith("getMP4MediaFragment.mp4"))
        .map((l) => new URL(l, url).searchParams.get("FragmentNumber"));
      assert.deepEqual(listed, numbers);
    });

    test("GetDASHStreamingSessionURL: a static manifest ffmpeg plays frame by frame", async () => {
      const out = body(
        await archive.send(
          new GetDASHStreamingSessionURLCommand({
            StreamName: name,
            PlaybackMode: "ON_DEMAND",
            DASHFragmentSelector: { FragmentSelectorType: "PRODUCER_TIMESTAMP", TimestampRange: range(0, 10) },
          }),
        ),
      );
      assert.deepEqual(Object.keys(out), ["DASHStreamingSessionURL"]);
      const url = out.DASHStreamingSessionURL;
      assert.ok(url.startsWith(`${server.endpoint}/dash/v1/getDASHManifest.mpd?SessionToken=`), url);
      const mpd = await fetch(url);
      assert.equal(mpd.headers.get("content-type"), "application/dash+xml");
      assert.match(await mpd.text(), /type="static"/);
      const frames = execFileSync("ffmpeg", ["-v", "error", "-i", url, "-map", "0:v", "-f", "framemd5", "-"], {
        encoding: "utf8",
        timeout: 120000,
      });
      assert.equal(frames.split("\n").filter((l) => l && !l.startsWith("#")).length, 100);
    });

    test("GetClip: an MP4 of the range, read by ffprobe", async () => {
      const out = await archive.send(
        new GetClipCommand({
          StreamName: name,
          ClipFragmentSelector: { FragmentSelectorType: "PRODUCER_TIMESTAMP", TimestampRange: range(1, 2.5) },
        }),
      );
      assert.equal(out.$metadata.httpStatusCode, 200);
      assert.equal(out.ContentType, "video/mp4");
      const path = join(dir, "clip.mp4");
      writeFileSync(path, await out.Payload.transformToByteArray());
      // Fragments 2 and 3: the whole fragments the range starts in and reaches.
      assert.deepEqual(ffprobeStreams(path), [
        { codec_name: "h264", codec_type: "video", width: 320, height: 240, nb_read_frames: "50" },
      ]);
      const none = await catchError(() =>
        archive.send(
          new GetClipCommand({
            StreamName: name,
            ClipFragmentSelector: { FragmentSelectorType: "PRODUCER_TIMESTAMP", TimestampRange: range(100, 200) },
          }),
        ),
      );
      assert.deepEqual([none.name, none.$metadata.httpStatusCode], ["ResourceNotFoundException", 404]);
    });

    test("GetImages: JPEG pictures of the stream, then a page with NO_MEDIA", async () => {
      const ask = {
        StreamName: name,
        ImageSelectorType: "PRODUCER_TIMESTAMP",
        StartTimestamp: new Date((START + 0.5) * 1000),
        EndTimestamp: new Date((START + 5) * 1000),
        SamplingInterval: 1000,
      };
      const out = body(
        await archive.send(
          new GetImagesCommand({ ...ask, Format: "JPEG", FormatConfig: { JPEGQuality: "90" }, WidthPixels: 160, MaxResults: 4 }),
        ),
      );
      assert.deepEqual(Object.keys(out).sort(), ["Images", "NextToken"]);
      assert.deepEqual(out.Images.map((i) => i.TimeStamp.getTime()), [0.5, 1.5, 2.5, 3.5].map((s) => (START + s) * 1000));
      for (const [k, img] of out.Images.entries()) {
        assert.deepEqual(Object.keys(img).sort(), ["ImageContent", "TimeStamp"]);
        const jpeg = Buffer.from(img.ImageContent, "base64");
        assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff]);
        assert.deepEqual([...jpeg.subarray(-2)], [0xff, 0xd9]);
        const path = join(dir, `image-${k}.jpg`);
        writeFileSync(path, jpeg);
        assert.deepEqual(ffprobeStreams(path), [
          { codec_name: "mjpeg", codec_type: "video", width: 160, height: 120, nb_read_frames: "1" },
        ]);
      }
      const rest = body(await archive.send(new GetImagesCommand({ ...ask, Format: "PNG", NextToken: out.NextToken })));
      assert.deepEqual(rest, { Images: [{ TimeStamp: new Date((START + 4.5) * 1000), Error: "NO_MEDIA" }] });
      const tooLong = await catchError(() =>
        archive.send(new GetImagesCommand({ ...ask, EndTimestamp: new Date((START + 0.5 + 301) * 1000), Format: "PNG" })),
      );
      assert.deepEqual([tooLong.name, tooLong.$metadata.httpStatusCode], ["InvalidArgumentException", 400]);
    });

    // Runs in the page: plays `video` muted to its end (20 s at most) and
    // reports what the browser saw.
    const WATCH = `window.watch = async (video, errors) => {
      const wait = (ms) => new Promise((ok) => setTimeout(ok, ms));
      const failed = () => errors.some((e) => e.fatal);
      video.addEventListener("error", () => errors.push({ type: "video", details: video.error.message, fatal: true }));
      video.muted = true;
      if (!failed()) {
        // play() stays pending while there is nothing to play.
        const started = video.play().catch((e) => errors.push({ type: "play", details: String(e), fatal: true }));
        await Promise.race([started, wait(10000)]);
      }
      const deadline = Date.now() + 20000;
      while (!video.ended && !failed() && Date.now() < deadline) await wait(100);
      const q = video.getVideoPlaybackQuality();
      return {
        supported: MediaSource.isTypeSupported('video/mp4; codecs="avc1.64000d"'),
        errors,
        ended: video.ended,
        currentTime: video.currentTime,
        duration: video.duration,
        width: video.videoWidth,
        height: video.videoHeight,
        totalVideoFrames: q.totalVideoFrames,
        droppedVideoFrames: q.droppedVideoFrames,
      };
    };`;

    test("a browser plays the HLS session with hls.js, and the DASH session through MSE", {
      skip: !existsSync(CHROMIUM) && `${CHROMIUM} is missing (scripts/test installs Debian's chromium)`,
      timeout: 180000,
    }, async () => {
      const { chromium } = await import("playwright-core");
      const hlsSource = readFileSync(require.resolve("hls.js/dist/hls.min.js"), "utf8");
      const { HLSStreamingSessionURL: hlsUrl } = await archive.send(
        new GetHLSStreamingSessionURLCommand({
          StreamName: name,
          PlaybackMode: "ON_DEMAND",
          HLSFragmentSelector: { FragmentSelectorType: "PRODUCER_TIMESTAMP", TimestampRange: range(0, 10) },
        }),
      );
      const { DASHStreamingSessionURL: dashUrl } = await archive.send(
        new GetDASHStreamingSessionURLCommand({
          StreamName: name,
          PlaybackMode: "ON_DEMAND",
          DASHFragmentSelector: { FragmentSelectorType: "PRODUCER_TIMESTAMP", TimestampRange: range(0, 10) },
        }),
      );
      // An origin of its own for a page that plays the session.
      const pageServer = createServer((_, res) => {
        res.writeHead(200, { "content-type": "text/html" });
        res.end("<!doctype html><title>player</title>");
      });
      await new Promise((ok) => pageServer.listen(0, "127.0.0.1", ok));
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
      });
      const page = async (url) => {
        const p = await browser.newPage();
        await p.goto(url);
        await p.setContent('<video id="v" muted playsinline></video>');
        await p.addScriptTag({ content: WATCH });
        return p;
      };
      const playHls = async (p) => {
        await p.addScriptTag({ content: hlsSource });
        return p.evaluate(async (src) => {
          const video = document.getElementById("v");
          const errors = [];
          const hls = new Hls();
          hls.on(Hls.Events.ERROR, (_, d) => errors.push({ type: d.type, details: d.details, fatal: d.fatal }));
          const parsed = new Promise((ok) => hls.on(Hls.Events.MANIFEST_PARSED, ok));
          hls.loadSource(src);
          hls.attachMedia(video);
          await Promise.race([parsed, new Promise((ok) => setTimeout(ok, 10000))]);
          const out = await window.watch(video, errors);
          hls.destroy();
          return out;
        }, hlsUrl);
      };
      // DASH without a player library: the manifest's SegmentList (the
      // video Representation's Initialization and SegmentURLs) appended to
      // a MediaSource in order, shifted by its presentationTimeOffset.
      const playDash = (p) =>
        p.evaluate(async (src) => {
          const video = document.getElementById("v");
          const errors = [];
          const mpd = new DOMParser().parseFromString(await (await fetch(src)).text(), "application/xml");
          const set = [...mpd.getElementsByTagName("AdaptationSet")].find((a) => a.getAttribute("contentType") === "video");
          const rep = set.getElementsByTagName("Representation")[0];
          const type = `${set.getAttribute("mimeType")}; codecs="${rep.getAttribute("codecs")}"`;
          const urls = [
            rep.getElementsByTagName("Initialization")[0].getAttribute("sourceURL"),
            ...[...rep.getElementsByTagName("SegmentURL")].map((u) => u.getAttribute("media")),
          ].map((u) => new URL(u, src).href);
          const source = new MediaSource();
          video.src = URL.createObjectURL(source);
          await new Promise((ok) => source.addEventListener("sourceopen", ok, { once: true }));
          const buffer = source.addSourceBuffer(type);
          // The media's times less the presentationTimeOffset: the Period's timeline.
          const list = rep.getElementsByTagName("SegmentList")[0];
          buffer.timestampOffset =
            -Number(list.getAttribute("presentationTimeOffset") ?? 0) / Number(list.getAttribute("timescale") ?? 1);
          for (const u of urls) {
            const r = await fetch(u);
            if (!r.ok) errors.push({ type: "fetch", details: `${r.status} ${u}`, fatal: true });
            buffer.appendBuffer(await r.arrayBuffer());
            await new Promise((ok) => buffer.addEventListener("updateend", ok, { once: true }));
          }
          source.endOfStream();
          const out = await window.watch(video, errors);
          return { ...out, type, segments: urls.length - 1, buffered: [video.buffered.start(0), video.buffered.end(0)] };
        }, dashUrl);
      const check = (r, where) => {
        const seen = `${where}: ${JSON.stringify(r)}`;
        assert.equal(r.supported, true, seen);
        assert.deepEqual(r.errors, [], seen);
        assert.ok(r.ended || r.currentTime >= 3.5, seen);
        assert.deepEqual([r.width, r.height], [320, 240], seen);
        assert.ok(r.totalVideoFrames >= 90, seen);
        assert.ok(r.droppedVideoFrames <= 5, seen);
      };
      try {
        // A page of the server's own origin.
        const same = await playHls(await page(`${server.endpoint}/_riffle/health`));
        check(same, "HLS, same origin");
        // A page of another origin (another port): the session's resources
        // are fetched cross-origin, allowed by the server's CORS headers.
        const other = await playHls(await page(`http://127.0.0.1:${pageServer.address().port}/`));
        check(other, "HLS, another origin");
        const dash = await playDash(await page(`http://127.0.0.1:${pageServer.address().port}/`));
        check(dash, "DASH, another origin");
        assert.equal(dash.segments, 4);
        console.log(`browser playback: ${JSON.stringify({ same, other, dash })}`);
      } finally {
        await browser.close();
        pageServer.close();
      }
    });
  });
});
