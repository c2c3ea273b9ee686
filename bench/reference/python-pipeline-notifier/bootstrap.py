#!/usr/bin/env python3
"""Reference for the pipeline-notifier benchmark: the usual Python EventBridge → Slack notifier,
made as safe as ours on the first event of an execution: read the Slack secret (boto3 Secrets
Manager), claim the execution in DynamoDB with a conditional put (so a repeated delivery does not
post twice), read the source revision (boto3 `get_pipeline_execution`), post the message with
chat.postMessage over HTTPS (urllib), and record its ts in DynamoDB."""
import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import boto3  # noqa: E402
from lambda_loop import serve  # noqa: E402

secrets = boto3.client("secretsmanager")
codepipeline = boto3.client("codepipeline")
dynamodb = boto3.client("dynamodb")
TABLE = os.environ["EXECUTIONS_TABLE"]
API = os.environ.get("SLACK_API_URL", "https://slack.com/api")


def lambda_handler(event, context):
    detail = event["detail"]
    pipeline, execution = detail["pipeline"], detail["execution-id"]
    secret = json.loads(secrets.get_secret_value(SecretId=os.environ["SLACK_SECRET_ARN"])["SecretString"])
    try:
        dynamodb.put_item(
            TableName=TABLE,
            Item={"pk": {"S": f"execution#{execution}"}, "events": {"SS": [event["id"]]}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return {"posted": False}
    run = codepipeline.get_pipeline_execution(pipelineName=pipeline, pipelineExecutionId=execution)
    revision = (run["pipelineExecution"].get("artifactRevisions") or [{}])[0]
    region = event.get("region", "us-east-1")
    console = (f"https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{pipeline}"
               f"/executions/{execution}/timeline?region={region}")
    text = f"{pipeline} {execution[:8]} {detail['state']}"
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": f"*{pipeline}*  <{console}|{execution[:8]}>  *{detail['state']}*"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            f"Source: <{revision.get('revisionUrl', '')}|{revision.get('revisionId', '')[:10]}>"}]},
    ]
    body = json.dumps({"channel": os.environ["SLACK_CHANNEL"], "text": text, "blocks": blocks}).encode()
    request = urllib.request.Request(f"{API}/chat.postMessage", data=body, headers={
        "Content-Type": "application/json; charset=utf-8",
        "Authorization": f"Bearer {secret['bot_token']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    if not answer.get("ok"):
        raise RuntimeError(f"Slack: {answer.get('error')}")
    dynamodb.update_item(
        TableName=TABLE, Key={"pk": {"S": f"execution#{execution}"}},
        UpdateExpression="SET ts = :ts", ExpressionAttributeValues={":ts": {"S": answer["ts"]}},
    )
    return {"posted": True}


if __name__ == "__main__":
    serve(lambda_handler)
