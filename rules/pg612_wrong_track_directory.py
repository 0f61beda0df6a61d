"""PG612 wrong-track-directory."""

from __future__ import annotations

import difflib

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import TRACKS, PrCase, PrRule

from ._pr_examples import CLEAN, EXISTING


class WrongTrackDirectory(PrRule):
    """The new record folder is not inside one of the track directories under `records/`.

    What it checks:
        Each new record folder sits in `records/track_10min_16mb/` or
        `records/track_non_record_16mb/`. A folder placed directly in `records/` or in any
        other directory (a misspelt or invented track such as `records/track_10min_16MB/`)
        is reported, with the closest track name as a hint. The folder is still audited.

    Why it breaks the rules:
        Submissions go in the folder of their track (R-FMT-SINGLE-FOLDER): the track decides
        the limits the record is judged by, and the leaderboard tooling reads these two
        directories only.

    Example:
        `records/2026-04-20_MyRecord/README.md`, `records/10min_16mb/2026-04-20_MyRecord/…`.

    Legal alternative:
        `records/track_10min_16mb/2026-04-20_MyRecord/` for a record attempt,
        `records/track_non_record_16mb/…` for everything else.

    Known limitations:
        A new track directory introduced by the maintainers needs the track list updated.
    """

    CODE = "PG612"
    NAME = "wrong-track-directory"
    SEVERITY = Severity.ERROR
    CATEGORY = Category.PACKAGING
    REFERENCES = ("R-FMT-SINGLE-FOLDER",)

    VALID = [
        PrCase("record track", changes=CLEAN, existing=EXISTING),
        PrCase("non-record track", changes=(("A", "records/track_non_record_16mb/2026-04-20_Idea/README.md"),)),
    ]
    INVALID = [
        PrCase("folder directly in records/", changes=(("A", "records/2026-04-20_MyRecord/README.md"),
                                                      ("A", "records/2026-04-20_MyRecord/logs/seed1.log")),
               message_contains=("directly in records/",)),
        PrCase("misspelt track directory", changes=(("A", "records/track_10min_16MB/2026-04-20_MyRecord/README.md"),),
               message_contains=("track_10min_16MB", "track_10min_16mb")),
    ]

    def check_pr(self, pr):
        for folder, files in pr.new_folders.items():
            placement = pr.placement(files[0])
            if placement.known_track:
                continue
            tracks = " or ".join(f"records/{t}/" for t in TRACKS)
            if placement.track_dir is None:
                message = f"record folder {folder} sits directly in records/; it belongs in {tracks}"
            else:
                hint = difflib.get_close_matches(placement.track_dir, TRACKS, n=1, cutoff=0.5)
                guess = f" (did you mean {hint[0]}?)" if hint else ""
                message = (f"record folder {folder} is in records/{placement.track_dir}/, which is not a track "
                           f"directory{guess}; it belongs in {tracks}")
            yield self.finding(message, location=Location(files[0]),
                               values={"folder": folder, "track_dir": placement.track_dir})
