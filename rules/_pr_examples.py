"""Shared example diffs for the pull-request shape rules (PG61x)."""

RECORD = "records/track_10min_16mb"
NEW = f"{RECORD}/2026-04-20_MyRecord"
OTHER_NEW = f"{RECORD}/2026-04-21_OtherIdea"
OLD = f"{RECORD}/2026-03-19_EarlierRecord"

CLEAN = (
    ("A", f"{NEW}/README.md"),
    ("A", f"{NEW}/submission.json"),
    ("A", f"{NEW}/train_gpt.py"),
    ("A", f"{NEW}/train_seed42.log"),
)
EXISTING = (f"{OLD}/README.md", f"{OLD}/submission.json", f"{OLD}/train_gpt.py", "README.md", "train_gpt.py")
