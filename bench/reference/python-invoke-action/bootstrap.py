#!/usr/bin/env python3
"""Reference for the cold-start benchmark: the AWS documentation's sample CodePipeline invoke
action (boto3 `put_job_success_result`), run behind a minimal Lambda Runtime API loop.

The loop is leaner than Lambda's own Python runtime (awslambdaric), which only favours this
reference. Endpoints come from AWS_ENDPOINT_URL_CODEPIPELINE, as for our functions.
"""
import json
import os
import urllib.request

import boto3

code_pipeline = boto3.client("codepipeline")


def lambda_handler(event, context):
    job_id = event["CodePipeline.job"]["id"]
    try:
        code_pipeline.put_job_success_result(jobId=job_id)
    except Exception as error:  # the sample reports any failure
        code_pipeline.put_job_failure_result(
            jobId=job_id, failureDetails={"message": str(error), "type": "JobFailed"}
        )
    return "Complete."


def main():
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    base = f"http://{api}/2018-06-01/runtime/invocation"
    while True:
        with urllib.request.urlopen(f"{base}/next") as response:
            request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(response.read())
        result = lambda_handler(event, None)
        request = urllib.request.Request(
            f"{base}/{request_id}/response", data=json.dumps(result).encode(), method="POST"
        )
        urllib.request.urlopen(request).read()


if __name__ == "__main__":
    main()
