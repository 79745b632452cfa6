// Firehose with @aws-sdk/client-firehose v3 over cleartext HTTP/2.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  CreateDeliveryStreamCommand,
  DeleteDeliveryStreamCommand,
  DescribeDeliveryStreamCommand,
  FirehoseClient,
  ListDeliveryStreamsCommand,
  ListTagsForDeliveryStreamCommand,
  PutRecordBatchCommand,
  PutRecordCommand,
  TagDeliveryStreamCommand,
  UpdateDestinationCommand,
} from "@aws-sdk/client-firehose";
import { NodeHttp2Handler } from "@smithy/node-http-handler";

import { ACCOUNT, CREDENTIALS, REGION, Riffle, catchError, errorShape } from "./harness.mjs";

const ROLE = `arn:aws:iam::${ACCOUNT}:role/firehose`;
const S3 = { RoleARN: ROLE, BucketARN: "arn:aws:s3:::bucket" };

describe("firehose over HTTP/2", () => {
  let server;
  let fh;

  before(async () => {
    server = await Riffle.start();
    fh = new FirehoseClient({
      endpoint: server.endpoint,
      region: REGION,
      credentials: CREDENTIALS,
      maxAttempts: 1,
      requestHandler: new NodeHttp2Handler({ requestTimeout: 10000, sessionTimeout: 10000 }),
    });
    server.clients.push(fh);
  });

  after(async () => {
    await server?.stop();
  });

  test("create, describe, put, update, tag, list, delete", async () => {
    const name = `js-${Date.now()}`;
    const created = await fh.send(
      new CreateDeliveryStreamCommand({ DeliveryStreamName: name, ExtendedS3DestinationConfiguration: S3 }),
    );
    assert.equal(created.DeliveryStreamARN, `arn:aws:firehose:${REGION}:${ACCOUNT}:deliverystream/${name}`);
    const { DeliveryStreamDescription: d } = await fh.send(
      new DescribeDeliveryStreamCommand({ DeliveryStreamName: name }),
    );
    assert.equal(d.DeliveryStreamStatus, "ACTIVE");
    assert.equal(d.VersionId, "1");
    assert.ok(d.CreateTimestamp instanceof Date);
    assert.deepEqual(d.Destinations[0].ExtendedS3DestinationDescription.BufferingHints, {
      SizeInMBs: 5,
      IntervalInSeconds: 300,
    });
    assert.equal(d.Destinations[0].S3DestinationDescription.BucketARN, "arn:aws:s3:::bucket");

    const one = await fh.send(
      new PutRecordCommand({ DeliveryStreamName: name, Record: { Data: new TextEncoder().encode("hi\n") } }),
    );
    assert.ok(one.RecordId.length >= 56);
    const batch = await fh.send(
      new PutRecordBatchCommand({
        DeliveryStreamName: name,
        Records: Array.from({ length: 10 }, (_, i) => ({ Data: new TextEncoder().encode(`r${i}`) })),
      }),
    );
    assert.equal(batch.FailedPutCount, 0);
    assert.equal(batch.RequestResponses.length, 10);

    const stale = await catchError(() =>
      fh.send(
        new UpdateDestinationCommand({
          DeliveryStreamName: name,
          CurrentDeliveryStreamVersionId: "9",
          DestinationId: d.Destinations[0].DestinationId,
          ExtendedS3DestinationUpdate: { Prefix: "p/" },
        }),
      ),
    );
    assert.equal(stale.name, "ConcurrentModificationException");
    await fh.send(
      new UpdateDestinationCommand({
        DeliveryStreamName: name,
        CurrentDeliveryStreamVersionId: "1",
        DestinationId: d.Destinations[0].DestinationId,
        ExtendedS3DestinationUpdate: { Prefix: "p/" },
      }),
    );

    await fh.send(new TagDeliveryStreamCommand({ DeliveryStreamName: name, Tags: [{ Key: "k", Value: "v" }] }));
    const tags = await fh.send(new ListTagsForDeliveryStreamCommand({ DeliveryStreamName: name }));
    assert.deepEqual(tags.Tags, [{ Key: "k", Value: "v" }]);
    assert.equal(tags.HasMoreTags, false);

    const list = await fh.send(new ListDeliveryStreamsCommand({}));
    assert.ok(list.DeliveryStreamNames.includes(name));

    await fh.send(new DeleteDeliveryStreamCommand({ DeliveryStreamName: name }));
    const gone = await catchError(() => fh.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: name })));
    assert.deepEqual(errorShape(gone), {
      name: "ResourceNotFoundException",
      message: `Firehose ${name} not found under account ${ACCOUNT}.`,
      fault: "client",
      httpStatusCode: 400,
    });
  });
});
