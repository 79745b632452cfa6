// The SDK really talks HTTP/2 to riffle, both with an explicit
// NodeHttp2Handler and with the client's default request handler.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";

import {
  CreateStreamCommand,
  DescribeStreamCommand,
  ListStreamsCommand,
} from "@aws-sdk/client-kinesis";
import { NodeHttp2Handler } from "@smithy/node-http-handler";

import { Riffle, catchError } from "./harness.mjs";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Records every raw HttpResponse the client deserializes. */
function observeResponses(client) {
  const seen = [];
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        const out = await next(args);
        seen.push(out.response);
        return out;
      } catch (e) {
        if (e.$response) seen.push(e.$response);
        throw e;
      }
    },
    { step: "deserialize", name: "observeResponses" },
  );
  return seen;
}

/** One raw HTTP/2 request over a prior-knowledge (h2c) session. */
function rawH2(endpoint, headers, body) {
  return new Promise((ok, fail) => {
    const session = http2.connect(endpoint);
    session.on("error", fail);
    session.on("connect", () => {
      const req = session.request(headers);
      const chunks = [];
      let respHeaders;
      req.on("response", (h) => (respHeaders = h));
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        const alpn = session.alpnProtocol;
        session.close();
        ok({ headers: respHeaders, body: Buffer.concat(chunks).toString("utf8"), alpn });
      });
      req.on("error", fail);
      req.end(body);
    });
  });
}

describe("HTTP/2 transport", () => {
  let server;
  before(async () => {
    server = await Riffle.start();
  });
  after(async () => {
    await server?.stop();
  });

  test("explicit NodeHttp2Handler: responses carry the HTTP/2 :status pseudo-header", async () => {
    const client = server.client();
    assert.ok(client.config.requestHandler instanceof NodeHttp2Handler);
    const seen = observeResponses(client);

    await client.send(new CreateStreamCommand({ StreamName: "h2-stream", ShardCount: 1 }));
    const out = await client.send(new ListStreamsCommand({}));
    assert.deepStrictEqual(out.StreamNames, ["h2-stream"]);
    const err = await catchError(() =>
      client.send(new DescribeStreamCommand({ StreamName: "h2-missing" })),
    );
    assert.equal(err.name, "ResourceNotFoundException");

    assert.equal(seen.length, 3);
    assert.deepStrictEqual(
      seen.map((r) => [r.statusCode, r.headers[":status"]]),
      [
        [200, 200],
        [200, 200],
        [400, 400],
      ],
    );
    for (const r of seen) {
      assert.match(r.headers["x-amzn-requestid"], UUID);
      assert.equal(r.headers["content-type"], "application/x-amz-json-1.1");
    }
    // the request id the SDK reports is the header's
    assert.equal(out.$metadata.requestId, seen[1].headers["x-amzn-requestid"]);
    assert.equal(err.$metadata.requestId, seen[2].headers["x-amzn-requestid"]);
  });

  test("raw node:http2 call (prior knowledge) gets :status 200 and x-amzn-requestid", async () => {
    const body = JSON.stringify({});
    const res = await rawH2(
      server.endpoint,
      {
        ":method": "POST",
        ":path": "/",
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "Kinesis_20131202.ListStreams",
        "x-amz-date": "20240101T000000Z",
        // Well-formed SigV4 header; riffle started without credentials
        // accepts any well-formed signature.
        authorization:
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/kinesis/aws4_request, " +
          "SignedHeaders=content-type;host;x-amz-date;x-amz-target, " +
          "Signature=0000000000000000000000000000000000000000000000000000000000000000",
      },
      body,
    );
    assert.equal(res.alpn, "h2c");
    assert.equal(res.headers[":status"], 200);
    assert.match(res.headers["x-amzn-requestid"], UUID);
    assert.equal(res.headers["content-type"], "application/x-amz-json-1.1");
    const parsed = JSON.parse(res.body);
    assert.deepStrictEqual(parsed.StreamNames, ["h2-stream"]);
    assert.equal(parsed.HasMoreStreams, false);
  });

  test("raw node:http2 error response: :status 400, x-amzn-requestid, JSON error body", async () => {
    const res = await rawH2(
      server.endpoint,
      {
        ":method": "POST",
        ":path": "/",
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "Kinesis_20131202.DescribeStream",
        "x-amz-date": "20240101T000000Z",
        authorization:
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/kinesis/aws4_request, " +
          "SignedHeaders=content-type;host;x-amz-date;x-amz-target, " +
          "Signature=0000000000000000000000000000000000000000000000000000000000000000",
      },
      JSON.stringify({ StreamName: "h2-missing" }),
    );
    assert.equal(res.headers[":status"], 400);
    assert.match(res.headers["x-amzn-requestid"], UUID);
    assert.deepStrictEqual(JSON.parse(res.body), {
      __type: "ResourceNotFoundException",
      message: "Stream h2-missing under account 000000000000 not found.",
    });
  });

  test("default client (no explicit requestHandler) works, and also uses HTTP/2", async () => {
    const client = server.defaultClient();
    const seen = observeResponses(client);
    const out = await client.send(new ListStreamsCommand({}));
    assert.deepStrictEqual(out.StreamNames, ["h2-stream"]);
    assert.equal(out.HasMoreStreams, false);
    assert.equal(out.$metadata.httpStatusCode, 200);
    const d = await client.send(new DescribeStreamCommand({ StreamName: "h2-stream" }));
    assert.equal(d.StreamDescription.StreamName, "h2-stream");
    assert.equal(d.StreamDescription.StreamStatus, "ACTIVE");
    // Kinesis' Node runtime config defaults to NodeHttp2Handler.
    assert.equal(client.config.requestHandler.metadata?.handlerProtocol, "h2");
    assert.deepStrictEqual(
      seen.map((r) => r.headers[":status"]),
      [200, 200],
    );
  });
});
