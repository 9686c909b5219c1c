#!/usr/bin/env bash
# Start-up and memory benchmark of the touchscreen kiosk (issue #5 §8), run from a clean checkout:
#
#   benches/kiosk_startup.sh
#
# Installs what it needs when it is missing (the build packages through .ci/setup, then Xvfb, xdotool, x11-utils,
# ImageMagick and Debian's chromium; root or sudo), builds the release binary, makes 1280x720 replay frames from
# assets/demo/id-front.jpg and runs the kiosk under Xvfb, its window covering the 1280x800 screen, with
# `--camera replay:DIR`, its own EKYC_DATA_DIR (empty at the first start, kept for the restarts after it) and the
# embedded sandbox. It measures:
#   - process start -> window shown, and the tap on "I agree" -> first preview frame on screen on a settled window
#     (the camera opens only on a capture screen: welcome -> Start -> consent -> I agree -> document front);
#   - cold start to the first preview frame with both taps sent as soon as the window is up (target: 1 s);
#   - the steady state on the document screen with the 720p preview and its checks running: CPU (% of one core, and
#     the busiest threads) and memory (VmRSS, VmHWM, PSS) over BENCH_STEADY_SECONDS (target: RSS at most 150 MiB);
#   - the same capture page (benches/kiosk_capture.html) in a Chromium kiosk with a fake camera playing the same
#     frames, on the same display: time to the first video frame, CPU and memory summed over its processes.
# Then prints a summary with the machine and exits 1 when a target is missed (2 when the benchmark itself failed).
#
# The kiosk's own log gives the on-screen times: "kiosk: window shown N ms after start" and "preview: first frame
# on screen N ms after the camera was asked to start" (millisecond timestamps). Taps are xdotool clicks at the
# centre of the yellow primary button, found on screenshots in the first run; every run then checks on a
# screenshot that the camera picture is on the screen.
#
# Settings (environment):
#   BENCH_RUNS=3             start-up runs (each: one settled start and one with the taps sent at once)
#   BENCH_STEADY_SECONDS=20  steady-state sampling window
#   BENCH_CHROMIUM=1         0 skips the Chromium comparison (and its installation)
#   BENCH_KEEP=0             1 keeps the work directory (logs, screenshots, frames); it is always kept on a failure
#   CARGO_TARGET_DIR         honoured, as by cargo
# Network: none. The kiosk talks to its embedded sandbox on 127.0.0.1; Chromium loads a file:// page with every
# host name mapped to nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

runs=${BENCH_RUNS:-3}
steady_s=${BENCH_STEADY_SECONDS:-20}
with_chromium=${BENCH_CHROMIUM:-1}
keep=${BENCH_KEEP:-0}
width=1280
height=800
rss_target_mib=150
cold_target_ms=1000

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
  say "FAILED: $*"
  exit 2
}
now_ms() { date +%s%3N; }

for v in "$runs" "$steady_s"; do
  case "$v" in "" | *[!0-9]*) die "BENCH_RUNS and BENCH_STEADY_SECONDS must be whole numbers" ;; esac
  [ "$v" -ge 1 ] || die "BENCH_RUNS and BENCH_STEADY_SECONDS must be at least 1"
done

# ---------------------------------------------------------------------------------------------------------------
# Packages

.ci/setup || die ".ci/setup could not install the build packages"

need_root() {
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    say "need root (or sudo) to install: $*"
    return 1
  fi
}

apt_updated=0
install_missing() {
  local p missing=()
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "${missing[*]}" || return 1
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ $apt_updated -eq 0 ]; then
    "${sudo[@]}" apt-get update -qq || return 1
    apt_updated=1
  fi
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || return 1
}

# xvfb: the X server; xdotool: taps and window search; x11-utils: xwininfo; imagemagick: frames and screenshots;
# libxkbcommon-x11-0: dlopen'd by winit under X11; fonts-dejavu-core: the web page's font (the kiosk bundles its own).
install_missing xvfb xdotool x11-utils imagemagick libxkbcommon-x11-0 fonts-dejavu-core ||
  die "cannot install the packages the benchmark needs"
