# shellcheck shell=bash
# Environment for scripts that use the local CNB platform made by platform/setup.
#
#   source platform/env.sh
#   pack build my-app $MLBP_PACK_BUILD_ARGS --path samples/my-app
#
# Safe to source more than once and from any shell option set: it only sets variables.
# Everything lives under MLBP_CACHE, which survives between runs on one machine.

MLBP_PLATFORM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export MLBP_PLATFORM_DIR
export MLBP_REPO_ROOT="${MLBP_PLATFORM_DIR%/*}"
export MLBP_CACHE="${MLBP_CACHE:-/var/cache/mlbp}"

# Pinned tool versions. pack >= 0.40.2 and lifecycle >= 0.21.6 are the first whose
# Docker client still talks to Debian's Docker 20.10 (API 1.41).
export MLBP_PACK_VERSION="0.40.6"
export MLBP_LIFECYCLE_VERSION="0.21.17"

# Overridable so that a second platform (say, a cold-start test) can live beside this one.
export MLBP_BUILD_IMAGE="${MLBP_BUILD_IMAGE:-mlbp/build:bookworm}"
export MLBP_RUN_IMAGE="${MLBP_RUN_IMAGE:-mlbp/run:bookworm}"
export MLBP_BUILDER="${MLBP_BUILDER:-mlbp/builder:bookworm}"

# pack reads its config (pull policy, trusted builders) from here, not from ~/.pack.
export PACK_HOME="$MLBP_CACHE/pack-home"
# pack names each app's cache volumes after the app image and this key. Unset, it
# stores a random key per image in PACK_HOME and, since it thinks it runs in a
# container here (the machine has /.dockerenv), warns about it in every first build.
# One daemon, one user: a fixed key is fine.
export PACK_VOLUME_KEY="${PACK_VOLUME_KEY:-mlbp-local}"

# setup links the pinned pack into this directory.
case ":$PATH:" in
  *":$MLBP_CACHE/bin:"*) ;;
  *) export PATH="$MLBP_CACHE/bin:$PATH" ;;
esac

# The loopback stand-in for the PyTorch CPU index (platform/cpu-index).
export MLBP_CPU_INDEX_PORT="${MLBP_CPU_INDEX_PORT:-39041}"
export MLBP_CPU_INDEX_URL="http://127.0.0.1:${MLBP_CPU_INDEX_PORT}/simple/"
export MLBP_CPU_INDEX_DIR="$MLBP_CACHE/cpu-index"
export MLBP_PYPISERVER_VENV="$MLBP_CACHE/tools/pypiserver-2.4.2"

# Flags every `pack build` here needs:
# - never pull: no registry can be reached;
# - trust the builder and any --buildpack dir, so pack runs the lifecycle from the
#   builder rather than from the buildpacksio/lifecycle image, which is not here;
# - host network, so a build reaches the loopback CPU index;
# - the host CA bundle, because outbound HTTPS goes through an intercepting proxy and
#   tools such as uv do not read the system store unless told to.
export MLBP_PACK_BUILD_ARGS="--builder $MLBP_BUILDER --pull-policy never \
--trust-builder --trust-extra-buildpacks --network host \
--env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
