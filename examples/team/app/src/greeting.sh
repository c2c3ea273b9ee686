#!/bin/sh
# The greeting the storefront shows.
echo "Hello, world"
