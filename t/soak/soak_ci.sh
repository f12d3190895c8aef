#!/bin/bash
# t/soak/soak_ci.sh - the soak as `make check` runs it: 300 messages, a
# fault every 1 to 3 seconds (about 20 s in all). The full soak (20,000
# messages) is `make soak`; see doc/reliability.md.
export SOAK_N=${SOAK_N:-300}
export SOAK_PAUSE=${SOAK_PAUSE:-1 3}
exec bash "$(dirname "$0")/soak.sh"
