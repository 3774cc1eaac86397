#!/bin/sh
# Make the CPython copied from the python:3.11-slim-bookworm image run on this base, and add
# the user the service runs as. Both Dockerfiles run this same script: on the CPU image (that
# python image itself) every library is already there and nothing is installed; on the CUDA
# image (Ubuntu 24.04, a newer glibc) it installs the shared libraries that Python's own
# extension modules (ssl, hashlib, sqlite3, ctypes, zlib, bz2, lzma, pyexpat, uuid) link to.
set -eu

ldconfig
if ! python3.11 -c 'import ssl, hashlib, sqlite3, ctypes, zlib, bz2, lzma, pyexpat, uuid' \
        2>/dev/null; then
    . /etc/os-release
    case "${VERSION_CODENAME:-}" in
        noble)
            libs="libssl3t64 libsqlite3-0 libffi8 zlib1g libbz2-1.0 liblzma5 libexpat1 libuuid1" ;;
        bookworm)
            libs="libssl3 libsqlite3-0 libffi8 zlib1g libbz2-1.0 liblzma5 libexpat1 libuuid1" ;;
        *)
            echo "python-runtime.sh: no library list for ${ID:-?} ${VERSION_CODENAME:-?}" >&2
            exit 1 ;;
    esac
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086  # $libs is a list of package names
    apt-get install -y -qq --no-install-recommends ca-certificates $libs
    rm -rf /var/lib/apt/lists/*
    python3.11 -c 'import ssl, hashlib, sqlite3, ctypes, zlib, bz2, lzma, pyexpat, uuid'
fi

# A fixed uid/gid that no base image uses (Ubuntu 24.04 already has "ubuntu" as 1000), so the
# Helm chart's securityContext and volume ownership can name it.
groupadd --system --gid 10001 cardiogate
useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin cardiogate
install -d -o 10001 -g 10001 -m 0750 /data
