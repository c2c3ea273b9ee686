#!/usr/bin/env python3
"""Reference for the publish benchmark, shaped like the common public "unzip the build into
the S3 website bucket" Lambdas: download the artifact to /tmp with the job's credentials,
`extractall`, then `upload_file` each file with a guessed Content-Type, then report."""
import json
import mimetypes
import os
import shutil
import sys
import tempfile
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import boto3  # noqa: E402
from lambda_loop import serve  # noqa: E402

code_pipeline = boto3.client("codepipeline")
s3 = boto3.client("s3")


def lambda_handler(event, context):
    job = event["CodePipeline.job"]
    job_id = job["id"]
    try:
        data = job["data"]
        params = json.loads(data["actionConfiguration"]["configuration"]["UserParameters"])
        step = params["steps"][0]["publish"]
        artifact = next(a for a in data["inputArtifacts"] if a["name"] == step["input"])
        location = artifact["location"]["s3Location"]
        creds = data["artifactCredentials"]
        artifacts = boto3.session.Session(
            aws_access_key_id=creds["accessKeyId"],
            aws_secret_access_key=creds["secretAccessKey"],
            aws_session_token=creds["sessionToken"],
        ).client("s3")
        tmp = tempfile.mkdtemp()
        try:
            archive = os.path.join(tmp, "artifact.zip")
            artifacts.download_file(location["bucketName"], location["objectKey"], archive)
            site = os.path.join(tmp, "site")
            with zipfile.ZipFile(archive) as z:
                z.extractall(site)
            count = 0
            for root, _, files in os.walk(site):
                for name in files:
                    path = os.path.join(root, name)
                    key = step.get("prefix", "") + os.path.relpath(path, site)
                    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
                    s3.upload_file(path, step["bucket"], key, ExtraArgs={"ContentType": content_type})
                    count += 1
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        code_pipeline.put_job_success_result(
            jobId=job_id, outputVariables={"FilesPublished": str(count)}
        )
    except Exception as error:
        code_pipeline.put_job_failure_result(
            jobId=job_id, failureDetails={"message": str(error)[:4000], "type": "JobFailed"}
        )
    return "Complete."


if __name__ == "__main__":
    serve(lambda_handler)
