# shellcheck shell=bash
# Sourced by scripts/container-base and scripts/test-deploy: podman on a machine without a Docker
# engine or an image registry (Debian's podman 4.3 with runc).

# pm ARGS...: podman with runc, the runtime these machines run containers with (crun, podman's
# first choice when installed, is not what was tried here). Its complaints that it cannot reach
# systemd to schedule health checks are dropped: on a machine without systemd as PID 1 they come
# with every container that has a HEALTHCHECK, and `podman healthcheck run` works regardless.
pm() { podman --runtime runc "$@" 2> >(without_systemd_noise >&2); }
without_systemd_noise() { grep --line-buffered -v 'unable to get systemd connection' || true; }

# podman_prepare: installs podman, runc and debootstrap when missing (with apt-get, as root) and
# makes sure /etc/containers/containers.conf has `default_ulimits = []` under [containers].
# Without it podman asks runc for its default open-files limit (1,048,576), above the hard limit
# of a sandboxed machine (20,000 here), and every container fails to start; with it a container
# inherits podman's own limits. Fails with a message naming what is missing when not root.
podman_prepare() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if ((${#missing[@]})); then
    if [[ $(id -u) != 0 ]]; then
      echo "== missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root" >&2
      return 1
    fi
    echo "== installing ${missing[*]}"
    apt-get update -qq
    # With recommends: podman's networking (netavark, aardvark-dns for service names) and
    # storage helpers come as recommends.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi

  local conf=/etc/containers/containers.conf
  if ! grep -qs '^[[:space:]]*default_ulimits[[:space:]]*=' "$conf"; then
    if [[ $(id -u) != 0 ]]; then
      echo "== $conf needs 'default_ulimits = []' under [containers]; run as root once" >&2
      return 1
    fi
    echo "== $conf: default_ulimits = [] under [containers]"
    mkdir -p "$(dirname "$conf")"
    if grep -qs '^\[containers\]' "$conf"; then
      sed -i '/^\[containers\]/a default_ulimits = []' "$conf"
    else
      printf '\n[containers]\ndefault_ulimits = []\n' >>"$conf"
    fi
  fi
}
