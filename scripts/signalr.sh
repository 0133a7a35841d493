#!/usr/bin/env bash
# The official JavaScript SignalR client for the hub tests (being built).
set -euo pipefail
exit 0
