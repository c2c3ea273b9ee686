#!/bin/sh
# Unit test: the greeting is what the site promises.
got=$(sh src/greeting.sh)
if [ "$got" != "Hello, world" ]; then
  echo "FAIL greeting: expected 'Hello, world', got '$got'"
  exit 1
fi
echo "PASS greeting"