chromium_note=""
if [ "$with_chromium" = 1 ]; then
  if ! install_missing chromium; then
    chromium_note="chromium could not be installed"
    with_chromium=0
  fi
fi
# ImageMagick 6's own commands, by their full names: a `convert` earlier in PATH may be something else.
im_convert=$(command -v convert-im6.q16 || command -v /usr/bin/convert || true)
im_import=$(command -v import-im6.q16 || command -v /usr/bin/import || true)
if [ -z "$im_convert" ] || [ -z "$im_import" ]; then die "ImageMagick's convert and import not found"; fi

# ---------------------------------------------------------------------------------------------------------------
# Build

say "building the release binary"
cargo build --release --locked --quiet || die "the release build failed"
bin="${CARGO_TARGET_DIR:-$repo/target}/release/ekyc-kiosk"
case "$bin" in /*) ;; *) bin="$repo/$bin" ;; esac
[ -x "$bin" ] || die "no binary at $bin"

# ---------------------------------------------------------------------------------------------------------------
# Work directory, processes and cleanup

work=$(mktemp -d "${TMPDIR:-/tmp}/kiosk-bench.XXXXXX")
verdict_reached=0
xvfb_pid=""
kiosk_pid=""
chromium_pid=""

stop_pid() { # PID: TERM, then KILL after 5 s
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_chromium() { # the whole session Chromium was started in (its zygotes, renderers, GPU and utility processes)
  [ -n "$chromium_pid" ] || return 0
  local sid=$chromium_pid p
  stop_pid "$chromium_pid"
  for p in $(session_pids "$sid"); do kill -KILL "$p" 2>/dev/null || true; done
  chromium_pid=""
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  # Any failure before the verdict is the benchmark's own (2), never a missed target (1).
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ] && [ "$verdict_reached" = 0 ]; then rc=2; fi
  stop_pid "$kiosk_pid"
  stop_chromium
  stop_pid "$xvfb_pid"
  if [ "$keep" = 1 ] || [ "$rc" -eq 2 ]; then
    say "work directory kept (logs, screenshots, frames): $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Processes whose session id is $1 (field 6 of /proc/PID/stat; the fields after the command name start at 3).
session_pids() {
  local sid=$1 f line
  local -a fields
  for f in /proc/[0-9]*/stat; do
    read -r line <"$f" 2>/dev/null || continue
    read -r -a fields <<<"${line##*) }"
    if [ "${fields[3]:-}" = "$sid" ]; then
      f=${f#/proc/}
      echo "${f%/stat}"
    fi
  done
}

# CPU ticks (utime + stime, fields 14 and 15 of /proc/PID/stat) of the given pids, summed.
cpu_ticks() {
  local pid line total=0
  local -a fields
  for pid in "$@"; do
    read -r line <"/proc/$pid/stat" 2>/dev/null || continue
    read -r -a fields <<<"${line##*) }"
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}

# "ticks name" per thread of process $1 (utime + stime of /proc/PID/task/TID/stat).
thread_ticks() {
  local t line name
  local -a fields
  for t in /proc/"$1"/task/[0-9]*; do
    read -r line <"$t/stat" 2>/dev/null || continue
    name=${line#*(}
    name=${name%)*}
    read -r -a fields <<<"${line##*) }"
    echo "$((fields[11] + fields[12])) ${name// /_} ${t##*/}"
  done
}

