"""Writing JSON Lines corpora: one object per line, UTF-8, replaced atomically."""

import json
import os


def write(path, rows):
    """Writes `rows` to `path` (through a temporary file) and returns how many there were."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    n = 0
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    os.replace(path + ".tmp", path)
    return n
