// S3 on Riffle's port with @aws-sdk/client-s3 (path-style addressing, as
// SDKs use S3: HTTP/1.1), and signatures checked over HTTP/2.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";

import { ListStreamsCommand } from "@aws-sdk/client-kinesis";
import { NodeHttp2Handler } from "@smithy/node-http-handler";

import { CREDENTIALS, REGION, Riffle, catchError } from "./harness.mjs";

const MiB = 1024 * 1024;
const md5 = (b) => createHash("md5").update(b).digest("hex");

describe("s3", () => {
  let server;
  let s3;

  before(async () => {
    server = await Riffle.start();
    s3 = new S3Client({
      endpoint: server.endpoint,
      region: REGION,
      credentials: CREDENTIALS,
      forcePathStyle: true,
      maxAttempts: 1,
    });
    server.clients.push(s3);
  });
  after(async () => {
    await server?.stop();
  });

  test("buckets: create, head, list, delete, and their errors", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "js-bucket" }));
    await s3.send(new HeadBucketCommand({ Bucket: "js-bucket" }));
    const { Buckets } = await s3.send(new ListBucketsCommand({}));
    assert.ok(Buckets.some((b) => b.Name === "js-bucket"));
    await s3.send(new PutObjectCommand({ Bucket: "js-bucket", Key: "k", Body: "x" }));
    const notEmpty = await catchError(() => s3.send(new DeleteBucketCommand({ Bucket: "js-bucket" })));
    assert.equal(notEmpty.name, "BucketNotEmpty");
    assert.equal(notEmpty.$metadata.httpStatusCode, 409);
    await s3.send(new DeleteObjectCommand({ Bucket: "js-bucket", Key: "k" }));
    await s3.send(new DeleteBucketCommand({ Bucket: "js-bucket" }));
    const missing = await catchError(() => s3.send(new DeleteBucketCommand({ Bucket: "js-bucket" })));
    assert.equal(missing.name, "NoSuchBucket");
    assert.equal(missing.$metadata.httpStatusCode, 404);
  });

  test("objects: put, get, head, ranges, metadata, conditional put, copy, delete", async () => {
    const Bucket = "js-objects";
    await s3.send(new CreateBucketCommand({ Bucket }));
    const body = randomBytes(300_000);
    const put = await s3.send(
      new PutObjectCommand({ Bucket, Key: "a/b.bin", Body: body, ContentType: "application/x-js", Metadata: { who: "js" } }),
    );
    assert.equal(put.ETag, `"${md5(body)}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket, Key: "a/b.bin" }));
    assert.deepEqual(Buffer.from(await got.Body.transformToByteArray()), body);
    assert.equal(got.ContentType, "application/x-js");
    assert.deepEqual(got.Metadata, { who: "js" });
    const head = await s3.send(new HeadObjectCommand({ Bucket, Key: "a/b.bin" }));
    assert.equal(head.ContentLength, body.length);
    const part = await s3.send(new GetObjectCommand({ Bucket, Key: "a/b.bin", Range: "bytes=10-19" }));
    assert.equal(part.ContentRange, `bytes 10-19/${body.length}`);
    assert.deepEqual(Buffer.from(await part.Body.transformToByteArray()), body.subarray(10, 20));
    const range = await catchError(() => s3.send(new GetObjectCommand({ Bucket, Key: "a/b.bin", Range: "bytes=999999999-" })));
    assert.equal(range.name, "InvalidRange");
    assert.equal(range.$metadata.httpStatusCode, 416);

    await s3.send(new PutObjectCommand({ Bucket, Key: "once", Body: "1", IfNoneMatch: "*" }));
    const again = await catchError(() => s3.send(new PutObjectCommand({ Bucket, Key: "once", Body: "2", IfNoneMatch: "*" })));
    assert.equal(again.name, "PreconditionFailed");
    assert.equal(again.$metadata.httpStatusCode, 412);

    const copied = await s3.send(new CopyObjectCommand({ Bucket, Key: "copy", CopySource: `${Bucket}/a/b.bin` }));
    assert.equal(copied.CopyObjectResult.ETag, `"${md5(body)}"`);

    const nokey = await catchError(() => s3.send(new GetObjectCommand({ Bucket, Key: "nope" })));
    assert.equal(nokey.name, "NoSuchKey");
    assert.equal(nokey.$metadata.httpStatusCode, 404);

    const listed = await s3.send(new ListObjectsV2Command({ Bucket, Delimiter: "/" }));
    assert.deepEqual(listed.Contents.map((o) => o.Key), ["copy", "once"]);
    assert.deepEqual(listed.CommonPrefixes.map((p) => p.Prefix), ["a/"]);
    assert.equal(listed.KeyCount, 3);

    const del = await s3.send(
      new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: "a/b.bin" }, { Key: "copy" }, { Key: "once" }] } }),
    );
    assert.deepEqual(del.Deleted.map((d) => d.Key).sort(), ["a/b.bin", "copy", "once"]);
    await s3.send(new DeleteBucketCommand({ Bucket }));
  });

  test("multipart: three 5 MiB parts, list, complete; abort", async () => {
    const Bucket = "js-multipart";
    await s3.send(new CreateBucketCommand({ Bucket }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: "mp" }));
    const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(5 * MiB)];
    const etags = [];
    for (const [i, p] of parts.entries()) {
      const r = await s3.send(new UploadPartCommand({ Bucket, Key: "mp", UploadId, PartNumber: i + 1, Body: p }));
      etags.push(r.ETag);
    }
    const listed = await s3.send(new ListPartsCommand({ Bucket, Key: "mp", UploadId }));
    assert.deepEqual(listed.Parts.map((p) => [p.PartNumber, p.ETag, p.Size]), etags.map((e, i) => [i + 1, e, 5 * MiB]));
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key: "mp",
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
    const expected = md5(Buffer.concat(parts.map((p) => createHash("md5").update(p).digest()))) + "-3";
    assert.equal(done.ETag, `"${expected}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket, Key: "mp" }));
    assert.equal(md5(Buffer.from(await got.Body.transformToByteArray())), md5(Buffer.concat(parts)));

    const second = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: "gone" }));
    await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: "gone", UploadId: second.UploadId }));
    const aborted = await catchError(() =>
      s3.send(new UploadPartCommand({ Bucket, Key: "gone", UploadId: second.UploadId, PartNumber: 1, Body: "x" })),
    );
    assert.equal(aborted.name, "NoSuchUpload");
    assert.equal(aborted.$metadata.httpStatusCode, 404);
  });
});

