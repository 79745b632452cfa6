// The embedded S3, as the console reads it: ListBuckets, ListObjectsV2 and
// presigned GET links. S3 requests reach S3 by their SigV4 signing name,
// so they are always signed: with the console's access key when the
// server checks signatures, else with a placeholder key the server does
// not check.

import { state, AwsError } from "./api.js";
import { sign, presign, s3Path } from "./sigv4.js";

const ANONYMOUS = { accessKeyId: "riffle-console", secretAccessKey: "riffle-console" };

const credentials = () => state.credentials || ANONYMOUS;
const region = () => state.server?.region || "us-east-1";

function xml(text) {
  return new DOMParser().parseFromString(text, "application/xml");
}

const text = (el, name) => el.getElementsByTagName(name)[0]?.textContent ?? "";

async function get(path, query = {}) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") u.searchParams.set(k, v);
  const headers = {
    "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "x-riffle-console": "1",
  };
  const extra = await sign({ method: "GET", url: u.href, headers, credentials: credentials(), region: region(), service: "s3" });
  const resp = await fetch(u.href, { headers: { ...headers, ...extra } });
  const body = await resp.text();
  if (!resp.ok) {
    // S3 answers in XML; the console's guard in JSON.
    let type = `HTTP ${resp.status}`;
    let message = body.slice(0, 200);
    if (body.startsWith("{")) {
      const doc = JSON.parse(body);
      type = (doc.__type || type).replace(/^.*#/, "");
      message = doc.message ?? "";
    } else if (body.includes("<Code>")) {
      const doc = xml(body);
      type = text(doc, "Code");
      message = text(doc, "Message");
    }
    throw new AwsError(type, message, resp.status);
  }
  return xml(body);
}

/** Bucket names, sorted. */
export async function listBuckets() {
  const doc = await get("/");
  return [...doc.getElementsByTagName("Bucket")].map((b) => text(b, "Name")).sort();
}

/**
 * Objects under `prefix`, newest first: { key, size, modified (ms) }. Reads
 * at most `pages` pages of 1,000.
 */
export async function listObjects(bucket, prefix = "", pages = 10) {
  const out = [];
  let token;
  for (let i = 0; i < pages; i++) {
    const doc = await get(s3Path(bucket), { "list-type": "2", prefix, "continuation-token": token });
    for (const c of doc.getElementsByTagName("Contents")) {
      out.push({ key: text(c, "Key"), size: Number(text(c, "Size")), modified: Date.parse(text(c, "LastModified")) });
    }
    token = text(doc.documentElement, "NextContinuationToken");
    if (text(doc.documentElement, "IsTruncated") !== "true" || !token) break;
  }
  return out.sort((a, b) => b.modified - a.modified || (a.key < b.key ? 1 : -1));
}

/** A link that downloads `key` (a presigned GET, valid for an hour). */
export function downloadUrl(bucket, key) {
  return presign({ url: new URL(s3Path(bucket, key), location.origin).href, credentials: credentials(), region: region(), expires: 3600 });
}
