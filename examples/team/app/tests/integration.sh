#!/bin/sh
# Integration test: the staging site serves the page and the version this commit built.
# On AWS the site is the bucket's website endpoint; pipeline-local serves its buckets at
# $PIPELINE_LOCAL_SITE_URL/<bucket>.
set -e
base="${PIPELINE_LOCAL_SITE_URL:+$PIPELINE_LOCAL_SITE_URL/$SITE_BUCKET}"
base="${base:-http://$SITE_BUCKET.s3-website-$AWS_REGION.amazonaws.com}"
curl -fsS "$base/index.html" | grep -q "Open for business"
curl -fsS "$base/version.txt" | grep -q "$EXPECTED_VERSION"
echo "PASS staging serves $EXPECTED_VERSION at $base"
