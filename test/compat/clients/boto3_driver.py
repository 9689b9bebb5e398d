"""Performs one compatibility-matrix case with boto3 and prints the result as JSON.

Usage: python3 boto3_driver.py '<case json>'

The case is {"service", "method", "params", "region"?, "addressing_style"?, "signature_version"?, "fetch"?}:
- credentials and the endpoint come from the environment (AWS_ACCESS_KEY_ID, ..., AWS_ENDPOINT_URL, which
  botocore reads itself);
- a param value {"$file": path} is replaced by that file's bytes;
- with "fetch" ({"method", "body"?}), the method's result is a presigned URL, which is then requested
  with urllib (no AWS signing of its own; HTTPS_PROXY from the environment, and AWS_CA_BUNDLE trusted
  when set, as in proxy mode) and the response body returned.

Prints {"ok": true, "output": ...} or {"ok": false, "error": "<Code>: <message>"}; exits 0 either way.
"""

import json
import os
import ssl
import sys
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


def main():
    case = json.loads(sys.argv[1])
    config = Config(
        retries={"max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": case.get("addressing_style", "auto")},
        signature_version=case.get("signature_version"),
    )
    client = boto3.client(
        case["service"],
        region_name=case.get("region", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")),
        config=config,
    )
    try:
        result = getattr(client, case["method"])(**resolve(case.get("params", {})))
        fetch = case.get("fetch")
        if fetch is not None:
            body = fetch.get("body")
            req = urllib.request.Request(
                result, method=fetch["method"], data=None if body is None else body.encode("utf-8")
            )
            ca_bundle = os.environ.get("AWS_CA_BUNDLE")
            context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
            try:
                with urllib.request.urlopen(req, timeout=30, context=context) as res:
                    result = {"status": res.status, "body": res.read().decode("utf-8", "replace")}
            except urllib.error.HTTPError as e:
                detail = e.read().decode("utf-8", "replace")[:300]
                print(json.dumps({"ok": False, "error": f"HTTP {e.code}: {detail}"}))
                return
        print(json.dumps({"ok": True, "output": read_bodies(result)}, default=str))
    except client.exceptions.ClientError as e:
        err = e.response.get("Error", {})
        print(json.dumps({"ok": False, "error": f"{err.get('Code')}: {err.get('Message')}"}))
    except Exception as e:  # noqa: BLE001 - any failure is a row failure, reported as text
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))


if __name__ == "__main__":
    main()
