"""A minimal Lambda Runtime API loop for the Python references: GET the next event, call the
handler, POST its result. Leaner than Lambda's own Python runtime (awslambdaric), which only
favours the references."""
import json
import os
import urllib.request


def serve(handler):
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    base = f"http://{api}/2018-06-01/runtime/invocation"
    while True:
        with urllib.request.urlopen(f"{base}/next") as response:
            request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(response.read())
        result = handler(event, None)
        request = urllib.request.Request(
            f"{base}/{request_id}/response", data=json.dumps(result).encode(), method="POST"
        )
        urllib.request.urlopen(request).read()
