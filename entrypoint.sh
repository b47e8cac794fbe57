#!/bin/sh
# Container entrypoint (also works outside Docker, from any directory):
# apply pending database migrations, then start the bot.
set -eu

# Run from the project folder (/app in the image) so relative paths
# (data/, status/, logs/, config/, strategies/, .env) resolve as documented.
cd "$(dirname "$0")"

node --import tsx src/cli/main.ts db migrate

# exec replaces this shell with node (same PID). Without it the shell would
# stay PID 1 in the container, and `docker stop` would send SIGTERM to the
# shell, which does not forward it: node would never stop cleanly and be
# SIGKILLed after the grace period. With exec, node gets SIGTERM directly,
# stops cleanly, writes its final "stopped" heartbeat and exits 0.
exec node --import tsx src/cli/main.ts run "$@"
