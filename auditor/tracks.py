"""The challenge's tracks: their directory names under ``records/``, the spellings the command
line accepts for them, and the launch date from which the launch rules hold.

Nothing here imports anything: the rule base, the context, the PR reader and the command line
all read these names from this one place.
"""

from __future__ import annotations

RECORD_TRACK = "track_10min_16mb"
NON_RECORD_TRACK = "track_non_record_16mb"
TRACKS = (RECORD_TRACK, NON_RECORD_TRACK)

# ``--track`` values: the directory name or a shorter spelling of it.
TRACK_ALIASES = {
    RECORD_TRACK: RECORD_TRACK, "10min_16mb": RECORD_TRACK, "record": RECORD_TRACK,
    NON_RECORD_TRACK: NON_RECORD_TRACK, "non_record_16mb": NON_RECORD_TRACK, "non-record-16mb": NON_RECORD_TRACK,
    "non-record": NON_RECORD_TRACK, "non_record": NON_RECORD_TRACK,
}

# The launch README (2026-03-18): "you can't cheat on your test loss". Rulings that spell out
# what that means (score before update, normalized distributions, no validation data in
# training) hold from launch, including for the pull request a ruling was first made on.
LAUNCH_DATE = "2026-03-18"