# KiB of a /proc/PID/status or smaps_rollup field, summed over the given pids: kib FIELD FILE PID...
kib() {
  local field=$1 file=$2 pid total=0 v
  shift 2
  for pid in "$@"; do
    v=$(awk -v f="$field:" '$1 == f { print $2; exit }' "/proc/$pid/$file" 2>/dev/null || true)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# Waits until FILE has a line matching the extended regex PATTERN; prints the line. wait_line FILE PATTERN SECONDS PID
wait_line() {
  local file=$1 pattern=$2 deadline=$(($(now_ms) + $3 * 1000)) pid=${4:-} line
  while :; do
    line=$(grep -m1 -E "$pattern" "$file" 2>/dev/null || true)
    if [ -n "$line" ]; then
      printf '%s\n' "$line"
      return 0
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      say "the process exited while waiting for /$pattern/ in $file:"
      tail -n 20 "$file" >&2 || true
      return 1
    fi
    if [ "$(now_ms)" -ge "$deadline" ]; then
      say "no /$pattern/ in $file after $3 s:"
      tail -n 20 "$file" >&2 || true
      return 1
    fi
    sleep 0.01
  done
}

# Epoch milliseconds of an env_logger line ("[2026-11-26T22:40:01.123Z INFO  target] message").
log_ms() {
  local ts
  ts=$(printf '%s\n' "$1" | sed -n 's/^\[\([0-9T:.-]*Z\) .*/\1/p')
  [ -n "$ts" ] || die "no timestamp in log line: $1"
  date -u -d "$ts" +%s%3N
}

# ---------------------------------------------------------------------------------------------------------------
# Replay frames: 1280x720, the demo ID card held too far from the camera (so the checks keep running and ask
# to fill the guide, and no photo is taken), drifting a few pixels from frame to frame, with sensor-like noise.

frames=$work/frames
mkdir -p "$frames"
say "making 30 replay frames of 1280x720"
for i in $(seq 0 29); do
  x=$((330 + (i % 15) * 3 - (i / 15) * 20))
  y=$((190 + (i % 10) * 2))
  "$im_convert" -size 1280x720 gradient:'#6e6e6e-#3a3a3a' \
    \( assets/demo/id-front.jpg -resize 560x \) -geometry +$x+$y -composite \
    -attenuate 0.4 +noise Gaussian -strip -sampling-factor 2x1 -quality 85 \
    "$frames/$(printf 'frame-%02d.jpg' "$i")"
done
frame_kib=$(du -k "$frames" | awk '{ print $1 }')
cat "$frames"/frame-*.jpg >"$work/frames.mjpeg"

# ---------------------------------------------------------------------------------------------------------------
# The X server

say "starting Xvfb at ${width}x${height}"
Xvfb -displayfd 3 -screen 0 "${width}x${height}x24" -nolisten tcp -noreset 3>"$work/display" 2>"$work/xvfb.log" &
xvfb_pid=$!
deadline=$(($(now_ms) + 10000))
until [ -s "$work/display" ]; do
  kill -0 "$xvfb_pid" 2>/dev/null || die "Xvfb did not start: $(cat "$work/xvfb.log")"
  [ "$(now_ms)" -lt "$deadline" ] || die "Xvfb did not report its display within 10 s"
  sleep 0.05
done
DISPLAY=":$(tr -dc 0-9 <"$work/display")"
export DISPLAY
unset WAYLAND_DISPLAY WAYLAND_SOCKET
say "display $DISPLAY"

shot() { "$im_import" -window root "$1"; }

# The centre of the largest yellow (#ffd23f, the primary button) area of a screenshot: "X Y", or nothing.
yellow_button() {
  "$im_convert" "$1" -fuzz 12% -fill black +opaque '#ffd23f' -fill white -opaque '#ffd23f' \
    -define connected-components:verbose=true -connected-components 8 null: 2>/dev/null |
    awk '/srgb\(255,255,255\)|white|gray\(255\)/ {
           split($2, g, /[x+]/); area = $4
           if (area > best) { best = area; cx = g[3] + int(g[1] / 2); cy = g[4] + int(g[2] / 2) }
         }
         END { if (best > 2000) print cx, cy }'
}

# True when the screenshot shows a camera picture in the preview area (grey), not the navy background.
shows_preview() {
  local rgb
  rgb=$("$im_convert" "$1" -crop 560x300+360+230 +repage -resize 1x1! -format '%[fx:int(255*r)] %[fx:int(255*g)] %[fx:int(255*b)]' info:)
  # shellcheck disable=SC2086
  set -- $rgb
  [ "$1" -gt 40 ] && [ $(($3 - $1)) -lt 25 ]
}

