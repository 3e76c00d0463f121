#!/usr/bin/env bash
# Builds the image and runs each docker-compose.yml profile end to end on this machine: the
# README flow (upload, job, stream) against the API on its embedded defaults, on PostgreSQL,
# with two replicas behind the load balancer, with job shards on Ray, and a training run of the
# worker; each profile's guard (no idle PostgreSQL or Ray). Not part of every CI run: a build
# takes minutes and needs a Docker engine.
#
#   scripts/compose_check.sh [--standins] [--wheelhouse DIR] [--profiles "default postgres ..."]
#
#   --standins        where image registries are unreachable: build stand-ins for the images the
#                     files name (python, postgres, haproxy) from Debian with debootstrap
#   --wheelhouse DIR  a folder of wheels (a local CPU torch, say) served to the build over HTTP
#                     instead of the PyTorch index
#   --profiles LIST   the profiles to run (default: all)
#
# Needs docker and docker-compose (Debian: apt-get install docker.io docker-compose; the script
# starts dockerd if none answers), and debootstrap for --standins. Leaves nothing running:
# every profile is brought down with its volumes.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
standins=0
wheelhouse=""
profiles="default postgres replicas ray train"
while [ $# -gt 0 ]; do
  case "$1" in
    --standins) standins=1 ;;
    --wheelhouse) wheelhouse="$2"; shift ;;
    --profiles) profiles="$2"; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "compose_check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '[compose] %s\n' "$*"; }
die() { printf '[compose] FAILED: %s\n' "$*" >&2; exit 1; }
work=$(mktemp -d)
project=antifit-check
compose() { docker-compose -p "$project" --project-directory "$root" -f "$root/docker-compose.yml" --env-file "$work/.env" "$@"; }
cleanup() {
  [ -f "$work/.env" ] && compose --profile postgres --profile replicas --profile ray --profile train down -v --remove-orphans >/dev/null 2>&1 || true
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- the engine ------------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || die "no Docker engine (Debian: apt-get install docker.io docker-compose)"
  say "starting dockerd"
  (dockerd >"$work/dockerd.log" 2>&1 &)
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || die "dockerd did not start (see $work/dockerd.log)"
fi

# --- stand-ins for registry images -----------------------------------------------------------
standin() {  # NAME PACKAGES DOCKERFILE-TAIL
  docker image inspect "$1" >/dev/null 2>&1 && return
  say "building a stand-in for $1 from Debian ($2)"
  local dir="$work/standin" base="antifit-standin/${1%%:*}"
  rm -rf "$dir" && mkdir -p "$dir"
  debootstrap --variant=minbase --include="ca-certificates,$2" bookworm "$dir/root" \
    http://deb.debian.org/debian >/dev/null || die "debootstrap $2 failed"
  cp /etc/ssl/certs/ca-certificates.crt "$dir/root/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$dir/root/var/lib/apt/lists/"* "$dir/root/var/cache/apt/archives/"*.deb
  tar -C "$dir/root" -c . | docker import - "$base" >/dev/null
  cp "$root/scripts/standin-postgres-entrypoint.sh" "$dir/"
  printf 'FROM %s\n%s\n' "$base" "$3" > "$dir/Dockerfile"
  docker build -q -t "$1" -f "$dir/Dockerfile" "$dir" >/dev/null
  rm -rf "$dir"
}
if [ "$standins" = 1 ]; then
  command -v debootstrap >/dev/null || die "--standins needs debootstrap (apt-get install debootstrap)"
  standin python:3.11-slim-bookworm "python3,python3-venv,python3-pip" \
    'RUN ln -sf /usr/bin/python3 /usr/local/bin/python
ENV LANG=C.UTF-8'
  standin postgres:16-bookworm postgresql \
    'COPY standin-postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod +x /usr/local/bin/docker-entrypoint.sh && mkdir -p /var/run/postgresql && chown postgres /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]'
  standin haproxy:2.8-bookworm haproxy 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin'
fi

# --- .env and the image ----------------------------------------------------------------------
# the host as the build's containers reach it: the default bridge's address
gateway=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
[ -n "$gateway" ] || gateway=$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1)
[ -n "$gateway" ] || die "cannot find the docker bridge's address"
{
  echo "ANTIFIT_PORT=18000"
  echo "ANTIFIT_LB_PORT=18080"
  echo "ANTIFIT_RESOURCES=$root/resources"
  echo "ANTIFIT_WORKERS=2"
} > "$work/base.env"
if [ -n "$wheelhouse" ]; then
  port=18765
  (cd "$wheelhouse" && exec python3 -m http.server "$port" --bind "$gateway" >/dev/null 2>&1) &
  server_pid=$!
  printf 'ANTIFIT_PIP_FIND_LINKS=http://%s:%s/\nANTIFIT_PIP_TRUSTED_HOST=%s\nANTIFIT_TORCH_INDEX_URL=https://pypi.org/simple\n' \
    "$gateway" "$port" "$gateway" >> "$work/base.env"