describe("signed over HTTP/2", () => {
  // The JS SDK's HTTP/2 handler signs the `:authority` pseudo-header.
  let server;
  before(async () => {
    server = await Riffle.start({
      args: ["--credential-pairs", `${CREDENTIALS.accessKeyId}:${CREDENTIALS.secretAccessKey}`],
    });
  });
  after(async () => {
    await server?.stop();
  });

  test("Kinesis and S3 accept the SDK's signatures, and refuse a wrong secret", async () => {
    const { StreamNames } = await server.client().send(new ListStreamsCommand({}));
    assert.deepEqual(StreamNames, []);
    const h2 = (credentials) => {
      const c = new S3Client({
        endpoint: server.endpoint,
        region: REGION,
        credentials,
        forcePathStyle: true,
        maxAttempts: 1,
        requestHandler: new NodeHttp2Handler({ requestTimeout: 10000, sessionTimeout: 10000 }),
      });
      server.clients.push(c);
      return c;
    };
    const s3 = h2(CREDENTIALS);
    await s3.send(new CreateBucketCommand({ Bucket: "h2-signed" }));
    await s3.send(new PutObjectCommand({ Bucket: "h2-signed", Key: "k", Body: "over h2" }));
    const got = await s3.send(new GetObjectCommand({ Bucket: "h2-signed", Key: "k" }));
    assert.equal(await got.Body.transformToString(), "over h2");
    const wrong = await catchError(() =>
      h2({ ...CREDENTIALS, secretAccessKey: "wrong" }).send(new GetObjectCommand({ Bucket: "h2-signed", Key: "k" })),
    );
    assert.equal(wrong.name, "SignatureDoesNotMatch");
    assert.equal(wrong.$metadata.httpStatusCode, 403);
  });
});
