#!/usr/bin/env bash
# Regenerates OnCall's prompt sounds: 8 kHz, mono, 16-bit PCM WAV, the format G.711 calls need, so the server never
# has to resample a shipped prompt at run time.
#
# Needs espeak-ng and sox (Debian/Ubuntu: apt-get install espeak-ng sox).
# Usage: sounds/generate.sh            (writes next to this script)
#        sounds/generate.sh OUT_DIR
#
# The output is deterministic for a given espeak-ng/sox version: sox's dither is disabled (-D) so regenerating does
# not churn every file in git.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here}"
mkdir -p "$out"

for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null || { echo "generate.sh: $tool is not installed" >&2; exit 1; }
done

voice="en-us"
speed=150
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# speak NAME TEXT: TTS → trim silence at both ends → 8 kHz mono 16-bit → normalise to -3 dBFS peak → exactly
# 100 ms of silence at the end (espeak's own tail is longer and varies, which makes read-back digits sluggish).
speak() {
    local name="$1" text="$2"
    espeak-ng -v "$voice" -s "$speed" -w "$tmp/$name.raw.wav" "$text"
    # `silence 1 0.02 0.1%` drops everything before the first 20 ms above -60 dBFS (espeak starts with a gap);
    # between two `reverse`s it does the same to the end.
    sox -D "$tmp/$name.raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$out/$name.wav" \
        silence 1 0.02 0.1% reverse silence 1 0.02 0.1% reverse rate -v 8000 norm -3 pad 0 0.1
    echo "  $name.wav: $text"
}

# tone NAME SOX_SYNTH_ARGS...: a synthesised sound at 8 kHz mono 16-bit.
tone() {
    local name="$1"; shift
    sox -D -n -r 8000 -c 1 -b 16 -e signed-integer "$out/$name.wav" "$@"
}

echo "Caller prompts:"
speak greeting          "Thank you for calling. You have reached the on-call line."
speak menu              "For an emergency, press 1. To leave a message, press 2. To repeat this menu, press star."
speak invalid           "Sorry, that is not a valid option."
speak record_after_tone "Please leave your message after the tone. Press pound when you are finished."
speak thank_you         "Thank you. Your message has been recorded."
speak goodbye           "Goodbye."
speak please_hold       "Please hold while we reach the on-call staff. To hang up and be called back, press pound."
speak staff_left        "The on-call staff member has left the call. Your request stays open."
speak no_input          "We did not receive your selection."
speak request_created   "Your request has been received. Someone will get back to you shortly."
speak everyone_unavailable "We are sorry, no one is available right now. Your request has been recorded and will be handled as soon as possible."

echo "After hours (business hours, issue 7):"
speak closed_now            "Our office is closed right now."
speak call_back_after       "We will call you back after"
speak after_hours_emergency "If this is an emergency, press 1 now. Otherwise, stay on the line to leave a message."

echo "Clock times (\"eight thirty A M\", with the digits below):"
teens=(ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen)
for i in "${!teens[@]}"; do
    speak "number_$((10 + i))" "${teens[$i]}"
done
speak number_20 "twenty"
speak number_30 "thirty"
speak number_40 "forty"
speak number_50 "fifty"
speak oh "oh"
speak am "A M"
speak pm "P M"

echo "Digits:"
words=(zero one two three four five six seven eight nine)
for d in "${!words[@]}"; do
    speak "digit_$d" "${words[$d]}"
done
speak star  "star"
speak pound "pound"

echo "Paging (calls to the on-call person):"
speak new_request  "New request"
speak from         "from"
speak press_1_talk "Press 1 to talk to the caller, 2 to hear the message, 3 to decline, 5 to escalate, 7 to snooze, star to repeat."
speak accepted     "Acknowledged."
speak press_9_done "Press 9 when the request is done."
speak declined     "Declined."
speak escalating   "Escalating."
speak snoozed      "Snoozed. We will call you again later."
speak completed    "Marked as done."

echo "Tones:"
# The record beep: 0.4 s of 1 kHz at -6 dBFS, with 10 ms fades so it does not click.
tone beep synth 0.4 sine 1000 vol -6dB fade h 0.01 0.4 0.01
echo "  beep.wav: 1 kHz, 0.4 s"

# Hold music: a quiet C-E-G-E arpeggio of single notes (never two notes at once, so it cannot look like a DTMF
# digit to the in-band detector if it echoes back), 2 s per pattern, repeated to 10 s.
notes=(523.25 659.25 783.99 659.25)
parts=()
for i in "${!notes[@]}"; do
    sox -D -n -r 8000 -c 1 -b 16 -e signed-integer "$tmp/note$i.wav" \
        synth 0.5 sine "${notes[$i]}" fade q 0.05 0.5 0.25 vol -20dB
    parts+=("$tmp/note$i.wav")
done
sox -D "${parts[@]}" "$tmp/pattern.wav"
sox -D "$tmp/pattern.wav" "$out/hold_music.wav" repeat 4
echo "  hold_music.wav: 10 s arpeggio at -20 dBFS"