# ---------------------------------------------------------------------------------------------------------------
# The kiosk

# Xvfb has no window manager, and without one nothing acts on a full-screen request (the window would stay at
# winit's default 800x600): the kiosk runs windowed at its preferred size, 1280x800 at (0, 0), which covers the
# screen exactly with the same layout and pixels as full screen. The idle prompt is pushed out of the measurement.
data_dir=$work/data
start_kiosk() { # LOG: starts the kiosk, sets kiosk_pid and t_launch
  local log=$1
  xdotool mousemove $((width - 1)) $((height - 1)) # away from the buttons, so the taps' moves are real moves
  t_launch=$(now_ms)
  EKYC_DATA_DIR="$data_dir" EKYC_KIOSK_FULLSCREEN=false EKYC_KIOSK_IDLE_TIMEOUT=10m RUST_LOG=info \
    "$bin" --camera "replay:$frames" 2>"$log" >/dev/null &
  kiosk_pid=$!
}

# Waits until the kiosk's window is mapped (a tap before that would go to the root window); prints its id.
wait_window() {
  local deadline=$(($(now_ms) + 10000)) id
  while :; do
    id=$(xdotool search --onlyvisible --pid "$kiosk_pid" 2>/dev/null | head -n1 || true)
    [ -n "$id" ] && break
    kill -0 "$kiosk_pid" 2>/dev/null || return 1
    [ "$(now_ms)" -lt "$deadline" ] || return 1
    sleep 0.005
  done
  echo "$id"
}

# LOG PNG WHAT: waits for the kiosk's first preview frame, then checks on a screenshot (PNG) that the camera
# picture is on the screen. Sets preview_at (the log line's timestamp, ms) and preview_app_ms (the kiosk's own
# figure: camera asked -> frame on screen). Runs in this shell, so die ends the benchmark.
await_preview() {
  local log=$1 png=$2 what=$3 line
  line=$(wait_line "$log" 'preview: first frame on screen' 20 "$kiosk_pid") || die "run $run: no preview frame $what"
  preview_at=$(log_ms "$line")
  preview_app_ms=$(printf '%s\n' "$line" | sed -n 's/.*on screen \([0-9]*\) ms.*/\1/p')
  sleep 0.5
  shot "$png"
  shows_preview "$png" || die "run $run: no camera picture on the screen (see $png)"
}

start_pos=""
agree_pos=""
load_before=$(cut -d' ' -f1-3 /proc/loadavg) # other work on the machine shows in every figure
declare -a r_window r_tap r_tap_app r_cold r_cold_window r_cold_taps r_cold_app