fi
cp "$work/base.env" "$work/.env"
echo "ANTIFIT_API_KEYS=[]" >> "$work/.env"
say "building the image"
start=$(date +%s)
compose build api >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; die "docker-compose build"; }
say "built in $(( $(date +%s) - start )) s: $(docker image inspect antifit:latest -f '{{.Size}}' | awk '{printf "%.2f GB", $1/1e9}')"

key_line=$(docker run --rm antifit:latest keys new check --role admin)
key=$(printf '%s\n' "$key_line" | sed -n 's/^key [^:]*: *//p' | head -1)
entry="[$(printf '%s\n' "$key_line" | sed -n 's/^ANTIFIT_API_KEYS entry [^:]*: *//p' | head -1)]"
[ -n "$key" ] && [ -n "$entry" ] || die "antifit keys new printed no key: $key_line"

env_for() {  # PROFILE -> .env
  cp "$work/base.env" "$work/.env"
  echo "ANTIFIT_API_KEYS=$entry" >> "$work/.env"
  case "$1" in
    postgres|replicas)
      echo "ANTIFIT_DATABASE_URL=postgresql+psycopg://antifit:antifit@postgres:5432/antifit" >> "$work/.env" ;;
    ray)
      printf 'ANTIFIT_EXECUTOR=ray\nRAY_ADDRESS=ray://ray-head:10001\nRAY_AUTH_TOKEN=%s\n' \
        "$(python3 -c 'import secrets; print(secrets.token_hex(32))')" >> "$work/.env" ;;
  esac
}

api() {  # METHOD PATH [curl args...] (against ANTIFIT_PORT, or $base if set)
  local method=$1 path=$2; shift 2
  curl -fsS -X "$method" -H "Authorization: Bearer $key" "${base:-http://127.0.0.1:18000}$path" "$@"
}
wait_ready() {  # URL
  for _ in $(seq 180); do
    curl -fsS "$1/readyz" >/dev/null 2>&1 && return 0
    sleep 2
  done
  compose logs --tail 40 >&2 || true
  die "$1 not ready"
}
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

readme_flow() {  # upload, job, stream: README's quickstart against $base
  local ds job state
  ds=$(api POST "/v1/datasets?name=reviews&id_field=id&split_field=split" \
    -H "content-type: application/x-ndjson" --data-binary @"$root/examples/reviews.jsonl" | json '["id"]')
  job=$(api POST "/v1/datasets/$ds/jobs" -H "content-type: application/json" \
    -d '{"spec": {"pipeline": {"type": "sequence", "steps": [{"type": "synonym", "p": 0.2}, {"type": "keyboard", "p": 0.05}]}}, "n_variants": 2, "seed": 1}' | json '["id"]')
  for _ in $(seq 300); do
    state=$(api GET "/v1/jobs/$job" | json '["state"]')
    [ "$state" = queued ] || [ "$state" = running ] || break
    sleep 1
  done
  [ "$state" = succeeded ] || die "job $job: $state ($(api GET "/v1/jobs/$job"))"
  api GET "/v1/datasets/$ds/stream?job=$job&batch_size=8" | tail -1 | grep -q '"end": *true' \
    || die "stream of $ds did not end"
  echo "$ds $job"
}

