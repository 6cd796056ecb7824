#!/usr/bin/env bash
# Install Lineside on a Debian / Raspberry Pi OS line-side box, or remove it. Idempotent.
#
#   sudo deploy/box-install.sh              install or upgrade (venv, unit, config, folders)
#   sudo deploy/box-install.sh --trust K.pub   the same, and trust bundles signed with K's key
#   sudo deploy/box-install.sh --uninstall  remove the service and venv; keep config and state
#   sudo deploy/box-install.sh --purge      remove everything, config and state included
#
# Layout: /opt/lineside/venv (the edge install: no TensorFlow), /etc/lineside (lineside.yaml,
# trusted/ keys), /var/lib/lineside (models/ drop folder, bundles/, outbox), the systemd unit.
# LINESIDE_ROOT prefixes every path (for trying it out in a folder); SYSTEMCTL names the tool
# (skipped when absent); LINESIDE_PIP_ARGS adds pip options (for example a local wheel cache).
set -euo pipefail

ROOT=${LINESIDE_ROOT:-}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
SRC=$(cd "$(dirname "$0")/.." && pwd)
VENV=$ROOT/opt/lineside/venv
UNIT=$ROOT/etc/systemd/system/lineside.service
TMPFILES=$ROOT/etc/tmpfiles.d/lineside.conf
CONF_DIR=$ROOT/etc/lineside
STATE_DIR=$ROOT/var/lib/lineside

say() { printf 'lineside-install: %s\n' "$*"; }

systemctl_do() {
    if command -v "$SYSTEMCTL" >/dev/null 2>&1; then
        "$SYSTEMCTL" "$@"
    else
        say "no $SYSTEMCTL here; skipped: systemctl $*"
    fi
}

install_box() {
    command -v python3 >/dev/null || { say "python3 is required (apt-get install python3-venv)"; exit 1; }
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        python3 -m venv "$VENV"
    fi
    say "installing Lineside (edge packages only) into $VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install --quiet ${LINESIDE_PIP_ARGS:-} "$SRC"
    install -D -m 0644 "$SRC/systemd/lineside.service" "$UNIT"
    install -D -m 0644 "$SRC/systemd/lineside.tmpfiles" "$TMPFILES"
    install -d -m 0755 "$CONF_DIR" "$CONF_DIR/trusted"
    install -d -m 0775 "$STATE_DIR/models"
    if [ -e "$CONF_DIR/lineside.yaml" ]; then
        say "keeping the existing $CONF_DIR/lineside.yaml"
    else
        install -m 0644 "$SRC/systemd/lineside.example.yaml" "$CONF_DIR/lineside.yaml"
        say "wrote $CONF_DIR/lineside.yaml from the example: edit it, then start the service"
    fi
    systemctl_do daemon-reload
    systemctl_do enable lineside.service
    if [ -n "${TRUST:-}" ]; then
        install -m 0644 "$TRUST" "$CONF_DIR/trusted/$(basename "$TRUST")"
        say "trusting bundles signed by $(basename "$TRUST")"
    fi
    if ! ls "$CONF_DIR/trusted/"*.pub >/dev/null 2>&1; then
        say "no trusted key yet: the box refuses every bundle until one is in $CONF_DIR/trusted/"
        say "  (on the maintenance laptop: lineside-deploy keygen --out keys; copy keys/*.pub here)"
    fi
    say "installed. Check with: $VENV/bin/lineside-daemon check-config $CONF_DIR/lineside.yaml"
}

uninstall_box() {
    systemctl_do disable --now lineside.service || true
    rm -f "$UNIT" "$TMPFILES"
    rm -rf "$ROOT/opt/lineside"
    systemctl_do daemon-reload
    if [ "${1:-}" = purge ]; then
        rm -rf "$CONF_DIR" "$STATE_DIR"
        say "removed, configuration and state included"
    else
        say "removed; kept $CONF_DIR and $STATE_DIR (use --purge to remove them)"
    fi
}

case "${1:-}" in
    "") install_box ;;
    --trust)
        TRUST=${2:?--trust needs a public key file (NAME.pub from lineside-deploy keygen)}
        [ -f "$TRUST" ] || { say "$TRUST: no such key file"; exit 2; }
        install_box ;;
    --uninstall) uninstall_box ;;
    --purge) uninstall_box purge ;;
    *) say "usage: $0 [--trust KEY.pub | --uninstall | --purge]"; exit 2 ;;
esac
