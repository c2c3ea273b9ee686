#!/usr/bin/env python3
"""Reference for the approval-click benchmark: a Python Slack interactivity handler doing what
approval-responder does for one Approve click: read the Slack secret (boto3 Secrets Manager),
verify the signature (HMAC-SHA256, constant-time, 5-minute window, as slack_sdk does), check
the user against APPROVERS, and record the decision with boto3 `put_approval_result`."""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import boto3  # noqa: E402
from lambda_loop import serve  # noqa: E402

secrets = boto3.client("secretsmanager")
codepipeline = boto3.client("codepipeline")
APPROVERS = {u.strip() for u in os.environ.get("APPROVERS", "").split(",") if u.strip()}


def lambda_handler(event, context):
    secret = json.loads(secrets.get_secret_value(SecretId=os.environ["SLACK_SECRET_ARN"])["SecretString"])
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    headers = event.get("headers") or {}
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not timestamp or not signature or abs(time.time() - int(timestamp)) > 300:
        return {"statusCode": 401, "body": "invalid request signature"}
    expected = "v0=" + hmac.new(secret["signing_secret"].encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return {"statusCode": 401, "body": "invalid request signature"}
    payload = json.loads(urllib.parse.parse_qs(body)["payload"][0])
    user = payload["user"]
    if user["id"] not in APPROVERS:
        return {"statusCode": 200, "body": ""}
    action = payload["actions"][0]
    ref = json.loads(action["value"])
    codepipeline.put_approval_result(
        pipelineName=ref["p"], stageName=ref["s"], actionName=ref["a"], token=ref["t"],
        result={"summary": f"Approved in Slack by {user.get('username', user['id'])} ({user['id']})", "status": "Approved"},
    )
    return {"statusCode": 200, "body": ""}


if __name__ == "__main__":
    serve(lambda_handler)