for profile in $profiles; do
  say "profile $profile"
  env_for "$profile"
  flags=()
  [ "$profile" = default ] || flags=(--profile "$profile")
  case "$profile" in
    default|postgres)
      compose "${flags[@]}" up -d >/dev/null 2>&1 || die "up $profile"
      wait_ready http://127.0.0.1:18000
      base=http://127.0.0.1:18000 readme_flow >/dev/null
      if [ "$profile" = postgres ]; then
        api GET /v1/datasets | grep -q reviews || die "no dataset listed"
        compose exec -T postgres psql -U antifit -d antifit -tAc "select count(*) from jobs" | grep -qx 1 \
          || die "the job is not in PostgreSQL"
      fi ;;
    replicas)
      compose "${flags[@]}" up -d >/dev/null 2>&1 || die "up replicas"
      wait_ready http://127.0.0.1:18000
      wait_ready http://127.0.0.1:18080
      base=http://127.0.0.1:18080 readme_flow >/dev/null
      ids=$(for _ in 1 2 3 4; do curl -fsS http://127.0.0.1:18080/readyz | json '["replica"]["id"]'; done | sort -u | wc -l)
      [ "$ids" = 2 ] || die "the load balancer reached $ids replica(s), not 2"
      # four jobs through the one port: both replicas claim some
      read -r ds _ < <(base=http://127.0.0.1:18080 readme_flow)
      for seed in 11 12 13 14; do
        base=http://127.0.0.1:18080 api POST "/v1/datasets/$ds/jobs" -H "content-type: application/json" \
          -d "{\"spec\": {\"pipeline\": {\"type\": \"keyboard\", \"p\": 0.1}}, \"seed\": $seed}" >/dev/null
      done
      sleep 15
      holders=$(compose exec -T postgres psql -U antifit -d antifit -tAc \
        "select count(distinct replica) from job_shards")
      [ "$holders" = 2 ] || say "note: shards recorded by $holders replica(s)" ;;
    ray)
      compose "${flags[@]}" up -d --scale ray-worker=2 >/dev/null 2>&1 || die "up ray"
      wait_ready http://127.0.0.1:18000
      base=http://127.0.0.1:18000 readme_flow >/dev/null
      compose exec -T ray-head ray status 2>/dev/null | grep -q "CPU" || die "ray status" ;;
    train)
      compose up -d >/dev/null 2>&1 || die "up api"
      wait_ready http://127.0.0.1:18000
      read -r ds job < <(base=http://127.0.0.1:18000 readme_flow)
      printf 'ANTIFIT_TRAIN_DATASET=%s\nANTIFIT_TRAIN_JOB=%s\nANTIFIT_TRAIN_API_KEY=%s\nANTIFIT_TRAIN_EPOCHS=1\nANTIFIT_TRAIN_PRESET=basic\n' \
        "$ds" "$job" "$key" >> "$work/.env"
      compose --profile train up --exit-code-from worker worker >"$work/train.log" 2>&1 \
        || { tail -30 "$work/train.log"; die "the training worker failed"; }
      # a configuration error is not restarted for ever
      sed -i 's/^ANTIFIT_TRAIN_EPOCHS=1$/ANTIFIT_TRAIN_EPOCHS=-1/' "$work/.env"
      compose --profile train up -d worker >/dev/null 2>&1 || true
      sleep 30
      restarts=$(docker inspect "$(compose ps -q worker)" -f '{{.RestartCount}}')
      [ "$restarts" -le 3 ] || die "the worker restarted $restarts times on a configuration error" ;;
  esac
  compose --profile "$profile" down -v --remove-orphans >/dev/null 2>&1
  say "profile $profile: ok"
done

# the guards: a profile's own services refuse to sit idle next to an API not set to use them
env_for default
for pair in "postgres postgres" "ray ray-head"; do
  set -- $pair
  compose --profile "$1" up -d "$2" >/dev/null 2>&1 || true
  sleep 5
  code=$(docker inspect "$(compose ps -q "$2")" -f '{{.State.ExitCode}}')
  compose logs "$2" 2>&1 | grep -q ".env" && [ "$code" = 2 ] || die "$2 started without the API set to use it"
  compose --profile "$1" down -v >/dev/null 2>&1
  say "guard $2: refuses, exit 2"
done
say "all profiles passed"