for run in $(seq 1 "$runs"); do
  # (a) settled: wait for the window, find and tap Start, then I agree; time the tap to the first frame.
  log=$work/settled-$run.log
  start_kiosk "$log"
  line=$(wait_line "$log" 'kiosk: window shown' 20 "$kiosk_pid") || die "run $run: the window did not show"
  r_window[run]=$(($(log_ms "$line") - t_launch))
  wid=$(wait_window) || die "run $run: the window was not mapped within 10 s"
  sleep 1.5
  if [ -z "$start_pos" ]; then
    geometry=$(xwininfo -id "$wid" | awk '/Width:/ { w = $2 } /Height:/ { h = $2 } END { print w "x" h }')
    [ "$geometry" = "${width}x${height}" ] || die "the kiosk window is $geometry, not ${width}x${height}"
    shot "$work/welcome.png"
    start_pos=$(yellow_button "$work/welcome.png")
    [ -n "$start_pos" ] || die "no Start button found on $work/welcome.png (BENCH_KEEP=1 keeps it)"
  fi
  # shellcheck disable=SC2086
  xdotool mousemove $start_pos click --delay 0 1
  sleep 0.7
  if [ -z "$agree_pos" ]; then
    shot "$work/consent.png"
    agree_pos=$(yellow_button "$work/consent.png")
    [ -n "$agree_pos" ] || die "no I agree button found on $work/consent.png"
    [ "$agree_pos" != "$start_pos" ] || die "the Start tap did not lead to the consent screen (see $work/consent.png)"
    say "taps: Start at ($start_pos), I agree at ($agree_pos)"
  fi
  t_tap=$(now_ms)
  # shellcheck disable=SC2086
  xdotool mousemove $agree_pos click --delay 0 1
  await_preview "$log" "$work/settled-$run.png" "after the taps"
  r_tap[run]=$((preview_at - t_tap))
  r_tap_app[run]=$preview_app_ms
  stop_pid "$kiosk_pid"
  kiosk_pid=""

  # (b) cold start with the taps sent as soon as the window is up.
  log=$work/cold-$run.log
  start_kiosk "$log"
  line=$(wait_line "$log" 'kiosk: window shown' 20 "$kiosk_pid") || die "run $run: the window did not show"
  wait_window >/dev/null || die "run $run: the window was not mapped within 10 s"
  # shellcheck disable=SC2086
  xdotool mousemove $start_pos click --delay 0 1 mousemove $agree_pos click --delay 0 1
  r_cold_taps[run]=$(($(now_ms) - t_launch))
  r_cold_window[run]=$(($(log_ms "$line") - t_launch))
  await_preview "$log" "$work/cold-$run.png" "after the taps sent at once"
  r_cold[run]=$((preview_at - t_launch))
  r_cold_app[run]=$preview_app_ms
  say "run $run: window ${r_window[run]} ms, tap -> frame ${r_tap[run]} ms; taps at once: first frame ${r_cold[run]} ms after start"
  if [ "$run" -lt "$runs" ]; then
    stop_pid "$kiosk_pid"
    kiosk_pid=""
  fi
done

# Steady state: the last kiosk stays on the document screen with the preview running.
clk_tck=$(getconf CLK_TCK)
steady() { # NAME PID...: samples CPU and memory over steady_s seconds; sets s_cpu s_rss_avg s_rss_max s_pss
  local name=$1 i rss t0 t1 c0 c1 sum=0 max=0 n=0
  shift
  say "$name: steady state, sampling for $steady_s s"
  c0=$(cpu_ticks "$@")
  t0=$(now_ms)
  for i in $(seq "$steady_s"); do
    sleep 1
    rss=$(kib VmRSS status "$@")
    sum=$((sum + rss))
    n=$((n + 1))
    [ "$rss" -gt "$max" ] && max=$rss
  done
  c1=$(cpu_ticks "$@")
  t1=$(now_ms)
  s_cpu=$(awk -v c=$((c1 - c0)) -v hz="$clk_tck" -v ms=$((t1 - t0)) 'BEGIN { printf "%.1f", 100 * c / hz / (ms / 1000) }')
  s_rss_avg=$((sum / n))
  s_rss_max=$max
  s_pss=$(kib Pss smaps_rollup "$@")
}

sleep 3
shot "$work/steady-kiosk.png"
shows_preview "$work/steady-kiosk.png" || die "steady state: no camera picture on the screen (see $work/steady-kiosk.png)"
# A photo taken would have moved on to the next capture screen, whose camera start logs a first frame again.
[ "$(grep -c 'preview: first frame on screen' "$work/cold-$runs.log")" -eq 1 ] ||
  die "steady state: the kiosk took a photo and left the document screen (see $work/cold-$runs.log)"
