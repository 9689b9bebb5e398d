"""Performs compatibility-matrix cases with boto3, one process for many cases, and prints each result as JSON.

Usage: python3 boto3_driver.py    (cases on stdin, one JSON object per line; one result line per case)

The way to the edge comes from the environment, the same for every case of the process (endpoint mode:
AWS_ENDPOINT_URL, which botocore reads itself; proxy mode: HTTPS_PROXY and AWS_CA_BUNDLE). Each case is
{"credential": {accessKeyId, secretAccessKey, sessionToken}, "service", "method", "params", "region"?,
"addressing_style"?, "signature_version"?, "fetch"?} and gets a new boto3 Session with its own credential:
- a param value {"$file": path} is replaced by that file's bytes;
- with "fetch" ({"method", "body"?}), the method's result is a presigned URL, which is then requested
  with urllib (no AWS signing of its own; HTTPS_PROXY from the environment, and AWS_CA_BUNDLE trusted
  when set, as in proxy mode) and the response body returned.

Prints {"ok": true, "output": ..., "ms": n} or {"ok": false, "error": "<Code>: <message>", "ms": n} per case.
"""

import json
import os
import ssl
import sys
import time
import urllib.request

import boto3
from botocore.config import Config


def resolve(value):
    if isinstance(value, dict):
        if set(value) == {"$file"}:
            with open(value["$file"], "rb") as f:
                return f.read()
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


def read_bodies(value):
    if isinstance(value, dict):
        return {k: read_bodies(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [read_bodies(v) for v in value]
    if hasattr(value, "read"):
        return value.read().decode("utf-8", "replace")
    return value


def fetch_url(url, fetch):
    body = fetch.get("body")
    req = urllib.request.Request(url, method=fetch["method"], data=None if body is None else body.encode("utf-8"))
    ca_bundle = os.environ.get("AWS_CA_BUNDLE")
    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as res:
            return {"ok": True, "output": {"status": res.status, "body": res.read().decode("utf-8", "replace")}}
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")[:300]
        return {"ok": False, "error": f"HTTP {e.code}: {detail}"}


def run(case):
    cred = case["credential"]
    session = boto3.session.Session(
        aws_access_key_id=cred["accessKeyId"],
        aws_secret_access_key=cred["secretAccessKey"],
        aws_session_token=cred["sessionToken"],
    )
    config = Config(
        retries={"max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": case.get("addressing_style", "auto")},
        signature_version=case.get("signature_version"),
    )
    client = session.client(
        case["service"],
        region_name=case.get("region", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")),
        config=config,
    )
    try:
        result = getattr(client, case["method"])(**resolve(case.get("params", {})))
        if case.get("fetch") is not None:
            return fetch_url(result, case["fetch"])
        return {"ok": True, "output": read_bodies(result)}
    except client.exceptions.ClientError as e:
        err = e.response.get("Error", {})
        return {"ok": False, "error": f"{err.get('Code')}: {err.get('Message')}"}
    except Exception as e:  # noqa: BLE001 - any failure is a row failure, reported as text
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    finally:
        client.close()


def main():
    for line in sys.stdin:
        if line.strip() == "":
            continue
        started = time.monotonic()
        result = run(json.loads(line))
        result["ms"] = round((time.monotonic() - started) * 1000)
        print(json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
