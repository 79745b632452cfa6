// Kinesis Analytics (SQL applications) with @aws-sdk/client-kinesis-analytics
// v3 over cleartext HTTP/2.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  AddApplicationOutputCommand,
  CreateApplicationCommand,
  DeleteApplicationCommand,
  DescribeApplicationCommand,
  KinesisAnalyticsClient,
  ListApplicationsCommand,
  ListTagsForResourceCommand,
  StartApplicationCommand,
  StopApplicationCommand,
  TagResourceCommand,
  UpdateApplicationCommand,
} from "@aws-sdk/client-kinesis-analytics";
import { NodeHttp2Handler } from "@smithy/node-http-handler";

import { ACCOUNT, CREDENTIALS, REGION, Riffle, catchError, errorShape } from "./harness.mjs";

const ROLE = `arn:aws:iam::${ACCOUNT}:role/analytics`;
const INPUT = {
  NamePrefix: "SOURCE_SQL_STREAM",
  KinesisStreamsInput: { ResourceARN: `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/clicks`, RoleARN: ROLE },
  InputSchema: {
    RecordFormat: { RecordFormatType: "CSV", MappingParameters: { CSVMappingParameters: { RecordRowDelimiter: "\n", RecordColumnDelimiter: "," } } },
    RecordColumns: [{ Name: "page", SqlType: "VARCHAR(64)" }],
  },
};

describe("kinesis analytics over HTTP/2", () => {
  let server;
  let ka;

  before(async () => {
    server = await Riffle.start();
    ka = new KinesisAnalyticsClient({
      endpoint: server.endpoint,
      region: REGION,
      credentials: CREDENTIALS,
      maxAttempts: 1,
      requestHandler: new NodeHttp2Handler({ requestTimeout: 10000, sessionTimeout: 10000 }),
    });
    server.clients.push(ka);
  });

  after(async () => {
    await server?.stop();
  });

  test("create, describe, update, start, stop, tag, list, delete", async () => {
    const name = `js-${Date.now()}`;
    const arn = `arn:aws:kinesisanalytics:${REGION}:${ACCOUNT}:application/${name}`;
    const created = await ka.send(
      new CreateApplicationCommand({ ApplicationName: name, Inputs: [INPUT], ApplicationCode: 'CREATE OR REPLACE STREAM "DEST" (page VARCHAR(64));' }),
    );
    assert.deepEqual(created.ApplicationSummary, { ApplicationName: name, ApplicationARN: arn, ApplicationStatus: "READY" });
    let { ApplicationDetail: d } = await ka.send(new DescribeApplicationCommand({ ApplicationName: name }));
    assert.ok(d.CreateTimestamp instanceof Date);
    assert.equal(d.ApplicationVersionId, 1);
    assert.deepEqual(d.InputDescriptions[0].InAppStreamNames, ["SOURCE_SQL_STREAM_001"]);

    const stale = await catchError(() =>
      ka.send(new UpdateApplicationCommand({ ApplicationName: name, CurrentApplicationVersionId: 5, ApplicationUpdate: { ApplicationCodeUpdate: "CREATE STREAM s (a INT)" } })),
    );
    assert.equal(stale.name, "ConcurrentModificationException");
    await ka.send(
      new AddApplicationOutputCommand({
        ApplicationName: name,
        CurrentApplicationVersionId: 1,
        Output: {
          Name: "DEST",
          KinesisStreamsOutput: { ResourceARN: `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/out`, RoleARN: ROLE },
          DestinationSchema: { RecordFormatType: "JSON" },
        },
      }),
    );
    await ka.send(
      new StartApplicationCommand({
        ApplicationName: name,
        InputConfigurations: [{ Id: "1.1", InputStartingPositionConfiguration: { InputStartingPosition: "NOW" } }],
      }),
    );
    ({ ApplicationDetail: d } = await ka.send(new DescribeApplicationCommand({ ApplicationName: name })));
    assert.equal(d.ApplicationStatus, "RUNNING");
    assert.equal(d.ApplicationVersionId, 2);
    assert.equal(d.OutputDescriptions[0].KinesisStreamsOutputDescription.ResourceARN, `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/out`);
    await ka.send(new StopApplicationCommand({ ApplicationName: name }));

    await ka.send(new TagResourceCommand({ ResourceARN: arn, Tags: [{ Key: "k", Value: "v" }] }));
    const tags = await ka.send(new ListTagsForResourceCommand({ ResourceARN: arn }));
    assert.deepEqual(tags.Tags, [{ Key: "k", Value: "v" }]);
    const list = await ka.send(new ListApplicationsCommand({}));
    assert.ok(list.ApplicationSummaries.some((s) => s.ApplicationName === name));

    await ka.send(new DeleteApplicationCommand({ ApplicationName: name, CreateTimestamp: d.CreateTimestamp }));
    const gone = await catchError(() => ka.send(new DescribeApplicationCommand({ ApplicationName: name })));
    assert.equal(errorShape(gone).name, "ResourceNotFoundException");
    assert.equal(errorShape(gone).httpStatusCode, 400);
  });
});