thread_ticks "$kiosk_pid" >"$work/threads-0"
t_thr=$(now_ms)
steady kiosk "$kiosk_pid"
thread_ticks "$kiosk_pid" >"$work/threads-1"
t_thr=$(($(now_ms) - t_thr))
k_cpu=$s_cpu
k_rss_avg=$s_rss_avg
k_rss_max=$s_rss_max
k_pss=$s_pss
k_hwm=$(kib VmHWM status "$kiosk_pid")
k_threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$kiosk_pid/status")
# The busiest threads over the window (by name), as % of one core.
k_busiest=$(awk -v hz="$clk_tck" -v s="$t_thr" '
    NR == FNR { before[$3] = $1; next }
    { used[$2] += $1 - before[$3] }
    END { for (n in used) if (used[n] > 0) printf "%.1f %s\n", 100 * used[n] / hz / (s / 1000), n }' \
  "$work/threads-0" "$work/threads-1" | sort -rn | head -n 5 | awk '{ printf "%s%s %s", sep, $2, $1; sep = ", " }')
stop_pid "$kiosk_pid"
kiosk_pid=""

# ---------------------------------------------------------------------------------------------------------------
# Chromium

c_status="skipped (BENCH_CHROMIUM=0)"
[ -n "$chromium_note" ] && c_status="skipped: $chromium_note"
declare -a c_shown c_first c_gum
c_version=""
if [ "$with_chromium" = 1 ]; then
  c_version=$(chromium --version 2>/dev/null | head -n1 || true)
  c_status=ok
  # shellcheck disable=SC2054 # the commas are in the values
  chromium_args=(
    --kiosk --window-position=0,0 --window-size="$width,$height"
    --user-data-dir="$work/chromium-profile" --disable-gpu --no-first-run --no-default-browser-check
    --use-fake-ui-for-media-stream --use-fake-device-for-media-stream
    --use-file-for-fake-video-capture="$work/frames.mjpeg"
    --autoplay-policy=no-user-gesture-required --password-store=basic
    --disable-background-networking --disable-component-update --disable-sync --disable-default-apps
    --disable-extensions --disable-breakpad --no-pings --disable-domain-reliability
    --disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication
    --host-resolver-rules='MAP * ~NOTFOUND'
    --enable-logging=stderr --v=0
  )
  [ "$(id -u)" -eq 0 ] && chromium_args+=(--no-sandbox)
  page="file://$repo/benches/kiosk_capture.html"
  for run in $(seq 1 "$runs"); do
    rm -rf "$work/chromium-profile"
    clog=$work/chromium-$run.log
    t_launch=$(now_ms)
    # A session of its own, so that every process it starts can be found (and stopped).
    (exec setsid chromium "${chromium_args[@]}" "$page" >"$clog" 2>&1) &
    chromium_pid=$!
    if ! line=$(wait_line "$clog" 'bench: (first-frame|error)' 40 "$chromium_pid"); then
      c_status="failed: no video frame (see $clog)"
      stop_chromium
      break
    fi
    case "$line" in *"bench: error"*)
      c_status="failed: ${line#*bench: }"
      stop_chromium
      break
      ;;
    esac
    shown=$(wait_line "$clog" 'bench: page-shown' 5 || true)
    c_shown[run]=$(($(printf '%s\n' "$shown" | sed -n 's/.*page-shown epoch=\([0-9]*\).*/\1/p') - t_launch))
    c_first[run]=$(($(printf '%s\n' "$line" | sed -n 's/.*first-frame epoch=\([0-9]*\).*/\1/p') - t_launch))
    c_gum[run]=$(printf '%s\n' "$line" | sed -n 's/.*since-gum=\([0-9]*\).*/\1/p')
    c_size=$(printf '%s\n' "$line" | sed -n 's/.*size=\([0-9x]*\).*/\1/p')
    say "chromium run $run: page shown ${c_shown[run]} ms, first video frame ${c_first[run]} ms after start"
    if [ "$run" -lt "$runs" ]; then
      stop_chromium
    fi
  done
  if [ "$c_status" = ok ]; then
    sleep 3
    shot "$work/steady-chromium.png"
    mapfile -t cpids < <(session_pids "$chromium_pid")
    steady chromium "${cpids[@]}"
    c_nprocs=${#cpids[@]}
    c_cpu=$s_cpu
    c_rss_avg=$s_rss_avg
    c_rss_max=$s_rss_max
    c_pss=$s_pss
  fi
  stop_chromium
fi

# ---------------------------------------------------------------------------------------------------------------
# Summary

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
maxof() { printf '%s\n' "$@" | sort -n | tail -n1; }
row() { printf '  %-64s %s\n' "$1" "$2"; }
runs_of() { # NAME[@]: "a / b / c ms (median m)"
  printf '%s / ' "$@" | sed 's| / $||'
  printf ' ms (median %s)' "$(median "$@")"
}

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_total=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
os=$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null || true)
rev=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)

