#!/usr/bin/env python3
"""Reference for the cold-start benchmark: the AWS documentation's sample CodePipeline invoke
action (boto3 `put_job_success_result`). Endpoints come from AWS_ENDPOINT_URL_CODEPIPELINE, as
for our functions."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import boto3  # noqa: E402
from lambda_loop import serve  # noqa: E402

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


if __name__ == "__main__":
    serve(lambda_handler)
