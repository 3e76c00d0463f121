#!/usr/bin/env bash
# Sets up antifit on this machine: OS resources from Debian (WordNet 3.0, Apertium pairs),
# a virtualenv with torch installed first, then the project and its offline resources.
# Used alike by README, .ci/run and the Dockerfile. Idempotent: a second run only checks.
#
#   scripts/setup.sh [--dev] [--extras LIST] [--venv DIR] [--no-system] [--deps-only]
#
#   --dev          also install the test and lint tools (pytest, ruff, mypy, nlpaug for benches)
#                  and Debian's chromium (the API docs are checked in a headless browser)
#   --extras LIST  optional extras to install, e.g. "ray" or "ray,zh" (--dev includes them)
#   --venv DIR     where the virtualenv lives (default: .venv in the repository; "-" = no venv,
#                  install into the current interpreter)
#   --no-system    skip the Debian packages (WordNet/Apertium features then report them missing)
#   --deps-only    Debian packages, torch and the project's dependencies, not the project (the
#                  Dockerfile's dependency layer: it needs pyproject.toml alone)
#
#   ANTIFIT_TORCH (default torch==2.13.0) and ANTIFIT_TORCH_INDEX_URL (default: pip's own
#   configuration) choose the torch build, e.g. torch==2.13.0+cpu from
#   https://download.pytorch.org/whl/cpu.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
extras=""
dev=0
system=1
deps_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dev) extras="[dev]"; dev=1 ;;
    --extras) if [ "$dev" = 0 ] && [ -n "$2" ]; then extras="[$2]"; fi; shift ;;
    --venv) venv="$2"; shift ;;
    --no-system) system=0 ;;
    --deps-only) deps_only=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages --------------------------------------------------------------------
debs=(wordnet-base wordnet-sense-index apertium apertium-eng-spa apertium-eng-cat)
[ "$dev" = 1 ] && debs+=(chromium)
if [ "$system" = 1 ]; then
  missing=()
  for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null \
      || die "no apt-get here: install ${missing[*]} with your package manager, or rerun with --no-system"
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null \
        || die "Debian packages missing (${missing[*]}) and not root: run 'apt-get install ${missing[*]}' as root, or rerun with --no-system"
      apt=(sudo apt-get)
    else
      apt=(apt-get)
    fi
    say "installing Debian packages: ${missing[*]}"
    "${apt[@]}" update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
      || die "apt-get install ${missing[*]} failed"
  fi
fi

# --- 2. Python environment -----------------------------------------------------------------
if [ "$venv" = "-" ]; then
  py=$(command -v python3)
else
  if [ ! -x "$venv/bin/python" ]; then
    say "creating virtualenv $venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  fi
  py="$venv/bin/python"
fi
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python >= 3.11 needed, found $("$py" -V)"

# Re-install only when what we install changed: a stamp of pyproject + extras.
stamp_dir=$("$py" -c 'import sys; print(sys.prefix)')
stamp="$stamp_dir/.antifit-setup-stamp"
want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1) $extras $root"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$py" -c 'import augmenters, torch' 2>/dev/null; then
  say "python packages up to date"
else
  pip=("$py" -m pip install -q --disable-pip-version-check)
  # torch first: on these machines torch==2.13.0 is a local CPU wheel; a looser requirement
  # resolved later would pull a multi-GB CUDA build.
  torch=${ANTIFIT_TORCH:-torch==2.13.0}
  if ! "$py" -c 'import torch' 2>/dev/null; then
    say "installing $torch${ANTIFIT_TORCH_INDEX_URL:+ from $ANTIFIT_TORCH_INDEX_URL}"
    index=()
    [ -n "${ANTIFIT_TORCH_INDEX_URL:-}" ] \
      && index=(--index-url "$ANTIFIT_TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple)
    "${pip[@]}" "${index[@]}" "$torch" || die "pip install $torch failed"
  fi
  if [ "$deps_only" = 1 ]; then
    say "installing the dependencies of antifit$extras"
    "$py" - "$root/pyproject.toml" "$extras" > "$stamp_dir/.antifit-requirements.txt" <<'PY' \
      || die "cannot read the dependencies from pyproject.toml"
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
wanted, seen = [e for e in sys.argv[2].strip("[]").split(",") if e], set()
deps = list(project["dependencies"])
while wanted:  # extras may name other extras: antifit[zh]
    extra = wanted.pop()
    if extra in seen:
        continue
    seen.add(extra)
    for dep in project["optional-dependencies"][extra]:
        if dep.startswith("antifit["):
            wanted += dep[len("antifit["):-1].split(",")
        else:
            deps.append(dep)
print("\n".join(deps))
PY
    "${pip[@]}" -r "$stamp_dir/.antifit-requirements.txt" || die "pip install of the dependencies failed"
    say "dependencies ready: $py"
    exit 0
  fi
  say "installing antifit$extras"
  "${pip[@]}" -e "$root$extras" || die "pip install -e .$extras failed"
  echo "$want" > "$stamp"
fi

# --- 3. Offline resources ------------------------------------------------------------------
# Prepares the nltk-layout WordNet copy (with its lexnames table) and checks every resource.
"$py" -m antifit.cli resources --prepare || die "resources are not usable (see above)"
say "ready: $py"