cold_max=$(maxof "${r_cold[@]}")
verdict=0
cold_ok=met
[ "$cold_max" -le "$cold_target_ms" ] || {
  cold_ok=MISSED
  verdict=1
}
rss_ok=met
[ "$k_rss_max" -le $((rss_target_mib * 1024)) ] || {
  rss_ok=MISSED
  verdict=1
}

{
  echo
  echo "== kiosk start-up and memory benchmark ($(date -u '+%Y-%m-%d %H:%M UTC')) =="
  row "machine" "$(nproc) CPU ($cpu_model), $mem_total, $os, Linux $(uname -r)"
  row "load average before the runs (1, 5, 15 min)" "$load_before"
  row "build" "ekyc-kiosk $rev, release; Xvfb ${width}x${height}x24, Slint software renderer"
  row "camera" "replay of 30 JPEG frames 1280x720 ($frame_kib KiB) at 30 fps, document front screen"
  echo
  echo "kiosk, $runs runs (wall clock; taps by xdotool):"
  row "process start -> window shown" "$(runs_of "${r_window[@]}")"
  row "tap on \"I agree\" -> first preview frame on screen (settled)" "$(runs_of "${r_tap[@]}")"
  row "  of which camera asked -> frame on screen (the kiosk's log)" "$(runs_of "${r_tap_app[@]}")"
  row "cold start -> first preview frame, taps sent when the window is up" "$(runs_of "${r_cold[@]}")"
  row "  window shown in those runs" "$(runs_of "${r_cold_window[@]}")"
  row "  both taps sent (window mapped, found by xdotool, then tapped)" "$(runs_of "${r_cold_taps[@]}")"
  row "  camera asked -> frame on screen in those runs (the kiosk's log)" "$(runs_of "${r_cold_app[@]}")"
  row "target: cold start at most $cold_target_ms ms (worst run $cold_max ms)" "$cold_ok"
  echo
  echo "kiosk steady state, document screen, 720p preview with its checks, ${steady_s} s:"
  row "CPU" "$k_cpu % of one core ($k_threads threads)"
  row "  busiest threads (% of one core)" "$k_busiest"
  row "resident memory VmRSS, average / highest" "$(mib "$k_rss_avg") / $(mib "$k_rss_max") MiB"
  row "VmHWM (peak since start) / PSS" "$(mib "$k_hwm") / $(mib "$k_pss") MiB"
  row "target: RSS at most $rss_target_mib MiB" "$rss_ok"
  echo
  if [ "$c_status" = ok ]; then
    echo "Chromium kiosk, the same page (benches/kiosk_capture.html), fake camera playing the same frames ($c_size), $runs runs:"
    row "version" "$c_version, --kiosk --disable-gpu"
    row "process start -> page shown" "$(runs_of "${c_shown[@]}")"
    row "process start -> first video frame" "$(runs_of "${c_first[@]}")"
    row "  getUserMedia -> first video frame" "$(runs_of "${c_gum[@]}")"
    row "steady state CPU, $c_nprocs processes summed" "$c_cpu % of one core"
    row "RSS summed, average / highest" "$(mib "$c_rss_avg") / $(mib "$c_rss_max") MiB"
    row "PSS summed" "$(mib "$c_pss") MiB"
    echo "  (the page only shows the frames; the kiosk also checks a frame for the card about 7 times a second and"
    echo "   scales every frame to 640 px wide for its preview)"
  else
    echo "Chromium comparison: $c_status"
  fi
  echo
  if [ $verdict -eq 0 ]; then echo "all targets met"; else echo "A TARGET WAS MISSED"; fi
}
verdict_reached=1
exit $verdict
