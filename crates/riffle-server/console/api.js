// The console's calls: the AWS JSON 1.1 APIs the SDKs use, on this origin,
// marked with `x-riffle-console` and signed when the server has credentials.

import { sign } from "./sigv4.js";

export const KINESIS = "Kinesis_20131202";
const CRED_KEY = "riffle-console-credentials";

/** An AWS error answer: `type` is its `__type`. */
export class AwsError extends Error {
  constructor(type, message, status) {
    super(message ? `${type}: ${message}` : type);
    this.type = type;
    this.awsMessage = message;
    this.status = status;
  }
}

export const state = {
  server: null,
  credentials: JSON.parse(sessionStorage.getItem(CRED_KEY) || "null"),
};

export function setCredentials(c) {
  state.credentials = c;
  if (c) sessionStorage.setItem(CRED_KEY, JSON.stringify(c));
  else sessionStorage.removeItem(CRED_KEY);
}

/** `headers` with the signature of the request, when the console has credentials. */
export async function signed(method, url, headers, body) {
  if (!state.credentials) return headers;
  const extra = await sign({
    method,
    url,
    headers,
    body,
    credentials: state.credentials,
    region: state.server?.region || "us-east-1",
    service: "kinesis",
  });
  return { ...headers, ...extra };
}

/** The decoded answer of a call, or the AwsError it carries. */
export async function answer(resp) {
  const text = await resp.text();
  let doc = {};
  try {
    doc = text ? JSON.parse(text) : {};
  } catch {
    throw new AwsError(`HTTP ${resp.status}`, text.slice(0, 200), resp.status);
  }
  if (!resp.ok) {
    const type = (doc.__type || resp.headers.get("x-amzn-ErrorType") || `HTTP ${resp.status}`).replace(/:.*$/, "").replace(/^.*#/, "");
    throw new AwsError(type, doc.message ?? doc.Message ?? "", resp.status);
  }
  return doc;
}

/** Calls `target.operation` (JSON 1.1) with `input`. */
export async function call(operation, input = {}, target = KINESIS) {
  const url = new URL("/", location.origin).href;
  const body = JSON.stringify(input);
  const headers = await signed(
    "POST",
    url,
    {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": `${target}.${operation}`,
      "x-riffle-console": "1",
    },
    body,
  );
  return answer(await fetch(url, { method: "POST", headers, body }));
}

/** GETs one of the console's own endpoints. */
export async function getJSON(path) {
  const url = new URL(path, location.origin).href;
  const headers = await signed("GET", url, { "x-riffle-console": "1" }, "");
  return answer(await fetch(url, { headers }));
}

/** Every page of a paginated list operation. */
export async function all(operation, input, key, tokenIn = "NextToken", tokenOut = "NextToken") {
  const out = [];
  let req = { ...input };
  for (;;) {
    const page = await call(operation, req);
    out.push(...(page[key] || []));
    if (!page[tokenOut]) return out;
    req = { [tokenIn]: page[tokenOut] };
    if (operation === "ListStreamConsumers") req.StreamARN = input.StreamARN;
  }
}
