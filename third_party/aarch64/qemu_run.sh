#!/usr/bin/env bash
# --run_under wrapper for the aarch64 config: runs aarch64 ELF files under qemu-aarch64 with the
# Debian cross sysroot, anything else (shell test scripts) natively. An LD_PRELOAD in the
# environment is handed to the guest, not applied to qemu itself.
set -euo pipefail
readonly SYSROOT=/usr/aarch64-linux-gnu

is_aarch64_elf() {
  # ELF magic, then e_machine (bytes 18-19, little endian) == 0xb7 (EM_AARCH64).
  [ -f "$1" ] || return 1
  [ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" = "7f454c46" ] || return 1
  [ "$(od -An -tx1 -j18 -N2 "$1" | tr -d ' \n')" = "b700" ]
}

if is_aarch64_elf "$1"; then
  qemu_env=()
  if [ -n "${LD_PRELOAD:-}" ]; then
    qemu_env=(-E "LD_PRELOAD=$LD_PRELOAD")
    unset LD_PRELOAD
  fi
  exec qemu-aarch64 -L "$SYSROOT" "${qemu_env[@]}" "$@"
fi
exec "$@"
