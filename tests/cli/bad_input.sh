#!/usr/bin/env bash
# Bad input to the command line gives a clear error and a non-zero exit, never a crash.
set -uo pipefail
ringkv=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0
expect_error() {  # expect_error "words in the message" command...
  local words=$1; shift
  local out status
  out=$("$@" 2>&1); status=$?
  if [ $status -eq 0 ] || [ $status -ge 128 ] || ! grep -qi -- "$words" <<<"$out"; then
    echo "FAIL ($status): $* -> $out"; failures=$((failures + 1))
  else
    echo "ok: $* -> $(head -c 160 <<<"$out" | tr '\n' ' ')"
  fi
}
"$ringkv" synth-kv -o "$dir/kv.dump" --tokens 300 --layers 1 --kv-heads 1 --head-dim 64 >/dev/null || exit 1
head -c 1000 "$dir/kv.dump" > "$dir/truncated.dump"
cp "$dir/kv.dump" "$dir/corrupt.dump"
printf '\x55' | dd of="$dir/corrupt.dump" bs=1 seek=5000 conv=notrunc status=none
echo "not a dump" > "$dir/text.dump"
expect_error "truncated" "$ringkv" analyze --kv-dump "$dir/truncated.dump" --kv int:bits=2
expect_error "checksum" "$ringkv" analyze --kv-dump "$dir/corrupt.dump" --kv int:bits=2
expect_error "dump" "$ringkv" analyze --kv-dump "$dir/text.dump" --kv int:bits=2
expect_error "no such file" "$ringkv" analyze --kv-dump "$dir/missing.dump" --kv int:bits=2
expect_error "unknown parameter 'bit'" "$ringkv" analyze --kv-dump "$dir/kv.dump" --kv int:bit=2
expect_error "unknown codec" "$ringkv" analyze --kv-dump "$dir/kv.dump" --kv zip
expect_error "does not divide" "$ringkv" analyze --kv-dump "$dir/kv.dump" --kv cq:channels=3,bits=4
expect_error "not expected" "$ringkv" analyze --bogus
expect_error "unknown command" "$ringkv" frobnicate
"$ringkv" calibrate --kv-dump "$dir/kv.dump" --kv cq:channels=4,bits=4 -o "$dir/cal.bin" >/dev/null || exit 1
expect_error "truncated" "$ringkv" calibrate --kv-dump "$dir/truncated.dump" --kv int:bits=2 -o "$dir/x.bin"
[ $failures -eq 0 ] && echo "all bad inputs refused clearly" || exit 1
